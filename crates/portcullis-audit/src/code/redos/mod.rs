//! ReDoS (C18): which of the code's regular expressions a backtracking
//! engine (V8's, so Node's) can be made to work on for exponential or
//! polynomial time, proved with an attack string.
//!
//! Each literal pattern is parsed with JavaScript's syntax and flags
//! ([`syntax`]), its position automaton searched for ambiguity that
//! repeats ([`automaton`]), and each candidate attack run on a matcher
//! with JavaScript's semantics that counts its steps ([`matcher`]) at two
//! sizes: only an attack whose work grows faster than its length is
//! reported. A pattern the analysis cannot model is not called safe or
//! unsafe; it is counted as not analysed.

mod automaton;
mod charset;
mod matcher;
mod rewrite;
mod syntax;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use oxc_ast::ast::{Argument, CallExpression, Expression, NewExpression, Program as Ast, RegExpLiteral};
use oxc_ast_visit::{walk, Visit};
use oxc_span::Span;

use automaton::{Analysis, Candidate};
use charset::CharSet;
use matcher::Program;
use syntax::{is_word, Assertion, LINE_TERMINATORS};

use super::rules::{evidence_at, suppressed, Lines};
use crate::report::{Finding, Item, Severity};

/// A regular expression written in the code: a literal, or `RegExp` called
/// with a literal pattern (and literal flags, or none).
pub struct Site {
    pub span: Span,
    pub source: String,
    pub flags: String,
}

/// Every regular expression of a file with a literal pattern.
pub fn sites(text: &str, program: &Ast) -> Vec<Site> {
    let mut collector = Collector {
        text,
        sites: Vec::new(),
    };
    collector.visit_program(program);
    collector.sites
}

struct Collector<'t> {
    text: &'t str,
    sites: Vec<Site>,
}

impl<'a> Visit<'a> for Collector<'_> {
    fn visit_reg_exp_literal(&mut self, it: &RegExpLiteral<'a>) {
        self.sites.push(Site::literal(self.text, it));
    }

    fn visit_new_expression(&mut self, it: &NewExpression<'a>) {
        self.sites.extend(Site::constructed(&it.callee, &it.arguments, it.span));
        walk::walk_new_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        self.sites.extend(Site::constructed(&it.callee, &it.arguments, it.span));
        walk::walk_call_expression(self, it);
    }
}

impl Site {
    fn literal(text: &str, literal: &RegExpLiteral) -> Site {
        let written = text
            .get(literal.span.start as usize..literal.span.end as usize)
            .unwrap_or_default();
        Site {
            span: literal.span,
            source: literal.regex.pattern.text.to_string(),
            flags: written.rsplit_once('/').map_or("", |(_, flags)| flags).to_owned(),
        }
    }

    /// `new RegExp('…', 'i')` or `RegExp('…')`.
    fn constructed(callee: &Expression, arguments: &[Argument], span: Span) -> Option<Site> {
        let Expression::Identifier(name) = callee.get_inner_expression() else {
            return None;
        };
        if name.name != "RegExp" {
            return None;
        }
        let mut literals = arguments.iter().map(|a| a.as_expression().and_then(string_value));
        let source = literals.next()??;
        let flags = match literals.next() {
            None => String::new(),
            Some(flags) => flags?,
        };
        Some(Site { span, source, flags })
    }
}

/// A string literal's value (a template's cooked text when it has no
/// substitutions): what `RegExp` receives.
fn string_value(expression: &Expression) -> Option<String> {
    match expression.get_inner_expression() {
        Expression::StringLiteral(s) => Some(s.value.to_string()),
        Expression::TemplateLiteral(t) if t.expressions.is_empty() => {
            t.quasis.first()?.value.cooked.as_ref().map(|c| c.to_string())
        }
        _ => None,
    }
}

/// The findings for a file's regular expressions.
pub fn findings(file: &str, text: &str, lines: &Lines, sites: &[Site]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for site in sites {
        let evidence = evidence_at(file, text, lines, site.span);
        let line = evidence.line.unwrap_or_default();
        let shown = format!("/{}/{}", site.source, site.flags);
        let (rule, severity, title, fix) = match checked(&site.source, &site.flags) {
            Verdict::Safe | Verdict::Invalid(_) => continue,
            Verdict::NotAnalysed(why) => (
                "code.redos-unchecked",
                Severity::Info,
                format!("{shown} was not checked for ReDoS: {why}"),
                "check it by hand, or keep its input short".to_owned(),
            ),
            Verdict::Vulnerable(attack) => (
                "code.redos",
                match attack.complexity {
                    Complexity::Exponential => Severity::High,
                    Complexity::Polynomial(_) => Severity::Medium,
                },
                format!(
                    "{shown} backtracks in {} time (ReDoS): matching {} takes seconds",
                    attack.complexity,
                    attack.javascript()
                ),
                fix(&site.source, &site.flags, &attack),
            ),
        };
        if !suppressed(text, lines, rule, line) {
            findings.push(Finding {
                rule,
                item: Item::C18,
                severity,
                title,
                evidence,
                fix,
            });
        }
    }
    findings
}

