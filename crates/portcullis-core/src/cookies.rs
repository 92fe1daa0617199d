//! Cookie hardening (checklist C6).
//!
//! Every `Set-Cookie` from the app is rewritten: `HttpOnly` (unless the
//! cookie is on the script-readable list), `Secure` on HTTPS, `SameSite=Lax`
//! unless the app chose a value, `Path=/` if missing, and optionally a cap on
//! its lifetime. Attributes the app set stay unless the policy is stricter;
//! values are never touched.
//!
//! Session cookies whose default names tell an attacker the stack
//! (`connect.sid`, `JSESSIONID`, ...) are renamed on the wire to a neutral
//! name, `__Host-id-N` over HTTPS (the prefix makes browsers refuse the cookie
//! unless it is `Secure`, `Path=/` and has no `Domain`) or `id-N` over HTTP,
//! and renamed back in the request's `Cookie` header. A request cookie that
//! arrives under an original name is dropped: only the neutral, prefixed
//! cookie may reach the app, so a cookie planted without the prefix's
//! guarantees (from a sibling subdomain, say) cannot stand in for it.
//!
//! Parsing works on bytes: malformed or non-UTF-8 headers get a clear
//! decision, never a panic.

use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response};
use serde::Deserialize;

use crate::body::Body;
use crate::context::RequestContext;
use crate::events::Events;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::InvalidConfig;

/// Default session cookie names of common stacks.
pub const DEFAULT_RENAMED: &[&str] = &[
    "connect.sid",
    "session",
    "session.sig",
    "koa.sess",
    "koa.sess.sig",
    "JSESSIONID",
    "PHPSESSID",
    "ASP.NET_SessionId",
    "laravel_session",
    "_csrf",
];

/// Browsers' limit for one cookie, name + value + attributes (RFC 6265 says at least 4096).
pub const MAX_COOKIE_BYTES: usize = 4093;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    fn attribute(self) -> &'static [u8] {
        match self {
            Self::Strict => b"SameSite=Strict",
            Self::Lax => b"SameSite=Lax",
            Self::None => b"SameSite=None",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Oversize {
    Drop,
    Pass,
}

/// The `[cookies]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookiesConfig {
    /// Add `HttpOnly` to every cookie not listed in `script_readable`.
    pub http_only: bool,
    /// Cookies front-end code must read (e.g. a CSRF token cookie).
    pub script_readable: Vec<String>,
    /// Add `Secure` to cookies sent over HTTPS.
    pub secure: bool,
    /// `SameSite` for cookies where the app chose none.
    pub same_site: SameSite,
    /// Cap on a cookie's lifetime, in seconds (`Max-Age`).
    pub max_age_secs: Option<u64>,
    /// Cookie names renamed on the wire.
    pub rename: Vec<String>,
    /// The neutral name (without prefix); renamed cookies are `NAME-1`, `NAME-2`, ...
    pub neutral_name: String,
    /// One cookie's limit, name + value + attributes.
    pub max_cookie_bytes: usize,
    /// All `Set-Cookie` headers of one response together.
    pub max_total_bytes: usize,
    /// What happens to a cookie over a size limit (an event is logged either way).
    pub oversize: Oversize,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        Self {
            http_only: true,
            script_readable: Vec::new(),
            secure: true,
            same_site: SameSite::Lax,
            max_age_secs: None,
            rename: DEFAULT_RENAMED.iter().map(|s| s.to_string()).collect(),
            neutral_name: "id".into(),
            max_cookie_bytes: MAX_COOKIE_BYTES,
            max_total_bytes: 16 * 1024,
            oversize: Oversize::Drop,
        }
    }
}

pub struct CookieHardening {
    config: CookiesConfig,
    events: Events,
}

/// What hardening a response's cookies left out or let pass.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Hardened {
    /// Over a size limit (dropped or passed, as `oversize` says).
    pub oversized: Vec<String>,
    /// Set by the app under a neutral name (`id-1`): it would come back
    /// renamed to another cookie, so it is dropped.
    pub clashing: Vec<String>,
}

pub type CookieHardeningLayer = PolicyLayer<CookieHardening>;

