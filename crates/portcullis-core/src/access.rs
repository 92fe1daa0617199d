//! Access rules (checklist C13): who may reach which paths.
//!
//! Each `[[access]]` entry names a path (prefix or glob, on the normalised
//! path, as routes are matched), optionally methods, and what it requires:
//! client addresses (`allow` / `deny` CIDR lists), a portal login
//! (`login = true`), membership of groups (`groups = ["admin"]`, which
//! implies a login). The first entry that matches decides; a request no
//! entry matches goes on. Refused requests never reach the app: a neutral
//! 403 (401 for a missing login, or a redirect to the portal for a browser),
//! and a security event.
//!
//! The app may trust the identity headers: they are removed from every
//! request, then set on those that passed a rule with a login. The session
//! cookie is removed too, so the app never holds it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use tower::{Layer, Service};

use crate::body::Body;
use crate::client_ip::parse_nets;
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::path::{normalize, PathPattern};
use crate::session::{Session, Sessions};
use crate::InvalidConfig;

/// One `[[access]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    pub path: String,
    /// Empty: every method.
    pub methods: Vec<String>,
    /// Only clients in these ranges (empty: any client).
    pub allow: Vec<String>,
    /// Never clients in these ranges; checked before `allow`.
    pub deny: Vec<String>,
    pub login: bool,
    /// The user must be in one of these groups (implies `login`).
    pub groups: Vec<String>,
}

/// The identity headers' names (`[portal] user_header`, `groups_header`).
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user: HeaderName,
    pub groups: HeaderName,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            user: HeaderName::from_static("x-portcullis-user"),
            groups: HeaderName::from_static("x-portcullis-groups"),
        }
    }
}

#[derive(Debug)]
struct Rule {
    index: usize,
    path: PathPattern,
    path_text: String,
    methods: Option<Vec<Method>>,
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    login: bool,
    groups: Vec<String>,
}

/// The `[[access]]` entries, validated, in order.
#[derive(Debug)]
pub struct AccessRules {
    rules: Vec<Rule>,
    identity: IdentityHeaders,
    /// The portal's prefix (`/.portcullis/`): its pages are never behind a rule.
    portal: String,
}

impl AccessRules {
    /// Errors name the entry: `[2].allow[0]`.
    pub fn new(entries: &[AccessConfig], identity: IdentityHeaders, portal: &str) -> Result<Self, InvalidConfig> {
        let mut rules: Vec<Rule> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let at = |key: &str| format!("[{index}].{key}");
            let path = PathPattern::parse(&entry.path).map_err(|m| InvalidConfig::new(at("path"), m))?;
            if normalize(&entry.path).starts_with(portal) {
                return Err(InvalidConfig::new(
                    at("path"),
                    format!("the portal's own pages ({portal}) are open to all: they are where a login happens"),
                ));
            }
            let methods = crate::parse_methods(&entry.methods, &at("methods"))?;
            let rule = Rule {
                index,
                path,
                path_text: entry.path.clone(),
                methods: (!methods.is_empty()).then_some(methods),
                allow: parse_nets(&entry.allow, &at("allow"))?,
                deny: parse_nets(&entry.deny, &at("deny"))?,
                login: entry.login || !entry.groups.is_empty(),
                groups: entry.groups.clone(),
            };
            if rule.allow.is_empty() && rule.deny.is_empty() && !rule.login {
                return Err(InvalidConfig::new(
                    at("path"),
                    "this entry requires nothing: give `allow`, `deny`, `login = true` or `groups`",
                ));
            }
            if let Some(earlier) = rules.iter().find(|earlier| earlier.shadows(&rule)) {
                return Err(InvalidConfig::new(
                    at("path"),
                    format!(
                        "never used: entry [{}] (`{}`) comes first and matches every request this one does; put the narrower entry first",
                        earlier.index, earlier.path_text
                    ),
                ));
            }
            rules.push(rule);
        }
        Ok(Self {
            rules,
            identity,
            portal: portal.to_owned(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule asks for a login (then the portal is needed).
    pub fn needs_login(&self) -> bool {
        self.rules.iter().any(|rule| rule.login)
    }

    /// The policy for one event loop, with its sessions.
    pub fn bind(self: &Arc<Self>, sessions: Sessions, pages: NeutralPages, events: Events) -> AccessLayer {
        AccessLayer {
            control: Arc::new(AccessControl {
                rules: self.clone(),
                sessions,
                pages,
                events,
            }),
        }
    }
}

impl Rule {
    /// Whether this rule, coming first, leaves nothing for `later`.
    fn shadows(&self, later: &Rule) -> bool {
        let methods = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.iter().all(|m| mine.contains(m)),
        };
        methods && self.path.covers(&later.path)
    }

    /// The entry as events name it: `[0] /admin`.
    fn place(&self) -> String {
        format!("[{}] {}", self.index, self.path_text)
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method)) && self.path.matches(path)
    }
}