fn fix(source: &str, flags: &str, attack: &Attack) -> String {
    let general = "bound the input's length before matching, or use a linear-time engine (the re2 package)";
    match rewrite::suggest(source, flags, attack) {
        Some(advice) => format!("{advice}; else {general}"),
        None => format!(
            "make the repeated parts unable to match the same text (each pump, {}, can be read more than one way); else {general}",
            attack
                .pumps
                .iter()
                .map(|(_, pump)| js_string(pump))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// How much work matching an attack string takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complexity {
    Exponential,
    /// Steps grow as the length to this power.
    Polynomial(u32),
}

impl std::fmt::Display for Complexity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Complexity::Exponential => f.write_str("exponential"),
            Complexity::Polynomial(2) => f.write_str("quadratic"),
            Complexity::Polynomial(3) => f.write_str("cubic"),
            Complexity::Polynomial(d) => write!(f, "polynomial (degree {d})"),
        }
    }
}

/// An input that makes the pattern slow: each pump's prefix then the pump
/// repeated, for every pump, then the suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attack {
    pub complexity: Complexity,
    pub pumps: Vec<(Vec<u32>, Vec<u32>)>,
    pub suffix: Vec<u32>,
    pub proof: Proof,
}

/// The matcher's steps with each pump repeated `n` times, then `2n` times
/// (`None`: more than `limit`, already 32 times the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    pub n: usize,
    pub steps: u64,
    pub doubled: Option<u64>,
    pub limit: u64,
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} steps with {} repetitions, ", self.steps, self.n)?;
        match self.doubled {
            Some(steps) => write!(f, "{steps} with {}", 2 * self.n),
            None => write!(f, "over {} with {}", self.limit, 2 * self.n),
        }
    }
}

impl Attack {
    /// The attack with each pump repeated `n` times.
    pub fn input(&self, n: usize) -> Vec<u32> {
        input(&self.pumps, &self.suffix, n)
    }

    /// How many repetitions make the attack take seconds in Node.
    pub fn repetitions(&self) -> usize {
        match self.complexity {
            Complexity::Exponential => 30,
            // About 10^9 steps.
            Complexity::Polynomial(d) => (1e9f64.powf(1.0 / f64::from(d.max(2)))).ceil() as usize,
        }
    }

    /// The attack as a JavaScript expression: `'a' + 'b'.repeat(30) + '!'`.
    pub fn javascript(&self) -> String {
        let n = self.repetitions();
        let mut parts = Vec::new();
        for (prefix, pump) in &self.pumps {
            if !prefix.is_empty() {
                parts.push(js_string(prefix));
            }
            parts.push(format!("{}.repeat({n})", js_string(pump)));
        }
        if !self.suffix.is_empty() {
            parts.push(js_string(&self.suffix));
        }
        parts.join(" + ")
    }
}

/// `chars` (code points or UTF-16 units) as a JavaScript string literal.
pub fn js_string(chars: &[u32]) -> String {
    let mut out = String::from("'");
    for &c in chars {
        match char::from_u32(c) {
            Some('\'') => out.push_str("\\'"),
            Some('\\') => out.push_str("\\\\"),
            Some('\n') => out.push_str("\\n"),
            Some('\t') => out.push_str("\\t"),
            Some(ch) if (' '..='~').contains(&ch) => out.push(ch),
            _ if c <= 0xFF => out.push_str(&format!("\\x{c:02x}")),
            _ if c <= 0xFFFF => out.push_str(&format!("\\u{c:04x}")),
            _ => out.push_str(&format!("\\u{{{c:x}}}")),
        }
    }
    out.push('\'');
    out
}

