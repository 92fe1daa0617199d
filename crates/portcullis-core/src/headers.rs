//! Security response headers (checklist C2), with helmet 8's defaults.
//!
//! Every header has a mode: `set` replaces what the upstream sent, `default`
//! adds ours only when the upstream sent none, `remove` deletes it. CSP is in
//! `default` mode out of the box so apps that ship their own policy keep it;
//! all others are `set`. HSTS is only ever sent on responses that reach the
//! client over HTTPS. A managed header is never sent twice.

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::body::Body;
use crate::context::RequestContext;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::InvalidConfig;

/// The defaults, in one table: config key, header, helmet 8 value, and the
/// values a config may choose (`None`: any well-formed value).
const DEFAULTS: &[(&str, &str, &str, Option<&[&str]>)] = &[
    (
        "cross_origin_opener_policy",
        "cross-origin-opener-policy",
        "same-origin",
        Some(&[
            "same-origin",
            "same-origin-allow-popups",
            "noopener-allow-popups",
            "unsafe-none",
        ]),
    ),
    (
        "cross_origin_resource_policy",
        "cross-origin-resource-policy",
        "same-origin",
        Some(&["same-origin", "same-site", "cross-origin"]),
    ),
    (
        "origin_agent_cluster",
        "origin-agent-cluster",
        "?1",
        Some(&["?1", "?0"]),
    ),
    ("referrer_policy", "referrer-policy", "no-referrer", None),
    (
        "strict_transport_security",
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
        None,
    ),
    (
        "x_content_type_options",
        "x-content-type-options",
        "nosniff",
        Some(&["nosniff"]),
    ),
    (
        "x_dns_prefetch_control",
        "x-dns-prefetch-control",
        "off",
        Some(&["off", "on"]),
    ),
    ("x_download_options", "x-download-options", "noopen", Some(&["noopen"])),
    (
        "x_frame_options",
        "x-frame-options",
        "SAMEORIGIN",
        Some(&["SAMEORIGIN", "DENY"]),
    ),
    (
        "x_permitted_cross_domain_policies",
        "x-permitted-cross-domain-policies",
        "none",
        Some(&["none", "master-only", "by-content-type", "all"]),
    ),
    ("x_xss_protection", "x-xss-protection", "0", Some(&["0"])),
];

const REFERRER_POLICIES: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "same-origin",
    "origin",
    "strict-origin",
    "origin-when-cross-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];

/// Deprecated and dangerous headers (HPKP can brick a site; Expect-CT is gone): never sent.
const NEVER_SENT: &[&str] = &["public-key-pins", "public-key-pins-report-only", "expect-ct"];

/// helmet 8's default CSP, directive by directive, in helmet's order.
const CSP_DEFAULTS: &[(&str, &[&str])] = &[
    ("default-src", &["'self'"]),
    ("base-uri", &["'self'"]),
    ("font-src", &["'self'", "https:", "data:"]),
    ("form-action", &["'self'"]),
    ("frame-ancestors", &["'self'"]),
    ("img-src", &["'self'", "data:"]),
    ("object-src", &["'none'"]),
    ("script-src", &["'self'"]),
    ("script-src-attr", &["'none'"]),
    ("style-src", &["'self'", "https:", "'unsafe-inline'"]),
    ("upgrade-insecure-requests", &[]),
];

/// CSP keywords that only mean something when quoted.
const CSP_KEYWORDS: &[&str] = &[
    "self",
    "none",
    "unsafe-inline",
    "unsafe-eval",
    "unsafe-hashes",
    "strict-dynamic",
    "report-sample",
    "wasm-unsafe-eval",
    "inline-speculation-rules",
    "unsafe-allow-redirects",
];
const CSP_KEYWORD_PREFIXES: &[&str] = &["nonce-", "sha256-", "sha384-", "sha512-"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Set,
    Default,
    Remove,
}

/// One header as configured: a string (set it to this), `false` (remove it),
/// `true` (the default), or `{ mode = "...", value = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSetting {
    pub mode: Option<Mode>,
    pub value: Option<String>,
}

