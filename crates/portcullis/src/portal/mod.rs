//! The login portal (checklist C7, C12), served by the gateway under a
//! reserved prefix (`/.portcullis/` by default): login with a password
//! (argon2id), the second factor (TOTP), its enrolment, and logout.
//!
//! Every form carries a CSRF token that must equal the one in the portal's
//! own `__Host-` cookie (and the gateway's cross-origin checks run before).
//! Login failures answer 401 with one generic message, and take as long for
//! an unknown user as for a known one (a dummy hash is checked); the
//! gateway's login protection counts them like any `[[login]]` endpoint's.
//! A wrong code counts against the user: five within 15 minutes lock the
//! second step for 15 minutes. A code is accepted once.

mod pages;
pub mod password;
pub mod totp;
pub mod users;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::Either;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use portcullis_core::body::{read_bounded, Body, Bounded};
use portcullis_core::context::RequestContext;
use portcullis_core::cookies::request_cookie;
use portcullis_core::csrf::token::constant_time_eq;
use portcullis_core::events::Events;
use portcullis_core::pages::NeutralPages;
use portcullis_core::path::normalize;
use portcullis_core::session::{random_hex, SessionId, Sessions};
use portcullis_core::store::{SharedState, StoreError, StrikeRule};
use serde::Deserialize;
use tower::Service;

use pages::Frame;
use users::{User, UsersFile};

use crate::dashboard::Sources;

/// Whether users must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// Users without one enrol a TOTP authenticator at their next login.
    #[default]
    Required,
    /// Asked of users who have one.
    Optional,
}

/// The `[portal]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSection {
    /// Where the portal's pages are served; requests there never reach the app.
    pub prefix: String,
    /// The users file, relative to the config file's directory.
    pub users: PathBuf,
    pub second_factor: SecondFactor,
    /// The identity headers set for the app (and always removed from requests).
    pub user_header: String,
    pub groups_header: String,
    /// The name authenticator apps show beside the user's.
    pub issuer: String,
    /// Users of these groups see the live dashboard at `{prefix}dashboard`;
    /// none: it is not served on the gateway.
    pub dashboard_groups: Vec<String>,
}

impl Default for PortalSection {
    fn default() -> Self {
        Self {
            prefix: "/.portcullis/".into(),
            users: "users.toml".into(),
            second_factor: SecondFactor::Required,
            user_header: "X-Portcullis-User".into(),
            groups_header: "X-Portcullis-Groups".into(),
            issuer: "portcullis".into(),
            dashboard_groups: Vec::new(),
        }
    }
}

/// The portal's settings, validated, with its users file open.
pub struct PortalSettings {
    pub prefix: String,
    pub second_factor: SecondFactor,
    pub issuer: String,
    pub users: UsersFile,
    pub dashboard_groups: Vec<String>,
}

impl std::fmt::Debug for PortalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSettings")
            .field("prefix", &self.prefix)
            .field("users", &self.users.path())
            .finish_non_exhaustive()
    }
}

/// The `[[login]]` entry the portal's login form gets: its failures (401)
/// count like any login's, per user name and address and per address.
pub fn login_protection(prefix: &str) -> toml::Table {
    let mut entry = toml::Table::new();
    entry.insert("path".into(), format!("{prefix}login").into());
    entry.insert("failure_status".into(), toml::Value::Array(vec![401.into()]));
    entry
}

/// Longest portal form read: a user name, a password and the tokens.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// Wrong codes against one user before the second step locks.
const CODE_FAILURES: StrikeRule = StrikeRule {
    limit: 5,
    window: Duration::from_secs(15 * 60),
    block: Duration::from_secs(15 * 60),
};

/// How long a pending enrolment's secret is kept.
const ENROLMENT_TTL: Duration = Duration::from_secs(10 * 60);

/// The portal for one event loop.
#[derive(Clone)]
pub struct Portal(Arc<Inner>);

struct Inner {
    settings: Arc<PortalSettings>,
    sessions: Sessions,
    state: SharedState,
    pages: NeutralPages,
    events: Events,
    /// What the dashboard shows beside its events.
    dashboard: Sources,
}

