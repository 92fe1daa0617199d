//! NoSQL injection: MongoDB operators where the app expects a plain value,
//! and JavaScript aimed at `$where` and `mapReduce`.
//!
//! `{user: req.body.user}` with `user[$ne]=x` (qs) or `{"user": {"$ne": x}}`
//! (JSON) matches any user. Keys are checked segment by segment; values are
//! checked for operators written as object syntax (`{ $gt: '' }`, apps that
//! `JSON.parse` a field) and for a string breakout into JavaScript
//! (`' && this.password.match(/.*/)//`, `';sleep(5000);'`).

use super::{ByteSet, Hit};

/// A MongoDB query operator among a key path's segments.
pub fn key<'a>(segments: impl IntoIterator<Item = &'a str>) -> Option<Hit> {
    segments
        .into_iter()
        .enumerate()
        .find(|(_, segment)| segment.starts_with('$') && is_operator(segment.as_bytes()))
        .map(|(index, _)| Hit {
            score: 5,
            context: "query operator key",
            at: index,
        })
}

/// Operators as object syntax inside a value, or JavaScript for `$where`.
pub fn value(text: &str) -> Option<Hit> {
    value_in(text, &ByteSet::in_text(text))
}

/// [`value`], given the bytes `text` holds.
pub(super) fn value_in(text: &str, present: &ByteSet) -> Option<Hit> {
    if let Some(at) = present.has(b'$').then(|| operator_syntax(text)).flatten() {
        return Some(Hit {
            score: 5,
            context: "query operator in a value",
            at,
        });
    }
    // A `$where` breakout needs a statement or logic operator.
    const OPERATORS: ByteSet = ByteSet::of(b";&|");
    present
        .meets(&OPERATORS)
        .then(|| where_javascript(text))
        .flatten()
        .map(|at| Hit {
            score: 5,
            context: "JavaScript for $where",
            at,
        })
}

/// `$ne:`, `"$gt":`, `[$ne]`: an operator name used as a key.
fn operator_syntax(text: &str) -> Option<usize> {
    text.match_indices('$').find_map(|(at, _)| {
        let name_len = text[at + 1..].bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let name = &text[at..at + 1 + name_len];
        if !is_operator(name.as_bytes()) {
            return None;
        }
        let after = text[at + 1 + name_len..].trim_start_matches(['"', '\'', ' ']);
        after.starts_with([':', ']']).then_some(at)
    })
}

/// A quote or statement end, then JavaScript that only `$where` runs:
/// `this.` fields, `return`, a busy loop or `sleep`.
fn where_javascript(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let breakout = lower.find(['\'', '"', ';']).unwrap_or(0);
    let rest = &lower[breakout..];
    let operator = rest.trim_start_matches(['\'', '"', ' ']).starts_with([';', '&', '|']) || rest.starts_with(';');
    if !operator && !lower.trim_start().starts_with("||") {
        return None;
    }
    let code = ["this.", "sleep(", "while(", "new date", "db.", "emit("]
        .iter()
        .any(|needle| rest.contains(needle))
        || rest
            .match_indices("return")
            .any(|(i, _)| rest[i + 6..].trim_start().starts_with(['t', 'f', '1', '(', '\'', '"']))
        || rest.contains("==");
    code.then_some(breakout)
}

/// MongoDB's query, projection, update and aggregation operators that
/// change what a filter matches or run code.
fn is_operator(word: &[u8]) -> bool {
    matches!(
        word,
        b"$ne"
            | b"$eq"
            | b"$gt"
            | b"$gte"
            | b"$lt"
            | b"$lte"
            | b"$in"
            | b"$nin"
            | b"$regex"
            | b"$options"
            | b"$where"
            | b"$exists"
            | b"$expr"
            | b"$or"
            | b"$and"
            | b"$not"
            | b"$nor"
            | b"$elemMatch"
            | b"$all"
            | b"$size"
            | b"$type"
            | b"$mod"
            | b"$text"
            | b"$search"
            | b"$function"
            | b"$accumulator"
            | b"$jsonSchema"
            | b"$lookup"
            | b"$unionWith"
            | b"$set"
            | b"$unset"
            | b"$inc"
            | b"$push"
            | b"$rename"
            | b"$merge"
            | b"$out"
            | b"$comment"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::walk::segments;

    #[test]
    fn operator_keys() {
        assert!(key(segments("user[$ne]")).is_some());
        assert!(key(segments("password[$regex]")).is_some());
        assert!(key(["filter", "$where"]).is_some());
        assert!(key(segments("$schema")).is_none());
        assert!(key(segments("price[gte]")).is_none());
    }

    #[test]
    fn operators_and_where_javascript_in_values() {
        for attack in [
            "{ $ne: 1 }",
            "{\"$gt\": \"\"}",
            "[$ne]=1",
            "', $where: '1 == 1'",
            "' && this.password.match(/.*/)//",
            "';return 'a'=='a' && ''=='",
            "\";return(true);var xyz='a",
            "';sleep(5000);",
            "0;return true",
            "|| 1==1",
        ] {
            assert!(value(attack).is_some(), "{attack}");
        }
        for benign in [
            "costs $5: cheap",
            "return policy; returns within 30 days",
            "I'd say a == b",
            "$USD 20",
        ] {
            assert!(value(benign).is_none(), "{benign}");
        }
    }
}
