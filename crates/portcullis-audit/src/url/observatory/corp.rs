//! The Cross-Origin-Resource-Policy test.

use super::{bounded, header, js_trim, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let value = retrieval
        .auto()
        .page()
        .and_then(|page| header(page, "cross-origin-resource-policy"))
        .map(|v| js_trim(bounded(&v, 256)).to_lowercase())
        .filter(|v| !v.is_empty());
    let result = match value.as_deref() {
        None => CorpNotImplemented,
        Some("same-site") => CorpImplementedWithSameSite,
        Some("same-origin") => CorpImplementedWithSameOrigin,
        Some("cross-origin") => CorpImplementedWithCrossOrigin,
        Some(_) => CorpHeaderInvalid,
    };
    (result, result != CorpHeaderInvalid)
}
