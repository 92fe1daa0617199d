//! CSRF protection (checklist C10): the Fetch Metadata and Origin check.
//!
//! The algorithm of Go 1.25's `net/http.CrossOriginProtection`, which needs no
//! token and no app change:
//!
//! 1. `GET`, `HEAD` and `OPTIONS` pass (they must not change state).
//! 2. `Sec-Fetch-Site: same-origin` or `none` (typed URL, bookmark) passes;
//!    any other value (`cross-site`, `same-site`) is refused.
//! 3. Without `Sec-Fetch-Site` (older browsers), an `Origin` whose host differs
//!    from `Host` is refused, and so is an `Origin` that is not a URL (`null`).
//! 4. A request with neither header is not from a browser, so it cannot be a
//!    forged browser request: it passes.
//!
//! Refusals are waived for trusted origins (exact `scheme://host[:port]`) and
//! bypass paths (e.g. a payment provider's webhook). A refused request gets a
//! neutral 403 and a security event; nothing reaches the app.

pub mod token;

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::{read_prefix, Body};
use crate::context::RequestContext;
use crate::cookies::{request_cookie, response_cookie};
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::InvalidConfig;
use token::{constant_time_eq, TokenConfig, Tokens};

/// The `[csrf]` section (per route).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsrfConfig {
    pub enabled: bool,
    /// Origins allowed to send unsafe cross-origin requests, exactly `scheme://host[:port]`.
    pub trusted_origins: Vec<String>,
    /// Path prefixes that skip the check, e.g. `/webhooks/`.
    pub bypass_paths: Vec<String>,
    /// Token mode, on top of the check above.
    pub token: TokenConfig,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_origins: Vec::new(),
            bypass_paths: Vec::new(),
            token: TokenConfig::default(),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site` says the request came from another site.
    CrossSite,
    /// An older browser's `Origin` names another host, or is not a URL.
    CrossOrigin,
    /// Token mode: the token is missing, differs from the cookie's, or does
    /// not verify for this session.
    Token,
}

pub struct CrossOriginProtection {
    config: CsrfConfig,
    tokens: Option<Tokens>,
    pages: NeutralPages,
    events: Events,
}

/// What the response hook needs to keep the browser's token current.
pub struct TokenState {
    https: bool,
    session: Option<Vec<u8>>,
    token: Option<Vec<u8>>,
}

pub type CrossOriginProtectionLayer = PolicyLayer<CrossOriginProtection>;

impl CsrfConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        for (index, origin) in self.trusted_origins.iter().enumerate() {
            let valid = http::Uri::try_from(origin.as_str()).is_ok_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some()
                    && uri
                        .path_and_query()
                        .is_none_or(|pq| pq.as_str().is_empty() || pq.as_str() == "/")
                    && !origin.ends_with('/')
            });
            if !valid {
                return Err(InvalidConfig::new(
                    format!("trusted_origins[{index}]"),
                    format!(
                        "`{origin}` is not an origin, expected scheme://host[:port] such as https://shop.example.com"
                    ),
                ));
            }
        }
        if let Some(bad) = self.bypass_paths.iter().position(|p| !p.starts_with('/')) {
            return Err(InvalidConfig::new(
                format!("bypass_paths[{bad}]"),
                "a path starts with `/`",
            ));
        }
        Ok(())
    }
}

impl CrossOriginProtection {
    pub fn new(config: CsrfConfig, pages: NeutralPages, events: Events) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let tokens = config.token.enabled.then(|| Tokens::new(&config.token));
        Ok(Self {
            config,
            tokens,
            pages,
            events,
        })
    }

    /// The decision for a request; `None` lets it through.
    pub fn check<B>(&self, request: &Request<B>) -> Option<Refusal> {
        let (method, headers) = (request.method(), request.headers());
        if !self.config.enabled || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        let refusal = match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            Some(b"same-origin" | b"none") => return None,
            Some(_) => Refusal::CrossSite,
            None => {
                let origin = headers.get(header::ORIGIN)?;
                // HTTP/2 requests name the host in `:authority`, not `Host`.
                let host = headers
                    .get(header::HOST)
                    .map(|h| h.as_bytes())
                    .or_else(|| request.uri().authority().map(|a| a.as_str().as_bytes()));
                if host.is_some() && origin_host(origin.as_bytes()) == host {
                    return None;
                }
                Refusal::CrossOrigin
            }
        };
        (!self.exempt(request.uri().path(), headers)).then_some(refusal)
    }

    /// Token mode's check of an unsafe request that passed the origin check.
    fn check_token<B>(&self, request: &Request<B>, tokens: &Tokens) -> TokenCheck {
        let headers = request.headers();
        if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            || self.exempt(request.uri().path(), headers)
        {
            return TokenCheck::Pass;
        }
        let token = &self.config.token;
        let cookie = request_cookie(headers, &token.cookie).unwrap_or_default();
        let session = request_cookie(headers, &token.session_cookie).unwrap_or_default();
        match headers.get(token.header.as_str()) {
            Some(sent) if constant_time_eq(sent.as_bytes(), cookie) && tokens.verify(cookie, session) => {
                TokenCheck::Pass
            }
            None if is_urlencoded_form(headers) => TokenCheck::InForm {
                cookie: cookie.to_vec(),
                session: session.to_vec(),
            },
            _ => TokenCheck::Refuse,
        }
    }

    /// A refusal of `request`, answered (event and page) only if it is used.
    fn refusal(&self, request: &Request<Body>, refusal: Refusal) -> PendingRefusal {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
        PendingRefusal {
            refusal,
            detail: format!(
                "{} {} from origin {}",
                request.method(),
                request.uri().path(),
                origin.as_deref().unwrap_or("(none)")
            ),
            context: request.extensions().get::<RequestContext>().cloned(),
            pages: self.pages.clone(),
            events: self.events.clone(),
        }
    }

    /// Looks for the token in a urlencoded form's first [`FORM_PREFIX_BYTES`].
    fn inspect_form(
        &self,
        request: &mut Request<Body>,
        tokens: &Tokens,
        cookie: Vec<u8>,
        session: Vec<u8>,
        state: TokenState,
    ) -> Verdict<Option<TokenState>> {
        let tokens = tokens.clone();
        let field = self.config.token.field.clone();
        let refusal = self.refusal(request, Refusal::Token);
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        Verdict::Later(Box::pin(async move {
            let (body, sent) = match read_prefix(body, FORM_PREFIX_BYTES).await {
                Ok(prefix) => {
                    let sent = form_urlencoded::parse(&prefix.bytes)
                        .find(|(name, _)| *name == field)
                        .map(|(_, v)| v.into_owned());
                    (prefix.body, sent)
                }
                Err(_) => (crate::body::empty(), None),
            };
            let valid =
                sent.is_some_and(|sent| constant_time_eq(sent.as_bytes(), &cookie)) && tokens.verify(&cookie, &session);
            (body, if valid { Ok(Some(state)) } else { Err(refusal.answer()) })
        }))
    }

    fn exempt(&self, path: &str, headers: &HeaderMap) -> bool {
        let origin = headers.get(header::ORIGIN).map(|o| o.as_bytes());
        self.config.bypass_paths.iter().any(|p| path.starts_with(p.as_str()))
            || origin.is_some_and(|o| self.config.trusted_origins.iter().any(|t| t.as_bytes() == o))
    }
}

/// The `host[:port]` of an `Origin` value, as Go's `url.Parse(origin).Host`
/// would give for a `scheme://host[:port]` origin; `None` for `null` and
/// anything without a scheme.
fn origin_host(origin: &[u8]) -> Option<&[u8]> {
    let at = origin.windows(3).position(|w| w == b"://")?;
    let scheme = &origin[..at];
    if scheme.is_empty() || !scheme.iter().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
        return None;
    }
    let rest = &origin[at + 3..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|host| !host.is_empty())
}

