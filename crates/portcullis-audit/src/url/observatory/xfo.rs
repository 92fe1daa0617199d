//! The X-Frame-Options test; a CSP `frame-ancestors` replaces the header.

use super::{csp, page_header, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let mut result = match page_header(retrieval, "x-frame-options", 1024) {
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