/// An attack's input: each pump's prefix then the pump `n` times, for
/// every pump, then the suffix.
pub fn input(pumps: &[(Vec<u32>, Vec<u32>)], suffix: &[u32], n: usize) -> Vec<u32> {
    let mut input = Vec::new();
    for (prefix, pump) in pumps {
        input.extend(prefix);
        for _ in 0..n {
            input.extend(pump);
        }
    }
    input.extend(suffix);
    input
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Safe,
    Vulnerable(Attack),
    /// JavaScript would refuse the pattern.
    Invalid(String),
    /// The analysis does not model it (said why).
    NotAnalysed(String),
}

/// `check`, once per pattern and flags for the whole run: installed
/// packages repeat the same patterns from file to file.
fn checked(source: &str, flags: &str) -> Verdict {
    type Verdicts = Mutex<HashMap<(String, String), Verdict>>;
    static VERDICTS: OnceLock<Verdicts> = OnceLock::new();
    let verdicts = VERDICTS.get_or_init(Default::default);
    let key = (source.to_owned(), flags.to_owned());
    if let Some(verdict) = verdicts.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return verdict.clone();
    }
    let verdict = check(source, flags);
    verdicts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, verdict.clone());
    verdict
}

/// `check` on each (pattern, flags), shared out across the machine's
/// cores; the verdicts in the same order.
pub fn check_all(patterns: &[(String, String)]) -> Vec<Verdict> {
    super::in_parallel(patterns, |(source, flags)| vec![check(source, flags)])
}

/// Steps one proving run may take.
const STEP_LIMIT: u64 = 5_000_000;

pub fn check(source: &str, flags: &str) -> Verdict {
    let regex = match syntax::parse(source, flags) {
        Ok(regex) => regex,
        Err(syntax::SyntaxError::Invalid(why)) => return Verdict::Invalid(why),
        Err(syntax::SyntaxError::Unsupported(why)) => return Verdict::NotAnalysed(why),
    };
    let analysis = match automaton::analyse(&regex) {
        Ok(analysis) => analysis,
        Err(why) => return Verdict::NotAnalysed(why.into()),
    };
    if analysis.candidates.is_empty() {
        return Verdict::Safe;
    }
    let Some(program) = matcher::compile(&regex) else {
        return Verdict::NotAnalysed("its counted repetitions are too large to run".into());
    };
    let prover = Prover {
        program: &program,
        analysis: &analysis,
        shape: Shape {
            anchors: regex
                .root
                .asserts(&|a| matches!(a, Assertion::InputStart | Assertion::LineStart)),
            boundaries: regex
                .root
                .asserts(&|a| matches!(a, Assertion::WordBoundary | Assertion::NotWordBoundary)),
        },
        left: std::cell::Cell::new(PROOF_STEPS),
    };
    match analysis
        .candidates
        .iter()
        .find_map(|candidate| prove(&prover, candidate))
    {
        Some(attack) => Verdict::Vulnerable(attack),
        None if prover.exhausted() => Verdict::NotAnalysed("proving its candidate attacks takes too long".into()),
        None => Verdict::Safe,
    }
}

/// Steps all the proving runs of one pattern may take together.
const PROOF_STEPS: u64 = 100_000_000;

/// What every proof on one pattern shares: the matcher, the characters
/// attacks are written with, the pattern's shape, and the steps the proofs
/// may still spend.
struct Prover<'p> {
    program: &'p Program,
    analysis: &'p Analysis,
    shape: Shape,
    left: std::cell::Cell<u64>,
}

impl Prover<'_> {
    /// The steps searching `input` takes, `None` past the limit of one
    /// run (or once the proof's budget is spent: see `exhausted`).
    fn steps(&self, input: &[u32]) -> Option<u64> {
        self.steps_within(input, STEP_LIMIT)
    }

    fn steps_within(&self, input: &[u32], limit: u64) -> Option<u64> {
        let limit = limit.min(self.left.get());
        let steps = self.program.exec(input, limit).steps();
        self.left.set(self.left.get() - steps.unwrap_or(limit).min(limit));
        steps.filter(|_| !self.exhausted())
    }

    fn exhausted(&self) -> bool {
        self.left.get() == 0
    }
}

/// Which character of each place's set an attack writes: the automaton
/// knows which characters take a path, not which also defeat an anchor or
/// a `.` (a line break does both).
#[derive(Clone, Copy)]
enum Pick {
    Printable,
    LineBreak,
    Lowest,
    /// A word character then a non-word one for each place that has both:
    /// `\b` then holds at every other position.
    Boundaries,
}

