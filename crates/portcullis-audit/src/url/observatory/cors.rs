//! The cross-origin resource sharing test, on the preflight's answer.
//!
//! The Observatory 1.4.8 looks for the Origin it sent on the answer's
//! request object, where Node.js keeps no such field, so it never sees a
//! site reflect that Origin with credentials ("universal access", -50).
//! The port reads the same way so that grades agree; the audit reports a
//! reflected, credentialed Origin as a finding of its own
//! ([`super::findings`]).

use super::{bounded, header, js_trim, Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    let allowed = retrieval
        .cors
        .as_ref()
        .and_then(|answer| header(answer, "access-control-allow-origin"))
        .filter(|origin| !origin.is_empty());
    let result = match allowed {
        Some(origin) if js_trim(bounded(&origin, 256)).to_lowercase() == "*" => {
            Expectation::CorsImplementedWithPublicAccess
        }
        Some(_) => Expectation::CorsImplementedWithRestrictedAccess,
        None => Expectation::CorsNotImplemented,
    };
    (result, true)
}
