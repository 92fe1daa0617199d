//! The X-Content-Type-Options test.

use super::{bounded, header, js_trim, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let value = retrieval
        .auto()
        .page()
        .and_then(|page| header(page, "x-content-type-options"))
        .filter(|v| !v.is_empty());
    let result = match value {
        None => XContentTypeOptionsNotImplemented,
        Some(v) if js_trim(bounded(&v, 256)).eq_ignore_ascii_case("nosniff") => XContentTypeOptionsNosniff,
        Some(_) => XContentTypeOptionsHeaderInvalid,
    };
    (result, result == XContentTypeOptionsNosniff)
}
