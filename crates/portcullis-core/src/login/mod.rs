//! Login brute-force protection (checklist C8).
//!
//! For each `[[login]]` endpoint the layer reads the username from a bounded
//! prefix of the body (forwarding the body unchanged), refuses attempts while
//! a block is in force, and after the app has answered counts failures:
//!
//! - per username and client address: `consecutive_failures` in a row block
//!   the pair for `block_secs`; a successful login clears the count;
//! - per client address: `ip_failures` within `ip_window_secs` block the
//!   address for `ip_block_secs`, whatever the usernames; success does not
//!   clear this one;
//! - optionally per username across all addresses (`username_failures`),
//!   against slow guessing from many addresses. Anyone can then lock a user
//!   out by failing on purpose, so it is off by default.
//!
//! A blocked attempt never reaches the app: it gets a neutral 429 whose
//! `Retry-After` is the block's remaining time, and the same page whether or
//! not the username exists.

mod username;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::body::{read_prefix, Body};
use crate::client_ip::{group, DEFAULT_IPV6_PREFIX};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::path::normalize;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::store::{SharedState, StrikeRule};
use crate::InvalidConfig;

const DAY_SECS: u64 = 24 * 60 * 60;

/// One `[[login]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// The login endpoint, compared with the request's normalised path.
    pub path: String,
    pub methods: Vec<String>,
    /// The body field holding the username (form, JSON or multipart).
    pub username_field: String,
    /// Statuses that mean the login failed.
    pub failure_status: Vec<u16>,
    /// A redirect whose `Location` matches this regex means the login failed.
    pub failure_location: Option<String>,
    /// How much of the body is read to find the username.
    pub max_body_bytes: usize,
    pub consecutive_failures: u64,
    pub consecutive_window_secs: u64,
    pub block_secs: u64,
    pub ip_failures: u64,
    pub ip_window_secs: u64,
    pub ip_block_secs: u64,
    /// 0: not counted.
    pub username_failures: u64,
    pub username_window_secs: u64,
    pub username_block_secs: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        // rate-limiter-flexible's login example.
        Self {
            path: String::new(),
            methods: vec!["POST".into()],
            username_field: "username".into(),
            failure_status: vec![401, 403],
            failure_location: None,
            max_body_bytes: 64 * 1024,
            consecutive_failures: 10,
            consecutive_window_secs: 90 * DAY_SECS,
            block_secs: 60 * 60,
            ip_failures: 100,
            ip_window_secs: DAY_SECS,
            ip_block_secs: DAY_SECS,
            username_failures: 0,
            username_window_secs: DAY_SECS,
            username_block_secs: 60 * 60,
        }
    }
}

impl LoginConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.compile(0).map(|_| ())
    }

    fn compile(&self, index: usize) -> Result<Endpoint, InvalidConfig> {
        if !self.path.starts_with('/') {
            return Err(InvalidConfig::new(
                "path",
                "the login path, starting with `/`, e.g. `/login`",
            ));
        }
        let methods = crate::parse_methods(&self.methods, "methods")?;
        if methods.is_empty() {
            return Err(InvalidConfig::new("methods", "at least one method, e.g. [\"POST\"]"));
        }
        if let Some(status) = self.failure_status.iter().find(|s| !(100..600).contains(*s)) {
            return Err(InvalidConfig::new(
                "failure_status",
                format!("{status} is not an HTTP status"),
            ));
        }
        let failure_location = self
            .failure_location
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| InvalidConfig::new("failure_location", format!("not a regex: {e}")))
            })
            .transpose()?;
        if self.failure_status.is_empty() && failure_location.is_none() {
            return Err(InvalidConfig::new(
                "failure_status",
                "give failure statuses or a failure_location, or failures cannot be told",
            ));
        }
        InvalidConfig::require_positive(&[
            ("max_body_bytes", self.max_body_bytes as u64),
            ("consecutive_failures", self.consecutive_failures),
            ("ip_failures", self.ip_failures),
        ])?;
        let rule = |limit, window_secs: u64, block_secs: u64, key: &str| {
            if window_secs == 0 || block_secs == 0 {
                return Err(InvalidConfig::new(key, "windows and blocks last at least 1 second"));
            }
            Ok(StrikeRule {
                limit,
                window: Duration::from_secs(window_secs),
                block: Duration::from_secs(block_secs),
            })
        };
        Ok(Endpoint {
            index,
            path: normalize(&self.path).trim_end_matches('/').to_owned(),
            methods,
            failure_location,
            pair: rule(
                self.consecutive_failures,
                self.consecutive_window_secs,
                self.block_secs,
                "block_secs",
            )?,
            ip: rule(
                self.ip_failures,
                self.ip_window_secs,
                self.ip_block_secs,
                "ip_block_secs",
            )?,
            username: match self.username_failures {
                0 => None,
                limit => Some(rule(
                    limit,
                    self.username_window_secs,
                    self.username_block_secs,
                    "username_block_secs",
                )?),
            },
            config: self.clone(),
        })
    }
}

