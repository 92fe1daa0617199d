//! Keys that only attacks send: prototype pollution and MongoDB operators.
//!
//! Node.js apps merge request objects into their own (`Object.assign`,
//! `lodash.merge`, qs's nested keys), and pass them to MongoDB queries. A
//! key `__proto__`, or `constructor` then `prototype`, changes every object
//! of the process; a key `$ne` or `$where` where the app expects a string
//! turns `{user: req.body.user}` into "any user". Keys are checked one
//! segment at a time, as qs (`a[b][c]`, `a.b`) and JSON nest them.

use super::Hit;

/// Prototype pollution in a key path's segments.
pub fn prototype_pollution<'a>(segments: impl IntoIterator<Item = &'a str>) -> Option<Hit> {
    let mut previous = "";
    for (index, segment) in segments.into_iter().enumerate() {
        if segment == "__proto__" || (previous == "constructor" && segment == "prototype") {
            return Some(Hit {
                score: 5,
                context: "object key",
                at: index,
            });
        }
        previous = segment;
    }
    None
}

/// A MongoDB query operator among a key path's segments.
pub fn nosql_operator<'a>(segments: impl IntoIterator<Item = &'a str>) -> Option<Hit> {
    segments
        .into_iter()
        .enumerate()
        .find(|(_, segment)| OPERATORS.contains(segment))
        .map(|(index, _)| Hit {
            score: 5,
            context: "query operator key",
            at: index,
        })
}

/// The segments of a qs-style key: `user[$ne]`, `a[b][0]`, `a.b.c`.
pub fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split(['[', ']', '.']).filter(|s| !s.is_empty())
}

/// MongoDB's query, projection, update and aggregation operators that
/// change what a filter matches or run code.
const OPERATORS: &[&str] = &[
    "$ne",
    "$eq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$options",
    "$where",
    "$exists",
    "$expr",
    "$or",
    "$and",
    "$not",
    "$nor",
    "$elemMatch",
    "$all",
    "$size",
    "$type",
    "$mod",
    "$text",
    "$search",
    "$function",
    "$accumulator",
    "$jsonSchema",
    "$lookup",
    "$unionWith",
    "$set",
    "$unset",
    "$inc",
    "$push",
    "$rename",
    "$merge",
    "$out",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qs_and_json_keys() {
        assert!(prototype_pollution(segments("__proto__[admin]")).is_some());
        assert!(prototype_pollution(segments("a[constructor][prototype][x]")).is_some());
        assert!(prototype_pollution(segments("user.__proto__.isAdmin")).is_some());
        assert!(prototype_pollution(segments("constructor")).is_none());
        assert!(prototype_pollution(segments("proto")).is_none());
        assert!(nosql_operator(segments("user[$ne]")).is_some());
        assert!(nosql_operator(segments("password[$regex]")).is_some());
        assert!(nosql_operator(["filter", "$where"]).is_some());
        assert!(nosql_operator(segments("$schema")).is_none());
        assert!(nosql_operator(segments("price[gte]")).is_none());
    }
}
