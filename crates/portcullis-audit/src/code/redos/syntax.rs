//! A pattern as the analysis and the matcher read it, lowered from oxc's
//! regular-expression AST with the flags applied: case-insensitive
//! characters become their case-closed sets, `.` and `^`/`$` take their
//! `s` and `m` meanings, group names become indices.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use oxc_allocator::Allocator;
use oxc_regular_expression::ast::{
    BoundaryAssertionKind, CharacterClass, CharacterClassContents, CharacterClassContentsKind,
    CharacterClassEscapeKind, Disjunction, LookAroundAssertionKind, Modifier, Pattern, Term,
};
use oxc_regular_expression::{LiteralParser, Options};

use regex_syntax::hir::{Class, HirKind};

use super::charset::{CharSet, MAX_UNICODE, MAX_UTF16};

#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub ignore_case: bool,
    pub multiline: bool,
    pub dot_all: bool,
    pub unicode: bool,
    pub sticky: bool,
}

impl Flags {
    fn parse(flags: &str) -> Self {
        Self {
            ignore_case: flags.contains('i'),
            multiline: flags.contains('m'),
            dot_all: flags.contains('s'),
            unicode: flags.contains('u') || flags.contains('v'),
            sticky: flags.contains('y'),
        }
    }

    /// The largest character the pattern's input can hold.
    pub fn max_char(&self) -> u32 {
        if self.unicode {
            MAX_UNICODE
        } else {
            MAX_UTF16
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assertion {
    InputStart,
    InputEnd,
    LineStart,
    LineEnd,
    WordBoundary,
    NotWordBoundary,
}

#[derive(Clone, Debug)]
pub enum Node {
    Empty,
    /// One character of the set.
    Chars(CharSet),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        body: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    /// A capturing group (1-based, as backreferences count).
    Capture(usize, Box<Node>),
    Assert(Assertion),
    Look {
        behind: bool,
        negative: bool,
        body: Box<Node>,
    },
    BackRef(usize),
}

impl Node {
    /// Whether the pattern has an assertion for which `wanted` holds.
    pub fn asserts(&self, wanted: &impl Fn(Assertion) -> bool) -> bool {
        match self {
            Node::Assert(assertion) => wanted(*assertion),
            Node::Concat(parts) | Node::Alt(parts) => parts.iter().any(|p| p.asserts(wanted)),
            Node::Repeat { body, .. } | Node::Capture(_, body) | Node::Look { body, .. } => body.asserts(wanted),
            Node::Empty | Node::Chars(_) | Node::BackRef(_) => false,
        }
    }
}

/// A pattern ready for analysis.
#[derive(Debug)]
pub struct Regex {
    pub root: Node,
    pub flags: Flags,
    pub captures: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SyntaxError {
    /// Not a valid JavaScript pattern (JavaScript would throw).
    Invalid(String),
    /// Valid, but uses what the analysis does not model.
    Unsupported(String),
}

/// Deeper group nesting than this is not analysed: the parser, the
/// lowering and the analysis all recurse on it.
const MAX_NESTING: usize = 100;

pub fn parse(source: &str, flags_text: &str) -> Result<Regex, SyntaxError> {
    if nesting(source) > MAX_NESTING {
        return Err(unsupported("groups nested more than 100 deep"));
    }
    let allocator = Allocator::default();
    let pattern = LiteralParser::new(&allocator, source, Some(flags_text), Options::default())
        .parse()
        .map_err(|e| SyntaxError::Invalid(e.message.to_string()))?;
    lower_pattern(&pattern, Flags::parse(flags_text))
}

/// How deep the pattern's groups nest, from its text (escapes skipped;
/// a parenthesis inside a class counted too, which only overestimates).
fn nesting(source: &str) -> usize {
    let (mut depth, mut deepest, mut escaped) = (0usize, 0, false);
    for b in source.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn lower_pattern(pattern: &Pattern, flags: Flags) -> Result<Regex, SyntaxError> {
    let mut names = HashMap::new();
    let mut count = 0;
    number_groups(&pattern.body, &mut count, &mut names);
    let mut lowering = Lowering {
        names,
        next_group: 0,
        max: flags.max_char(),
    };
    let root = lowering.disjunction(&pattern.body, flags)?;
    Ok(Regex {
        root,
        flags,
        captures: count,
    })
}

/// Groups are numbered by their opening parenthesis, left to right, before
/// any is lowered: a backreference may come before its group.
fn number_groups(disjunction: &Disjunction, count: &mut usize, names: &mut HashMap<String, usize>) {
    for term in disjunction.body.iter().flat_map(|a| a.body.iter()) {
        number_term(term, count, names);
    }
}

fn number_term(term: &Term, count: &mut usize, names: &mut HashMap<String, usize>) {
    match term {
        Term::CapturingGroup(group) => {
            *count += 1;
            if let Some(name) = &group.name {
                names.entry(name.to_string()).or_insert(*count);
            }
            number_groups(&group.body, count, names);
        }
        Term::IgnoreGroup(group) => number_groups(&group.body, count, names),
        Term::LookAroundAssertion(look) => number_groups(&look.body, count, names),
        Term::Quantifier(quantifier) => number_term(&quantifier.body, count, names),
        _ => {}
    }
}

struct Lowering {
    names: HashMap<String, usize>,
    next_group: usize,
    max: u32,
}

fn unsupported(what: &str) -> SyntaxError {
    SyntaxError::Unsupported(what.into())
}

impl Lowering {
    fn disjunction(&mut self, disjunction: &Disjunction, flags: Flags) -> Result<Node, SyntaxError> {
        let mut alternatives = Vec::with_capacity(disjunction.body.len());
        for alternative in &disjunction.body {
            let mut terms = Vec::with_capacity(alternative.body.len());
            for term in &alternative.body {
                terms.push(self.term(term, flags)?);
            }
            alternatives.push(match terms.len() {
                0 => Node::Empty,
                1 => terms.pop().unwrap_or(Node::Empty),
                _ => Node::Concat(terms),
            });
        }
        Ok(match alternatives.len() {
            1 => alternatives.pop().unwrap_or(Node::Empty),
            _ => Node::Alt(alternatives),
        })
    }

    fn chars(&self, set: CharSet, flags: Flags) -> Node {
        Node::Chars(if flags.ignore_case { set.case_closed() } else { set })
    }

    fn term(&mut self, term: &Term, flags: Flags) -> Result<Node, SyntaxError> {
        Ok(match term {
            Term::BoundaryAssertion(assertion) => Node::Assert(match (assertion.kind, flags.multiline) {
                (BoundaryAssertionKind::Start, false) => Assertion::InputStart,
                (BoundaryAssertionKind::Start, true) => Assertion::LineStart,
                (BoundaryAssertionKind::End, false) => Assertion::InputEnd,
                (BoundaryAssertionKind::End, true) => Assertion::LineEnd,
                (BoundaryAssertionKind::Boundary, _) => Assertion::WordBoundary,
                (BoundaryAssertionKind::NegativeBoundary, _) => Assertion::NotWordBoundary,
            }),
            Term::LookAroundAssertion(look) => Node::Look {
                behind: matches!(
                    look.kind,
                    LookAroundAssertionKind::Lookbehind | LookAroundAssertionKind::NegativeLookbehind
                ),
                negative: matches!(
                    look.kind,
                    LookAroundAssertionKind::NegativeLookahead | LookAroundAssertionKind::NegativeLookbehind
                ),
                body: Box::new(self.disjunction(&look.body, flags)?),
            },
            Term::Quantifier(quantifier) => Node::Repeat {
                body: Box::new(self.term(&quantifier.body, flags)?),
                min: u32::try_from(quantifier.min).unwrap_or(u32::MAX),
                max: quantifier.max.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
                greedy: quantifier.greedy,
            },
            Term::Character(c) => self.chars(CharSet::single(c.value), flags),
            Term::Dot(_) if flags.dot_all => Node::Chars(CharSet::range(0, self.max)),
            Term::Dot(_) => Node::Chars(line_terminators().complement(self.max)),
            Term::CharacterClassEscape(escape) => self.chars(class_escape(escape.kind, self.max), flags),
            Term::UnicodePropertyEscape(property) => {
                let set = unicode_property(&property.name, property.value.as_deref())
                    .ok_or_else(|| unsupported("a Unicode property it does not know"))?;
                let set = if property.negative {
                    set.complement(self.max)
                } else {
                    set
                };
                self.chars(set, flags)
            }
            Term::CharacterClass(class) => Node::Chars(self.class(class, flags)?),
            Term::CapturingGroup(group) => {
                self.next_group += 1;
                let index = self.next_group;
                Node::Capture(index, Box::new(self.disjunction(&group.body, flags)?))
            }
            Term::IgnoreGroup(group) => {
                let mut inner = flags;
                if let Some(modifiers) = &group.modifiers {
                    for (modifier, on) in [(modifiers.enabling, true), (modifiers.disabling, false)] {
                        if modifier.contains(Modifier::I) {
                            inner.ignore_case = on;
                        }
                        if modifier.contains(Modifier::M) {
                            inner.multiline = on;
                        }
                        if modifier.contains(Modifier::S) {
                            inner.dot_all = on;
                        }
                    }
                }
                self.disjunction(&group.body, inner)?
            }
            Term::IndexedReference(reference) => Node::BackRef(reference.index as usize),
            Term::NamedReference(reference) => Node::BackRef(
                self.names
                    .get(reference.name.as_str())
                    .copied()
                    .ok_or_else(|| unsupported("a backreference to an unknown group"))?,
            ),
        })
    }

    fn class(&self, class: &CharacterClass, flags: Flags) -> Result<CharSet, SyntaxError> {
        let mut parts = Vec::with_capacity(class.body.len());
        for content in &class.body {
            parts.push(match content {
                CharacterClassContents::CharacterClassRange(range) => CharSet::range(range.min.value, range.max.value),
                CharacterClassContents::CharacterClassEscape(escape) => class_escape(escape.kind, self.max),
                CharacterClassContents::UnicodePropertyEscape(property) => {
                    let set = unicode_property(&property.name, property.value.as_deref())
                        .ok_or_else(|| unsupported("a Unicode property it does not know"))?;
                    if property.negative {
                        set.complement(self.max)
                    } else {
                        set
                    }
                }
                CharacterClassContents::Character(c) => CharSet::single(c.value),
                CharacterClassContents::NestedCharacterClass(nested) => self.class(nested, flags)?,
                CharacterClassContents::ClassStringDisjunction(strings) => {
                    let mut set = CharSet::empty();
                    for string in &strings.body {
                        match string.body.as_slice() {
                            [c] => set.add(c.value, c.value),
                            _ => return Err(unsupported("a class of strings")),
                        }
                    }
                    set
                }
            });
        }
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        let set = match class.kind {
            CharacterClassContentsKind::Union => parts.fold(first, |all, part| all.union(&part)),
            CharacterClassContentsKind::Intersection => parts.fold(first, |all, part| all.intersect(&part)),
            CharacterClassContentsKind::Subtraction => {
                parts.fold(first, |all, part| all.intersect(&part.complement(self.max)))
            }
        };
        let set = if flags.ignore_case { set.case_closed() } else { set };
        Ok(if class.negative { set.complement(self.max) } else { set })
    }
}

/// What `.` does not read without `s`, and what `^`/`$` stand beside
/// with `m`.
pub const LINE_TERMINATORS: [u32; 4] = [0x0A, 0x0D, 0x2028, 0x2029];

fn line_terminators() -> CharSet {
    CharSet::from_sorted(LINE_TERMINATORS)
}

/// A character of `\w` (as `\b` reads it): the set `word_chars` holds.
pub fn is_word(c: u32) -> bool {
    char::from_u32(c).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn word_chars() -> CharSet {
    CharSet::from_ranges([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
}

fn white_space() -> CharSet {
    CharSet::from_ranges([
        (0x09, 0x0D),
        (0x20, 0x20),
        (0xA0, 0xA0),
        (0x1680, 0x1680),
        (0x2000, 0x200A),
        (0x2028, 0x2029),
        (0x202F, 0x202F),
        (0x205F, 0x205F),
        (0x3000, 0x3000),
        (0xFEFF, 0xFEFF),
    ])
}

fn class_escape(kind: CharacterClassEscapeKind, max: u32) -> CharSet {
    match kind {
        CharacterClassEscapeKind::D => CharSet::range(0x30, 0x39),
        CharacterClassEscapeKind::NegativeD => CharSet::range(0x30, 0x39).complement(max),
        CharacterClassEscapeKind::S => white_space(),
        CharacterClassEscapeKind::NegativeS => white_space().complement(max),
        CharacterClassEscapeKind::W => word_chars(),
        CharacterClassEscapeKind::NegativeW => word_chars().complement(max),
    }
}

/// A Unicode property's characters, from regex-syntax's Unicode tables
/// (general categories, scripts and script extensions, binary properties,
/// by the names and aliases ECMAScript accepts), once per property for the
/// whole run. `None` for what they do not have (properties of strings).
fn unicode_property(name: &str, value: Option<&str>) -> Option<CharSet> {
    let written = match value {
        Some(value) => format!("\\p{{{name}={value}}}"),
        None => format!("\\p{{{name}}}"),
    };
    static BUILT: OnceLock<Mutex<HashMap<String, Option<CharSet>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry(written)
        .or_insert_with_key(|written| {
            let hir = regex_syntax::ParserBuilder::new().build().parse(written).ok()?;
            match hir.kind() {
                HirKind::Class(Class::Unicode(class)) => Some(CharSet::from_ranges(
                    class
                        .ranges()
                        .iter()
                        .map(|r| (u32::from(r.start()), u32::from(r.end()))),
                )),
                _ => None,
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_shape_the_nodes() {
        let regex = parse("a.", "is").unwrap();
        let Node::Concat(parts) = &regex.root else {
            panic!("{:?}", regex.root)
        };
        let Node::Chars(a) = &parts[0] else { panic!() };
        assert!(a.contains('A' as u32));
        let Node::Chars(dot) = &parts[1] else { panic!() };
        assert!(dot.contains('\n' as u32));
        assert!(matches!(parse("(?<x>a)\\k<x>", "").unwrap().root, Node::Concat(_)));
        assert!(matches!(parse("(", ""), Err(SyntaxError::Invalid(_))));
        assert!(matches!(parse("[\\q{ab}]", "v"), Err(SyntaxError::Unsupported(_))));
        let deep = format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000));
        assert!(matches!(parse(&deep, ""), Err(SyntaxError::Unsupported(_))));
        assert!(parse(&format!("{}a{}", "(".repeat(100), ")".repeat(100)), "").is_ok());
    }

    #[test]
    fn unicode_properties_come_from_the_unicode_tables() {
        let Node::Chars(greek) = parse("\\p{Script=Greek}", "u").unwrap().root else {
            panic!()
        };
        assert!(greek.contains('λ' as u32) && !greek.contains('a' as u32));
        let Node::Chars(upper) = parse("\\p{Lu}", "u").unwrap().root else {
            panic!()
        };
        assert!(upper.contains('Ä' as u32) && !upper.contains('ä' as u32));
        let Node::Chars(not_letter) = parse("\\P{L}", "u").unwrap().root else {
            panic!()
        };
        assert!(not_letter.contains('1' as u32) && !not_letter.contains('z' as u32));
        assert!(matches!(parse("\\p{RGI_Emoji}", "v"), Err(SyntaxError::Unsupported(_))));
    }

    #[test]
    fn classes_combine() {
        let Node::Chars(set) = parse("[^a-c\\d]", "").unwrap().root else {
            panic!()
        };
        assert!(!set.contains('b' as u32) && !set.contains('5' as u32) && set.contains('z' as u32));
        let Node::Chars(set) = parse("[\\w--[a-z]]", "v").unwrap().root else {
            panic!()
        };
        assert!(!set.contains('q' as u32) && set.contains('Q' as u32));
    }
}