/// What a rule decided before any session was looked at.
enum Check<'r> {
    Pass,
    Refuse(&'static str, String),
    NeedsSession(&'r Rule),
}

pub struct AccessControl {
    rules: Arc<AccessRules>,
    sessions: Sessions,
    pages: NeutralPages,
    events: Events,
}

impl AccessControl {
    fn check(&self, method: &Method, path: &str, context: &RequestContext) -> Check<'_> {
        if path.starts_with(&self.rules.portal) {
            return Check::Pass;
        }
        let Some(rule) = self.rules.rules.iter().find(|rule| rule.matches(method, path)) else {
            return Check::Pass;
        };
        let ip = context.client_ip;
        if rule.deny.iter().any(|net| net.contains(&ip)) {
            return Check::Refuse("denied_address", format!("{}: {ip} is in deny", rule.place()));
        }
        if !rule.allow.is_empty() && !rule.allow.iter().any(|net| net.contains(&ip)) {
            let detail = format!("{}: {ip} is not in allow", rule.place());
            return Check::Refuse("address_not_allowed", detail);
        }
        match rule.login {
            true => Check::NeedsSession(rule),
            false => Check::Pass,
        }
    }

    fn refuse(
        &self,
        context: &RequestContext,
        status: StatusCode,
        rule: &'static str,
        detail: String,
    ) -> Response<Body> {
        let mut event = context.event("access", rule, "refused");
        event.detail = Some(detail);
        self.events.emit(event);
        self.pages.render(status, Some(context))
    }

    /// No valid session: a browser asking for a page goes to the portal,
    /// anything else gets a 401.
    fn login_first<B>(&self, request: &Request<B>, context: &RequestContext, detail: String) -> Response<Body> {
        let wants_page = matches!(*request.method(), Method::GET | Method::HEAD)
            && request
                .headers()
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
        if !wants_page {
            return self.refuse(context, StatusCode::UNAUTHORIZED, "login_required", detail);
        }
        let mut event = context.event("access", "login_required", "redirected");
        event.detail = Some(detail);
        self.events.emit(event);
        let back = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let target: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let location = format!("{}login?rd={target}", self.rules.portal);
        let mut response = Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }

    /// Sets the identity headers from `session`.
    fn identify<B>(&self, request: &mut Request<B>, session: &Session) {
        let headers = request.headers_mut();
        // Names and groups are checked when the users file loads.
        if let Ok(user) = HeaderValue::from_str(&session.user) {
            headers.insert(self.rules.identity.user.clone(), user);
        }
        if let Ok(groups) = HeaderValue::from_str(&session.groups.join(",")) {
            headers.insert(self.rules.identity.groups.clone(), groups);
        }
    }
}

#[derive(Clone)]
pub struct AccessLayer {
    control: Arc<AccessControl>,
}

