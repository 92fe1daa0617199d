//! Security policy layers for tower/hyper services.
//!
//! Each module enforces one item of the production checklist and follows the
//! same shape: a config struct with secure defaults, a `Layer`, a `Service`,
//! and its tests beside it. The portcullis gateway stacks them in front of a
//! reverse proxy; a Rust app can stack them in front of its own handlers.
//!
//! Layers share one request extension, set once at the edge by
//! [`context::RequestContextLayer`]: the [`context::RequestContext`] (request
//! id, client address, scheme, preferred page format). Every layer reads it
//! instead of working it out again.

pub mod access;
pub mod bans;
pub mod body;
pub mod client_ip;
pub mod context;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod events;
pub mod filter;
pub mod fingerprint;
pub mod headers;
pub mod leak;
pub mod limits;
pub mod login;
pub mod pages;
pub mod path;
pub mod policy;
pub mod rate_limit;
pub mod request_id;
pub mod session;
pub mod store;
pub mod text;
pub mod waf;

/// A config value a layer cannot work with. `key` is the path inside the
/// layer's section (e.g. `content_security_policy.directives.script-src`), so
/// the gateway can point at the file and line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    pub key: String,
    pub message: String,
}

impl InvalidConfig {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Checks counts and durations that must be at least 1, naming the first that is not.
    pub fn require_positive(values: &[(&str, u64)]) -> Result<(), Self> {
        match values.iter().find(|(_, value)| *value == 0) {
            Some((key, _)) => Err(Self::new(*key, "must be at least 1")),
            None => Ok(()),
        }
    }
}

/// HTTP methods as a config lists them (any case); an error names `key`.
pub fn parse_methods(names: &[String], key: &str) -> Result<Vec<http::Method>, InvalidConfig> {
    names
        .iter()
        .map(|name| {
            http::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
                .map_err(|_| InvalidConfig::new(key, format!("`{name}` is not an HTTP method")))
        })
        .collect()
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for InvalidConfig {}