impl Portal {
    pub fn new(
        settings: Arc<PortalSettings>,
        (sessions, state): (Sessions, SharedState),
        pages: NeutralPages,
        events: Events,
        dashboard: Sources,
    ) -> Self {
        Self(Arc::new(Inner {
            settings,
            sessions,
            state,
            pages,
            events,
            dashboard,
        }))
    }

    pub fn prefix(&self) -> &str {
        &self.0.settings.prefix
    }
}

impl Service<Request<Body>> for Portal {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { Ok(inner.handle(request).await) })
    }
}

/// Sends requests under the portal's prefix to the portal, others to `upstream`.
#[derive(Clone)]
pub struct PortalOr<S> {
    portal: Option<Portal>,
    upstream: S,
}

impl<S> PortalOr<S> {
    pub fn new(portal: Option<Portal>, upstream: S) -> Self {
        Self { portal, upstream }
    }
}

impl<S> Service<Request<Body>> for PortalOr<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<<Portal as Service<Request<Body>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.upstream.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Compared as the access rules compare it: a spelling of the prefix
        // the app would serve must not slip past both.
        match &mut self.portal {
            Some(portal) if under_prefix(request.uri().path(), portal.prefix()) => Either::Left(portal.call(request)),
            _ => Either::Right(self.upstream.call(request)),
        }
    }
}

/// Whether `path`, normalised, starts with `prefix` (lowercase, normalised).
/// Most paths are told apart without normalising: one with no escape, no
/// backslash and no `//` or `/.` normalises to itself lowercased.
fn under_prefix(path: &str, prefix: &str) -> bool {
    let starts = path.len() >= prefix.len() && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
    let plain = !path.contains(['%', '\\']) && !path.contains("//") && !path.contains("/.");
    match plain {
        true => starts,
        false => normalize(path).starts_with(prefix),
    }
}

/// What one request brings to the portal.
struct Visit {
    context: RequestContext,
    https: bool,
    csrf: String,
    /// The CSRF cookie must be set with the answer (the browser has none yet).
    new_csrf: bool,
    session: Option<SessionId>,
    query: HashMap<String, String>,
}

