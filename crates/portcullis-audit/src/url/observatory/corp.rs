//! The Cross-Origin-Resource-Policy test.

use super::{page_header, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    // Sent but blank reads as not sent here.
    let value = page_header(retrieval, "cross-origin-resource-policy", 256).filter(|v| !v.is_empty());
    let result = match value.as_deref() {
        None => CorpNotImplemented,
        Some("same-site") => CorpImplementedWithSameSite,
        Some("same-origin") => CorpImplementedWithSameOrigin,
        Some("cross-origin") => CorpImplementedWithCrossOrigin,
        Some(_) => CorpHeaderInvalid,
    };
    (result, result != CorpHeaderInvalid)
}
