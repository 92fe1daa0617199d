//! The pattern's position automaton (Glushkov's: one state per character
//! the pattern reads, no empty moves), with every edge remembering which
//! part of the pattern made it, so two ways of going from one position to
//! the next (`(a*)*`: the inner loop and the outer one) stay two edges.
//! A backtracking matcher that fails tries every path; the number of paths
//! for an input is this automaton's ambiguity:
//! - exponential (EDA) when a state can return to itself reading one word
//!   along two different paths: each repetition of the word doubles them;
//! - polynomial of degree k (IDA) when k looping states follow one another
//!   and each can loop on, or move to the next with, the same word.
//!
//! Both are found on product automata, restricted to the strongly
//! connected parts where loops live, and give a word to pump.

use std::collections::{HashMap, HashSet, VecDeque};

use super::charset::CharSet;
use super::syntax::{Assertion, Node, Regex};

/// Larger automata are approximated: their counted repetitions shrunk.
const MAX_STATES: usize = 2_000;
/// An automaton with more edges (a long alternation under a star has one
/// per pair of its characters) is not analysed.
const MAX_EDGES: usize = 200_000;

/// A word as the automaton reads it: at each place, the characters that
/// take the path there (the prover picks which to write).
pub type Word = Vec<CharSet>;

/// How a candidate attack repeats: each pump is written after its prefix
/// and repeated; the suffix is chosen when it is proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub exponential: bool,
    /// For a polynomial candidate, its degree.
    pub degree: u32,
    pub pumps: Vec<(Word, Word)>,
}

/// What the search found, and the characters any attack on the pattern
/// is written with.
pub struct Analysis {
    /// The most damaging first (at most a few).
    pub candidates: Vec<Candidate>,
    /// Characters worth trying after the pumps to make the match fail.
    pub endings: Vec<u32>,
    /// One character of each class the pattern tells apart (every set it
    /// reads holds all of a class or none of it).
    pub alphabet: Vec<u32>,
}

struct Nfa {
    /// What the state reads to be entered; state 0 is the start.
    labels: Vec<CharSet>,
    edges: Vec<Vec<(usize, u32)>>,
    /// The state of an unanchored search's loop over start positions.
    search: Option<usize>,
    /// Product moves the searches may still make: a pattern that needs
    /// more is not analysed, rather than analysed for minutes.
    work: std::cell::Cell<u64>,
}

/// Product moves one pattern's analysis may make.
const MAX_WORK: u64 = 3_000_000;

struct Fragment {
    first: Vec<usize>,
    last: Vec<usize>,
    nullable: bool,
}

struct Builder {
    labels: Vec<CharSet>,
    edges: HashSet<(usize, usize, u32)>,
    next_tag: u32,
    /// Counted repetitions beyond this are read as this many (only when
    /// the automaton would otherwise be too large).
    count_cap: u32,
    too_many_edges: bool,
}

/// A counted repetition allowing this many more than its minimum is
/// analysed as unbounded: the ambiguity grows with the count up to its
/// bound, and the proof runs the real bound.
const LONG_COUNT: u32 = 32;

impl Builder {
    fn tag(&mut self) -> u32 {
        self.next_tag += 1;
        self.next_tag
    }

    fn connect(&mut self, from: &[usize], to: &[usize], tag: u32) {
        if self.edges.len().saturating_add(from.len().saturating_mul(to.len())) > MAX_EDGES {
            self.too_many_edges = true;
            return;
        }
        for &f in from {
            for &t in to {
                self.edges.insert((f, t, tag));
            }
        }
    }

    fn empty() -> Fragment {
        Fragment {
            first: Vec::new(),
            last: Vec::new(),
            nullable: true,
        }
    }

    fn concat(&mut self, parts: impl IntoIterator<Item = Fragment>) -> Fragment {
        let tag = self.tag();
        let mut whole = Self::empty();
        for part in parts {
            self.connect(&whole.last, &part.first, tag);
            if whole.nullable {
                whole.first.extend(&part.first);
            }
            if part.nullable {
                whole.last.extend(part.last);
            } else {
                whole.last = part.last;
            }
            whole.nullable &= part.nullable;
        }
        whole
    }

    fn optional(mut fragment: Fragment) -> Fragment {
        fragment.nullable = true;
        fragment
    }