/// The `[headers]` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeadersConfig {
    #[serde(default)]
    pub content_security_policy: CspConfig,
    /// Every other header, by the config keys of [`DEFAULTS`].
    #[serde(flatten)]
    pub headers: BTreeMap<String, HeaderSetting>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CspConfig {
    pub mode: Mode,
    /// Send `Content-Security-Policy-Report-Only` instead, to try a policy out.
    pub report_only: bool,
    /// Start from helmet's directives and merge `directives` onto them.
    pub use_defaults: bool,
    pub directives: BTreeMap<String, Directive>,
}

impl Default for CspConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Default,
            report_only: false,
            use_defaults: true,
            directives: BTreeMap::new(),
        }
    }
}

/// A CSP directive as configured: sources (a list, or one space-separated
/// string), `true` for a valueless directive, `false` to drop a default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    Sources(Vec<String>),
    Flag,
    Removed,
}

/// What the layer does to one header.
#[derive(Debug, Clone)]
enum Action {
    Set(HeaderValue),
    Default(HeaderValue),
    Remove,
}

#[derive(Debug, Clone)]
struct Rule {
    name: HeaderName,
    action: Action,
}

/// The compiled policy. Build it with [`SecurityHeaders::from_config`].
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    over_http: Prepared,
    over_https: Prepared,
}

/// The policy for one scheme, ready to apply. Every response gets the same
/// `set` headers, so they are inserted and hashed once, here; a response's
/// headers start from a clone of that map, and only the upstream's few are
/// added to it.
#[derive(Debug, Clone)]
struct Prepared {
    /// The `set` headers.
    set: HeaderMap,
    /// The upstream's headers never passed on: those we set (ours win), the
    /// `remove` ones, the never-sent ones, and HSTS over plain HTTP.
    dropped: Vec<HeaderName>,
    /// `default` mode: the upstream's value if it sent one, else ours.
    defaults: Vec<(HeaderName, HeaderValue)>,
}

impl Prepared {
    fn new(rules: &[Rule]) -> Self {
        let mut prepared = Self {
            // Room for the upstream's headers too: a clone keeps the
            // index's size, so adding them rehashes nothing.
            set: HeaderMap::with_capacity(32),
            dropped: NEVER_SENT.iter().map(|name| HeaderName::from_static(name)).collect(),
            defaults: Vec::new(),
        };
        for rule in rules {
            match &rule.action {
                Action::Set(value) => {
                    prepared.set.insert(&rule.name, value.clone());
                    prepared.dropped.push(rule.name.clone());
                }
                Action::Remove => prepared.dropped.push(rule.name.clone()),
                Action::Default(value) => prepared.defaults.push((rule.name.clone(), value.clone())),
            }
        }
        prepared
    }

    fn apply(&self, headers: &mut HeaderMap) {
        let upstream = std::mem::replace(headers, self.set.clone());
        // The map yields a name with the first of its values only.
        let mut passed: Option<HeaderName> = None;
        for (name, value) in upstream {
            if let Some(name) = name {
                passed = (!self.dropped.contains(&name)).then_some(name);
            }
            if let Some(name) = &passed {
                headers.append(name, value);
            }
        }
        for (name, default) in &self.defaults {
            collapse_or_default(name, default, headers);
        }
    }
}

pub type SecurityHeadersLayer = PolicyLayer<SecurityHeaders>;

impl Default for SecurityHeaders {
    fn default() -> Self {
        // The built-in defaults are valid; the unit tests check exactly that.
        Self::from_config(&HeadersConfig::default()).expect("helmet defaults are valid")
    }
}

impl SecurityHeaders {
    pub fn from_config(config: &HeadersConfig) -> Result<Self, InvalidConfig> {
        if let Some(unknown) = config
            .headers
            .keys()
            .find(|key| !DEFAULTS.iter().any(|d| d.0 == key.as_str()))
        {
            let allowed: Vec<&str> = DEFAULTS
                .iter()
                .map(|d| d.0)
                .chain(["content_security_policy"])
                .collect();
            return Err(InvalidConfig::new(
                unknown.clone(),
                format!("unknown header, expected one of: {}", allowed.join(", ")),
            ));
        }
        let mut rules = Vec::with_capacity(DEFAULTS.len() + 1);
        let mut hsts = None;
        for &(key, header, default, allowed) in DEFAULTS {
            let rule = header_rule(key, header, default, allowed, config.headers.get(key))?;
            if key == "strict_transport_security" {
                hsts = Some(rule);
            } else {
                rules.push(rule);
            }
        }
        rules.push(csp_rule(&config.content_security_policy)?);
        let hsts = hsts.expect("DEFAULTS has strict_transport_security");
        let mut over_http = Prepared::new(&rules);
        // Over plain HTTP, HSTS means nothing: neither ours nor the upstream's is sent.
        over_http.dropped.push(hsts.name.clone());
        rules.push(hsts);
        Ok(Self {
            over_http,
            over_https: Prepared::new(&rules),
        })
    }