fn written(word: &[CharSet], how: Pick) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(word.len());
    for set in word {
        match how {
            Pick::Printable => out.push(set.representative()?),
            Pick::LineBreak => out.push(
                LINE_TERMINATORS
                    .into_iter()
                    .find(|&c| set.contains(c))
                    .or_else(|| set.representative())?,
            ),
            Pick::Lowest => out.push(set.first()?),
            Pick::Boundaries => {
                let printable = |word: bool| (0x20..0x7F).find(|&c| set.contains(c) && is_word(c) == word);
                match (printable(true), printable(false)) {
                    (Some(w), Some(n)) => out.extend([w, n]),
                    _ => out.push(set.representative()?),
                }
            }
        }
    }
    Some(out)
}

/// What to end the attack with: nothing, or the one or two of the
/// pattern's ending characters that make clearly the most work (a match
/// must fail for every path to be tried; a shorter attack reads better).
fn ending(endings: &[u32], pumps: &[(Vec<u32>, Vec<u32>)], work: impl Fn(&[u32]) -> u64) -> Vec<u32> {
    let mut best = Vec::new();
    let mut most = work(&best);
    let clearly_more = |work: u64, most: u64| work > most.saturating_add(most / 2);
    // One more pumped character is more work, but not an ending.
    let endings: Vec<u32> = endings
        .iter()
        .copied()
        .filter(|c| !pumps.iter().any(|(_, pump)| pump.contains(c)))
        .collect();
    for &c in &endings {
        let w = work(&[c]);
        if clearly_more(w, most) {
            (best, most) = (vec![c], w);
        }
    }
    if best.is_empty() {
        let few = &endings[..endings.len().min(6)];
        for &a in few {
            for &b in few {
                let w = work(&[a, b]);
                if clearly_more(w, most) {
                    (best, most) = (vec![a, b], w);
                }
            }
        }
    }
    best
}

/// What in the pattern decides which ways of writing an attack are worth
/// trying.
#[derive(Clone, Copy)]
struct Shape {
    /// `^`: a character in front may keep an anchored alternative away.
    anchors: bool,
    /// `\b`, `\B`: word and non-word characters in turn may matter.
    boundaries: bool,
}

/// The candidate written out each way that can matter, proved or not.
fn prove(prover: &Prover, candidate: &Candidate) -> Option<Attack> {
    let shape = prover.shape;
    let mut tried = Vec::new();
    let picks = [Pick::Printable, Pick::LineBreak, Pick::Lowest, Pick::Boundaries];
    for how in picks
        .into_iter()
        .filter(|how| shape.boundaries || !matches!(how, Pick::Boundaries))
    {
        let pumps: Option<Vec<(Vec<u32>, Vec<u32>)>> = candidate
            .pumps
            .iter()
            .map(|(prefix, pump)| Some((written(prefix, how)?, written(pump, how)?)))
            .collect();
        let Some(pumps) = pumps else { continue };
        // A character in front keeps an alternative anchored at the start
        // (`^\s+|\s+$`) from matching at once.
        let lead = prover.analysis.endings.first().copied().filter(|_| shape.anchors);
        let leads = std::iter::once(None).chain(lead.map(Some));
        for lead in leads {
            let mut pumps = pumps.clone();
            pumps[0].0.splice(0..0, lead);
            if tried.contains(&pumps) {
                continue;
            }
            if let Some(attack) = measure(prover, candidate, &pumps) {
                return Some(attack);
            }
            tried.push(pumps);
        }
    }
    // The characters that kill the paths to a match may be none of those
    // picks (`)` where `[^)]+` would match): chosen one place at a time.
    let searched = search_pumps(prover, candidate, tried.first()?.clone());
    measure(prover, candidate, &searched)
}

/// The pumps improved one character at a time, each place trying one
/// character of every class the pattern tells apart that the place
/// allows, keeping what makes the most work.
fn search_pumps(
    prover: &Prover,
    candidate: &Candidate,
    mut pumps: Vec<(Vec<u32>, Vec<u32>)>,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    let n = if candidate.exponential { 6 } else { 16 };
    let endings: Vec<Vec<u32>> = std::iter::once(Vec::new())
        .chain(prover.analysis.endings.iter().take(6).map(|&c| vec![c]))
        .collect();
    let work = |pumps: &[(Vec<u32>, Vec<u32>)]| {
        endings
            .iter()
            .map(|suffix| prover.steps(&input(pumps, suffix, n)).unwrap_or(STEP_LIMIT))
            .max()
            .unwrap_or(0)
    };
    let mut most = work(&pumps);
    for (i, (_, word)) in candidate.pumps.iter().enumerate() {
        // Only where the pump was written one character per place.
        if pumps[i].1.len() != word.len() {
            continue;
        }
        for (j, set) in word.iter().enumerate() {
            for &c in prover.analysis.alphabet.iter().filter(|&&c| set.contains(c)) {
                let mut trial = pumps.clone();
                trial[i].1[j] = c;
                let w = work(&trial);
                if w > most {
                    (pumps, most) = (trial, w);
                }
            }
        }
    }
    pumps
}