/// A local path to return to: not another site (`//x`, `/\x`), not the portal.
fn safe_next(next: Option<&String>, prefix: &str) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && (!next.starts_with(prefix) || next[prefix.len()..] == *"dashboard")
                && !next.bytes().any(|b| b < 0x20 || b == 0x7f) =>
        {
            next.clone()
        }
        _ => "/".to_owned(),
    }
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Inner {
    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let Some(context) = request.extensions().get::<RequestContext>().cloned() else {
            return portcullis_core::context::missing("portal", &self.pages, &self.events);
        };
        let https = context.https;
        let csrf_cookie = self.sessions.csrf_cookie_name(https);
        let presented_csrf = request_cookie(request.headers(), csrf_cookie)
            .filter(|v| v.len() == 32 && v.iter().all(u8::is_ascii_hexdigit))
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let (csrf, new_csrf) = match presented_csrf {
            Some(token) => (token, false),
            None => (random_hex::<16>().unwrap_or_default(), true),
        };
        let query = request
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let visit = Visit {
            session: self.sessions.presented(request.headers(), https),
            context,
            https,
            csrf,
            new_csrf,
            query,
        };
        let path = normalize(request.uri().path());
        let page = path
            .strip_prefix(self.settings.prefix.as_str())
            .unwrap_or("")
            .to_owned();
        let method = request.method().clone();
        let mut response = match (method, page.as_str()) {
            (Method::GET | Method::HEAD, "login") => self.login_page(&visit, None, StatusCode::OK),
            (Method::GET | Method::HEAD, "totp") => self.totp_page(&visit).await,
            (Method::GET | Method::HEAD, "enrol") => self.enrol_page(&visit, None).await,
            (Method::GET | Method::HEAD, "logout") => self.logout_page(&visit).await,
            (Method::GET | Method::HEAD, page) if page == "dashboard" || page.starts_with("dashboard/") => {
                self.dashboard(&visit, &page["dashboard".len()..]).await
            }
            (Method::POST, _) => match self.form(request, &visit).await {
                Ok(form) => self.post(&page, &visit, form).await,
                Err(refusal) => refusal,
            },
            _ => self.pages.render(StatusCode::NOT_FOUND, Some(&visit.context)),
        };
        if visit.new_csrf {
            let secure = if https { "; Secure" } else { "" };
            let cookie = format!(
                "{csrf_cookie}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
                visit.csrf
            );
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
        response
    }

    /// The form of a POST, once its size and CSRF token are checked.
    async fn form(&self, request: Request<Body>, visit: &Visit) -> Result<HashMap<String, String>, Response<Body>> {
        let body = match read_bounded(request.into_body(), MAX_FORM_BYTES).await {
            Ok(Bounded::Whole(bytes)) => bytes,
            Ok(Bounded::Longer(_)) => {
                self.event(visit, "form_too_large", "refused", None);
                return Err(self.pages.render(StatusCode::PAYLOAD_TOO_LARGE, Some(&visit.context)));
            }
            Err(_) => return Err(self.pages.render(StatusCode::BAD_REQUEST, Some(&visit.context))),
        };
        let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let token = form.get("csrf").map_or("", String::as_str);
        if visit.new_csrf || !constant_time_eq(token.as_bytes(), visit.csrf.as_bytes()) {
            self.event(visit, "csrf_token", "refused", None);
            return Err(self.pages.render(StatusCode::FORBIDDEN, Some(&visit.context)));
        }
        Ok(form)
    }

    async fn post(&self, page: &str, visit: &Visit, form: HashMap<String, String>) -> Response<Body> {
        match page {
            "login" => self.login(visit, &form).await,
            "totp" => self.second_factor(visit, &form).await,
            "enrol" => self.enrol(visit, &form).await,
            "logout" => self.logout(visit).await,
            _ => self.pages.render(StatusCode::NOT_FOUND, Some(&visit.context)),
        }
    }

    fn frame<'a>(&'a self, visit: &'a Visit, next: &'a str) -> Frame<'a> {
        Frame {
            prefix: &self.settings.prefix,
            csrf: &visit.csrf,
            next,
        }
    }

    fn next(&self, visit: &Visit, form: Option<&HashMap<String, String>>) -> String {
        let given = form.and_then(|f| f.get("rd")).or_else(|| visit.query.get("rd"));
        safe_next(given, &self.settings.prefix)
    }

    fn login_page(&self, visit: &Visit, error: Option<&str>, status: StatusCode) -> Response<Body> {
        let next = self.next(visit, None);
        pages::page(status, "Log in", &pages::login(&self.frame(visit, &next), error))
    }

    fn event(&self, visit: &Visit, rule: &'static str, action: &'static str, detail: Option<String>) {
        let mut event = visit.context.event("portal", rule, action);
        event.detail = detail;
        self.events.emit(event);
    }

    fn users(&self) -> Arc<HashMap<String, User>> {
        let (users, error) = self.settings.users.current();
        if let Some(error) = error {
            self.events.emit(portcullis_core::events::SecurityEvent {
                kind: "portal",
                rule: "users_file",
                action: "kept",
                request_id: None,
                client_ip: None,
                detail: Some(format!(
                    "the changed users file does not load, the previous users stay: {error}"
                )),
                exclusion: None,
            });
        }
        users
    }

    async fn login(&self, visit: &Visit, form: &HashMap<String, String>) -> Response<Body> {
        let next = self.next(visit, Some(form));
        let name = form.get("username").map_or("", |n| n.trim()).to_owned();
        let password = form.get("password").cloned().unwrap_or_default();
        let user = self.users().get(&name).cloned();
        // Unknown users check a dummy hash: the answer takes as long.
        let hash = user
            .as_ref()
            .map_or_else(|| password::DUMMY.clone(), |u| u.password.clone());
        let matches = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
            .await
            .unwrap_or(false);
        let Some(user) = user.filter(|_| matches) else {
            self.event(
                visit,
                "login_failed",
                "refused",
                Some(format!("user `{}`", shown(&name))),
            );
            let frame = self.frame(visit, &next);
            let form = pages::login(&frame, Some("Wrong user name or password."));
            return pages::page(StatusCode::UNAUTHORIZED, "Log in", &form);
        };
        let complete = user.totp.is_none() && self.settings.second_factor == SecondFactor::Optional;
        let id = match self
            .sessions
            .begin(&user.name, &user.groups, complete, visit.session.as_ref())
            .await
        {
            Ok(id) => id,
            Err(error) => return self.unavailable(visit, error),
        };
        let step = match (complete, user.totp.is_some()) {
            (true, _) => {
                self.event(visit, "login", "allowed", Some(format!("user `{}`", user.name)));
                next.clone()
            }
            (false, true) => format!("{}totp?rd={}", self.settings.prefix, encoded(&next)),
            (false, false) => format!("{}enrol?rd={}", self.settings.prefix, encoded(&next)),
        };
        self.redirect(&step, Some((&id, visit.https)))
    }

    fn unavailable(&self, visit: &Visit, error: portcullis_core::store::StoreError) -> Response<Body> {
        self.event(visit, "store_unavailable", "refused", Some(error.to_string()));
        self.pages.render(StatusCode::SERVICE_UNAVAILABLE, Some(&visit.context))
    }

    fn redirect(&self, location: &str, session: Option<(&SessionId, bool)>) -> Response<Body> {
        let mut response = Response::new(portcullis_core::body::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(location) {
            headers.insert(header::LOCATION, location);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some((id, https)) = session {
            headers.append(header::SET_COOKIE, self.sessions.set_cookie(id, https));
        }
        response
    }

    /// The live dashboard, for logged-in users of `dashboard_groups`; others
    /// are sent to log in, or refused (403) if logged in without the group.
    async fn dashboard(&self, visit: &Visit, page: &str) -> Response<Body> {
        let groups = &self.settings.dashboard_groups;
        let Some(board) = crate::dashboard::enabled().filter(|_| !groups.is_empty()) else {
            return self.pages.render(StatusCode::NOT_FOUND, Some(&visit.context));
        };
        let session = match &visit.session {
            None => None,
            Some(id) => match self.sessions.load(id).await {
                Ok(session) => session.filter(|s| s.complete),
                Err(error) => return self.unavailable(visit, error),
            },
        };
        match session {
            Some(session) if session.groups.iter().any(|g| groups.contains(g)) => board.answer(page, &self.dashboard),
            Some(session) => {
                let mut event = visit.context.event("access", "dashboard_group", "denied");
                event.detail = Some(format!("user {} is in none of {}", session.user, groups.join(", ")));
                self.events.emit(event);
                self.pages.render(StatusCode::FORBIDDEN, Some(&visit.context))
            }
            None => {
                let back = format!("{}dashboard", self.settings.prefix);
                let location = format!("{}login?rd={}", self.settings.prefix, encoded(&back));
                self.redirect(&location, None)
            }
        }
    }

    /// The half-logged-in user (password checked, second factor next).
    async fn pending(&self, visit: &Visit) -> Result<Option<(SessionId, User)>, Response<Body>> {
        let Some(id) = &visit.session else {
            return Ok(None);
        };
        let session = match self.sessions.load(id).await {
            Ok(Some(session)) if !session.complete => session,
            Ok(_) => return Ok(None),
            Err(error) => return Err(self.unavailable(visit, error)),
        };
        Ok(self.users().get(&session.user).cloned().map(|user| (id.clone(), user)))
    }

    async fn totp_page(&self, visit: &Visit) -> Response<Body> {
        match self.pending(visit).await {
            Err(page) => page,
            Ok(Some((_, user))) if user.totp.is_some() => {
                let next = self.next(visit, None);
                pages::page(
                    StatusCode::OK,
                    "Second factor",
                    &pages::totp(&self.frame(visit, &next), None),
                )
            }
            Ok(_) => self.login_page(visit, None, StatusCode::OK),
        }
    }

    /// Checks `code` for `user`: a wrong one counts against the user, a
    /// right one is accepted once.
    async fn check_code(&self, visit: &Visit, user: &str, secret: &[u8], code: &str) -> Result<(), &'static str> {
        let now = self.state.now_ms();
        let strikes = format!("portal-code:{user}");
        let blocked = self.state.store.blocked(std::slice::from_ref(&strikes), now).await;
        if blocked.map_or(true, |ms| ms > 0) {
            self.event(visit, "code_locked", "refused", Some(format!("user `{user}`")));
            return Err("Too many wrong codes: try again in 15 minutes.");
        }
        let Some(step) = totp::matching_step(secret, code.trim(), unix_secs()) else {
            let _ = self.state.store.strike(&strikes, now, CODE_FAILURES).await;
            self.event(visit, "code_failed", "refused", Some(format!("user `{user}`")));
            return Err("Wrong code.");
        };
        let used = format!("portal-code-used:{user}:{step}");
        let first = self
            .state
            .store
            .put_new(&used, "1".into(), now, Duration::from_secs(3 * 30))
            .await;
        if !first.unwrap_or(false) {
            self.event(visit, "code_replayed", "refused", Some(format!("user `{user}`")));
            return Err("This code was used already: wait for the next one.");
        }
        Ok(())
    }

    async fn second_factor(&self, visit: &Visit, form: &HashMap<String, String>) -> Response<Body> {
        let next = self.next(visit, Some(form));
        let (id, user) = match self.pending(visit).await {
            Err(page) => return page,
            Ok(Some((id, user))) if user.totp.is_some() => (id, user),
            Ok(_) => return self.login_page(visit, Some("Log in first."), StatusCode::UNAUTHORIZED),
        };
        let secret = user.totp.clone().unwrap_or_default();
        let code = form.get("code").map_or("", String::as_str);
        if let Err(message) = self.check_code(visit, &user.name, &secret, code).await {
            let form = pages::totp(&self.frame(visit, &next), Some(message));
            return pages::page(StatusCode::UNAUTHORIZED, "Second factor", &form);
        }
        self.complete(visit, &id, &user, &next).await
    }

    /// Both factors checked: a new id for the full session.
    async fn complete(&self, visit: &Visit, id: &SessionId, user: &User, next: &str) -> Response<Body> {
        match self.sessions.begin(&user.name, &user.groups, true, Some(id)).await {
            Ok(id) => {
                self.event(visit, "login", "allowed", Some(format!("user `{}`", user.name)));
                self.redirect(next, Some((&id, visit.https)))
            }
            Err(error) => self.unavailable(visit, error),
        }
    }

    fn enrolment_key(id: &SessionId) -> String {
        id.store_key("portal-enrol")
    }

    /// The secret a pending enrolment showed, if it is still kept.
    async fn enrolment_secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.state.store.get(key, self.state.now_ms()).await?;
        Ok(stored.and_then(|secret| totp::decode_secret(&secret).ok()))
    }

    async fn enrol_page(&self, visit: &Visit, error: Option<&str>) -> Response<Body> {
        let (id, user) = match self.pending(visit).await {
            Err(page) => return page,
            Ok(Some((id, user))) if user.totp.is_none() => (id, user),
            Ok(_) => return self.login_page(visit, None, StatusCode::OK),
        };
        let key = Self::enrolment_key(&id);
        let secret = match self.enrolment_secret(&key).await {
            Ok(secret) => secret,
            Err(error) => return self.unavailable(visit, error),
        };
        let secret = match secret {
            Some(secret) => secret,
            None => {
                let Ok(secret) = totp::new_secret() else {
                    return self
                        .pages
                        .render(StatusCode::INTERNAL_SERVER_ERROR, Some(&visit.context));
                };
                let now = self.state.now_ms();
                let stored = self
                    .state
                    .store
                    .put(&key, totp::encode_secret(&secret), now, ENROLMENT_TTL);
                if let Err(error) = stored.await {
                    return self.unavailable(visit, error);
                }
                secret
            }
        };
        let uri = totp::uri(&secret, &user.name, &self.settings.issuer).unwrap_or_default();
        let next = self.next(visit, None);
        let content = pages::enrol(
            &self.frame(visit, &next),
            &qr_svg(&uri),
            &totp::encode_secret(&secret),
            error,
        );
        let status = if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        pages::page(status, "Set up a second factor", &content)
    }

    async fn enrol(&self, visit: &Visit, form: &HashMap<String, String>) -> Response<Body> {
        let next = self.next(visit, Some(form));
        let (id, user) = match self.pending(visit).await {
            Err(page) => return page,
            Ok(Some((id, user))) if user.totp.is_none() => (id, user),
            Ok(_) => return self.login_page(visit, Some("Log in first."), StatusCode::UNAUTHORIZED),
        };
        let key = Self::enrolment_key(&id);
        let secret = match self.enrolment_secret(&key).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return self
                    .enrol_page(visit, Some("The key expired: scan this new one."))
                    .await
            }
            Err(error) => return self.unavailable(visit, error),
        };
        let code = form.get("code").map_or("", String::as_str);
        if let Err(message) = self.check_code(visit, &user.name, &secret, code).await {
            return self.enrol_page(visit, Some(message)).await;
        }
        let path = self.settings.users.path().to_owned();
        let encoded_secret = totp::encode_secret(&secret);
        let name = user.name.clone();
        let written = tokio::task::spawn_blocking(move || {
            users::edit(&path, &name, |table| table["totp"] = toml_edit::value(encoded_secret))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(error) = written {
            self.event(visit, "enrolment_not_saved", "refused", Some(error));
            let message = "The second factor could not be saved: ask an administrator to run `portcullis user totp`.";
            return pages::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Set up a second factor",
                &pages::message(message),
            );
        }
        let _ = self.state.store.delete(&key).await;
        self.event(visit, "totp_enrolled", "allowed", Some(format!("user `{}`", user.name)));
        self.complete(visit, &id, &user, &next).await
    }

    async fn logout_page(&self, visit: &Visit) -> Response<Body> {
        let session = match &visit.session {
            Some(id) => self.sessions.load(id).await,
            None => Ok(None),
        };
        match session {
            Ok(Some(session)) => {
                let frame = self.frame(visit, "/");
                pages::page(StatusCode::OK, "Log out", &pages::logout(&frame, &session.user))
            }
            Ok(None) => pages::page(StatusCode::OK, "Log out", &pages::message("You are not logged in.")),
            Err(error) => self.unavailable(visit, error),
        }
    }

    async fn logout(&self, visit: &Visit) -> Response<Body> {
        if let Some(id) = &visit.session {
            if let Err(error) = self.sessions.end(id).await {
                return self.unavailable(visit, error);
            }
            self.event(visit, "logout", "allowed", None);
        }
        let mut page = pages::page(StatusCode::OK, "Logged out", &pages::message("You are logged out."));
        page.headers_mut()
            .append(header::SET_COOKIE, self.sessions.clear_cookie(visit.https));
        page
    }
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A user name as typed, for an event: bounded, printable.
fn shown(name: &str) -> String {
    name.chars().take(64).filter(|c| !c.is_control()).collect()
}