    /// Applies the policy to response headers; `https` says how the client reached us.
    pub fn apply(&self, headers: &mut HeaderMap, https: bool) {
        if https {
            self.over_https.apply(headers);
        } else {
            self.over_http.apply(headers);
        }
    }
}

impl Policy for SecurityHeaders {
    type State = bool;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<bool> {
        Verdict::Forward(request.extensions().get::<RequestContext>().is_some_and(|c| c.https))
    }

    fn on_response(self: &Arc<Self>, https: bool, mut response: Response<Body>) -> Responded {
        self.apply(response.headers_mut(), https);
        Responded::Now(response)
    }
}

/// Removes each of `names` that `headers` holds. Comparing against the few
/// headers a message has is much cheaper than a hash lookup per name, so only
/// the names actually present are looked up and removed; and most of
/// `names` have a length no present header has, so need no comparison.
pub fn remove_present(headers: &mut HeaderMap, names: &[HeaderName]) {
    let present = headers.keys().fold(0u64, |lengths, name| lengths | length_bit(name));
    for name in names {
        if present & length_bit(name) != 0 && headers.keys().any(|present| present == name) {
            headers.remove(name);
        }
    }
}

fn length_bit(name: &HeaderName) -> u64 {
    1 << (name.as_str().len() % 64)
}

/// Keeps the upstream's header if it sent one, but never twice: several CSPs
/// are joined into one list (browsers enforce each, so nothing is loosened);
/// for any other header the first value wins, as browsers ignore conflicting pairs.
fn collapse_or_default(name: &HeaderName, default: &HeaderValue, headers: &mut HeaderMap) {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        headers.insert(name, default.clone());
        return;
    };
    if values.next().is_none() {
        return;
    }
    let merged = if is_csp(name) {
        let joined: Vec<&[u8]> = headers.get_all(name).iter().map(HeaderValue::as_bytes).collect();
        HeaderValue::from_bytes(&joined.join(&b", "[..])).unwrap_or_else(|_| first.clone())
    } else {
        first.clone()
    };
    headers.insert(name, merged);
}

fn is_csp(name: &HeaderName) -> bool {
    name == http::header::CONTENT_SECURITY_POLICY || name == http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY
}

fn header_rule(
    key: &str,
    header: &'static str,
    default: &str,
    allowed: Option<&[&str]>,
    setting: Option<&HeaderSetting>,
) -> Result<Rule, InvalidConfig> {
    let mode = setting.and_then(|s| s.mode).unwrap_or(Mode::Set);
    let value = setting.and_then(|s| s.value.as_deref()).unwrap_or(default);
    check_header_value(key, value, allowed)?;
    let value = HeaderValue::from_str(value).map_err(|_| InvalidConfig::new(key, "not a valid header value"))?;
    Ok(Rule {
        name: HeaderName::from_static(header),
        action: action(mode, value),
    })
}

fn action(mode: Mode, value: HeaderValue) -> Action {
    match mode {
        Mode::Set => Action::Set(value),
        Mode::Default => Action::Default(value),
        Mode::Remove => Action::Remove,
    }
}