impl<S> Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService {
            control: self.control.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct AccessService<S> {
    control: Arc<AccessControl>,
    inner: S,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S> Service<Request<Body>> for AccessService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Answer {
        let control = self.control.clone();
        let identity = &control.rules.identity;
        let headers = request.headers_mut();
        headers.remove(&identity.user);
        headers.remove(&identity.groups);
        let Some(context) = request.extensions().get::<RequestContext>().cloned() else {
            return Box::pin(std::future::ready(Ok(crate::context::missing(
                "access",
                &control.pages,
                &control.events,
            ))));
        };
        let path = normalize(request.uri().path());
        let portal = path.starts_with(&control.rules.portal);
        let index = match control.check(request.method(), &path, &context) {
            Check::Pass => None,
            Check::Refuse(rule, detail) => {
                let page = control.refuse(&context, StatusCode::FORBIDDEN, rule, detail);
                return Box::pin(std::future::ready(Ok(page)));
            }
            Check::NeedsSession(rule) => Some(rule.index),
        };
        drop(path);
        // Read before the cookie is stripped, and only where a rule asks.
        let presented = index.and_then(|_| control.sessions.presented(request.headers(), context.https));
        if !portal {
            control.sessions.strip_cookie(request.headers_mut());
        }
        let Some(index) = index else {
            return Box::pin(self.inner.call(request));
        };
        // The inner service was polled ready; keep that one for this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // Rules are kept in the order of their indices.
            let rule = &control.rules.rules[index];
            let Some(id) = presented else {
                return Ok(control.login_first(&request, &context, format!("{}: no session", rule.place())));
            };
            let session = match control.sessions.load(&id).await {
                Ok(Some(session)) if session.complete => session,
                Ok(_) => {
                    let detail = format!("{}: no valid session", rule.place());
                    return Ok(control.login_first(&request, &context, detail));
                }
                Err(error) => {
                    let detail = format!("{}: sessions unavailable ({error})", rule.place());
                    return Ok(control.refuse(&context, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", detail));
                }
            };
            let groups = &rule.groups;
            if !groups.is_empty() && !session.groups.iter().any(|g| groups.contains(g)) {
                let detail = format!("{}: {} is not in {}", rule.place(), session.user, groups.join(", "));
                return Ok(control.refuse(&context, StatusCode::FORBIDDEN, "group_required", detail));
            }
            control.identify(&mut request, &session);
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<AccessRules, InvalidConfig> {
        #[derive(Deserialize)]
        struct File {
            access: Vec<AccessConfig>,
        }
        let file: File = serde_json::from_str(text).unwrap();
        AccessRules::new(&file.access, IdentityHeaders::default(), "/.portcullis/")
    }

    #[test]
    fn entries_that_can_never_match_or_require_nothing_are_refused() {
        let shadowed = rules(r#"{"access":[{"path":"/admin","login":true},{"path":"/admin/users","groups":["x"]}]}"#);
        let error = shadowed.unwrap_err();
        assert_eq!(error.key, "[1].path");
        assert!(error.message.contains("[0]"), "{error}");
        assert!(rules(r#"{"access":[{"path":"/admin/users","groups":["x"]},{"path":"/admin","login":true}]}"#).is_ok());
        let methods = r#"{"access":[{"path":"/api","methods":["POST"],"login":true},{"path":"/api","login":true}]}"#;
        assert!(rules(methods).is_ok(), "the first covers POST only");
        assert_eq!(rules(r#"{"access":[{"path":"/x"}]}"#).unwrap_err().key, "[0].path");
        assert_eq!(
            rules(r#"{"access":[{"path":"/x","allow":["10.0.0.0/33"]}]}"#)
                .unwrap_err()
                .key,
            "[0].allow[0]"
        );
        assert!(rules(r#"{"access":[{"path":"/.portcullis/login","login":true}]}"#).is_err());
        assert!(rules(r#"{"access":[{"path":"/*.pdf","login":true},{"path":"/*.pdf","deny":["::1"]}]}"#).is_err());
    }

    #[test]
    fn first_match_decides_on_the_normalised_path() {
        let rules =
            rules(r#"{"access":[{"path":"/admin","allow":["10.0.0.0/8"]},{"path":"/","deny":["192.0.2.0/24"]}]}"#)
                .unwrap();
        let decide = |path: &str, ip: &str| {
            let rule = rules.rules.iter().find(|r| r.matches(&Method::GET, &normalize(path)));
            let ip: std::net::IpAddr = ip.parse().unwrap();
            rule.map(|r| {
                (
                    r.index,
                    r.allow.iter().any(|n| n.contains(&ip)),
                    r.deny.iter().any(|n| n.contains(&ip)),
                )
            })
        };
        assert_eq!(decide("/%41dmin/x", "10.1.2.3"), Some((0, true, false)));
        assert_eq!(decide("//ADMIN", "127.0.0.1"), Some((0, false, false)));
        assert_eq!(decide("/shop", "192.0.2.7"), Some((1, false, true)));
    }
}
