//! Time-based one-time passwords (RFC 6238): SHA-1, six digits, 30-second
//! steps, the codes of the steps before and after accepted for clock drift,
//! as authenticator apps expect.

use totp_rs::{Algorithm, Secret, TOTP};

const STEP_SECS: u64 = 30;

/// Bytes of a new secret: 160 bits, RFC 4226's recommendation.
const SECRET_BYTES: usize = 20;

pub fn new_secret() -> Result<Vec<u8>, String> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness for the secret: {e}"))?;
    Ok(secret)
}

pub fn encode_secret(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// A base32 secret (as the users file holds it) of at least 128 bits.
pub fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    let bytes = Secret::Encoded(text.trim().to_ascii_uppercase())
        .to_bytes()
        .map_err(|_| "not a base32 secret (A-Z, 2-7), e.g. as `portcullis user totp` writes it".to_owned())?;
    if bytes.len() < 16 {
        return Err(format!("a secret of {} bits: at least 128 are needed", bytes.len() * 8));
    }
    Ok(bytes)
}

fn totp(secret: &[u8], user: &str, issuer: &str) -> Result<TOTP, String> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        secret.to_vec(),
        Some(issuer.to_owned()),
        user.to_owned(),
    )
    .map_err(|e| e.to_string())
}

/// The `otpauth://` URI authenticator apps read from the QR code.
pub fn uri(secret: &[u8], user: &str, issuer: &str) -> Result<String, String> {
    Ok(totp(secret, user, issuer)?.get_url())
}

/// The code for the step holding `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: u64) -> Result<String, String> {
    Ok(totp(secret, "user", "portcullis")?.generate(unix_secs))
}

/// The step whose code `code` is (within one step of `unix_secs`), so the
/// caller can refuse it the next time.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = unix_secs / STEP_SECS;
    let mut found = None;
    // Every candidate is compared, in constant time, whichever matches.
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = code_at(secret, candidate * STEP_SECS).ok()?;
        if portcullis_core::csrf::token::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(candidate);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret and the last six digits of its codes.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(code_at(secret, time).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = new_secret().unwrap();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now - 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 90), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn secrets_round_trip_and_short_ones_are_refused() {
        let secret = new_secret().unwrap();
        assert_eq!(decode_secret(&encode_secret(&secret)).unwrap(), secret);
        assert!(decode_secret("JBSWY3DPEHPK3PXP").unwrap_err().contains("80 bits"));
        assert!(decode_secret("not base32!").is_err());
        let uri = uri(&secret, "ada", "portcullis").unwrap();
        assert!(uri.starts_with("otpauth://totp/portcullis:ada?secret="), "{uri}");
    }
}
