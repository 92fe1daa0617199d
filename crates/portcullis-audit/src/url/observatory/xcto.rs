//! The X-Content-Type-Options test.

use super::{page_header, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let result = match page_header(retrieval, "x-content-type-options", 256).as_deref() {
        None => XContentTypeOptionsNotImplemented,
        Some("nosniff") => XContentTypeOptionsNosniff,
        Some(_) => XContentTypeOptionsHeaderInvalid,
    };
    (result, result == XContentTypeOptionsNosniff)
}