/// The QR code of `text` as inline SVG (no XML declaration).
pub fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(224, 224)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen("<svg", "<svg role=\"img\" aria-label=\"QR code of the key\"", 1)
}

/// The QR code of `text` for a terminal, two rows of modules per line.
pub fn qr_terminal(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
        Err(_) => String::new(),
    }
}

/// An identity header's name, validated.
pub fn header_name(text: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(text.as_bytes()).map_err(|_| format!("`{text}` is not a header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_prefix_is_the_portals() {
        let prefix = "/.portcullis/";
        for path in [
            "/.portcullis/login",
            "/.PORTCULLIS/login",
            "//.portcullis/x",
            "/%2Eportcullis/",
            "/a/../.portcullis/",
            "\\.portcullis\\login",
        ] {
            assert!(under_prefix(path, prefix), "{path}");
            assert_eq!(
                under_prefix(path, prefix),
                normalize(path).starts_with(prefix),
                "{path}"
            );
        }
        for path in ["/", "/admin", "/portcullis/login", "/.portcullisx/", "/a.portcullis/"] {
            assert!(!under_prefix(path, prefix), "{path}");
        }
        let auth = "/auth/";
        assert!(under_prefix("/AUTH/login", auth) && !under_prefix("/author", auth));
    }

    #[test]
    fn the_store_never_holds_a_session_id_in_a_key() {
        let id = SessionId::from_cookie(&"ab".repeat(32)).unwrap();
        let key = Inner::enrolment_key(&id);
        assert!(key.starts_with("portal-enrol:") && !key.contains(id.as_str()), "{key}");
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        let next = |text: &str| safe_next(Some(&text.to_owned()), "/.portcullis/");
        assert_eq!(next("/admin?x=1"), "/admin?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/.portcullis/logout",
            "/a\nb",
            "admin",
        ] {
            assert_eq!(next(bad), "/", "{bad:?}");
        }
    }
}
