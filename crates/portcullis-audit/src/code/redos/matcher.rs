//! A backtracking matcher with JavaScript's semantics (ECMA-262's
//! RegExp pattern semantics: ordered alternation, greedy and lazy
//! quantifiers, the empty-iteration check, atomic lookarounds, lookbehind
//! read right to left, backreferences), counting the steps it takes.
//! It is the proof of an attack: the analysis proposes a string, the
//! matcher shows the work growing faster than the string.

use super::charset::CharSet;
use super::syntax::{is_word, Assertion, Node, Regex, LINE_TERMINATORS};

/// More than this many instructions is not worth proving with.
const MAX_PROGRAM: usize = 200_000;

#[derive(Clone, Debug)]
enum Inst {
    Char(usize),
    Split(usize, usize),
    Jump(usize),
    Save(usize),
    Clear(usize, usize),
    Mark(usize),
    Progress(usize),
    Assert(Assertion),
    Look { program: usize, negative: bool },
    BackRef(usize),
    Match,
}

#[derive(Debug)]
pub struct Program {
    programs: Vec<Vec<Inst>>,
    /// Each set's ASCII characters as bits: most input is ASCII.
    ascii: Vec<u128>,
    /// Which programs read right to left (lookbehind bodies).
    backward: Vec<bool>,
    sets: Vec<CharSet>,
    registers: usize,
    slots: usize,
    ignore_case: bool,
    sticky: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Matched {
        steps: u64,
    },
    Failed {
        steps: u64,
    },
    /// The step budget ran out first.
    Exceeded,
}

impl Outcome {
    pub fn steps(&self) -> Option<u64> {
        match *self {
            Outcome::Matched { steps } | Outcome::Failed { steps } => Some(steps),
            Outcome::Exceeded => None,
        }
    }
}

struct Compiler {
    programs: Vec<Vec<Inst>>,
    backward: Vec<bool>,
    sets: Vec<CharSet>,
    registers: usize,
    too_big: bool,
}

impl Compiler {
    fn emit(&mut self, program: usize, inst: Inst) -> usize {
        let code = &mut self.programs[program];
        code.push(inst);
        if code.len() > MAX_PROGRAM {
            self.too_big = true;
        }
        code.len() - 1
    }

    fn here(&self, program: usize) -> usize {
        self.programs[program].len()
    }

    fn patch(&mut self, program: usize, at: usize, inst: Inst) {
        self.programs[program][at] = inst;
    }

    fn node(&mut self, p: usize, node: &Node, backward: bool) {
        if self.too_big {
            return;
        }
        match node {
            Node::Empty => {}
            Node::Chars(set) => {
                self.sets.push(set.clone());
                self.emit(p, Inst::Char(self.sets.len() - 1));
            }
            Node::Concat(parts) if backward => parts.iter().rev().for_each(|n| self.node(p, n, backward)),
            Node::Concat(parts) => parts.iter().for_each(|n| self.node(p, n, backward)),
            Node::Alt(alternatives) => {
                let mut jumps = Vec::new();
                for (i, alternative) in alternatives.iter().enumerate() {
                    if i + 1 < alternatives.len() {
                        let split = self.emit(p, Inst::Split(0, 0));
                        self.node(p, alternative, backward);
                        jumps.push(self.emit(p, Inst::Jump(0)));
                        let next = self.here(p);
                        self.patch(p, split, Inst::Split(split + 1, next));
                    } else {
                        self.node(p, alternative, backward);
                    }
                }
                let end = self.here(p);
                for jump in jumps {
                    self.patch(p, jump, Inst::Jump(end));
                }
            }
            Node::Repeat { body, min, max, greedy } => self.repeat(p, body, *min, *max, *greedy, backward),
            Node::Capture(index, body) => {
                let (open, close) = if backward {
                    (2 * index + 1, 2 * index)
                } else {
                    (2 * index, 2 * index + 1)
                };
                self.emit(p, Inst::Save(open));
                self.node(p, body, backward);
                self.emit(p, Inst::Save(close));
            }
            Node::Assert(assertion) => {
                self.emit(p, Inst::Assert(*assertion));
            }
            Node::Look { behind, negative, body } => {
                self.programs.push(Vec::new());
                self.backward.push(*behind);
                let program = self.programs.len() - 1;
                self.node(program, body, *behind);
                self.emit(program, Inst::Match);
                self.emit(
                    p,
                    Inst::Look {
                        program,
                        negative: *negative,
                    },
                );
            }
            Node::BackRef(index) => {
                self.emit(p, Inst::BackRef(*index));
            }
        }
    }

