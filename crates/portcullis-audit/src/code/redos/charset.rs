//! Sets of characters (code points, or UTF-16 code units outside unicode
//! mode) as sorted, disjoint, non-adjacent inclusive ranges.

/// The largest character of unicode mode; outside it a pattern reads
/// UTF-16 code units, so its universe ends at 0xFFFF.
pub const MAX_UNICODE: u32 = 0x10FFFF;
pub const MAX_UTF16: u32 = 0xFFFF;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CharSet {
    ranges: Vec<(u32, u32)>,
}

impl CharSet {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn single(c: u32) -> Self {
        Self { ranges: vec![(c, c)] }
    }

    pub fn range(low: u32, high: u32) -> Self {
        let mut set = Self::empty();
        set.add(low, high);
        set
    }

    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut set = Self::empty();
        for (low, high) in ranges {
            set.add(low, high);
        }
        set
    }

    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(low, high)| u64::from(high - low) + 1).sum()
    }

    pub fn contains(&self, c: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, high)| high < c);
        self.ranges.get(i).is_some_and(|&(low, _)| low <= c)
    }

    pub fn add(&mut self, low: u32, high: u32) {
        if low > high {
            return;
        }
        let (mut low, mut high) = (low, high);
        // Every range touching or overlapping [low, high] merges into it.
        let start = self.ranges.partition_point(|&(_, h)| h.saturating_add(1) < low);
        let mut end = start;
        while end < self.ranges.len() && self.ranges[end].0 <= high.saturating_add(1) {
            low = low.min(self.ranges[end].0);
            high = high.max(self.ranges[end].1);
            end += 1;
        }
        self.ranges.splice(start..end, [(low, high)]);
    }

    pub fn union(&self, other: &CharSet) -> CharSet {
        let mut all: Vec<(u32, u32)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(all.len());
        for (low, high) in all {
            match ranges.last_mut() {
                Some((_, last)) if low <= last.saturating_add(1) => *last = (*last).max(high),
                _ => ranges.push((low, high)),
            }
        }
        CharSet { ranges }
    }

    pub fn intersect(&self, other: &CharSet) -> CharSet {
        let (mut i, mut j) = (0, 0);
        let mut ranges = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (low, high) = (a.0.max(b.0), a.1.min(b.1));
            if low <= high {
                ranges.push((low, high));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        CharSet { ranges }
    }

    pub fn overlaps(&self, other: &CharSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if a.0.max(b.0) <= a.1.min(b.1) {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Everything up to `max` that is not in the set.
    pub fn complement(&self, max: u32) -> CharSet {
        let mut ranges = Vec::new();
        let mut next = 0u32;
        for &(low, high) in &self.ranges {
            if low > max {
                break;
            }
            if low > next {
                ranges.push((next, low - 1));
            }
            next = high.saturating_add(1);
        }
        if next <= max && self.ranges.last().is_none_or(|&(_, h)| h < max) {
            ranges.push((next, max));
        }
        CharSet { ranges }
    }

    /// The character an attack string shows for this set: printable ASCII
    /// when the set has one (a letter or digit first), else its first.
    pub fn representative(&self) -> Option<u32> {
        let preferred = [('a', 'z'), ('0', '9'), ('A', 'Z'), (' ', '~')];
        preferred
            .iter()
            .find_map(|&(low, high)| self.intersect(&CharSet::range(low as u32, high as u32)).first())
            .or_else(|| self.first())
    }

    pub fn first(&self) -> Option<u32> {
        self.ranges.first().map(|&(low, _)| low)
    }

    /// The set with every character's other cases added (JavaScript's `i`
    /// flag compares characters case-folded). Very large ranges are taken
    /// as they are: they hold their other cases already in practice.
    pub fn case_closed(&self) -> CharSet {
        let mut others: Vec<u32> = Vec::new();
        for &(low, high) in &self.ranges {
            if high - low > 0x3000 {
                continue;
            }
            for c in (low..=high).filter_map(char::from_u32) {
                others.extend(
                    c.to_lowercase()
                        .chain(c.to_uppercase())
                        .map(u32::from)
                        .filter(|&o| o != c as u32),
                );
            }
        }
        others.sort_unstable();
        others.dedup();
        self.union(&CharSet::from_sorted(others))
    }

    /// The set of sorted, distinct characters, built in one pass.
    pub fn from_sorted(chars: impl IntoIterator<Item = u32>) -> CharSet {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for c in chars {
            match ranges.last_mut() {
                Some((_, high)) if *high + 1 == c => *high = c,
                _ => ranges.push((c, c)),
            }
        }
        CharSet { ranges }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_split() {
        let mut set = CharSet::range(10, 20);
        set.add(21, 25);
        set.add(5, 7);
        assert_eq!(set.ranges, [(5, 7), (10, 25)]);
        set.add(8, 9);
        assert_eq!(set.ranges, [(5, 25)]);
        assert_eq!(set.complement(30).ranges, [(0, 4), (26, 30)]);
        assert!(set.contains(5) && set.contains(25) && !set.contains(26));
        assert_eq!(
            set.intersect(&CharSet::from_ranges([(0, 6), (20, 40)])).ranges,
            [(5, 6), (20, 25)]
        );
        assert_eq!(CharSet::range(0, MAX_UTF16).complement(MAX_UTF16), CharSet::empty());
    }

    #[test]
    fn case_closure_adds_the_other_case() {
        let set = CharSet::single('k' as u32).case_closed();
        assert_eq!(set.ranges, [('K' as u32, 'K' as u32), ('k' as u32, 'k' as u32)]);
    }
}
