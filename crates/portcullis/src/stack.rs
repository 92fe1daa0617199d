//! Assembles the layers in the order docs/architecture.md gives: request id and
//! client → access log → route → bans → access rules → cookie names restored → size limits →
//! rate limits → CSRF → login protection → WAF → portal or proxy, and on the way back
//! login failures counted → safe errors → cookie hardening → response
//! filtering → fingerprint removal → security headers.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use portcullis_core::access::AccessLayer;
use portcullis_core::bans::{BanCheck, BanCheckLayer, Bans};
use portcullis_core::body::Body;
use portcullis_core::client_ip::TrustedProxies;
use portcullis_core::context::{RequestContext, RequestContextLayer, RequestContextPolicy};
use portcullis_core::cookies::CookieHardeningLayer;
use portcullis_core::csrf::CrossOriginProtectionLayer;
use portcullis_core::errors::SafeErrorsLayer;
use portcullis_core::events::Events;
use portcullis_core::filter::ResponseFilterLayer;
use portcullis_core::fingerprint::FingerprintLayer;
use portcullis_core::headers::SecurityHeadersLayer;
use portcullis_core::limits::RequestLimitsLayer;
use portcullis_core::login::LoginProtectionLayer;
use portcullis_core::rate_limit::RateLimitLayer;
use portcullis_core::session::Sessions;
use portcullis_core::store::SharedState;
use portcullis_core::waf::WafLayer;
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Service, ServiceBuilder};

use crate::config::{Config, Policies};
use crate::dashboard::Sources;
use crate::log::{AccessLog, AccessLogLayer, JsonLog};
use crate::metrics::RouteMetricsLayer;
use crate::portal::{Portal, PortalOr};
use crate::proxy::Proxy;
use crate::routes::{RouteStack, Router, Stack};

/// What every route's limits share: the store (with Redis, one connection
/// per worker), the clock and fail mode, and the bans this gateway knows of.
#[derive(Clone)]
pub struct Shared {
    pub state: SharedState,
    pub bans: Arc<Bans>,
}

/// The whole gateway as one service, for one event loop: the policies
/// compiled when the config loaded, bound to this loop's store.
/// `sources` feed the dashboard the portal may serve.
pub fn gateway(config: &Config, log: &JsonLog, shared: &Shared, sources: Sources) -> Stack {
    let events: Events = Arc::new(log.clone());
    let proxy = Proxy::new(config.upstream.clone(), config.policies.pages.clone(), events.clone());
    let sessions = Sessions::new(config.session.clone(), shared.state.clone());
    let portal = config.portal.as_ref().map(|settings| {
        let pages = config.policies.pages.clone();
        let store = (sessions.clone(), shared.state.clone());
        Portal::new(settings.clone(), store, pages, events.clone(), sources.clone())
    });
    let access = config
        .access
        .as_ref()
        .map(|rules| rules.bind(sessions.clone(), config.policies.pages.clone(), events.clone()));
    // On once a config asked for them, but measured only while one does.
    let metrics = config.metrics.as_ref().and(crate::metrics::enabled());
    let route = |name: &str, policies: &Policies| {
        let login = config
            .logins
            .as_ref()
            .map(|rules| LoginProtectionLayer::new(rules.bind(shared.state.clone(), policies.pages.clone())));
        let upstream = proxy.for_route(policies.pages.clone(), metrics.map(|m| m.upstream(name)));
        let inner = ServiceBuilder::new()
            .option_layer(login)
            .layer(WafLayer::from(policies.waf.clone()))
            .service(PortalOr::new(portal.clone(), upstream));
        let measured = metrics.map(|m| RouteMetricsLayer::new(m.route(name)));
        policy_stack(policies, shared, (measured, access.clone()), inner)
    };
    let routes = config
        .routes
        .iter()
        .map(|r| RouteStack {
            path: r.path.clone(),
            methods: r.methods.clone(),
            stack: route(&r.name, &r.policies),
        })
        .collect();
    edge(config, log, Router::new(routes, route("default", &config.policies)))
}

/// Answers every request with one neutral status page (e.g. 429 for a client
/// over its connection limit), with the same headers as any other response.
pub fn refusal(config: &Config, log: &JsonLog, status: StatusCode) -> Stack {
    edge(config, log, refusal_page(config, status))
}

/// The neutral page for `status`, closing the connection, with only what
/// every response gets: no fingerprint, the security headers. For a request
/// that already has its context.
pub fn refusal_page(
    config: &Config,
    status: StatusCode,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
       + Clone
       + Send
       + Sync
       + 'static {
    let pages = config.policies.pages.clone();
    let answer = service_fn(move |request: Request<Body>| {
        let mut page = pages.render(status, request.extensions().get::<RequestContext>());
        page.headers_mut()
            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        std::future::ready(Ok::<Response<Body>, Infallible>(page))
    });
    let policies = &config.policies;
    ServiceBuilder::new()
        .layer(SecurityHeadersLayer::from(policies.headers.clone()))
        .layer(FingerprintLayer::from(policies.fingerprint.clone()))
        .service(answer)
}

/// What runs before routing: the request context, then the access log.
fn edge<S>(config: &Config, log: &JsonLog, inner: S) -> Stack
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let trusted = TrustedProxies::new(config.trusted_proxies.clone());
    let access = config
        .log
        .access
        .then(|| AccessLogLayer::new(AccessLog::new(log.clone())));
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(RequestContextLayer::new(RequestContextPolicy::new(trusted)))
            .option_layer(access)
            .service(inner),
    )
}

/// One route's policies around `inner`, outermost first, with its metrics
/// if they are on and its access rules if there are any.
fn policy_stack<S>(
    policies: &Policies,
    shared: &Shared,
    (measured, access): (Option<RouteMetricsLayer>, Option<AccessLayer>),
    inner: S,
) -> Stack
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let rate_limit = policies
        .rate_limit
        .bind(shared.state.clone(), Some(shared.bans.clone()));
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .option_layer(measured)
            .layer(SecurityHeadersLayer::from(policies.headers.clone()))
            .layer(FingerprintLayer::from(policies.fingerprint.clone()))
            .layer(ResponseFilterLayer::from(policies.filter.clone()))
            .layer(BanCheckLayer::new(BanCheck::new(
                shared.bans.clone(),
                shared.state.clone(),
            )))
            .option_layer(access)
            .layer(CookieHardeningLayer::from(policies.cookies.clone()))
            .layer(SafeErrorsLayer::from(policies.errors.clone()))
            .layer(RequestLimitsLayer::from(policies.limits.clone()))
            .layer(RateLimitLayer::new(rate_limit))
            .layer(CrossOriginProtectionLayer::from(policies.csrf.clone()))
            .service(inner),
    )
}
