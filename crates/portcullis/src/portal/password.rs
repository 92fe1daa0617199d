//! Passwords: argon2id hashes with OWASP's parameters, and the rules a new
//! password must meet.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations,
/// 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    // Constant parameters within argon2's bounds: `Params::new` cannot fail.
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Checks that `phc` is an argon2id hash the verifier can use.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "`{}` hashes are not accepted: argon2id only (write one with `portcullis user add`)",
            parsed.algorithm
        ));
    }
    Params::try_from(&parsed).map_err(|e| format!("bad argon2 parameters ({e})"))?;
    if parsed.hash.is_none() {
        return Err("the hash string has no hash".into());
    }
    Ok(())
}

/// Whether `password` matches `phc` (checked by [`check_hash`] when loaded).
/// Takes the time the hash's parameters ask for, match or not.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of a random password, checked against for unknown users so that
/// they take as long as known ones.
pub static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let mut random = [0u8; 16];
    let _ = getrandom::fill(&mut random);
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hash(&password).unwrap_or_default()
});

/// Passwords of eight characters or more among the 30,000 most common in
/// zxcvbn 4.4.2's frequency list (MIT licence, Dropbox; drawn from leaked
/// password sets): see common-passwords.README.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// Why `password` may not be used by `user`, if it may not.
pub fn weakness(password: &str, user: &str, min_length: usize) -> Option<String> {
    let length = password.chars().count();
    if length < min_length {
        return Some(format!("at least {min_length} characters (this one has {length})"));
    }
    if length > 1024 {
        return Some("at most 1024 characters".into());
    }
    let lowered = password.to_lowercase();
    if COMMON.contains(lowered.as_str()) {
        return Some("this password is on the list of the most common breached passwords".into());
    }
    if lowered == user.to_lowercase() {
        return Some("the password must not be the user name".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_owasp_parameters() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        check_hash(&phc).unwrap();
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("x", &DUMMY));
    }

    #[test]
    fn other_hashes_are_refused_with_a_reason() {
        assert!(check_hash("$2b$10$abcdefghijklmnopqrstuv").is_err(), "bcrypt");
        let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(check_hash(argon2i).unwrap_err().contains("argon2id only"));
        assert!(check_hash("plain text").is_err());
    }

    #[test]
    fn short_common_and_self_named_passwords_are_refused() {
        assert!(weakness("short", "ada", 12).unwrap().contains("at least 12"));
        assert!(weakness("1qaz2wsx3edc", "ada", 12).unwrap().contains("common"));
        assert!(
            weakness("Leavemealone", "ada", 12).unwrap().contains("common"),
            "case does not help"
        );
        assert!(weakness("adalovelace1", "adalovelace1", 12)
            .unwrap()
            .contains("user name"));
        assert_eq!(weakness("violet kettle on the moor", "ada", 12), None);
    }
}
