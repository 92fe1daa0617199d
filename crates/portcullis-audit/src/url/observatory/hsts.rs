//! The Strict-Transport-Security test, on the HTTPS visit's final answer.

use super::{bounded, header, Expectation, Retrieval};

/// Six months is 15768000 seconds; the Observatory accepts 180 days, as
/// many sites send that.
const SIX_MONTHS: f64 = 15_552_000.0;

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let https = &retrieval.https;
    let result = match https.page() {
        None => HstsNotImplementedNoHttps,
        Some(_) if !https.verified => HstsInvalidCert,
        Some(page) => match header(page, "strict-transport-security") {
            None => HstsNotImplemented,
            Some(value) => read(bounded(&value, 1024)),
        },
    };
    (result, result == HstsImplementedMaxAgeAtLeastSixMonths)
}

/// The header's verdict. A comma means it was sent twice.
fn read(value: &str) -> Expectation {
    use Expectation::*;
    if value.contains(',') {
        return HstsHeaderInvalid;
    }
    let mut max_age = None;
    for parameter in value.split(';').map(|p| super::js_trim(p).to_lowercase()) {
        if let Some(seconds) = parameter.strip_prefix("max-age=") {
            max_age = Some(parse_int(bounded(seconds, 120)));
        }
    }
    match max_age {
        None => HstsHeaderInvalid,
        // JavaScript's NaN is never less than six months.
        Some(Some(seconds)) if seconds < SIX_MONTHS => HstsImplementedMaxAgeLessThanSixMonths,
        Some(_) => HstsImplementedMaxAgeAtLeastSixMonths,
    }
}

/// JavaScript's `parseInt(text, 10)`: leading space, a sign, then as many
/// digits as there are; `None` for NaN.
fn parse_int(text: &str) -> Option<f64> {
    let text = super::js_trim(text);
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse::<f64>().ok().map(|n| sign * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Expectation::*;

    #[test]
    fn max_age_is_read_as_parse_int_reads_it() {
        assert_eq!(
            read("max-age=31536000; includeSubDomains"),
            HstsImplementedMaxAgeAtLeastSixMonths
        );
        assert_eq!(read("max-age=86400"), HstsImplementedMaxAgeLessThanSixMonths);
        assert_eq!(read("max-age=15552000abc"), HstsImplementedMaxAgeAtLeastSixMonths);
        assert_eq!(read("max-age=-1"), HstsImplementedMaxAgeLessThanSixMonths);
        // NaN passes.
        assert_eq!(read("max-age=soon"), HstsImplementedMaxAgeAtLeastSixMonths);
        assert_eq!(read("includeSubDomains"), HstsHeaderInvalid);
        assert_eq!(read("max-age=31536000, max-age=31536000"), HstsHeaderInvalid);
    }

    proptest::proptest! {
        #[test]
        fn any_header_is_read_without_panicking(value in "[ -~\u{a0}é]{0,200}") {
            let _ = read(&value);
        }
    }
}