    fn repeat(&mut self, p: usize, body: &Node, min: u32, max: Option<u32>, greedy: bool, backward: bool) {
        for _ in 0..min {
            if self.too_big {
                return;
            }
            self.node(p, body, backward);
        }
        let groups = groups_in(body);
        let register = self.registers;
        self.registers += 1;
        let iteration = |this: &mut Self| {
            this.emit(p, Inst::Mark(register));
            if let Some((low, high)) = groups {
                this.emit(p, Inst::Clear(2 * low, 2 * high + 1));
            }
            this.node(p, body, backward);
            this.emit(p, Inst::Progress(register));
        };
        match max {
            None => {
                let split = self.emit(p, Inst::Split(0, 0));
                iteration(self);
                self.emit(p, Inst::Jump(split));
                let exit = self.here(p);
                let (first, second) = if greedy { (split + 1, exit) } else { (exit, split + 1) };
                self.patch(p, split, Inst::Split(first, second));
            }
            Some(max) => {
                let mut splits = Vec::new();
                for _ in min..max {
                    if self.too_big {
                        return;
                    }
                    splits.push(self.emit(p, Inst::Split(0, 0)));
                    iteration(self);
                }
                let exit = self.here(p);
                for split in splits {
                    let (first, second) = if greedy { (split + 1, exit) } else { (exit, split + 1) };
                    self.patch(p, split, Inst::Split(first, second));
                }
            }
        }
    }
}

/// The lowest and highest group index inside `node`, which each new
/// iteration of a quantifier resets.
fn groups_in(node: &Node) -> Option<(usize, usize)> {
    let merge = |a: Option<(usize, usize)>, b: Option<(usize, usize)>| match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, b) => a.or(b),
    };
    match node {
        Node::Capture(index, body) => merge(Some((*index, *index)), groups_in(body)),
        Node::Concat(parts) | Node::Alt(parts) => parts.iter().map(groups_in).fold(None, merge),
        Node::Repeat { body, .. } | Node::Look { body, .. } => groups_in(body),
        _ => None,
    }
}

/// The program for `regex`, or `None` when expanding its counted
/// repetitions would make it too large to prove anything with.
pub fn compile(regex: &Regex) -> Option<Program> {
    let mut compiler = Compiler {
        programs: vec![Vec::new()],
        backward: vec![false],
        sets: Vec::new(),
        registers: 0,
        too_big: false,
    };
    compiler.node(0, &regex.root, false);
    compiler.emit(0, Inst::Match);
    let ascii = compiler
        .sets
        .iter()
        .map(|set| {
            (0..128u32)
                .filter(|&c| set.contains(c))
                .fold(0u128, |bits, c| bits | 1 << c)
        })
        .collect();
    (!compiler.too_big).then_some(Program {
        ascii,
        programs: compiler.programs,
        backward: compiler.backward,
        sets: compiler.sets,
        registers: compiler.registers,
        slots: 2 * (regex.captures + 1),
        ignore_case: regex.flags.ignore_case,
        sticky: regex.flags.sticky,
    })
}

enum Frame {
    Retry(usize, usize),
    Slot(usize, usize),
    Register(usize, usize),
}

const UNSET: usize = usize::MAX;

struct Run<'p> {
    program: &'p Program,
    input: &'p [u32],
    stack: Vec<Frame>,
    slots: Vec<usize>,
    registers: Vec<usize>,
    steps: u64,
    limit: u64,
}

struct OutOfSteps;

