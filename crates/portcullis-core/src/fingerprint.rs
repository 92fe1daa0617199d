//! Fingerprint removal (checklist C3): response headers that name the stack go.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, SERVER};
use http::{Request, Response};
use serde::Deserialize;

use crate::body::Body;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::InvalidConfig;

/// Headers that tell an attacker which framework and version to aim at.
pub const DEFAULT_REMOVED: &[&str] = &[
    "x-powered-by",
    "server",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-runtime",
    "x-generator",
];

/// The `[fingerprint]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FingerprintConfig {
    /// Response headers removed from every response.
    pub remove_headers: Vec<String>,
    /// A neutral `Server` value to send instead of none, e.g. `"web"`.
    pub server: Option<String>,
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        Self {
            remove_headers: DEFAULT_REMOVED.iter().map(|s| s.to_string()).collect(),
            server: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fingerprint {
    remove: Vec<HeaderName>,
    server: Option<HeaderValue>,
}

pub type FingerprintLayer = PolicyLayer<Fingerprint>;

impl Fingerprint {
    pub fn from_config(config: &FingerprintConfig) -> Result<Self, InvalidConfig> {
        let remove = config
            .remove_headers
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| InvalidConfig::new("remove_headers", format!("`{name}` is not a header name")))
            })
            .collect::<Result<_, _>>()?;
        let server = config
            .server
            .as_deref()
            .map(|value| match HeaderValue::from_str(value) {
                Ok(value)
                    if !value.is_empty()
                        && value
                            .as_bytes()
                            .iter()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_ ".contains(b)) =>
                {
                    Ok(value)
                }
                _ => Err(InvalidConfig::new(
                    "server",
                    "use a short neutral word such as \"web\" (letters, digits, `-`, `_`, spaces)",
                )),
            })
            .transpose()?;
        Ok(Self { remove, server })
    }

    pub fn apply(&self, headers: &mut http::HeaderMap) {
        crate::headers::remove_present(headers, &self.remove);
        if let Some(server) = &self.server {
            headers.insert(SERVER, server.clone());
        }
    }
}

impl Policy for Fingerprint {
    type State = ();

    fn on_request(&self, _: &mut Request<Body>) -> Verdict<()> {
        Verdict::Forward(())
    }

    fn on_response(self: &Arc<Self>, _: (), mut response: Response<Body>) -> Responded {
        self.apply(response.headers_mut());
        Responded::Now(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn removes_stack_tells_by_default() {
        let mut h = headers(&[
            ("x-powered-by", "Express"),
            ("server", "nginx/1.2"),
            ("x-runtime", "0.1"),
            ("content-type", "text/html"),
        ]);
        Fingerprint::from_config(&FingerprintConfig::default())
            .unwrap()
            .apply(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }

    #[test]
    fn replaces_server_with_a_neutral_word() {
        let config = FingerprintConfig {
            server: Some("web".into()),
            ..Default::default()
        };
        let mut h = headers(&[("server", "Apache/2.4.1 (Unix)")]);
        Fingerprint::from_config(&config).unwrap().apply(&mut h);
        assert_eq!(h["server"], "web");
    }

    #[test]
    fn bad_names_and_versioned_servers_are_config_errors() {
        let bad_name = FingerprintConfig {
            remove_headers: vec!["bad header".into()],
            server: None,
        };
        assert_eq!(Fingerprint::from_config(&bad_name).unwrap_err().key, "remove_headers");
        let versioned = FingerprintConfig {
            server: Some("nginx/1.25".into()),
            ..Default::default()
        };
        assert_eq!(Fingerprint::from_config(&versioned).unwrap_err().key, "server");
    }
}