/// How much of a form body is searched for the token field.
pub const FORM_PREFIX_BYTES: usize = 64 * 1024;

enum TokenCheck {
    Pass,
    Refuse,
    /// No token header, but a form body that may carry the field.
    InForm {
        cookie: Vec<u8>,
        session: Vec<u8>,
    },
}

fn is_urlencoded_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|t| {
        t.as_bytes().len() >= 33 && t.as_bytes()[..33].eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    })
}

/// Everything needed to refuse a request, possibly after an inspection.
struct PendingRefusal {
    refusal: Refusal,
    detail: String,
    context: Option<RequestContext>,
    pages: NeutralPages,
    events: Events,
}

impl PendingRefusal {
    fn answer(self) -> Response<Body> {
        if let Some(context) = &self.context {
            let rule = match self.refusal {
                Refusal::CrossSite => "sec_fetch_site",
                Refusal::CrossOrigin => "origin",
                Refusal::Token => "token",
            };
            let mut event = context.event("csrf", rule, "refused");
            event.detail = Some(self.detail);
            self.events.emit(event);
        }
        self.pages.render(StatusCode::FORBIDDEN, self.context.as_ref())
    }
}

impl Policy for CrossOriginProtection {
    type State = Option<TokenState>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Option<TokenState>> {
        if let Some(refusal) = self.check(request) {
            return Verdict::Answer(self.refusal(request, refusal).answer());
        }
        let Some(tokens) = &self.tokens else {
            return Verdict::Forward(None);
        };
        let token = &self.config.token;
        let state = TokenState {
            https: request.extensions().get::<RequestContext>().is_some_and(|c| c.https),
            session: request_cookie(request.headers(), &token.session_cookie).map(<[u8]>::to_vec),
            token: request_cookie(request.headers(), &token.cookie).map(<[u8]>::to_vec),
        };
        match self.check_token(request, tokens) {
            TokenCheck::Pass => Verdict::Forward(Some(state)),
            TokenCheck::Refuse => Verdict::Answer(self.refusal(request, Refusal::Token).answer()),
            TokenCheck::InForm { cookie, session } => self.inspect_form(request, tokens, cookie, session, state),
        }
    }