impl CookiesConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let token = |name: &str| !name.is_empty() && name.bytes().all(is_token_byte);
        if !token(&self.neutral_name) || self.neutral_name.starts_with("__") {
            return Err(InvalidConfig::new(
                "neutral_name",
                "a cookie name: letters, digits and !#$%&'*+-.^_`|~, not starting with `__` (the prefix is added)",
            ));
        }
        if let Some(bad) = self.rename.iter().chain(&self.script_readable).find(|n| !token(n)) {
            return Err(InvalidConfig::new("rename", format!("`{bad}` is not a cookie name")));
        }
        Ok(())
    }
}

impl CookieHardening {
    pub fn new(config: CookiesConfig, events: Events) -> Result<Self, InvalidConfig> {
        config.validate()?;
        Ok(Self { config, events })
    }

    /// The wire name of a renamed cookie: `__Host-id-3` over HTTPS, `id-3` over HTTP.
    fn neutral(&self, index: usize, https: bool) -> Vec<u8> {
        let prefix = if https { "__Host-" } else { "" };
        format!("{prefix}{}-{}", self.config.neutral_name, index + 1).into_bytes()
    }

    /// The original name for a neutral one (under either prefix), if it is one.
    fn original_of(&self, name: &[u8]) -> Option<&str> {
        let bare = name.strip_prefix(b"__Host-").unwrap_or(name);
        let index = bare
            .strip_prefix(self.config.neutral_name.as_bytes())?
            .strip_prefix(b"-")?;
        let index: usize = std::str::from_utf8(index).ok()?.parse().ok()?;
        self.config.rename.get(index.checked_sub(1)?).map(String::as_str)
    }

    /// Renames neutral cookies back and drops original names, in place.
    pub fn restore_request_cookies(&self, headers: &mut HeaderMap) {
        let mut values = headers.get_all(COOKIE).iter();
        let (Some(only), None) = (values.next(), values.next()) else {
            // None, or several (HTTP/2 sends one per cookie): join them below.
            if headers.contains_key(COOKIE) {
                self.rewrite_request_cookies(headers);
            }
            return;
        };
        // Most requests carry one Cookie header with nothing to rename: leave it.
        let touched = only.as_bytes().split(|b| *b == b';').any(|pair| {
            let (name, _) = split_pair(trim(pair));
            self.original_of(name).is_some() || self.config.rename.iter().any(|r| r.as_bytes() == name)
        });
        if touched {
            self.rewrite_request_cookies(headers);
        }
    }

    fn rewrite_request_cookies(&self, headers: &mut HeaderMap) {
        rewrite_request_cookies(headers, |pair| {
            if let Some(original) = self.original_of(pair.name) {
                Some([original.as_bytes(), pair.rest].concat())
            } else if self.config.rename.iter().any(|r| r.as_bytes() == pair.name) {
                None
            } else {
                Some(pair.whole.to_vec())
            }
        });
    }

    /// Rewrites every `Set-Cookie`; reports the cookies over a size limit and
    /// those dropped for taking a neutral name.
    pub fn harden_response_cookies(&self, headers: &mut HeaderMap, https: bool) -> Hardened {
        let mut report = Hardened::default();
        if !headers.contains_key(SET_COOKIE) {
            return report;
        }
        let originals: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        headers.remove(SET_COOKIE);
        let oversized = &mut report.oversized;
        let mut total = 0;
        for original in originals {
            let name = split_pair(trim(first_part(original.as_bytes()))).0;
            if self.original_of(name).is_some() {
                // It would come back to the app under another cookie's name.
                report.clashing.push(String::from_utf8_lossy(name).into_owned());
                continue;
            }
            let Some(rewritten) = self.rewrite(original.as_bytes(), https) else {
                oversized.push(String::from("(malformed)"));
                continue;
            };
            total += rewritten.len();
            let too_big = rewritten.len() > self.config.max_cookie_bytes || total > self.config.max_total_bytes;
            if too_big {
                oversized.push(String::from_utf8_lossy(split_pair(first_part(&rewritten)).0).into_owned());
                if self.config.oversize == Oversize::Drop {
                    continue;
                }
            }
            // Built from the original header's bytes plus ASCII attributes.
            if let Ok(value) = HeaderValue::from_bytes(&rewritten) {
                headers.append(SET_COOKIE, value);
            }
        }
        report
    }

