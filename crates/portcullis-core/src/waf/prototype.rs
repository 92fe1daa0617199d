//! Prototype pollution: keys that reach `Object.prototype`.
//!
//! Node.js apps merge request objects into their own (`Object.assign`,
//! `lodash.merge`, qs's nested keys). A key `__proto__`, or `constructor`
//! then `prototype`, changes every object of the process. Keys are checked
//! one segment at a time, as qs (`a[b][c]`, `a.b`) and JSON nest them.

use super::Hit;

/// Whether `key` names `__proto__` or `prototype` anywhere: both hold
/// `proto`, which few keys do, so most need no closer look.
pub fn may_pollute(key: &[u8]) -> bool {
    key.windows(5).any(|w| w == b"proto")
}

/// Prototype pollution in a key path's segments.
pub fn inspect<'a>(segments: impl IntoIterator<Item = &'a str>) -> Option<Hit> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::walk::segments;

    #[test]
    fn qs_and_json_keys() {
        assert!(inspect(segments("__proto__[admin]")).is_some());
        assert!(inspect(segments("a[constructor][prototype][x]")).is_some());
        assert!(inspect(segments("user.__proto__.isAdmin")).is_some());
        assert!(inspect(segments("constructor")).is_none());
        assert!(inspect(segments("proto")).is_none());
    }
}
