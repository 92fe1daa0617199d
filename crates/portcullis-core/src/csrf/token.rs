//! Token mode: a signed double-submit token for browsers too old to send
//! `Sec-Fetch-Site` or `Origin`.
//!
//! The gateway gives the browser a token in a cookie that scripts may read.
//! Front-end code sends it back in a header with every unsafe request; a
//! cross-site page cannot read the cookie, so it cannot forge the header.
//! A token is `NONCE.MAC`: a random nonce and an HMAC-SHA256 over the nonce
//! and the session cookie's value, so a token planted from elsewhere or
//! taken from another session does not verify. The first key signs, every
//! key verifies, so keys rotate without logging anyone out.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::InvalidConfig;

/// The `[csrf.token]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    pub enabled: bool,
    /// Signing secrets, at least 32 bytes each: the first signs, all verify.
    pub keys: Vec<String>,
    /// The readable cookie that carries the token to front-end code.
    pub cookie: String,
    /// The request header the token comes back in.
    pub header: String,
    /// The form field it may come back in instead (urlencoded forms).
    pub field: String,
    /// The app's session cookie (its own name) that tokens are bound to.
    pub session_cookie: String,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            keys: Vec::new(),
            cookie: "csrf-token".into(),
            header: "x-csrf-token".into(),
            field: "_csrf".into(),
            session_cookie: "connect.sid".into(),
        }
    }
}

const MIN_KEY_BYTES: usize = 32;

impl TokenConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if !self.enabled {
            return Ok(());
        }
        if self.keys.is_empty() {
            return Err(InvalidConfig::new(
                "token.keys",
                "token mode needs at least one key (32 bytes or more)",
            ));
        }
        if let Some(index) = self.keys.iter().position(|k| k.len() < MIN_KEY_BYTES) {
            return Err(InvalidConfig::new(
                format!("token.keys[{index}]"),
                format!("a key needs at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        if http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            return Err(InvalidConfig::new(
                "token.header",
                format!("`{}` is not a header name", self.header),
            ));
        }
        Ok(())
    }
}

/// Issues and verifies tokens.
#[derive(Clone)]
pub struct Tokens {
    keys: Vec<Hmac<Sha256>>,
}

impl Tokens {
    pub fn new(config: &TokenConfig) -> Self {
        // HMAC accepts keys of any length.
        let keys = config
            .keys
            .iter()
            .map(|k| Hmac::new_from_slice(k.as_bytes()).expect("any key length"))
            .collect();
        Self { keys }
    }

    /// A fresh token bound to `session` (the session cookie's value, or empty).
    pub fn issue(&self, session: &[u8]) -> String {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut mac = self.keys[0].clone();
        mac.update(nonce.as_bytes());
        mac.update(b".");
        mac.update(session);
        format!("{nonce}.{}", hex(&mac.finalize().into_bytes()))
    }

    /// True when `token` was issued by one of the keys for `session`.
    pub fn verify(&self, token: &[u8], session: &[u8]) -> bool {
        let Some(dot) = token.iter().position(|b| *b == b'.') else {
            return false;
        };
        let (nonce, signature) = (&token[..dot], &token[dot + 1..]);
        let Some(signature) = unhex(signature) else {
            return false;
        };
        self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(nonce);
            mac.update(b".");
            mac.update(session);
            // Constant-time comparison.
            mac.verify_slice(&signature).is_ok()
        })
    }
}

/// Equality whose duration does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens(keys: &[&str]) -> Tokens {
        Tokens::new(&TokenConfig {
            enabled: true,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        })
    }

    const K1: &str = "first key, at least thirty-two bytes long";
    const K2: &str = "second key, at least thirty-two bytes long";

    #[test]
    fn tokens_are_bound_to_their_session_and_keys_rotate() {
        let old = tokens(&[K1]);
        let token = old.issue(b"s%3Asession-a");
        assert!(old.verify(token.as_bytes(), b"s%3Asession-a"));
        assert!(
            !old.verify(token.as_bytes(), b"s%3Asession-b"),
            "another session's token"
        );
        assert!(!tokens(&[K2]).verify(token.as_bytes(), b"s%3Asession-a"), "another key");
        let rotated = tokens(&[K2, K1]);
        assert!(
            rotated.verify(token.as_bytes(), b"s%3Asession-a"),
            "old tokens still verify after rotation"
        );
        assert!(
            !old.verify(rotated.issue(b"x").as_bytes(), b"x"),
            "new tokens are signed with the new key"
        );
    }

    #[test]
    fn config_needs_long_keys() {
        let config = |keys: Vec<String>| TokenConfig {
            enabled: true,
            keys,
            ..Default::default()
        };
        assert_eq!(config(vec![]).validate().unwrap_err().key, "token.keys");
        assert_eq!(
            config(vec!["short".into()]).validate().unwrap_err().key,
            "token.keys[0]"
        );
        assert!(config(vec![K1.into()]).validate().is_ok());
    }

    proptest! {
        #[test]
        fn forged_tokens_never_verify(forged in proptest::collection::vec(any::<u8>(), 0..120)) {
            prop_assert!(!tokens(&[K1]).verify(&forged, b""));
        }

        #[test]
        fn constant_time_eq_is_eq(a in proptest::collection::vec(any::<u8>(), 0..8), b in proptest::collection::vec(any::<u8>(), 0..8)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
        }
    }
}