    /// One `Set-Cookie` value rewritten by the policy; `None` if it has no `name=`.
    fn rewrite(&self, set_cookie: &[u8], https: bool) -> Option<Vec<u8>> {
        let mut parts = set_cookie.split(|b| *b == b';');
        let pair = trim(parts.next()?);
        let (name, rest) = split_pair(pair);
        if name.is_empty() || !rest.starts_with(b"=") {
            return None;
        }
        let renamed = self.config.rename.iter().position(|r| r.as_bytes() == name);
        let prefixed = renamed.is_some() && https;
        let mut attributes: Vec<&[u8]> = parts.map(trim).filter(|a| !a.is_empty()).collect();
        if prefixed {
            // `__Host-` cookies must have no Domain and Path=/.
            attributes.retain(|a| !is_attribute(a, b"domain") && !is_attribute(a, b"path"));
        }
        let has = |attributes: &[&[u8]], key: &[u8]| attributes.iter().any(|a| is_attribute(a, key));
        let mut added: Vec<&[u8]> = Vec::new();
        let readable = self.config.script_readable.iter().any(|r| r.as_bytes() == name);
        if self.config.http_only && !readable && !has(&attributes, b"httponly") {
            added.push(b"HttpOnly");
        }
        let same_site_none = attributes
            .iter()
            .any(|a| is_attribute(a, b"samesite") && attribute_value(a).eq_ignore_ascii_case(b"none"));
        let wants_secure = (https && self.config.secure) || prefixed || same_site_none;
        if wants_secure && !has(&attributes, b"secure") {
            added.push(b"Secure");
        }
        if !has(&attributes, b"samesite") {
            added.push(self.config.same_site.attribute());
        }
        if !has(&attributes, b"path") {
            added.push(b"Path=/");
        }
        let max_age = self.capped_max_age(&attributes);
        if max_age.is_some() {
            attributes.retain(|a| !is_attribute(a, b"max-age"));
        }

        let mut out = match renamed {
            Some(index) => self.neutral(index, https),
            None => name.to_vec(),
        };
        out.extend_from_slice(rest);
        for attribute in attributes.iter().chain(&added) {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(attribute);
        }
        if let Some(seconds) = max_age {
            out.extend_from_slice(format!("; Max-Age={seconds}").as_bytes());
        }
        Some(out)
    }

    /// The `Max-Age` to write when the cap applies: the cookie outlives it or
    /// sets `Expires` (which a later `Max-Age` overrides). Session cookies stay.
    fn capped_max_age(&self, attributes: &[&[u8]]) -> Option<u64> {
        let cap = self.config.max_age_secs?;
        let current = attributes
            .iter()
            .find(|a| is_attribute(a, b"max-age"))
            .and_then(|a| std::str::from_utf8(attribute_value(a)).ok()?.trim().parse::<i64>().ok());
        match current {
            Some(seconds) if seconds <= 0 => None,
            Some(seconds) if (seconds as u64) <= cap => None,
            Some(_) => Some(cap),
            None if attributes.iter().any(|a| is_attribute(a, b"expires")) => Some(cap),
            None => None,
        }
    }
}

impl Policy for CookieHardening {
    type State = Option<RequestContext>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Option<RequestContext>> {
        self.restore_request_cookies(request.headers_mut());
        Verdict::Forward(request.extensions().get::<RequestContext>().cloned())
    }

    fn on_response(self: &Arc<Self>, context: Option<RequestContext>, mut response: Response<Body>) -> Responded {
        let https = context.as_ref().is_some_and(|c| c.https);
        let report = self.harden_response_cookies(response.headers_mut(), https);
        let Some(context) = context else {
            return Responded::Now(response);
        };
        let size_action = match self.config.oversize {
            Oversize::Drop => "dropped",
            Oversize::Pass => "passed",
        };
        for (names, rule, action, advice) in [
            (&report.oversized, "cookie_size", size_action, ""),
            (
                &report.clashing,
                "neutral_name_clash",
                "dropped",
                " (the app set a cookie named like a renamed one: choose another [cookies] neutral_name)",
            ),
        ] {
            if !names.is_empty() {
                let mut event = context.event("cookies", rule, action);
                event.detail = Some(format!("cookies: {}{advice}", names.join(", ")));
                self.events.emit(event);
            }
        }
        Responded::Now(response)
    }
}

