//! npm's version semantics, which every audit of a Node.js project needs:
//! versions ordered as npm orders them (build metadata ignored), and
//! ranges (`^1.2`, `~1.2.3-beta`, `1.x || >=2.0.0 <3`, `1.2 - 1.4`)
//! satisfied as npm's `semver` package satisfies them with its defaults (a
//! prerelease only within its own `major.minor.patch`).
//!
//! Written here, after its grammar and desugaring rules, because the Rust
//! crates that implement npm's ranges disagree with npm (one panics on
//! `=x`, the other accepts `01.2.3` and satisfies empty intersections); a
//! test compares every answer with npm's own `semver` on thousands of
//! generated cases.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::js;

/// Longer than this is no version (npm's `MAX_LENGTH`).
const MAX_LENGTH: usize = 256;
/// JavaScript's `Number.MAX_SAFE_INTEGER`: the largest version number.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// A version: numbers, and the prerelease identifiers that order it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<Identifier>,
    /// As written, without build metadata: `1.2.3-rc.1`.
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identifier {
    Number(u64),
    Text(String),
}

impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Identifier::Number(a), Identifier::Number(b)) => a.cmp(b),
            (Identifier::Number(_), Identifier::Text(_)) => Ordering::Less,
            (Identifier::Text(_), Identifier::Number(_)) => Ordering::Greater,
            (Identifier::Text(a), Identifier::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Version {
    /// `text` as npm's `new SemVer(text)` reads it: `1.2.3`, `v1.2.3`,
    /// `1.2.3-rc.1+build`; not `01.2.3`, `1.2`, `=1.2.3`.
    pub fn parse(text: &str) -> Option<Version> {
        if text.len() > MAX_LENGTH {
            return None;
        }
        let captures = PATTERNS.full.captures(js::trim(text))?;
        let number = |i: usize| captures[i].parse::<u64>().ok().filter(|n| *n <= MAX_SAFE_INTEGER);
        let (major, minor, patch) = (number(1)?, number(2)?, number(3)?);
        let pre: Vec<Identifier> = captures.get(4).map_or_else(Vec::new, |pre| {
            pre.as_str()
                .split('.')
                .map(|id| match id.parse::<u64>() {
                    Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) && n < MAX_SAFE_INTEGER => Identifier::Number(n),
                    _ => Identifier::Text(id.to_owned()),
                })
                .collect()
        });
        let text = match captures.get(4) {
            Some(pre) => format!("{major}.{minor}.{patch}-{}", pre.as_str()),
            None => format!("{major}.{minor}.{patch}"),
        };
        Some(Version {
            major,
            minor,
            patch,
            pre,
            text,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

/// OSV's and lockfiles' versions: npm's, and `0` for "from the start".
pub fn version(text: &str) -> Option<Version> {
    if js::trim(text) == "0" {
        return Version::parse("0.0.0");
    }
    Version::parse(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// One comparator; `None` is npm's ANY (the empty comparator).
#[derive(Debug, Clone)]
struct Comparator {
    operator: Operator,
    version: Option<Version>,
}

impl Comparator {
    fn parse(text: &str) -> Option<Comparator> {
        let text = js::split_spaces(js::trim(text)).join(" ");
        let captures = PATTERNS.comparator.captures(&text)?;
        let Some(version) = captures.get(2) else {
            return Some(Comparator {
                operator: Operator::Equal,
                version: None,
            });
        };
        let operator = match captures.get(1).map_or("", |m| m.as_str()) {
            "<" => Operator::Less,
            "<=" => Operator::LessOrEqual,
            ">" => Operator::Greater,
            ">=" => Operator::GreaterOrEqual,
            _ => Operator::Equal,
        };
        Some(Comparator {
            operator,
            version: Some(Version::parse(version.as_str())?),
        })
    }

    fn test(&self, version: &Version) -> bool {
        let Some(bound) = &self.version else {
            return true;
        };
        let order = version.cmp(bound);
        match self.operator {
            Operator::Equal => order == Ordering::Equal,
            Operator::Less => order == Ordering::Less,
            Operator::LessOrEqual => order != Ordering::Greater,
            Operator::Greater => order == Ordering::Greater,
            Operator::GreaterOrEqual => order != Ordering::Less,
        }
    }
}

/// A range: any of its sets, each all of its comparators.
#[derive(Debug, Clone)]
pub struct Range {
    sets: Vec<Vec<Comparator>>,
}

impl Range {
    /// `text` as npm's `new Range(text)` reads it; `None` where it throws.
    pub fn parse(text: &str) -> Option<Range> {
        if longest_identifier(text) > LONGEST_IDENTIFIER {
            return None;
        }
        let raw = js::split_spaces(js::trim(text)).join(" ");
        let sets = raw
            .split("||")
            .map(|part| parse_set(js::trim(part)))
            .collect::<Option<Vec<_>>>()?;
        Some(Range { sets })
    }

    pub fn satisfied_by(&self, version: &Version) -> bool {
        self.sets.iter().any(|set| test_set(set, version))
    }

    /// The lowest versions each set names as allowed (`>=`, `=`), or
    /// 0.0.0 for a set without a lower bound: where to look for the
    /// versions a range admits.
    pub fn lower_bounds(&self) -> Vec<Version> {
        self.sets
            .iter()
            .flat_map(|set| {
                let bounds: Vec<Version> = set
                    .iter()
                    .filter(|c| matches!(c.operator, Operator::GreaterOrEqual | Operator::Equal))
                    .filter_map(|c| c.version.clone())
                    .collect();
                if bounds.is_empty() {
                    Version::parse("0.0.0").into_iter().collect()
                } else {
                    bounds
                }
            })
            .collect()
    }
}

/// npm's patterns allow no identifier longer than this (a build
/// identifier's bound; versions are held to 256 characters in all).
const LONGEST_IDENTIFIER: usize = 250;

/// The longest run of identifier characters in `text`.
fn longest_identifier(text: &str) -> usize {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// Whether `version` satisfies `range`, as `semver.satisfies` answers with
/// npm's defaults; `false` when either does not parse.
pub fn satisfies(version: &str, range: &str) -> bool {
    match (Version::parse(version), Range::parse(range)) {
        (Some(version), Some(range)) => range.satisfied_by(&version),
        _ => false,
    }
}

/// All comparators hold; a prerelease only when one of them names a
/// prerelease of the same `major.minor.patch`.
fn test_set(set: &[Comparator], version: &Version) -> bool {
    if !set.iter().all(|c| c.test(version)) {
        return false;
    }
    if !version.is_prerelease() {
        return true;
    }
    set.iter().filter_map(|c| c.version.as_ref()).any(|allowed| {
        allowed.is_prerelease()
            && (allowed.major, allowed.minor, allowed.patch) == (version.major, version.minor, version.patch)
    })
}

/// npm's `parseRange`: hyphen ranges, then operators glued to their
/// versions, then each comparator desugared into plain ones.
fn parse_set(range: &str) -> Option<Vec<Comparator>> {
    let p = &*PATTERNS;
    let range = p.hyphen.replace(range, hyphen);
    let range = p.comparator_trim.replace_all(&range, "${1}${2}${3}");
    let range = p.tilde_trim.replace_all(&range, "${1}~");
    let range = p.caret_trim.replace_all(&range, "${1}^");
    let desugared: Vec<String> = range.split(' ').map(desugar).collect();
    let joined = desugared.join(" ");
    js::split_spaces(&joined)
        .into_iter()
        .map(|c| p.gte0.replace(js::trim(c), "").into_owned())
        .map(|c| Comparator::parse(&c))
        .collect()
}

/// npm's `parseComparator`: build metadata dropped, then carets, tildes,
/// x-ranges and stars turned into plain comparators.
fn desugar(comparator: &str) -> String {
    let p = &*PATTERNS;
    let comparator = p.build.replace(comparator, "").into_owned();
    let each = |text: &str, pattern: &Regex, rewrite: fn(&Captures) -> String, trim_first: bool| -> String {
        let text = if trim_first { js::trim(text) } else { text };
        js::split_spaces(text)
            .into_iter()
            .map(|c| pattern.replace(c, |caps: &Captures| rewrite(caps)).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let carets = each(&comparator, &p.caret, caret, true);
    let tildes = each(&carets, &p.tilde, tilde, true);
    let xranges = js::split_spaces(&tildes)
        .into_iter()
        .map(|c| {
            let c = js::trim(c);
            p.xrange.replace(c, |caps: &Captures| xrange(caps)).into_owned()
        })
        .collect::<Vec<_>>()
        .join(" ");
    p.star.replace(js::trim(&xranges), "").into_owned()
}

/// `x`, `X`, `*` or absent: any value.
fn is_x(part: Option<&str>) -> bool {
    part.is_none_or(|p| p.is_empty() || p.eq_ignore_ascii_case("x") || p == "*")
}

/// A version as an x-range pattern captured it (`major.minor.patch-pre`):
/// each part absent, or `x`, where any value goes.
struct Parts<'c> {
    major: Option<&'c str>,
    minor: Option<&'c str>,
    patch: Option<&'c str>,
    pre: Option<&'c str>,
}

impl<'c> Parts<'c> {
    /// The parts in the four capture groups from `first` on.
    fn at(caps: &'c Captures, first: usize) -> Self {
        let group = |i: usize| caps.get(first + i).map(|m| m.as_str());
        Self {
            major: group(0),
            minor: group(1),
            patch: group(2),
            pre: group(3),
        }
    }

    /// The three numbers as written (empty where absent).
    fn numbers(&self) -> (&'c str, &'c str, &'c str) {
        (
            self.major.unwrap_or(""),
            self.minor.unwrap_or(""),
            self.patch.unwrap_or(""),
        )
    }
}

/// One more than a version number as JavaScript's `+n + 1` writes it.
fn plus_one(number: &str) -> String {
    number
        .parse::<u64>()
        .map_or_else(|_| format!("{number}1"), |n| (n + 1).to_string())
}

fn caret(caps: &Captures) -> String {
    let v = Parts::at(caps, 1);
    let (m, n, p) = v.numbers();
    if is_x(v.major) {
        String::new()
    } else if is_x(v.minor) {
        format!(">={m}.0.0 <{}.0.0-0", plus_one(m))
    } else if is_x(v.patch) {
        if m == "0" {
            format!(">={m}.{n}.0 <{m}.{}.0-0", plus_one(n))
        } else {
            format!(">={m}.{n}.0 <{}.0.0-0", plus_one(m))
        }
    } else {
        let from = match v.pre {
            Some(pre) => format!(">={m}.{n}.{p}-{pre}"),
            None => format!(">={m}.{n}.{p}"),
        };
        if m == "0" && n == "0" {
            format!("{from} <{m}.{n}.{}-0", plus_one(p))
        } else if m == "0" {
            format!("{from} <{m}.{}.0-0", plus_one(n))
        } else {
            format!("{from} <{}.0.0-0", plus_one(m))
        }
    }
}

fn tilde(caps: &Captures) -> String {
    let v = Parts::at(caps, 1);
    let (m, n, p) = v.numbers();
    if is_x(v.major) {
        String::new()
    } else if is_x(v.minor) {
        format!(">={m}.0.0 <{}.0.0-0", plus_one(m))
    } else if is_x(v.patch) {
        format!(">={m}.{n}.0 <{m}.{}.0-0", plus_one(n))
    } else if let Some(pre) = v.pre {
        format!(">={m}.{n}.{p}-{pre} <{m}.{}.0-0", plus_one(n))
    } else {
        format!(">={m}.{n}.{p} <{m}.{}.0-0", plus_one(n))
    }
}

fn xrange(caps: &Captures) -> String {
    let whole = caps.get(0).map_or("", |m| m.as_str());
    let mut operator = caps.get(1).map_or("", |m| m.as_str()).to_owned();
    let v = Parts::at(caps, 2);
    let (major, minor, _) = v.numbers();
    let x_major = is_x(v.major);
    let x_minor = x_major || is_x(v.minor);
    let x_patch = x_minor || is_x(v.patch);
    if operator == "=" && x_patch {
        operator.clear();
    }
    let m = major.to_owned();
    if x_major {
        return if operator == ">" || operator == "<" {
            "<0.0.0-0".into()
        } else {
            "*".into()
        };
    }
    if !operator.is_empty() && x_patch {
        let (mut m, mut n, p) = (m, if x_minor { "0".to_owned() } else { minor.to_owned() }, "0");
        let mut pre = "";
        if operator == ">" {
            operator = ">=".into();
            if x_minor {
                m = plus_one(&m);
                n = "0".into();
            } else {
                n = plus_one(&n);
            }
        } else if operator == "<=" {
            operator = "<".into();
            if x_minor {
                m = plus_one(&m);
            } else {
                n = plus_one(&n);
            }
        }
        if operator == "<" {
            pre = "-0";
        }
        return format!("{operator}{m}.{n}.{p}{pre}");
    }
    if x_minor {
        format!(">={m}.0.0 <{}.0.0-0", plus_one(&m))
    } else if x_patch {
        format!(">={m}.{minor}.0 <{m}.{}.0-0", plus_one(minor))
    } else {
        whole.to_owned()
    }
}

/// `1.2 - 1.4.x`: from the first version on, up to the second.
fn hyphen(caps: &Captures) -> String {
    let text = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    let (from, to) = (Parts::at(caps, 2), Parts::at(caps, 8));
    let (from_major, from_minor, _) = from.numbers();
    let (to_major, to_minor, to_patch) = to.numbers();
    let from = if is_x(from.major) {
        String::new()
    } else if is_x(from.minor) {
        format!(">={from_major}.0.0")
    } else if is_x(from.patch) {
        format!(">={from_major}.{from_minor}.0")
    } else {
        // With or without a prerelease: npm writes the version as given.
        format!(">={}", text(1))
    };
    let to = if is_x(to.major) {
        String::new()
    } else if is_x(to.minor) {
        format!("<{}.0.0-0", plus_one(to_major))
    } else if is_x(to.patch) {
        format!("<{to_major}.{}.0-0", plus_one(to_minor))
    } else if let Some(pre) = to.pre {
        format!("<={to_major}.{to_minor}.{to_patch}-{pre}")
    } else {
        format!("<={}", text(7))
    };
    js::trim(&format!("{from} {to}")).to_owned()
}

/// npm's regular expressions, in their "safe" form for whitespace (npm
/// collapses runs of whitespace to one space first, then allows one). npm
/// also bounds identifiers (256 digits, 250 characters) so that its
/// backtracking engine cannot be made slow; this engine cannot be, and the
/// counted repeats made compiling the patterns most of an audit's time, so
/// the bounds are kept by [`LONGEST_IDENTIFIER`] instead.
struct Patterns {
    full: Regex,
    comparator: Regex,
    hyphen: Regex,
    comparator_trim: Regex,
    tilde_trim: Regex,
    caret_trim: Regex,
    caret: Regex,
    tilde: Regex,
    xrange: Regex,
    star: Regex,
    gte0: Regex,
    build: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    const NUM: &str = "0|[1-9][0-9]*";
    const NUM_LOOSE: &str = "[0-9]+";
    const NON_NUM: &str = "[0-9]*[a-zA-Z-][a-zA-Z0-9-]*";
    let pre_id = format!("(?:{NON_NUM}|{NUM})");
    let pre_id_loose = format!("(?:{NON_NUM}|{NUM_LOOSE})");
    let prerelease = format!(r"(?:-({pre_id}(?:\.{pre_id})*))");
    let prerelease_loose = format!(r"(?:-?({pre_id_loose}(?:\.{pre_id_loose})*))");
    let build = r"(?:\+([a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*))".to_owned();
    let full_plain = format!(r"v?({NUM})\.({NUM})\.({NUM}){prerelease}?{build}?");
    let loose_plain = format!(r"[v=\s]*({NUM_LOOSE})\.({NUM_LOOSE})\.({NUM_LOOSE}){prerelease_loose}?{build}?");
    let gtlt = "((?:<|>)?=?)";
    let xid = format!(r"{NUM}|x|X|\*");
    let xrange_plain = format!(r"[v=\s]*({xid})(?:\.({xid})(?:\.({xid})(?:{prerelease})?{build}?)?)?");
    // Every pattern is built from the constants above; a test compiles
    // them all, so none of these can fail.
    let compile = |pattern: String| Regex::new(&pattern).unwrap_or_else(|e| unreachable!("{e}"));
    Patterns {
        full: compile(format!("^{full_plain}$")),
        comparator: compile(format!(r"^{gtlt}\s?({full_plain})$|^$")),
        hyphen: compile(format!(r"^\s?({xrange_plain})\s-\s({xrange_plain})\s?$")),
        comparator_trim: compile(format!(r"(\s?){gtlt}\s?({loose_plain}|{xrange_plain})")),
        tilde_trim: compile(r"(\s?)(?:~>?)\s".into()),
        caret_trim: compile(r"(\s?)(?:\^)\s".into()),
        caret: compile(format!(r"^(?:\^){xrange_plain}$")),
        tilde: compile(format!(r"^(?:~>?){xrange_plain}$")),
        xrange: compile(format!(r"^{gtlt}\s?{xrange_plain}$")),
        star: compile(r"(<|>)?=?\s?\*".into()),
        gte0: compile(r"^\s?>=\s?0\.0\.0\s?$".into()),
        build: compile(build),
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_compile() {
        assert!(PATTERNS.full.is_match("1.2.3-rc.1+b"));
    }

    #[test]
    fn versions_order_as_npm_orders_them() {
        let v = |t: &str| Version::parse(t).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("1.0.0+build.1").cmp(&v("1.0.0+other")), Ordering::Equal);
        assert!(Version::parse("01.2.3").is_none() && Version::parse("1.2").is_none());
    }

    #[test]
    fn ranges_desugar_as_npms() {
        for (version, range, expected) in [
            ("1.9.9", "^1.2.3", true),
            ("2.0.0-0", "^1.2.3", false),
            ("0.2.9", "^0.2.3", true),
            ("0.3.0", "^0.2.3", false),
            ("1.2.9", "~1.2.3", true),
            ("1.3.0", "~1.2", false),
            ("1.4.9", "1.2 - 1.4", true),
            ("1.5.0", "1.2 - 1.4", false),
            ("3.0.0", "1.x || >=2.5.0 <3", false),
            ("1.2.3-beta.2", ">1.2.3-beta.1", true),
            ("1.2.4-beta.2", ">1.2.3-beta.1", false),
            ("10.0.0", "=x", true),
            ("2.2.1", "<=2.3.1-alpha.beta >3", false),
        ] {
            assert_eq!(satisfies(version, range), expected, "{version} in {range}");
        }
    }
}