    fn looped(&mut self, fragment: Fragment) -> Fragment {
        let tag = self.tag();
        self.connect(&fragment.last, &fragment.first, tag);
        fragment
    }

    fn node(&mut self, node: &Node) -> Option<Fragment> {
        if self.labels.len() > MAX_STATES {
            return None;
        }
        Some(match node {
            Node::Empty | Node::Assert(_) | Node::Look { .. } | Node::BackRef(_) => Self::empty(),
            Node::Chars(set) => {
                self.labels.push(set.clone());
                let state = self.labels.len() - 1;
                Fragment {
                    first: vec![state],
                    last: vec![state],
                    nullable: false,
                }
            }
            Node::Concat(parts) => {
                let parts: Option<Vec<_>> = parts.iter().map(|p| self.node(p)).collect();
                self.concat(parts?)
            }
            Node::Alt(alternatives) => {
                let mut whole = Fragment {
                    first: Vec::new(),
                    last: Vec::new(),
                    nullable: false,
                };
                for alternative in alternatives {
                    let part = self.node(alternative)?;
                    whole.first.extend(part.first);
                    whole.last.extend(part.last);
                    whole.nullable |= part.nullable;
                }
                whole
            }
            Node::Capture(_, body) => self.node(body)?,
            Node::Repeat { body, min, max, .. } => self.repeat(body, *min, *max)?,
        })
    }

    /// `x{n,m}` as n copies then nested optional ones, `x(x(x)?)?`: one
    /// way to read each count, as a counted loop has.
    fn repeat(&mut self, body: &Node, min: u32, max: Option<u32>) -> Option<Fragment> {
        let max = max.filter(|&max| max - min.min(max) < LONG_COUNT);
        let min = min.min(self.count_cap);
        let max = max.map(|m| m.min(self.count_cap.max(min)));
        let mut parts = Vec::new();
        let mandatory = match max {
            None => min.saturating_sub(1),
            Some(_) => min,
        };
        for _ in 0..mandatory {
            parts.push(self.node(body)?);
        }
        match max {
            None if min == 0 => {
                let body = self.node(body)?;
                parts.push(Self::optional(self.looped(body)));
            }
            None => {
                let body = self.node(body)?;
                parts.push(self.looped(body));
            }
            Some(max) => {
                let mut tail: Option<Fragment> = None;
                for _ in min..max {
                    let copy = self.node(body)?;
                    let inner = match tail.take() {
                        Some(t) => self.concat([copy, t]),
                        None => copy,
                    };
                    tail = Some(Self::optional(inner));
                }
                parts.extend(tail);
            }
        }
        Some(self.concat(parts))
    }
}

/// Whether every match must start at the input's start.
fn anchored(node: &Node) -> bool {
    match node {
        Node::Assert(Assertion::InputStart) => true,
        Node::Concat(parts) => parts.first().is_some_and(anchored),
        Node::Alt(alternatives) => alternatives.iter().all(anchored),
        Node::Capture(_, body) => anchored(body),
        _ => false,
    }
}

fn build(regex: &Regex) -> Option<Nfa> {
    let search = !regex.flags.sticky && !anchored(&regex.root);
    for count_cap in [u32::MAX, 64, 8] {
        let mut builder = Builder {
            labels: vec![CharSet::empty()],
            edges: HashSet::new(),
            next_tag: 0,
            count_cap,
            too_many_edges: false,
        };
        // An unanchored search tries each start in turn: as if the pattern
        // began with a lazy loop over any character.
        let root = if search {
            Node::Concat(vec![
                Node::Repeat {
                    body: Box::new(Node::Chars(CharSet::range(0, regex.flags.max_char()))),
                    min: 0,
                    max: None,
                    greedy: false,
                },
                regex.root.clone(),
            ])
        } else {
            regex.root.clone()
        };
        let Some(fragment) = builder.node(&root) else { continue };
        let tag = builder.tag();
        builder.connect(&[0], &fragment.first, tag);
        if builder.too_many_edges {
            return None;
        }
        let mut edges = vec![Vec::new(); builder.labels.len()];
        let mut sorted: Vec<_> = builder.edges.into_iter().collect();
        sorted.sort_unstable();
        for (from, to, tag) in sorted {
            edges[from].push((to, tag));
        }
        return Some(Nfa {
            labels: builder.labels,
            edges,
            // Built first, so the first position.
            search: search.then_some(1),
            work: std::cell::Cell::new(MAX_WORK),
        });
    }
    None
}