/// One `name=value` pair of a request's `Cookie` header.
#[derive(Debug, Clone, Copy)]
pub struct CookiePair<'h> {
    /// The name, trimmed.
    pub name: &'h [u8],
    /// `=value`, or empty when there is no `=`.
    pub rest: &'h [u8],
    /// The pair as sent, trimmed.
    pub whole: &'h [u8],
}

/// Every pair of a request's `Cookie` header(s) (HTTP/2 sends one per cookie).
pub fn request_cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = CookiePair<'_>> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .map(trim)
        .filter(|pair| !pair.is_empty())
        .map(|whole| {
            let (name, rest) = split_pair(whole);
            CookiePair { name, rest, whole }
        })
}

/// Replaces a request's `Cookie` headers with one holding what `rewrite`
/// makes of each pair (`None`: the pair is dropped); no header if none is left.
pub fn rewrite_request_cookies(headers: &mut HeaderMap, mut rewrite: impl FnMut(CookiePair<'_>) -> Option<Vec<u8>>) {
    let pairs: Vec<Vec<u8>> = request_cookie_pairs(headers).filter_map(&mut rewrite).collect();
    headers.remove(COOKIE);
    if let Ok(value) = HeaderValue::from_bytes(&pairs.join(&b"; "[..])) {
        if !value.is_empty() {
            headers.insert(COOKIE, value);
        }
    }
}

/// The value of cookie `name` in a request's `Cookie` header(s).
pub fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    request_cookie_pairs(headers)
        .find(|pair| pair.name == name.as_bytes())
        .map(|pair| pair.rest.strip_prefix(b"=").unwrap_or(pair.rest))
}

/// The value a response's `Set-Cookie` gives cookie `name`, if it sets it.
pub fn response_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| split_pair(trim(first_part(value.as_bytes()))))
        .find(|(n, _)| *n == name.as_bytes())
        .map(|(_, rest)| rest.strip_prefix(b"=").unwrap_or(rest))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// `name` and the rest (`=value`, or empty when there is no `=`).
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|b| *b == b'=') {
        Some(at) => (trim(&pair[..at]), &pair[at..]),
        None => (pair, &[]),
    }
}

fn first_part(cookie: &[u8]) -> &[u8] {
    cookie.split(|b| *b == b';').next().unwrap_or(cookie)
}

/// True when `attribute` is `key` or `key=...`, case-insensitively.
fn is_attribute(attribute: &[u8], key: &[u8]) -> bool {
    let name = attribute.split(|b| *b == b'=').next().unwrap_or(attribute);
    trim(name).eq_ignore_ascii_case(key)
}