/// The best ending for `pumps`, and their work measured at two sizes: the
/// attack holds when doubling the pumps more than triples the steps.
fn measure(prover: &Prover, candidate: &Candidate, pumps: &[(Vec<u32>, Vec<u32>)]) -> Option<Attack> {
    let steps = |suffix: &[u32], n: usize| prover.steps(&input(pumps, suffix, n));
    let small = if candidate.exponential { 6 } else { 12 };
    let suffix = ending(&prover.analysis.endings, pumps, |suffix| {
        steps(suffix, small).unwrap_or(u64::MAX)
    });
    // Grow until the work is well above what any start costs (from one
    // repetition: a pattern of high degree runs out of steps early).
    let mut n = 1;
    let mut at_n = steps(&suffix, n)?;
    // An exponential attack is plain early, and its next size dear.
    let enough = if candidate.exponential { 2_000 } else { 20_000 };
    while at_n < enough && n < 2_048 {
        match steps(&suffix, 2 * n) {
            // Twice the input for barely twice the work, twice over, well
            // past the cost of a start: linear, no need to go on.
            Some(more) if at_n > 1_000 && more < at_n * 9 / 4 && steps(&suffix, 4 * n)? < more * 9 / 4 => {
                return None;
            }
            Some(more) => (n, at_n) = (2 * n, more),
            None => break,
        }
    }
    // Past 32 times the work the growth is plain (over 2^5 per doubling).
    let limit = at_n.saturating_mul(32).clamp(100_000, STEP_LIMIT);
    let at_2n = prover.steps_within(&input(pumps, &suffix, 2 * n), limit);
    let growth = at_2n.map_or(f64::INFINITY, |s| s as f64 / at_n.max(1) as f64);
    let degree = growth.log2();
    // A run cut short by the spent budget proves nothing.
    if degree < 1.6 || prover.exhausted() {
        return None;
    }
    let complexity = if candidate.exponential && degree > 4.5 {
        Complexity::Exponential
    } else if candidate.exponential {
        Complexity::Polynomial(degree.round() as u32)
    } else {
        // The automaton's degree is an upper bound (an assertion between
        // two loops can keep them apart); the measured growth says which.
        Complexity::Polynomial((degree.round() as u32).clamp(2, candidate.degree.max(2)))
    };
    Some(Attack {
        complexity,
        pumps: pumps.to_vec(),
        suffix,
        proof: Proof {
            n,
            steps: at_n,
            doubled: at_2n,
            limit,
        },
    })
}

/// The steps the matcher takes searching `input` with `source`, or `None`
/// when they pass `limit` (or the pattern does not compile): for checking
/// an attack, this one's or another tool's, from outside.
pub fn steps(source: &str, flags: &str, input: &[u32], limit: u64) -> Option<u64> {
    let regex = syntax::parse(source, flags).ok()?;
    matcher::compile(&regex)?.exec(input, limit).steps()
}

