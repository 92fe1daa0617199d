//! `X-Request-Id`: one id per request, shared by the upstream, the client and every log line.

use http::HeaderValue;

pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A fresh, unguessable id (a UUID v4 without dashes).
pub fn generate() -> HeaderValue {
    let mut text = [0; uuid::fmt::Simple::LENGTH];
    let id = uuid::Uuid::new_v4().simple().encode_lower(&mut text);
    // A hex string is always a valid header value.
    HeaderValue::from_str(id).expect("hex is a valid header value")
}

/// An id sent by a trusted proxy is kept only if it is short and plain, so
/// that it cannot smuggle markup or control bytes into logs and pages.
pub fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_acceptable() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(is_acceptable(&a) && a.len() == 32);
    }

    #[test]
    fn markup_and_oversize_ids_are_refused() {
        assert!(is_acceptable(&HeaderValue::from_static("req-42.a_b")));
        assert!(!is_acceptable(&HeaderValue::from_static("<script>")));
        assert!(!is_acceptable(&HeaderValue::from_static("")));
        assert!(!is_acceptable(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }
}
