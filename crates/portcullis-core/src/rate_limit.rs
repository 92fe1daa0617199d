//! Rate limiting per client (checklist C9): GCRA through the [`Store`].
//!
//! Each client IP (IPv6 grouped by a prefix, since one user commonly holds a
//! whole /56 or /64) gets `requests` per `window_secs`, with bursts of up to
//! `burst`. Responses carry the IETF `RateLimit-Policy` and `RateLimit`
//! headers (draft 8); a refused request gets a neutral 429 with the exact
//! `Retry-After` and a security event, and never reaches the app.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;

use crate::bans::Bans;
use crate::body::Body;
use crate::client_ip::{group, parse_nets};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::store::{GcraOutcome, Rate, SharedState};
use crate::text::decimal;
use crate::InvalidConfig;

/// The `[rate_limit]` section (per route).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Sustained requests per window and client.
    pub requests: u64,
    pub window_secs: u64,
    /// Requests a client may make at once.
    pub burst: u64,
    /// IPv6 clients are counted per prefix of this length.
    pub ipv6_prefix: u8,
    /// Clients (CIDRs or addresses) that are never limited.
    pub allow: Vec<String>,
    /// Send `RateLimit-Policy` and `RateLimit` on every response.
    pub headers: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            requests: 600,
            window_secs: 60,
            burst: 120,
            ipv6_prefix: 56,
            allow: Vec::new(),
            headers: true,
        }
    }
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive(&[
            ("requests", self.requests),
            ("window_secs", self.window_secs),
            ("burst", self.burst),
        ])?;
        if self.ipv6_prefix > 128 {
            return Err(InvalidConfig::new("ipv6_prefix", "an IPv6 prefix length, 0 to 128"));
        }
        self.allowed().map(|_| ())
    }

    fn allowed(&self) -> Result<Vec<IpNet>, InvalidConfig> {
        parse_nets(&self.allow, "allow")
    }

    fn rate(&self) -> Rate {
        Rate {
            quota: self.requests,
            window: Duration::from_secs(self.window_secs),
            burst: self.burst,
        }
    }
}

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// One route's rate limit, working: its rules bound to a store.
pub struct RateLimit {
    rules: RateLimitRules,
    state: SharedState,
    /// Where refusals are counted towards a ban, if bans are on.
    bans: Option<Arc<Bans>>,
}

pub type RateLimitLayer = PolicyLayer<RateLimit>;

/// A rate limit validated and compiled once (when the config loads), then
/// bound to each event loop's store with [`RateLimitRules::bind`].
#[derive(Clone)]
pub struct RateLimitRules {
    config: Arc<RateLimitConfig>,
    allow: Arc<[IpNet]>,
    answers: Arc<Answers>,
}

/// How this limit speaks to clients; shared with decisions still in flight.
struct Answers {
    /// Names this limit in keys and headers: each route's limit counts apart.
    scope: String,
    /// `rl:SCOPE:`, what every key of this limit starts with.
    key_prefix: String,
    policy_header: HeaderValue,
    headers: bool,
    pages: NeutralPages,
    events: Events,
}

impl RateLimitRules {
    pub fn new(
        config: RateLimitConfig,
        scope: &str,
        pages: NeutralPages,
        events: Events,
    ) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let allow = config.allowed()?.into();
        let policy = format!("\"{scope}\";q={};w={}", config.requests, config.window_secs);
        let policy_header =
            HeaderValue::from_str(&policy).map_err(|_| InvalidConfig::new("scope", "not header-safe"))?;
        let answers = Arc::new(Answers {
            scope: scope.to_owned(),
            key_prefix: format!("rl:{scope}:"),
            policy_header,
            headers: config.headers,
            pages,
            events,
        });
        Ok(Self {
            config: Arc::new(config),
            allow,
            answers,
        })
    }

    /// These rules deciding through `state`, counting refusals towards `bans`.
    pub fn bind(&self, state: SharedState, bans: Option<Arc<Bans>>) -> RateLimit {
        RateLimit {
            rules: self.clone(),
            state,
            bans,
        }
    }
}

