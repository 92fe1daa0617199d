//! The X-Frame-Options test; a CSP `frame-ancestors` replaces the header.

use super::{bounded, csp, header, js_trim, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let value = retrieval
        .auto()
        .page()
        .and_then(|page| header(page, "x-frame-options"))
        .filter(|v| !v.is_empty());
    let mut result = match value.map(|v| js_trim(bounded(&v, 1024)).to_lowercase()) {
        None => XFrameOptionsNotImplemented,
        Some(v) if v == "deny" || v == "sameorigin" => XFrameOptionsSameoriginOrDeny,
        Some(v) if v.starts_with("allow-from") => XFrameOptionsAllowFromOrigin,
        Some(_) => XFrameOptionsHeaderInvalid,
    };
    let policy = csp::test(retrieval).policy;
    if policy.is_some_and(|p| p.contains_key("frame-ancestors")) {
        result = XFrameOptionsImplementedViaCsp;
    }
    let pass = matches!(
        result,
        XFrameOptionsAllowFromOrigin | XFrameOptionsSameoriginOrDeny | XFrameOptionsImplementedViaCsp
    );
    (result, pass)
}