fn attribute_value(attribute: &[u8]) -> &[u8] {
    attribute
        .iter()
        .position(|b| *b == b'=')
        .map_or(&[][..], |at| trim(&attribute[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::Recorder;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn hardening(config: CookiesConfig) -> CookieHardening {
        CookieHardening::new(config, Arc::new(Recorder::default())).unwrap()
    }

    fn set_cookies(policy: &CookieHardening, values: &[&str], https: bool) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(SET_COOKIE, HeaderValue::from_str(value).unwrap());
        }
        policy.harden_response_cookies(&mut headers, https);
        headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn express_session_cookie_is_renamed_and_hardened() {
        let policy = hardening(CookiesConfig::default());
        let https = set_cookies(&policy, &["connect.sid=s%3Aabc.def; Path=/; HttpOnly"], true);
        assert_eq!(
            https,
            ["__Host-id-1=s%3Aabc.def; HttpOnly; Secure; SameSite=Lax; Path=/"]
        );
        let http = set_cookies(&policy, &["connect.sid=s%3Aabc.def; Path=/; HttpOnly"], false);
        assert_eq!(http, ["id-1=s%3Aabc.def; Path=/; HttpOnly; SameSite=Lax"]);
    }

    #[test]
    fn app_choices_stay_unless_the_policy_is_stricter() {
        let policy = hardening(CookiesConfig {
            script_readable: vec!["XSRF-TOKEN".into()],
            ..Default::default()
        });
        let out = set_cookies(
            &policy,
            &["theme=dark; SameSite=Strict; Path=/app", "XSRF-TOKEN=t0k; Path=/"],
            false,
        );
        assert_eq!(out[0], "theme=dark; SameSite=Strict; Path=/app; HttpOnly");
        assert_eq!(
            out[1], "XSRF-TOKEN=t0k; Path=/; SameSite=Lax",
            "script-readable: no HttpOnly"
        );
        // SameSite=None only works with Secure, so it gets Secure even over HTTP.
        let none = set_cookies(&policy, &["embed=1; SameSite=None"], false);
        assert_eq!(none, ["embed=1; SameSite=None; HttpOnly; Secure; Path=/"]);
    }

    #[test]
    fn host_prefix_drops_domain_and_forces_root_path() {
        let policy = hardening(CookiesConfig::default());
        let out = set_cookies(&policy, &["JSESSIONID=x; Domain=example.com; Path=/app"], true);
        assert_eq!(out, ["__Host-id-6=x; HttpOnly; Secure; SameSite=Lax; Path=/"]);
    }

    #[test]
    fn lifetime_cap() {
        let policy = hardening(CookiesConfig {
            max_age_secs: Some(3600),
            ..Default::default()
        });
        let out = set_cookies(
            &policy,
            &[
                "a=1; Max-Age=86400",
                "b=2; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
                "c=3",
                "d=4; Max-Age=60",
            ],
            false,
        );
        assert_eq!(out[0], "a=1; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600");
        assert!(out[1].ends_with("; Max-Age=3600") && out[1].contains("Expires=Wed, 21 Oct 2099"));
        assert!(!out[2].contains("Max-Age"), "session cookies stay session cookies");
        assert!(out[3].contains("Max-Age=60") && !out[3].contains("3600"));
    }

    #[test]
    fn oversized_and_malformed_cookies() {
        let policy = hardening(CookiesConfig::default());
        let big = format!("big={}", "x".repeat(5000));
        assert_eq!(
            set_cookies(&policy, &[&big, "ok=1", "no-equals-sign", "=nameless"], false),
            ["ok=1; HttpOnly; SameSite=Lax; Path=/"]
        );
        let passing = hardening(CookiesConfig {
            oversize: Oversize::Pass,
            ..Default::default()
        });
        assert_eq!(set_cookies(&passing, &[&big], false).len(), 1);
    }

    #[test]
    fn request_cookies_are_renamed_back_and_planted_originals_dropped() {
        let policy = hardening(CookiesConfig::default());
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; __Host-id-1=s%3Aabc; connect.sid=planted"),
        );
        headers.append(COOKIE, HeaderValue::from_static("id-2=cs; id-99=unknown"));
        policy.restore_request_cookies(&mut headers);
        assert_eq!(
            headers[COOKIE],
            "theme=dark; connect.sid=s%3Aabc; session=cs; id-99=unknown"
        );
        let mut only_planted = HeaderMap::new();
        only_planted.insert(COOKIE, HeaderValue::from_static("PHPSESSID=planted"));
        policy.restore_request_cookies(&mut only_planted);
        assert!(only_planted.get(COOKIE).is_none());
    }

    #[test]
    fn cookies_are_found_by_name_in_requests_and_responses() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; sid=abc=def"));
        headers.append(SET_COOKIE, HeaderValue::from_static("sid=new; Path=/"));
        assert_eq!(request_cookie(&headers, "sid"), Some(&b"abc=def"[..]));
        assert_eq!(request_cookie(&headers, "b"), None);
        assert_eq!(response_cookie(&headers, "sid"), Some(&b"new"[..]));
    }

    #[test]
    fn untouched_cookie_headers_stay_as_sent_and_several_are_joined() {
        let policy = hardening(CookiesConfig::default());
        let mut one = HeaderMap::new();
        one.insert(COOKIE, HeaderValue::from_static("theme=dark;lang=en"));
        policy.restore_request_cookies(&mut one);
        assert_eq!(one[COOKIE], "theme=dark;lang=en");
        let mut two = HeaderMap::new();
        two.append(COOKIE, HeaderValue::from_static("theme=dark"));
        two.append(COOKIE, HeaderValue::from_static("lang=en"));
        policy.restore_request_cookies(&mut two);
        assert_eq!(two.get_all(COOKIE).iter().collect::<Vec<_>>(), ["theme=dark; lang=en"]);
    }

    #[test]
    fn bad_names_are_config_errors() {
        let bad = |config: CookiesConfig| {
            CookieHardening::new(config, Arc::new(Recorder::default()))
                .err()
                .unwrap()
                .key
        };
        assert_eq!(
            bad(CookiesConfig {
                neutral_name: "__Host-x".into(),
                ..Default::default()
            }),
            "neutral_name"
        );
        assert_eq!(
            bad(CookiesConfig {
                neutral_name: "a b".into(),
                ..Default::default()
            }),
            "neutral_name"
        );
        assert_eq!(
            bad(CookiesConfig {
                rename: vec!["x;y".into()],
                ..Default::default()
            }),
            "rename"
        );
    }

    fn cookie_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(DEFAULT_RENAMED).prop_map(String::from),
            "[A-Za-z0-9_.-]{1,12}",
            // Names the gateway itself puts on the wire.
            "(__Host-)?id-[0-9]{1,2}",
        ]
    }

    proptest! {
        /// What the app set is what the app gets back: the browser stores the
        /// rewritten cookies and returns name=value pairs; renaming them back
        /// gives exactly the app's names and values.
        #[test]
        fn rewrite_then_restore_round_trips(
            cookies in proptest::collection::btree_map(cookie_name(), "[!#-+\\--:<-\\[\\]-~]{0,40}", 1..6),
            https in any::<bool>(),
        ) {
            let policy = hardening(CookiesConfig::default());
            // The app's cookies named like the gateway's own are dropped; the
            // others come back to the app exactly as it set them.
            let (clashing, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
                cookies.into_iter().partition(|(name, _)| policy.original_of(name.as_bytes()).is_some());
            let set: Vec<String> = clashing.iter().chain(&kept).map(|(n, v)| format!("{n}={v}; Path=/")).collect();
            let mut headers = HeaderMap::new();
            for cookie in &set {
                headers.append(SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
            }
            let report = policy.harden_response_cookies(&mut headers, https);
            prop_assert_eq!(report.clashing, clashing.keys().cloned().collect::<Vec<_>>());
            let on_the_wire: Vec<&str> = headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
            prop_assert_eq!(on_the_wire.len(), kept.len());
            if kept.is_empty() {
                return Ok(());
            }
            let returned: Vec<&str> = on_the_wire.iter().map(|c| c.split(';').next().unwrap()).collect();
            for (pair, (name, _)) in returned.iter().zip(&kept) {
                prop_assert_eq!(pair.starts_with(name.as_str()), !DEFAULT_RENAMED.contains(&name.as_str()));
            }
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::from_str(&returned.join("; ")).unwrap());
            policy.restore_request_cookies(&mut headers);
            let expected: Vec<String> = kept.iter().map(|(n, v)| format!("{n}={v}")).collect();
            prop_assert_eq!(headers[COOKIE].to_str().unwrap(), expected.join("; "));
        }

        /// Arbitrary header bytes: a decision, never a panic.
        #[test]
        fn arbitrary_headers_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300), https in any::<bool>()) {
            let policy = hardening(CookiesConfig::default());
            if let Ok(value) = HeaderValue::from_bytes(&raw) {
                let mut headers = HeaderMap::new();
                headers.insert(SET_COOKIE, value.clone());
                headers.insert(COOKIE, value);
                policy.harden_response_cookies(&mut headers, https);
                policy.restore_request_cookies(&mut headers);
            }
        }
    }
}