/// A compiled `[[login]]` entry.
struct Endpoint {
    /// Names the entry's keys in the store.
    index: usize,
    /// Normalised, without a trailing slash.
    path: String,
    methods: Vec<Method>,
    failure_location: Option<Regex>,
    pair: StrikeRule,
    ip: StrikeRule,
    username: Option<StrikeRule>,
    config: LoginConfig,
}

impl Endpoint {
    fn matches(&self, request: &Request<Body>) -> bool {
        self.methods.contains(request.method()) && normalize(request.uri().path()).trim_end_matches('/') == self.path
    }

    fn failed(&self, response: &Response<Body>) -> bool {
        self.config.failure_status.contains(&response.status().as_u16())
            || response.status().is_redirection()
                && self.failure_location.as_ref().is_some_and(|pattern| {
                    response
                        .headers()
                        .get(header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .is_some_and(|location| pattern.is_match(location))
                })
    }

    /// The store keys of one attempt. Usernames are stored as a hash: the
    /// store never holds them, and odd bytes cannot shape a key.
    fn attempt(&self, ip: IpAddr, username: Option<&str>) -> Attempt {
        let client = group(ip, DEFAULT_IPV6_PREFIX);
        let user = username.map(|name| {
            let digest = Sha256::digest(name.as_bytes());
            digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
        Attempt {
            endpoint: self.index,
            ip: format!("login:{}:ip:{client}", self.index),
            pair: user.as_ref().map(|u| format!("login:{}:pair:{u}:{client}", self.index)),
            username: user
                .filter(|_| self.username.is_some())
                .map(|u| format!("login:{}:user:{u}", self.index)),
        }
    }
}

/// What one attempt is counted under.
#[derive(Debug, Clone)]
pub struct Attempt {
    endpoint: usize,
    ip: String,
    /// `None` when the username could not be told: the address alone counts.
    pair: Option<String>,
    username: Option<String>,
}

impl Attempt {
    fn keys(&self) -> Vec<String> {
        [Some(&self.ip), self.pair.as_ref(), self.username.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

pub struct LoginProtection(Arc<Endpoints>);

/// Shared with decisions still in flight.
struct Endpoints {
    endpoints: Arc<[Endpoint]>,
    state: SharedState,
    pages: NeutralPages,
    events: Events,
}

pub type LoginProtectionLayer = PolicyLayer<LoginProtection>;

/// The `[[login]]` entries validated and compiled once (when the config
/// loads), then bound to each event loop's store with [`LoginRules::bind`].
#[derive(Clone)]
pub struct LoginRules {
    endpoints: Arc<[Endpoint]>,
    events: Events,
}

impl std::fmt::Debug for LoginRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

impl LoginRules {
    /// The `[[login]]` entries, as configured.
    pub fn entries(&self) -> impl Iterator<Item = &LoginConfig> {
        self.endpoints.iter().map(|endpoint| &endpoint.config)
    }

    /// `configs` are the `[[login]]` entries, in order (errors name the entry's index).
    pub fn new(configs: &[LoginConfig], events: Events) -> Result<Self, InvalidConfig> {
        let endpoints = configs
            .iter()
            .enumerate()
            .map(|(i, config)| {
                config
                    .compile(i)
                    .map_err(|e| InvalidConfig::new(format!("[{i}].{}", e.key), e.message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            endpoints: endpoints.into(),
            events,
        })
    }

    /// These rules counting through `state`, answering with `pages`.
    pub fn bind(&self, state: SharedState, pages: NeutralPages) -> LoginProtection {
        LoginProtection(Arc::new(Endpoints {
            endpoints: self.endpoints.clone(),
            state,
            pages,
            events: self.events.clone(),
        }))
    }
}

impl LoginProtection {
    /// Compiles and binds in one step, for a single stack.
    pub fn new(
        configs: &[LoginConfig],
        state: SharedState,
        pages: NeutralPages,
        events: Events,
    ) -> Result<Self, InvalidConfig> {
        Ok(LoginRules::new(configs, events)?.bind(state, pages))
    }
}

impl Endpoints {
    fn blocked(&self, remaining_ms: u64, context: Option<&RequestContext>) -> Response<Body> {
        if let Some(context) = context {
            let mut event = context.event("login", "blocked", "refused");
            event.detail = Some(format!("{} s left", remaining_ms.div_ceil(1000)));
            self.events.emit(event);
        }
        let mut page = self.pages.render(StatusCode::TOO_MANY_REQUESTS, context);
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(remaining_ms.div_ceil(1000)));
        page
    }

    /// Counts a failed attempt against each of its keys.
    async fn count_failure(&self, attempt: &Attempt, context: Option<&RequestContext>) {
        let endpoint = &self.endpoints[attempt.endpoint];
        let now = self.state.now_ms();
        let strikes = [
            (Some(&attempt.ip), Some(endpoint.ip), "ip_failures"),
            (attempt.pair.as_ref(), Some(endpoint.pair), "consecutive_failures"),
            (attempt.username.as_ref(), endpoint.username, "username_failures"),
        ];
        for (key, rule, name) in strikes {
            let (Some(key), Some(rule)) = (key, rule) else {
                continue;
            };
            let Ok(blocked_ms) = self.state.store.strike(key, now, rule).await else {
                continue;
            };
            if blocked_ms > 0 {
                if let Some(context) = context {
                    let mut event = context.event("login", name, "blocked");
                    event.detail = Some(format!("blocked for {} s", blocked_ms.div_ceil(1000)));
                    self.events.emit(event);
                }
            }
        }
    }
}

impl Policy for LoginProtection {
    type State = Option<(Attempt, Option<RequestContext>)>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Self::State> {
        let Some(endpoint) = self.0.endpoints.iter().find(|e| e.matches(request)) else {
            return Verdict::Forward(None);
        };
        let context = request.extensions().get::<RequestContext>().cloned();
        let Some(ip) = context.as_ref().map(|c| c.client_ip) else {
            return Verdict::Answer(crate::context::missing("login", &self.0.pages, &self.0.events));
        };
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        let limit = endpoint.config.max_body_bytes;
        let field = endpoint.config.username_field.clone();
        let index = endpoint.index;
        let this = self.0.clone();
        Verdict::Later(Box::pin(async move {
            let state = &this.state;
            let prefix = match read_prefix(body, limit).await {
                Ok(prefix) => prefix,
                Err(_) => {
                    let page = this.pages.render(StatusCode::BAD_REQUEST, context.as_ref());
                    return (crate::body::empty(), Err(page));
                }
            };
            let complete = prefix.bytes.len() < limit;
            let name = username::find(
                content_type.as_ref().map(|v| v.as_bytes()),
                &prefix.bytes,
                complete,
                &field,
            );
            let attempt = this.endpoints[index].attempt(ip, name.as_deref());
            let verdict = match state.store.blocked(&attempt.keys(), state.now_ms()).await {
                Ok(0) => Ok(Some((attempt, context))),
                Ok(remaining_ms) => Err(this.blocked(remaining_ms, context.as_ref())),
                Err(_) => match state.on_error.answer(&this.pages, context.as_ref()) {
                    None => Ok(Some((attempt, context))),
                    Some(refusal) => Err(refusal),
                },
            };
            (prefix.body, verdict)
        }))
    }

    fn on_response(self: &Arc<Self>, state: Self::State, response: Response<Body>) -> Responded {
        let Some((attempt, context)) = state else {
            return Responded::Now(response);
        };
        let this = self.0.clone();
        Responded::later(async move {
            if this.endpoints[attempt.endpoint].failed(&response) {
                this.count_failure(&attempt, context.as_ref()).await;
            } else if response.status().is_success() || response.status().is_redirection() {
                if let Some(pair) = &attempt.pair {
                    let _ = this.state.store.forgive(pair, this.state.now_ms()).await;
                }
            }
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use crate::context::testing::context_from;
    use crate::events::testing::Recorder;
    use crate::store::{ManualClock, MemoryStore, OnError};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{service_fn, Layer, Service, ServiceExt};

    /// The app: 200 for the right password, 401 otherwise; counts what reaches it.
    fn protected(
        config: LoginConfig,
        clock: &ManualClock,
        reached: Arc<AtomicUsize>,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible> + Clone {
        let state = SharedState {
            store: Arc::new(MemoryStore::new(1000)),
            clock: Arc::new(clock.clone()),
            on_error: OnError::FailOpen,
        };
        let login =
            LoginProtection::new(&[config], state, NeutralPages::default(), Arc::new(Recorder::default())).unwrap();
        PolicyLayer::new(login).layer(service_fn(move |request: Request<Body>| {
            let reached = reached.clone();
            async move {
                reached.fetch_add(1, Ordering::SeqCst);
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let status = if body.ends_with(b"password=right") { 200 } else { 401 };
                let mut response = Response::new(full(body));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                Ok(response)
            }
        }))
    }

    fn attempt(ip: &str, user: &str, password: &str) -> Request<Body> {
        attempt_at("/Login/", ip, user, password)
    }

    fn attempt_at(path: &str, ip: &str, user: &str, password: &str) -> Request<Body> {
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(full(format!("username={user}&password={password}")))
            .unwrap();
        request.extensions_mut().insert(context_from(ip));
        request
    }

    fn login_config() -> LoginConfig {
        LoginConfig {
            path: "/login".into(),
            ..Default::default()
        }
    }

    async fn status(
        service: &mut (impl Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible> + Clone),
        request: Request<Body>,
    ) -> (u16, Option<String>) {
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), retry)
    }

    #[tokio::test]
    async fn ten_failures_block_the_pair_for_an_hour_other_users_still_work() {
        let clock = ManualClock::at(1_000_000);
        let reached = Arc::new(AtomicUsize::new(0));
        let mut service = protected(login_config(), &clock, reached.clone());
        for _ in 0..10 {
            assert_eq!(status(&mut service, attempt("192.0.2.1", "ada", "guess")).await.0, 401);
        }
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            status(&mut service, attempt("192.0.2.1", "ADA", "right")).await,
            (429, Some("3540".into())),
            "blocked, even with the right password, for what is left of the hour"
        );
        assert_eq!(
            reached.load(Ordering::SeqCst),
            10,
            "the blocked attempt never reached the app"
        );
        assert_eq!(status(&mut service, attempt("192.0.2.1", "bob", "guess")).await.0, 401);
        assert_eq!(status(&mut service, attempt("192.0.2.2", "ada", "right")).await.0, 200);
        clock.advance(Duration::from_secs(3540));
        assert_eq!(
            status(&mut service, attempt("192.0.2.1", "ada", "right")).await.0,
            200,
            "the hour is over"
        );
    }

    #[tokio::test]
    async fn a_success_resets_the_pair_but_not_the_address() {
        let clock = ManualClock::at(0);
        let reached = Arc::new(AtomicUsize::new(0));
        let config = LoginConfig {
            ip_failures: 15,
            ..login_config()
        };
        let mut service = protected(config, &clock, reached);
        for _ in 0..9 {
            status(&mut service, attempt("192.0.2.1", "ada", "guess")).await;
        }
        assert_eq!(status(&mut service, attempt("192.0.2.1", "ada", "right")).await.0, 200);
        for _ in 0..5 {
            assert_eq!(status(&mut service, attempt("192.0.2.1", "ada", "guess")).await.0, 401);
        }
        assert_eq!(status(&mut service, attempt("192.0.2.1", "eve", "guess")).await.0, 401);
        assert_eq!(
            status(&mut service, attempt("192.0.2.1", "eve", "guess")).await,
            (429, Some("86400".into())),
            "all 15 failures of the address counted: blocked for a day"
        );
    }

    #[tokio::test]
    async fn unreadable_usernames_count_against_the_address() {
        let clock = ManualClock::at(0);
        let config = LoginConfig {
            ip_failures: 3,
            ..login_config()
        };
        let mut service = protected(config, &clock, Arc::new(AtomicUsize::new(0)));
        for body in ["username=a&username=b", "{not json", "password=only"] {
            let mut request = Request::post("/login").body(full(body)).unwrap();
            request.extensions_mut().insert(context_from("192.0.2.9"));
            assert_eq!(status(&mut service, request).await.0, 401);
        }
        assert_eq!(status(&mut service, attempt("192.0.2.9", "ada", "right")).await.0, 429);
    }

    #[tokio::test]
    async fn other_paths_and_methods_pass_untouched() {
        let clock = ManualClock::at(0);
        let reached = Arc::new(AtomicUsize::new(0));
        let mut service = protected(
            LoginConfig {
                consecutive_failures: 1,
                ..login_config()
            },
            &clock,
            reached,
        );
        let mut get = attempt("192.0.2.1", "ada", "guess");
        *get.method_mut() = Method::GET;
        for _ in 0..3 {
            assert_eq!(
                status(&mut service, attempt_at("/loginx", "192.0.2.1", "ada", "guess"))
                    .await
                    .0,
                401
            );
        }
        assert_eq!(status(&mut service, get).await.0, 401, "GET is not a login attempt");
        assert_eq!(status(&mut service, attempt("192.0.2.1", "ada", "guess")).await.0, 401);
        assert_eq!(status(&mut service, attempt("192.0.2.1", "ada", "guess")).await.0, 429);
    }

    #[test]
    fn config_errors_name_the_entry_and_key() {
        let error = |config: LoginConfig| {
            LoginProtection::new(
                &[login_config(), config],
                SharedState::in_memory(10),
                NeutralPages::default(),
                Arc::new(Recorder::default()),
            )
            .err()
            .unwrap()
            .key
        };
        assert_eq!(error(LoginConfig::default()), "[1].path");
        assert_eq!(
            error(LoginConfig {
                failure_location: Some("(".into()),
                ..login_config()
            }),
            "[1].failure_location"
        );
        assert_eq!(
            error(LoginConfig {
                failure_status: vec![],
                ..login_config()
            }),
            "[1].failure_status"
        );
    }
}