fn check_header_value(key: &str, value: &str, allowed: Option<&[&str]>) -> Result<(), InvalidConfig> {
    if let Some(allowed) = allowed.filter(|allowed| !allowed.contains(&value)) {
        return Err(InvalidConfig::new(
            key,
            format!("`{value}` is not allowed, expected one of: {}", allowed.join(", ")),
        ));
    }
    match key {
        "referrer_policy" => {
            if let Some(bad) = value
                .split(',')
                .map(str::trim)
                .find(|token| !REFERRER_POLICIES.contains(token))
            {
                return Err(InvalidConfig::new(
                    key,
                    format!(
                        "`{bad}` is not a referrer policy, expected one of: {}",
                        REFERRER_POLICIES.join(", ")
                    ),
                ));
            }
        }
        "strict_transport_security" => {
            let max_age = value
                .split(';')
                .map(str::trim)
                .find_map(|part| part.strip_prefix("max-age="));
            if !max_age.is_some_and(|age| !age.is_empty() && age.bytes().all(|b| b.is_ascii_digit())) {
                return Err(InvalidConfig::new(
                    key,
                    "needs `max-age=SECONDS`, e.g. `max-age=31536000; includeSubDomains`",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn csp_rule(config: &CspConfig) -> Result<Rule, InvalidConfig> {
    let name = if config.report_only {
        http::header::CONTENT_SECURITY_POLICY_REPORT_ONLY
    } else {
        http::header::CONTENT_SECURITY_POLICY
    };
    let policy = csp_policy(config)?;
    let value = HeaderValue::from_str(&policy).map_err(|_| {
        InvalidConfig::new(
            "content_security_policy.directives",
            "the policy is not a valid header value",
        )
    })?;
    Ok(Rule {
        name,
        action: action(config.mode, value),
    })
}

/// Merges the configured directives onto the defaults, like helmet's `useDefaults`.
fn csp_policy(config: &CspConfig) -> Result<String, InvalidConfig> {
    let mut merged: Vec<(String, Vec<String>)> = if config.use_defaults {
        CSP_DEFAULTS
            .iter()
            .map(|(name, sources)| (name.to_string(), sources.iter().map(|s| s.to_string()).collect()))
            .collect()
    } else {
        Vec::new()
    };
    for (name, directive) in &config.directives {
        let key = format!("content_security_policy.directives.{name}");
        check_directive(&key, name, directive)?;
        let position = merged.iter().position(|(existing, _)| existing == name);
        match (directive, position) {
            (Directive::Removed, Some(index)) => {
                merged.remove(index);
            }
            (Directive::Removed, None) => {}
            (Directive::Flag, index) => upsert(&mut merged, index, name, Vec::new()),
            (Directive::Sources(sources), index) => upsert(&mut merged, index, name, sources.clone()),
        }
    }
    if !merged.iter().any(|(name, _)| name == "default-src") {
        return Err(InvalidConfig::new(
            "content_security_policy.directives.default-src",
            "a policy without default-src leaves every unlisted resource type unrestricted; set it (e.g. [\"'self'\"])",
        ));
    }
    let rendered: Vec<String> = merged
        .into_iter()
        .map(|(name, sources)| {
            if sources.is_empty() {
                name
            } else {
                format!("{name} {}", sources.join(" "))
            }
        })
        .collect();
    Ok(rendered.join(";"))
}

fn upsert(merged: &mut Vec<(String, Vec<String>)>, index: Option<usize>, name: &str, sources: Vec<String>) {
    match index {
        Some(index) => merged[index].1 = sources,
        None => merged.push((name.to_owned(), sources)),
    }
}

fn check_directive(key: &str, name: &str, directive: &Directive) -> Result<(), InvalidConfig> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(InvalidConfig::new(
            key,
            "a directive name is lowercase letters and dashes, e.g. `script-src`",
        ));
    }
    let Directive::Sources(sources) = directive else {
        return Ok(());
    };
    if sources.is_empty() {
        return Err(InvalidConfig::new(
            key,
            "give at least one source, `true` for a valueless directive, or `false` to drop it",
        ));
    }
    for source in sources {
        if source.is_empty() || source.contains([';', ',']) || source.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(InvalidConfig::new(
                key,
                format!("`{source}` is not a valid source: no `;`, `,`, spaces or control characters"),
            ));
        }
        if CSP_KEYWORDS.contains(&source.as_str()) || CSP_KEYWORD_PREFIXES.iter().any(|p| source.starts_with(p)) {
            return Err(InvalidConfig::new(
                key,
                format!("`{source}` is a keyword and must be quoted: `'{source}'`"),
            ));
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for HeaderSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SettingVisitor;

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            mode: Option<Mode>,
            value: Option<String>,
        }

        impl<'de> Visitor<'de> for SettingVisitor {
            type Value = HeaderSetting;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header value, `false` to remove it, `true` for the default, or { mode = \"set\" | \"default\" | \"remove\", value = \"...\" }")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<HeaderSetting, E> {
                Ok(HeaderSetting {
                    mode: Some(Mode::Set),
                    value: Some(value.to_owned()),
                })
            }

            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<HeaderSetting, E> {
                Ok(HeaderSetting {
                    mode: if enabled { None } else { Some(Mode::Remove) },
                    value: None,
                })
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<HeaderSetting, M::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(HeaderSetting {
                    mode: full.mode,
                    value: full.value,
                })
            }
        }

        deserializer.deserialize_any(SettingVisitor)
    }
}

impl<'de> Deserialize<'de> for Directive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DirectiveVisitor;

        impl<'de> Visitor<'de> for DirectiveVisitor {
            type Value = Directive;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of sources, a space-separated string of sources, `true` (valueless directive) or `false` (drop it)")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Directive, E> {
                Ok(Directive::Sources(
                    value.split_ascii_whitespace().map(str::to_owned).collect(),
                ))
            }

            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<Directive, E> {
                Ok(if enabled { Directive::Flag } else { Directive::Removed })
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Directive, S::Error> {
                let mut sources = Vec::new();
                while let Some(source) = seq.next_element::<String>()? {
                    sources.push(source);
                }
                Ok(Directive::Sources(sources))
            }
        }

        deserializer.deserialize_any(DirectiveVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_present_removes_exactly_the_names_held() {
        let long = "x".repeat(70); // 70 % 64: a length bit shared with 6-byte names
        let mut headers = HeaderMap::new();
        for name in ["server", "etag", "x-powered-by", long.as_str(), "cookie"] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        let names: Vec<HeaderName> = ["x-powered-by", "server", "origin", "te", long.as_str(), "absent"]
            .iter()
            .map(|name| HeaderName::from_bytes(name.as_bytes()).unwrap())
            .collect();
        remove_present(&mut headers, &names);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["cookie", "etag"]);
    }

    const HELMET_CSP: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

    fn config(toml_like: serde_json::Value) -> HeadersConfig {
        serde_json::from_value(toml_like).unwrap()
    }

    fn applied(policy: &SecurityHeaders, upstream: &[(&str, &str)], https: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in upstream {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        policy.apply(&mut headers, https);
        headers
    }

    #[test]
    fn defaults_are_helmets() {
        let headers = applied(&SecurityHeaders::default(), &[], true);
        assert_eq!(headers["content-security-policy"], HELMET_CSP);
        assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
        assert_eq!(headers["cross-origin-resource-policy"], "same-origin");
        assert_eq!(headers["origin-agent-cluster"], "?1");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-dns-prefetch-control"], "off");
        assert_eq!(headers["x-download-options"], "noopen");
        assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
        assert_eq!(headers["x-permitted-cross-domain-policies"], "none");
        assert_eq!(headers["x-xss-protection"], "0");
        assert_eq!(headers.len(), 12);
    }

    #[test]
    fn hsts_never_over_plain_http_even_from_upstream() {
        let headers = applied(
            &SecurityHeaders::default(),
            &[("strict-transport-security", "max-age=5")],
            false,
        );
        assert!(headers.get("strict-transport-security").is_none());
    }

    #[test]
    fn set_replaces_upstream_and_never_duplicates() {
        let upstream = [
            ("x-frame-options", "ALLOWALL"),
            ("x-frame-options", "DENY"),
            ("x-xss-protection", "1; mode=block"),
        ];
        let headers = applied(&SecurityHeaders::default(), &upstream, false);
        assert_eq!(
            headers.get_all("x-frame-options").iter().collect::<Vec<_>>(),
            ["SAMEORIGIN"]
        );
        assert_eq!(headers["x-xss-protection"], "0");
    }

    #[test]
    fn the_upstreams_other_headers_pass_with_every_value_in_order() {
        let upstream = [
            ("content-type", "text/html"),
            ("set-cookie", "a=1"),
            ("x-frame-options", "ALLOWALL"),
            ("set-cookie", "b=2"),
            ("x-app", "kept"),
        ];
        for https in [false, true] {
            let headers = applied(&SecurityHeaders::default(), &upstream, https);
            assert_eq!(headers["content-type"], "text/html");
            assert_eq!(headers["x-app"], "kept");
            assert_eq!(headers.get_all("set-cookie").iter().collect::<Vec<_>>(), ["a=1", "b=2"]);
            assert_eq!(headers.len(), if https { 16 } else { 15 });
        }
    }

    #[test]
    fn csp_default_mode_keeps_the_apps_policy_and_joins_duplicates() {
        let headers = applied(
            &SecurityHeaders::default(),
            &[("content-security-policy", "default-src 'none'")],
            false,
        );
        assert_eq!(headers["content-security-policy"], "default-src 'none'");
        let two = [
            ("content-security-policy", "default-src 'self'"),
            ("content-security-policy", "img-src 'none'"),
        ];
        let headers = applied(&SecurityHeaders::default(), &two, false);
        assert_eq!(
            headers.get_all("content-security-policy").iter().collect::<Vec<_>>(),
            ["default-src 'self', img-src 'none'"]
        );
    }

    #[test]
    fn modes_default_and_remove() {
        let policy = SecurityHeaders::from_config(&config(serde_json::json!({
            "referrer_policy": { "mode": "default", "value": "strict-origin" },
            "x_download_options": false,
            "x_frame_options": "DENY",
        })))
        .unwrap();
        let headers = applied(
            &policy,
            &[("referrer-policy", "origin"), ("x-download-options", "noopen")],
            false,
        );
        assert_eq!(headers["referrer-policy"], "origin");
        assert!(headers.get("x-download-options").is_none());
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(applied(&policy, &[], false)["referrer-policy"], "strict-origin");
    }

    #[test]
    fn never_sends_hpkp() {
        let headers = applied(
            &SecurityHeaders::default(),
            &[("public-key-pins", "pin-sha256=\"x\"; max-age=5")],
            true,
        );
        assert!(headers.get("public-key-pins").is_none());
    }

    #[test]
    fn csp_directives_merge_remove_and_report_only() {
        let policy = SecurityHeaders::from_config(&config(serde_json::json!({
            "content_security_policy": {
                "mode": "set",
                "report_only": true,
                "directives": {
                    "script-src": ["'self'", "https://cdn.example.com"],
                    "upgrade-insecure-requests": false,
                    "connect-src": "'self' wss://example.com",
                    "block-all-mixed-content": true,
                }
            }
        })))
        .unwrap();
        let headers = applied(
            &policy,
            &[("content-security-policy-report-only", "default-src *")],
            false,
        );
        let csp = headers["content-security-policy-report-only"].to_str().unwrap();
        assert!(csp.contains(";script-src 'self' https://cdn.example.com;"));
        assert!(!csp.contains("upgrade-insecure-requests"));
        assert!(
            csp.ends_with(";block-all-mixed-content;connect-src 'self' wss://example.com"),
            "{csp}"
        );
        assert!(headers.get("content-security-policy").is_none());
    }

    #[test]
    fn bad_csp_values_are_config_errors() {
        let bad = |directives: serde_json::Value| {
            SecurityHeaders::from_config(&config(
                serde_json::json!({ "content_security_policy": { "directives": directives } }),
            ))
            .unwrap_err()
        };
        let err = bad(serde_json::json!({ "script-src": ["'self'; object-src *"] }));
        assert_eq!(err.key, "content_security_policy.directives.script-src");
        assert!(bad(serde_json::json!({ "script-src": ["self"] }))
            .message
            .contains("quoted"));
        assert!(bad(serde_json::json!({ "img-src": ["a.com,b.com"] }))
            .message
            .contains("not a valid source"));
        assert!(bad(serde_json::json!({ "scriptSrc": ["'self'"] }))
            .message
            .contains("lowercase"));
        assert!(bad(serde_json::json!({ "default-src": false }))
            .key
            .ends_with("default-src"));
    }

    #[test]
    fn bad_header_values_are_config_errors() {
        let bad = |value: serde_json::Value| SecurityHeaders::from_config(&config(value)).unwrap_err();
        assert!(bad(serde_json::json!({ "x_frame_options": "ALLOW-FROM https://x" }))
            .message
            .contains("SAMEORIGIN, DENY"));
        assert!(bad(serde_json::json!({ "referrer_policy": "everything" }))
            .message
            .contains("strict-origin"));
        assert!(
            bad(serde_json::json!({ "strict_transport_security": "includeSubDomains" }))
                .message
                .contains("max-age")
        );
        assert_eq!(bad(serde_json::json!({ "x_powered_by": "x" })).key, "x_powered_by");
    }
}