impl RateLimit {
    /// Compiles and binds in one step, for a single stack.
    pub fn new(
        config: RateLimitConfig,
        scope: &str,
        state: SharedState,
        bans: Option<Arc<Bans>>,
        pages: NeutralPages,
        events: Events,
    ) -> Result<Self, InvalidConfig> {
        Ok(RateLimitRules::new(config, scope, pages, events)?.bind(state, bans))
    }

    /// The key a client is counted under. Built by hand: this runs for every
    /// request, and an IPv4 client's address is already text in its context.
    fn key(&self, context: &RequestContext) -> String {
        let answers = &self.rules.answers;
        let mut key = String::with_capacity(answers.key_prefix.len() + 40);
        key.push_str(&answers.key_prefix);
        match context.client_ip {
            IpAddr::V4(_) => key.push_str(context.client_ip_text.to_str().unwrap_or_default()),
            v6 => {
                use std::fmt::Write;
                let _ = write!(key, "{}", group(v6, self.rules.config.ipv6_prefix));
            }
        }
        key
    }
}

impl Answers {
    fn add_headers(&self, headers: &mut HeaderMap, outcome: &GcraOutcome) {
        if !self.headers {
            return;
        }
        // `"scope";r=REMAINING;t=SECONDS`, built by hand: it is on every response.
        let mut state = String::with_capacity(self.scope.len() + 32);
        state.push('"');
        state.push_str(&self.scope);
        state.push_str("\";r=");
        state.push_str(decimal(outcome.remaining, &mut [0; 20]));
        state.push_str(";t=");
        state.push_str(decimal(outcome.reset_ms.div_ceil(1000), &mut [0; 20]));
        headers.insert(RATELIMIT_POLICY, self.policy_header.clone());
        if let Ok(value) = HeaderValue::from_str(&state) {
            headers.insert(RATELIMIT, value);
        }
    }

    fn refuse(&self, outcome: &GcraOutcome, context: Option<&RequestContext>) -> Response<Body> {
        if let Some(context) = context {
            let mut event = context.event("rate_limit", "requests_per_client", "refused");
            event.detail = Some(format!(
                "limit {} retry after {} ms",
                self.scope, outcome.retry_after_ms
            ));
            self.events.emit(event);
        }
        let mut page = self.pages.render(StatusCode::TOO_MANY_REQUESTS, context);
        let retry_after = outcome.retry_after_ms.div_ceil(1000).max(1);
        page.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
        self.add_headers(page.headers_mut(), outcome);
        page
    }
}

impl Policy for RateLimit {
    type State = Option<GcraOutcome>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Option<GcraOutcome>> {
        let rules = &self.rules;
        if !rules.config.enabled {
            return Verdict::Forward(None);
        }
        let context = request.extensions().get::<RequestContext>().cloned();
        let Some(client) = context.as_ref() else {
            return Verdict::Answer(crate::context::missing(
                "rate_limit",
                &rules.answers.pages,
                &rules.answers.events,
            ));
        };
        let ip = client.client_ip;
        if rules.allow.iter().any(|net| net.contains(&ip)) {
            return Verdict::Forward(None);
        }
        let (key, now, rate) = (self.key(client), self.state.now_ms(), rules.config.rate());
        let decision = match self.state.store.gcra_at_once(&key, now, rate) {
            Some(outcome) if outcome.allowed => return Verdict::Forward(Some(outcome)),
            // Refused: counting towards a ban may need the store, so decide later.
            Some(outcome) => Box::pin(std::future::ready(Ok(outcome))),
            None => self.state.store.gcra(&key, now, rate),
        };
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        let (answers, state, bans) = (rules.answers.clone(), self.state.clone(), self.bans.clone());
        Verdict::Later(Box::pin(async move {
            match decision.await {
                Ok(outcome) if outcome.allowed => (body, Ok(Some(outcome))),
                Ok(outcome) => {
                    if let (Some(bans), Some(context)) = (&bans, &context) {
                        bans.refused(&state, context).await;
                    }
                    (body, Err(answers.refuse(&outcome, context.as_ref())))
                }
                Err(_) => {
                    let answer = state.on_error.answer(&answers.pages, context.as_ref());
                    (body, answer.map_or(Ok(None), Err))
                }
            }
        }))
    }

