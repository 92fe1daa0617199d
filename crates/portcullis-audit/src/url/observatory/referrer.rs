//! The Referrer-Policy test: the header's values and `<meta name=referrer>`,
//! the last policy a browser knows deciding.

use super::{header, js_trim, Expectation, Retrieval};

const PRIVATE: [&str; 4] = [
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
];
const UNSAFE: [&str; 4] = [
    "origin",
    "origin-when-cross-origin",
    "unsafe-url",
    "no-referrer-when-downgrade",
];

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let Some(page) = retrieval.auto().page() else {
        return (ReferrerPolicyNotImplemented, false);
    };
    let sent: Vec<String> = header(page, "referrer-policy")
        .into_iter()
        .chain(retrieval.meta_referrer.clone())
        .collect();
    if sent.is_empty() {
        return (ReferrerPolicyNotImplemented, true);
    }
    let joined = sent.join(", ");
    let last_known = joined
        .rsplit(',')
        .map(|p| js_trim(p).to_lowercase())
        .find(|p| PRIVATE.contains(&p.as_str()) || UNSAFE.contains(&p.as_str()));
    let result = match last_known.as_deref() {
        Some(p) if PRIVATE.contains(&p) => ReferrerPolicyPrivate,
        Some(_) => ReferrerPolicyUnsafe,
        None => ReferrerPolicyHeaderInvalid,
    };
    (result, result == ReferrerPolicyPrivate)
}
