//! Fixes for the shapes whose fix is plain: a quantifier around a group
//! that holds only a quantifier (`(x+)+` is `(x+)`), and whitespace
//! trimmed with a regular expression. A rewritten pattern is offered only
//! when the analysis finds it safe.

use oxc_allocator::Allocator;
use oxc_regular_expression::ast::{Disjunction, Term};
use oxc_regular_expression::{LiteralParser, Options};

use super::{check, Attack, Complexity, Verdict};

pub fn suggest(source: &str, flags: &str, attack: &Attack) -> Option<String> {
    if let Some(rewritten) = flatten_nested(source, flags) {
        match check(&rewritten, flags) {
            Verdict::Safe => {
                return Some(format!(
                    "/{rewritten}/{flags} matches the same text without the ambiguity"
                ))
            }
            Verdict::Vulnerable(left) if attack.complexity == Complexity::Exponential => {
                return Some(format!(
                    "/{rewritten}/{flags} matches the same text without the exponential blow-up (it is still {} on {}: bound the input too)",
                    left.complexity,
                    left.javascript()
                ));
            }
            _ => {}
        }
    }
    let trims_end = source.ends_with("\\s+$") || source.ends_with("\\s*$");
    (trims_end && !flags.contains('m'))
        .then(|| "trim with str.trimEnd() (or str.trim()) instead of a regular expression".into())
}

/// `(x+)+`, `(x*)*`, `(?:x+)*`…: the outer quantifier adds only more ways
/// to split the same text; dropped (and `+` inside made `*` when the outer
/// allowed none).
fn flatten_nested(source: &str, flags: &str) -> Option<String> {
    let allocator = Allocator::default();
    let pattern = LiteralParser::new(&allocator, source, Some(flags), Options::default())
        .parse()
        .ok()?;
    let mut edit = None;
    find_nested(&pattern.body, &mut edit);
    let (group_end, outer_end, inner_plus_at) = edit?;
    let mut rewritten = String::with_capacity(source.len());
    match inner_plus_at {
        Some(at) => {
            rewritten.push_str(&source[..at]);
            rewritten.push('*');
            rewritten.push_str(&source[at + 1..group_end]);
        }
        None => rewritten.push_str(&source[..group_end]),
    }
    rewritten.push_str(&source[outer_end..]);
    Some(rewritten)
}

/// The first nested unbounded quantifier: where its group ends, where the
/// outer quantifier ends, and the inner `+` to turn into `*` if any.
fn find_nested(disjunction: &Disjunction, edit: &mut Option<(usize, usize, Option<usize>)>) {
    for term in disjunction.body.iter().flat_map(|a| a.body.iter()) {
        if edit.is_some() {
            return;
        }
        match term {
            Term::Quantifier(outer) if outer.max.is_none() && outer.min <= 1 => {
                let group = match &outer.body {
                    Term::CapturingGroup(g) => Some((&g.body, g.span.end)),
                    Term::IgnoreGroup(g) if g.modifiers.is_none() => Some((&g.body, g.span.end)),
                    _ => None,
                };
                let inner = group.and_then(|(body, end)| match body.body.as_slice() {
                    [alternative] => match alternative.body.as_slice() {
                        [Term::Quantifier(inner)] if inner.max.is_none() && inner.min <= 1 && inner.greedy => {
                            Some((inner, end))
                        }
                        _ => None,
                    },
                    _ => None,
                });
                match inner {
                    Some((inner, end)) => {
                        let plus_to_star = (outer.min == 0 && inner.min == 1).then(|| inner.span.end as usize - 1);
                        *edit = Some((end as usize, outer.span.end as usize, plus_to_star));
                    }
                    None => find_in_term(&outer.body, edit),
                }
            }
            other => find_in_term(other, edit),
        }
    }
}

fn find_in_term(term: &Term, edit: &mut Option<(usize, usize, Option<usize>)>) {
    match term {
        Term::CapturingGroup(g) => find_nested(&g.body, edit),
        Term::IgnoreGroup(g) => find_nested(&g.body, edit),
        Term::Quantifier(q) => find_in_term(&q.body, edit),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_quantifiers_flatten() {
        assert_eq!(flatten_nested("^(a+)+$", "").as_deref(), Some("^(a+)$"));
        assert_eq!(flatten_nested("([0-9]+)+\\#", "").as_deref(), Some("([0-9]+)\\#"));
        assert_eq!(flatten_nested("^(?:\\w+)*$", "").as_deref(), Some("^(?:\\w*)$"));
        assert_eq!(flatten_nested("^(a|b)+$", ""), None);
    }
}