    fn on_response(self: &Arc<Self>, state: Option<TokenState>, mut response: Response<Body>) -> Responded {
        let (Some(state), Some(tokens)) = (state, self.tokens.as_ref()) else {
            return Responded::Now(response);
        };
        let token = &self.config.token;
        // The session this response leaves the browser with: a new one if the app just set it.
        let session = response_cookie(response.headers(), &token.session_cookie)
            .map(<[u8]>::to_vec)
            .or(state.session)
            .unwrap_or_default();
        if state.token.is_some_and(|current| tokens.verify(&current, &session)) {
            return Responded::Now(response);
        }
        let secure = if state.https { "; Secure" } else { "" };
        let cookie = format!(
            "{}={}; Path=/; SameSite=Lax{secure}",
            token.cookie,
            tokens.issue(&session)
        );
        // A cookie name checked at load and a hex token: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        Responded::Now(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testing::Recorder;
    use proptest::prelude::*;

    fn protection(config: CsrfConfig) -> CrossOriginProtection {
        CrossOriginProtection::new(config, NeutralPages::default(), Arc::new(Recorder::default())).unwrap()
    }

    fn decide(
        policy: &CrossOriginProtection,
        method: Method,
        path: &str,
        headers: &[(&'static str, &'static str)],
    ) -> Option<Refusal> {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        policy.check(&request.body(()).unwrap())
    }

    #[test]
    fn the_go_algorithm() {
        let p = protection(CsrfConfig::default());
        let host = ("host", "shop.example:8080");
        assert_eq!(
            decide(&p, Method::GET, "/", &[("sec-fetch-site", "cross-site")]),
            None,
            "safe methods pass"
        );
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("sec-fetch-site", "same-origin")]),
            None
        );
        assert_eq!(decide(&p, Method::POST, "/", &[host, ("sec-fetch-site", "none")]), None);
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("sec-fetch-site", "cross-site")]),
            Some(Refusal::CrossSite)
        );
        assert_eq!(
            decide(&p, Method::DELETE, "/", &[host, ("sec-fetch-site", "same-site")]),
            Some(Refusal::CrossSite)
        );
        // Older browsers: only Origin.
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("origin", "http://shop.example:8080")]),
            None
        );
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("origin", "http://shop.example:9090")]),
            Some(Refusal::CrossOrigin)
        );
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("origin", "null")]),
            Some(Refusal::CrossOrigin)
        );
        assert_eq!(
            decide(&p, Method::POST, "/", &[host, ("origin", "shop.example:8080")]),
            Some(Refusal::CrossOrigin)
        );
        // Neither header: not a browser.
        assert_eq!(decide(&p, Method::PUT, "/", &[host]), None);
        // HTTP/2: no Host header, the authority is in the URI.
        assert_eq!(
            decide(
                &p,
                Method::POST,
                "https://shop.example:8080/",
                &[("origin", "https://shop.example:8080")]
            ),
            None
        );
    }

    #[test]
    fn token_mode_needs_the_cookies_token_in_the_header() {
        let key = "a signing key of at least thirty-two bytes".to_string();
        let token = TokenConfig {
            enabled: true,
            keys: vec![key],
            ..Default::default()
        };
        let p = protection(CsrfConfig {
            token: token.clone(),
            ..Default::default()
        });
        let good = Tokens::new(&token).issue(b"sess");
        let request = |cookie: String, header: Option<&str>| {
            let mut builder = Request::post("/").header("host", "h").header("cookie", cookie);
            if let Some(header) = header {
                builder = builder.header("x-csrf-token", header);
            }
            builder.body(()).unwrap()
        };
        let with =
            |header: Option<&str>, session: &str| request(format!("connect.sid={session}; csrf-token={good}"), header);
        let tokens = p.tokens.as_ref().unwrap();
        let passes = |request: Request<()>| matches!(p.check_token(&request, tokens), TokenCheck::Pass);
        assert!(passes(with(Some(&good), "sess")));
        assert!(!passes(with(None, "sess")), "no header");
        assert!(!passes(with(Some("forged.00"), "sess")), "header differs");
        assert!(!passes(with(Some(&good), "other")), "another session");
        assert!(
            !passes(request(String::from("connect.sid=sess"), Some(&good))),
            "no cookie"
        );
    }

    #[test]
    fn trusted_origins_and_bypass_paths() {
        let p = protection(CsrfConfig {
            trusted_origins: vec!["https://admin.example".into()],
            bypass_paths: vec!["/webhooks/".into()],
            ..Default::default()
        });
        let cross = ("sec-fetch-site", "cross-site");
        assert_eq!(
            decide(&p, Method::POST, "/", &[cross, ("origin", "https://admin.example")]),
            None
        );
        assert_eq!(
            decide(&p, Method::POST, "/", &[cross, ("origin", "https://admin.example:444")]),
            Some(Refusal::CrossSite)
        );
        assert_eq!(decide(&p, Method::POST, "/webhooks/stripe", &[cross]), None);
    }

    #[test]
    fn bad_origins_are_config_errors() {
        for bad in [
            "admin.example",
            "https://admin.example/",
            "https://admin.example/path",
            "ftp://x",
        ] {
            let config = CsrfConfig {
                trusted_origins: vec![bad.into()],
                ..Default::default()
            };
            let error = CrossOriginProtection::new(config, NeutralPages::default(), Arc::new(Recorder::default()))
                .err()
                .unwrap();
            assert_eq!(error.key, "trusted_origins[0]", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn odd_origins_never_panic_and_never_pass_cross_host(origin in proptest::collection::vec(any::<u8>(), 0..80)) {
            let p = protection(CsrfConfig::default());
            if let Ok(value) = http::HeaderValue::from_bytes(&origin) {
                let request = Request::post("/").header(header::HOST, "shop.example").header(header::ORIGIN, value).body(()).unwrap();
                let passed = p.check(&request).is_none();
                prop_assert_eq!(passed, origin_host(&origin) == Some(&b"shop.example"[..]));
            }
        }
    }
}