impl Run<'_> {
    /// Runs sub-program `which` from `pos`; the end position on a match.
    fn run(&mut self, which: usize, pos: usize) -> Result<Option<usize>, OutOfSteps> {
        let code = &self.program.programs[which];
        let backward = self.program.backward[which];
        // One stack for the whole search, a sub-program's frames above
        // where it started (what a run leaves is dropped when it ends).
        let base = self.stack.len();
        let (mut pc, mut pos) = (0, pos);
        loop {
            self.steps += 1;
            if self.steps > self.limit {
                self.stack.truncate(base);
                return Err(OutOfSteps);
            }
            let ok = match &code[pc] {
                Inst::Match => {
                    self.stack.truncate(base);
                    return Ok(Some(pos));
                }
                Inst::Char(set) => {
                    let program = self.program;
                    // Lookbehind bodies read right to left.
                    let at = if backward { pos.checked_sub(1) } else { Some(pos) };
                    match at.and_then(|i| self.input.get(i).map(|&c| (i, c))) {
                        Some((i, c)) if program.reads(*set, c) => {
                            pos = if at == Some(pos) { i + 1 } else { i };
                            pc += 1;
                            true
                        }
                        _ => false,
                    }
                }
                Inst::Split(first, second) => {
                    self.stack.push(Frame::Retry(*second, pos));
                    pc = *first;
                    true
                }
                Inst::Jump(to) => {
                    pc = *to;
                    true
                }
                Inst::Save(slot) => {
                    self.stack.push(Frame::Slot(*slot, self.slots[*slot]));
                    self.slots[*slot] = pos;
                    pc += 1;
                    true
                }
                Inst::Clear(low, high) => {
                    for slot in *low..=*high {
                        if self.slots[slot] != UNSET {
                            self.stack.push(Frame::Slot(slot, self.slots[slot]));
                            self.slots[slot] = UNSET;
                        }
                    }
                    pc += 1;
                    true
                }
                Inst::Mark(register) => {
                    self.stack.push(Frame::Register(*register, self.registers[*register]));
                    self.registers[*register] = pos;
                    pc += 1;
                    true
                }
                Inst::Progress(register) => {
                    pc += 1;
                    self.registers[*register] != pos
                }
                Inst::Assert(assertion) => {
                    pc += 1;
                    self.assertion(*assertion, pos)
                }
                Inst::Look { program, negative } => {
                    let before = self.slots.clone();
                    let matched = self.run(*program, pos)?.is_some();
                    if matched && !negative {
                        for (slot, (&old, &new)) in before.iter().zip(&self.slots).enumerate() {
                            if old != new {
                                self.stack.push(Frame::Slot(slot, old));
                            }
                        }
                    } else {
                        self.slots = before;
                    }
                    pc += 1;
                    matched != *negative
                }
                Inst::BackRef(group) => match self.backreference(*group, pos, backward) {
                    Some(next) => {
                        pos = next;
                        pc += 1;
                        true
                    }
                    None => false,
                },
            };
            if !ok {
                // Backtrack to the last choice, undoing what came after it.
                loop {
                    if self.stack.len() == base {
                        return Ok(None);
                    }
                    match self.stack.pop() {
                        None => return Ok(None),
                        Some(Frame::Slot(slot, value)) => self.slots[slot] = value,
                        Some(Frame::Register(register, value)) => self.registers[register] = value,
                        Some(Frame::Retry(to, at)) => {
                            pc = to;
                            pos = at;
                            break;
                        }
                    }
                }
            }
        }
    }

    fn assertion(&self, assertion: Assertion, pos: usize) -> bool {
        let at = |i: usize| self.input.get(i).copied();
        let line_break = |c: Option<u32>| c.is_some_and(|c| LINE_TERMINATORS.contains(&c));
        let word = |c: Option<u32>| c.is_some_and(is_word);
        let before = pos.checked_sub(1).and_then(at);
        match assertion {
            Assertion::InputStart => pos == 0,
            Assertion::InputEnd => pos == self.input.len(),
            Assertion::LineStart => pos == 0 || line_break(before),
            Assertion::LineEnd => pos == self.input.len() || line_break(at(pos)),
            Assertion::WordBoundary => word(before) != word(at(pos)),
            Assertion::NotWordBoundary => word(before) == word(at(pos)),
        }
    }

    fn backreference(&self, group: usize, pos: usize, behind: bool) -> Option<usize> {
        let (start, end) = (self.slots[2 * group], self.slots[2 * group + 1]);
        if start == UNSET || end == UNSET || end < start {
            return Some(pos);
        }
        let captured = &self.input[start..end];
        let (from, to) = if behind {
            (pos.checked_sub(captured.len())?, pos)
        } else {
            (pos, pos.checked_add(captured.len())?)
        };
        let here = self.input.get(from..to)?;
        let same = |a: u32, b: u32| {
            a == b
                || self.program.ignore_case
                    && char::from_u32(a)
                        .zip(char::from_u32(b))
                        .is_some_and(|(a, b)| a.to_lowercase().eq(b.to_lowercase()))
        };
        captured
            .iter()
            .zip(here)
            .all(|(&a, &b)| same(a, b))
            .then_some(if behind { from } else { to })
    }
}