    fn on_response(self: &Arc<Self>, outcome: Option<GcraOutcome>, mut response: Response<Body>) -> Responded {
        if let Some(outcome) = outcome {
            self.rules.answers.add_headers(response.headers_mut(), &outcome);
        }
        Responded::Now(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use crate::context::testing::request_from as from;
    use crate::events::testing::Recorder;
    use crate::store::{ManualClock, MemoryStore, OnError};
    use tower::{service_fn, Layer, ServiceExt};

    fn limited(
        config: RateLimitConfig,
        clock: &ManualClock,
    ) -> impl tower::Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible> + Clone {
        let state = SharedState {
            store: Arc::new(MemoryStore::new(1000)),
            clock: Arc::new(clock.clone()),
            on_error: OnError::FailOpen,
        };
        let limit = RateLimit::new(
            config,
            "default",
            state,
            None,
            NeutralPages::default(),
            Arc::new(Recorder::default()),
        )
        .unwrap();
        PolicyLayer::new(limit).layer(service_fn(|_req: Request<Body>| async {
            Ok(Response::new(full("ok")))
        }))
    }

    const SMALL: RateLimitConfig = RateLimitConfig {
        enabled: true,
        requests: 60,
        window_secs: 60,
        burst: 2,
        ipv6_prefix: 56,
        allow: Vec::new(),
        headers: true,
    };

    #[tokio::test]
    async fn a_request_without_context_is_refused_not_let_through() {
        let recorder = Arc::new(Recorder::default());
        let state = SharedState::in_memory(10);
        let limit = RateLimit::new(SMALL, "default", state, None, NeutralPages::default(), recorder.clone()).unwrap();
        let service = PolicyLayer::new(limit).layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(full("reached")))
        }));
        let answer = service.oneshot(Request::new(full(""))).await.unwrap();
        assert_eq!(answer.status(), 500);
        let events = recorder.taken();
        assert_eq!((events[0].kind, events[0].rule), ("rate_limit", "missing_context"));
    }

    #[tokio::test]
    async fn headers_then_429_with_exact_retry_after() {
        let clock = ManualClock::at(1_000_000);
        let service = limited(SMALL, &clock);
        let first = service.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!(first.headers()["ratelimit-policy"], "\"default\";q=60;w=60");
        assert_eq!(first.headers()["ratelimit"], "\"default\";r=1;t=1");
        assert_eq!(service.clone().oneshot(from("192.0.2.1")).await.unwrap().status(), 200);
        let refused = service.clone().oneshot(from("192.0.2.1")).await.unwrap();
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["retry-after"], "1");
        clock.advance(Duration::from_millis(1000));
        assert_eq!(
            service.oneshot(from("192.0.2.1")).await.unwrap().status(),
            200,
            "allowed again at the retry time"
        );
    }

    #[tokio::test]
    async fn ipv6_clients_share_their_prefix_and_allow_listed_ones_pass() {
        let clock = ManualClock::at(0);
        let service = limited(
            RateLimitConfig {
                allow: vec!["10.0.0.0/8".into()],
                ..SMALL
            },
            &clock,
        );
        for ip in ["2001:db8:0:1::1", "2001:db8:0:2::2"] {
            assert_eq!(service.clone().oneshot(from(ip)).await.unwrap().status(), 200);
        }
        assert_eq!(
            service
                .clone()
                .oneshot(from("2001:db8:0:ff::3"))
                .await
                .unwrap()
                .status(),
            429,
            "same /56"
        );
        assert_eq!(
            service.clone().oneshot(from("2001:db8:1::1")).await.unwrap().status(),
            200,
            "another /56"
        );
        for _ in 0..10 {
            assert_eq!(service.clone().oneshot(from("10.1.2.3")).await.unwrap().status(), 200);
        }
    }

    #[test]
    fn bad_values_are_config_errors() {
        let bad = |config: RateLimitConfig| config.validate().unwrap_err().key;
        assert_eq!(
            bad(RateLimitConfig {
                requests: 0,
                ..Default::default()
            }),
            "requests"
        );
        assert_eq!(
            bad(RateLimitConfig {
                ipv6_prefix: 129,
                ..Default::default()
            }),
            "ipv6_prefix"
        );
        assert_eq!(
            bad(RateLimitConfig {
                allow: vec!["nope".into()],
                ..Default::default()
            }),
            "allow[0]"
        );
    }
}