/// Tarjan's strongly connected components, without recursion; the
/// component of each node, numbered in reverse topological order.
fn components(count: usize, successors: impl Fn(usize) -> Vec<usize>) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let (mut index, mut low, mut component) = (vec![NONE; count], vec![0; count], vec![NONE; count]);
    let (mut on_stack, mut stack, mut next, mut found) = (vec![false; count], Vec::new(), 0, 0);
    for root in 0..count {
        if index[root] != NONE {
            continue;
        }
        let mut work = vec![(root, successors(root), 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((node, succ, i)) = work.last_mut() {
            let node = *node;
            if let Some(&s) = succ.get(*i) {
                *i += 1;
                if index[s] == NONE {
                    index[s] = next;
                    low[s] = next;
                    next += 1;
                    stack.push(s);
                    on_stack[s] = true;
                    let succ = successors(s);
                    work.push((s, succ, 0));
                } else if on_stack[s] {
                    low[node] = low[node].min(index[s]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low[*parent] = low[*parent].min(low[node]);
            }
            if low[node] == index[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = found;
                    if member == node {
                        break;
                    }
                }
                found += 1;
            }
        }
    }
    component
}

impl Nfa {
    /// The characters all of `states` read.
    fn common(&self, states: &[usize]) -> CharSet {
        let mut set = self.labels[states[0]].clone();
        for &s in &states[1..] {
            set = set.intersect(&self.labels[s]);
        }
        set
    }

    /// The shortest word from the start to `target`.
    fn word_to(&self, target: usize) -> Option<Word> {
        let mut came_from = vec![usize::MAX; self.labels.len()];
        let mut queue = VecDeque::from([0]);
        came_from[0] = 0;
        while let Some(state) = queue.pop_front() {
            if state == target {
                let mut word = Vec::new();
                let mut at = target;
                while at != 0 {
                    word.push(self.labels[at].clone());
                    at = came_from[at];
                }
                word.reverse();
                return Some(word);
            }
            for &(next, _) in &self.edges[state] {
                if came_from[next] == usize::MAX {
                    came_from[next] = state;
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Candidate attacks on `regex`, or why there are none to give: an
/// automaton too large to build, or to search within the budget.
pub fn analyse(regex: &Regex) -> Result<Analysis, &'static str> {
    let too_long = "searching its automaton takes too long";
    let nfa = build(regex).ok_or("its automaton is too large to build")?;
    let component = components(nfa.labels.len(), |s| nfa.edges[s].iter().map(|&(t, _)| t).collect());
    // An exponential candidate may fail as an attack (the match succeeds
    // before the paths multiply) where a polynomial one holds.
    let mut candidates = exponential(&nfa, &component);
    candidates.extend(polynomial(&nfa, &component).ok_or(too_long)?);
    if nfa.work.get() == 0 {
        return Err(too_long);
    }
    Ok(Analysis {
        candidates,
        endings: endings(&nfa, regex),
        alphabet: alphabet(&nfa, regex.flags.max_char()),
    })
}

/// Characters that may end an attack: one outside every set the pattern
/// reads, then one from outside each set (the widest first), then one
/// from each.
fn endings(nfa: &Nfa, regex: &Regex) -> Vec<u32> {
    let max = regex.flags.max_char();
    let all = (1..nfa.labels.len())
        .filter(|&s| Some(s) != nfa.search)
        .fold(CharSet::empty(), |all, s| all.union(&nfa.labels[s]));
    let mut endings = Vec::new();
    let mut push = |c: Option<u32>| {
        if let Some(c) = c.filter(|c| !endings.contains(c)) {
            endings.push(c);
        }
    };
    push(all.complement(max).representative());
    // What the widest sets cannot read is what escapes them (a line break
    // for `.`, the excluded character of `[^"]`): those first.
    let mut sets: Vec<&CharSet> = nfa.labels.iter().skip(1).collect();
    sets.sort_by_key(|set| std::cmp::Reverse(set.len()));
    sets.dedup();
    for set in &sets {
        push(set.complement(max).representative());
    }
    for set in &sets {
        push(set.representative());
    }
    endings.truncate(12);
    endings
}

/// The classes of characters the pattern's sets tell apart, one
/// character each (at most a few dozen classes).
fn alphabet(nfa: &Nfa, max: u32) -> Vec<u32> {
    let mut classes = vec![CharSet::range(0, max)];
    let mut labels: Vec<&CharSet> = nfa.labels.iter().skip(1).collect();
    labels.dedup();
    for label in labels {
        if classes.len() >= 48 {
            break;
        }
        classes = classes
            .into_iter()
            .flat_map(|class| [class.intersect(label), class.intersect(&label.complement(max))])
            .filter(|class| class.first().is_some())
            .collect();
    }
    classes.iter().filter_map(CharSet::representative).collect()
}

const MAX_CANDIDATES: usize = 4;

fn exponential(nfa: &Nfa, component: &[usize]) -> Vec<Candidate> {
    let mut found = Vec::new();
    let mut seen_components = HashSet::new();
    for q in 1..nfa.labels.len() {
        if found.len() >= MAX_CANDIDATES || !seen_components.insert(component[q]) {
            continue;
        }
        let c = component[q];
        let inside = |s: usize| -> Vec<(usize, u32)> {
            nfa.edges[s]
                .iter()
                .copied()
                .filter(|&(t, _)| component[t] == c)
                .collect()
        };
        let Some((state, pump)) = (1..nfa.labels.len())
            .filter(|&s| component[s] == c)
            .find_map(|s| twice_around(nfa, s, &inside))
        else {
            continue;
        };
        if let Some(prefix) = nfa.word_to(state) {
            found.push(Candidate {
                exponential: true,
                degree: 0,
                pumps: vec![(prefix, pump)],
            });
        }
    }
    found
}

/// A word on which `state` returns to itself along two different paths:
/// through the pair product, from (state, state) through a pair of
/// different moves and back.
fn twice_around(nfa: &Nfa, state: usize, inside: &impl Fn(usize) -> Vec<(usize, u32)>) -> Option<(usize, Word)> {
    // Pairs are states; a pair of different moves to the same state is
    // told apart by a third coordinate: 1 once the paths have diverged.
    let step = |[a, b, diverged]: [usize; 3]| -> Vec<[usize; 3]> {
        let mut next = Vec::new();
        for (ta, tag_a) in inside(a) {
            for (tb, tag_b) in inside(b) {
                if nfa.labels[ta].overlaps(&nfa.labels[tb]) {
                    let apart = diverged == 1 || ta != tb || tag_a != tag_b;
                    next.push([ta, tb, usize::from(apart)]);
                }
            }
        }
        next
    };
    let word = shortest_word(nfa, [state, state, 0], [state, state, 1], 2, step)?;
    Some((state, word))
}

/// The shortest word that takes a product automaton (tuples of states
/// moving together on one character; `read` leading coordinates are
/// states, any others are bookkeeping) from `from` to `to`.
fn shortest_word<const N: usize>(
    nfa: &Nfa,
    from: [usize; N],
    to: [usize; N],
    read: usize,
    step: impl Fn([usize; N]) -> Vec<[usize; N]>,
) -> Option<Word> {
    let mut came_from: HashMap<[usize; N], [usize; N]> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(tuple) = queue.pop_front() {
        for next in step(tuple) {
            nfa.work.set(nfa.work.get().checked_sub(1)?);
            if came_from.contains_key(&next) || next == from {
                continue;
            }
            came_from.insert(next, tuple);
            if next == to {
                let mut word = Vec::new();
                let mut at = next;
                loop {
                    word.push(nfa.common(&at[..read]));
                    let previous = came_from[&at];
                    if previous == from {
                        break;
                    }
                    at = previous;
                }
                word.reverse();
                return Some(word);
            }
            queue.push_back(next);
        }
    }
    None
}

/// States that lie on a cycle.
fn looping(nfa: &Nfa, component: &[usize]) -> Vec<usize> {
    let mut size = HashMap::new();
    for &c in component {
        *size.entry(c).or_insert(0usize) += 1;
    }
    (1..nfa.labels.len())
        .filter(|&s| size[&component[s]] > 1 || nfa.edges[s].iter().any(|&(t, _)| t == s))
        .collect()
}

/// More looping states than this are not searched for hand-overs.
const MAX_LOOPS: usize = 200;

fn polynomial(nfa: &Nfa, component: &[usize]) -> Option<Vec<Candidate>> {
    let loops = looping(nfa, component);
    if loops.len() > MAX_LOOPS {
        return None;
    }
    // links[p] = the states q after p's component that p can hand the
    // same pumped word to, with that word.
    let mut links: HashMap<usize, Vec<(usize, Word)>> = HashMap::new();
    for &p in &loops {
        let reach = reachable(nfa, p);
        for &q in &loops {
            if component[q] == component[p] || !reach.contains(&q) {
                continue;
            }
            if let Some(word) = handover(nfa, component, p, q) {
                links.entry(p).or_default().push((q, word));
            }
        }
    }
    // The longest chain of hand-overs from each state; components are
    // numbered in reverse topological order, so later states come first.
    let mut order = loops.clone();
    order.sort_by_key(|&s| component[s]);
    let mut best: HashMap<usize, (u32, Option<(usize, Word)>)> = HashMap::new();
    for &p in &order {
        let mut chain = (1, None);
        for (q, word) in links.get(&p).into_iter().flatten() {
            let length = best.get(q).map_or(1, |b| b.0) + 1;
            if length > chain.0 {
                chain = (length, Some((*q, word.clone())));
            }
        }
        best.insert(p, chain);
    }
    // Where a long chain ends in a state that has already matched, a
    // shorter one may still fail to match: every start's longest chain and
    // each of its beginnings, then every single hand-over; longest first.
    let mut chains: Vec<Vec<(usize, Word)>> = Vec::new();
    for &p in &loops {
        let mut chain = vec![];
        let mut at = p;
        while let Some((_, Some((next, word)))) = best.get(&at) {
            chain.push((at, word.clone()));
            at = *next;
            chains.push(chain.clone());
        }
        for (_, word) in links.get(&p).into_iter().flatten() {
            chains.push(vec![(p, word.clone())]);
        }
    }
    chains.sort_by_key(|chain| std::cmp::Reverse(chain.len()));
    let mut seen = HashSet::new();
    chains.retain(|chain| seen.insert(chain.clone()));
    chains
        .into_iter()
        .filter_map(|chain| {
            let degree = chain.len() as u32 + 1;
            let start = chain[0].0;
            // The search loop is entered before the first character.
            let prefix = if Some(start) == nfa.search {
                Vec::new()
            } else {
                nfa.word_to(start)?
            };
            let mut pumps: Vec<(Word, Word)> = Vec::new();
            for (_, word) in chain {
                // w^n w^n is (w^2n): one pump.
                if pumps.last().is_none_or(|(_, last)| *last != word) {
                    pumps.push((Vec::new(), word));
                }
            }
            pumps[0].0 = prefix;
            Some(Candidate {
                exponential: false,
                degree,
                pumps,
            })
        })
        .take(2 * MAX_CANDIDATES)
        .collect::<Vec<_>>()
        .into()
}

fn reachable(nfa: &Nfa, from: usize) -> HashSet<usize> {
    let mut seen = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(s) = stack.pop() {
        for &(t, _) in &nfa.edges[s] {
            if seen.insert(t) {
                stack.push(t);
            }
        }
    }
    seen
}

/// A word w with p ->w p, p ->w q and q ->w q: through the triple product
/// from (p, p, q) to (p, q, q).
fn handover(nfa: &Nfa, component: &[usize], p: usize, q: usize) -> Option<Word> {
    let (cp, cq) = (component[p], component[q]);
    let step = |[a, b, c]: [usize; 3]| -> Vec<[usize; 3]> {
        let mut next = Vec::new();
        for &(ta, _) in nfa.edges[a].iter().filter(|&&(t, _)| component[t] == cp) {
            for &(tb, _) in &nfa.edges[b] {
                if !nfa.labels[ta].overlaps(&nfa.labels[tb]) {
                    continue;
                }
                for &(tc, _) in nfa.edges[c].iter().filter(|&&(t, _)| component[t] == cq) {
                    if nfa.labels[ta].intersect(&nfa.labels[tb]).overlaps(&nfa.labels[tc]) {
                        next.push([ta, tb, tc]);
                    }
                }
            }
        }
        next
    };
    shortest_word(nfa, [p, p, q], [p, q, q], 3, step)
}