impl Program {
    fn reads(&self, set: usize, c: u32) -> bool {
        if c < 128 {
            self.ascii[set] >> c & 1 == 1
        } else {
            self.sets[set].contains(c)
        }
    }

    /// What `regex.exec(input)` does, tried from each start position in
    /// turn as JavaScript does, within `limit` steps.
    pub fn exec(&self, input: &[u32], limit: u64) -> Outcome {
        let mut run = Run {
            program: self,
            input,
            stack: Vec::new(),
            slots: vec![UNSET; self.slots],
            registers: vec![UNSET; self.registers],
            steps: 0,
            limit,
        };
        let starts = if self.sticky { 0..=0 } else { 0..=input.len() };
        for start in starts {
            run.slots.iter_mut().for_each(|s| *s = UNSET);
            match run.run(0, start) {
                Err(OutOfSteps) => return Outcome::Exceeded,
                Ok(Some(_)) => return Outcome::Matched { steps: run.steps },
                Ok(None) => {}
            }
        }
        Outcome::Failed { steps: run.steps }
    }
}

#[cfg(test)]
mod tests {
    use super::super::syntax::parse;
    use super::*;

    fn exec(source: &str, flags: &str, input: &str) -> Outcome {
        let regex = parse(source, flags).unwrap();
        let input: Vec<u32> = input.encode_utf16().map(u32::from).collect();
        compile(&regex).unwrap().exec(&input, 10_000_000)
    }

    fn matches(source: &str, flags: &str, input: &str) -> bool {
        matches!(exec(source, flags, input), Outcome::Matched { .. })
    }

    #[test]
    fn follows_javascript_semantics() {
        assert!(matches("^a+b$", "", "aaab"));
        assert!(!matches("^a+b$", "", "aaa"));
        assert!(matches("b", "", "aab"));
        assert!(matches("^(?:a|ab)c$", "", "abc"));
        assert!(matches("^(a)\\1$", "", "aa") && !matches("^(a)\\1$", "", "ab"));
        assert!(matches("^(?<x>a)\\k<x>$", "i", "aA"));
        assert!(matches("(?<=\\$)\\d+", "", "$42") && !matches("(?<=\\$)\\d+", "", "42"));
        assert!(matches("^(?!ab)a", "", "ac") && !matches("^(?!ab)a", "", "ab"));
        assert!(matches("^\\bfoo\\b$", "", "foo"));
        assert!(matches("^a$", "m", "b\na\nc"));
        assert!(!matches("^a$", "", "b\na\nc"));
        assert!(matches("^A.c$", "is", "a\nC"));
        assert!(matches("^a{2,3}$", "", "aaa") && !matches("^a{2,3}$", "", "aaaa"));
        // The empty-iteration check ends `(a*)*` instead of looping.
        assert!(matches("^(a*)*b$", "", "aab"));
        assert!(matches("^(?:a??)+?$", "", "aa"));
        // Lookbehind reads right to left, so the greedy group takes all.
        assert!(matches("(?<=(\\d+)(\\d+))$", "", "1053"));
    }

    #[test]
    fn counts_the_work_of_a_failing_search() {
        let steps = |n: usize| exec("^(a+)+$", "", &format!("{}!", "a".repeat(n))).steps().unwrap();
        assert!(steps(16) > 30 * steps(11), "{} vs {}", steps(16), steps(11));
        let linear = |n: usize| exec("^a+$", "", &format!("{}!", "a".repeat(n))).steps().unwrap();
        assert!(linear(200) < 3 * linear(100));
        assert_eq!(exec("^(a+)+$", "", &format!("{}!", "a".repeat(40))), Outcome::Exceeded);
    }
}