/// A JavaScript string as the pattern reads it: code points with the `u`
/// or `v` flag, UTF-16 code units without.
pub fn units(text: &str, flags: &str) -> Vec<u32> {
    if flags.contains('u') || flags.contains('v') {
        text.chars().map(u32::from).collect()
    } else {
        text.encode_utf16().map(u32::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Patterns built from the pieces real ones use, nested.
    fn patterns() -> impl Strategy<Value = String> {
        let atom = prop::sample::select(vec![
            "a", "b", "ab", "\\d", "\\w", "\\s", ".", "[a-c]", "[^b]", "\\b", "^", "$", "(?=a)", "(?<!b)", "\\1",
        ])
        .prop_map(str::to_owned);
        let quantifier = prop::sample::select(vec!["", "", "*", "+", "?", "{2}", "{1,3}", "*?", "+?", "{2,}"]);
        atom.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 1..4), quantifier.clone())
                    .prop_map(|(parts, q)| format!("({}){q}", parts.concat())),
                (prop::collection::vec(inner.clone(), 2..4)).prop_map(|parts| format!("(?:{})", parts.join("|"))),
                (inner.clone(), inner).prop_map(|(a, b)| a + &b),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_text_gets_a_verdict(pattern in "\\PC{0,40}", flags in "[dgimsuy]{0,3}") {
            let _ = check(&pattern, &flags);
        }

        #[test]
        fn every_attack_reported_holds(pattern in patterns(), flags in prop::sample::select(vec!["", "i", "m", "s", "u"])) {
            if let Verdict::Vulnerable(attack) = check(&pattern, flags) {
                let Proof { n, steps: small, doubled, limit } = attack.proof;
                prop_assert_eq!(steps(&pattern, flags, &attack.input(n), STEP_LIMIT), Some(small));
                prop_assert_eq!(steps(&pattern, flags, &attack.input(2 * n), limit), doubled);
                prop_assert!(doubled.is_none_or(|large| large > 3 * small), "{} {}: {}", pattern, attack.javascript(), attack.proof);
            }
        }
    }

    fn verdict(source: &str) -> Verdict {
        check(source, "")
    }

    fn complexity(source: &str) -> Option<Complexity> {
        match verdict(source) {
            Verdict::Vulnerable(attack) => Some(attack.complexity),
            _ => None,
        }
    }

    #[test]
    fn finds_the_classic_shapes() {
        assert_eq!(complexity("^(a+)+$"), Some(Complexity::Exponential));
        assert_eq!(complexity("^(a|a)*$"), Some(Complexity::Exponential));
        assert_eq!(complexity("^(a*)*b"), Some(Complexity::Exponential));
        assert_eq!(complexity("([0-9]+)+\\#"), Some(Complexity::Exponential));
        assert_eq!(complexity("^(\\w+\\s?)*$"), Some(Complexity::Exponential));
        assert_eq!(complexity("\\s+$"), Some(Complexity::Polynomial(2)));
        assert_eq!(complexity("^a*a*$"), Some(Complexity::Polynomial(2)));
        assert_eq!(complexity("^\\d*\\d*\\d*$"), Some(Complexity::Polynomial(3)));
        // Unanchored, a search retries from every start: quadratic.
        assert_eq!(complexity("(a|b)*c"), Some(Complexity::Polynomial(2)));
        assert_eq!(complexity("^\\s+|\\s+$"), Some(Complexity::Polynomial(2)));
    }

    #[test]
    fn leaves_the_safe_ones() {
        for safe in [
            "^[a-z]+$",
            "^(a+)+",
            "^a+$",
            "^(a|b)*c",
            "^(?:a|b)+$",
            "a*",
            "(a|b)*",
            "x\\d+y",
        ] {
            assert_eq!(verdict(safe), Verdict::Safe, "{safe}");
        }
        assert!(matches!(verdict("("), Verdict::Invalid(_)));
        // Long alternations, as minified libraries have, get an answer.
        let words: Vec<String> = (0..3_000).map(|i| format!("w{i}")).collect();
        assert!(matches!(
            verdict(&format!("^(?:{})+$", words.join("|"))),
            Verdict::NotAnalysed(_) | Verdict::Safe
        ));
        let letters: String = (0..3_000u32)
            .filter_map(|i| char::from_u32(0x4E00 + i))
            .map(|c| format!("{c}|"))
            .collect();
        assert!(matches!(
            verdict(&format!("(?:{letters}x)*y")),
            Verdict::NotAnalysed(_) | Verdict::Vulnerable(_)
        ));
        // Few enough states, but a star over 1,000 alternatives has an edge
        // from each to each: not built.
        let thousand: String = letters
            .chars()
            .filter(|&c| c != '|')
            .take(1_000)
            .map(|c| format!("{c}|"))
            .collect();
        assert!(matches!(
            verdict(&format!("^(?:{thousand}x)*y$")),
            Verdict::NotAnalysed(why) if why.contains("too large to build")
        ));
    }

    #[test]
    fn the_attack_is_what_it_says() {
        let Verdict::Vulnerable(attack) = verdict("^(a+)+$") else {
            panic!()
        };
        let Proof {
            n,
            steps: small,
            doubled,
            ..
        } = attack.proof;
        assert_eq!(steps("^(a+)+$", "", &attack.input(n), u64::MAX), Some(small));
        assert!(doubled.is_none_or(|large| large > 16 * small), "{}", attack.proof);
        assert!(attack.javascript().contains(".repeat(30)"), "{}", attack.javascript());
    }
}
