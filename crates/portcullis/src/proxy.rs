//! The innermost service: forwards a request to the upstream app and streams
//! the answer back. Upstream failures become neutral 502/504 pages.

use std::convert::Infallible;
use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::{PathAndQuery, Uri};
use http::{header, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use portcullis_core::body::{self, Body, BodyError};
use portcullis_core::context::{ConnectionHold, ConnectionInfo, RequestContext};
use portcullis_core::events::Events;
use portcullis_core::pages::NeutralPages;
use tower::Service;

use crate::config::Upstream;
use crate::forwarded::{is_upgrade, set_forwarding_headers, strip_hop_by_hop};
use crate::metrics::UpstreamTiming;
use crate::pool::{SendError, UpstreamPool};
use crate::timeouts::{BodyProgress, BodyReadTimedOut, ReadTimeout};
use crate::tunnel::Tunnel;

/// The proxy as a service: cloned for every request, so one shared pointer.
#[derive(Clone)]
pub struct Proxy(Arc<Forwarder>);

#[derive(Clone)]
struct Forwarder {
    pool: UpstreamPool,
    upstream: Upstream,
    pages: NeutralPages,
    events: Events,
    /// The route's upstream latency, when metrics are on.
    timing: Option<UpstreamTiming>,
}

impl Proxy {
    /// A proxy with its own connection pool: create one per worker.
    pub fn new(upstream: Upstream, pages: NeutralPages, events: Events) -> Self {
        Self(Arc::new(Forwarder {
            pool: UpstreamPool::new(upstream.clone()),
            upstream,
            pages,
            events,
            timing: None,
        }))
    }

    /// The same upstream pool, for one route: failures rendered with its
    /// pages, the app's latency counted under its name if metrics are on.
    pub fn for_route(&self, pages: NeutralPages, timing: Option<UpstreamTiming>) -> Self {
        Self(Arc::new(Forwarder {
            pages,
            timing,
            ..(*self.0).clone()
        }))
    }
}

impl Forwarder {
    async fn forward(self: Arc<Self>, mut request: Request<Body>) -> Response<Body> {
        let context = request.extensions().get::<RequestContext>().cloned();
        let upgrade = is_upgrade(request.headers());
        // The client's side of a tunnel, with its connection's place within the limits.
        let client_side = upgrade.then(|| {
            let hold = request
                .extensions()
                .get::<ConnectionInfo>()
                .and_then(|info| info.hold.clone());
            (hyper::upgrade::on(&mut request), hold)
        });
        if let Err(status) = self.prepare(&mut request, upgrade, context.as_ref()) {
            return self.pages.render(status, context.as_ref());
        }
        let progress = self.track_body(&mut request);
        let started = self.timing.as_ref().map(|_| std::time::Instant::now());
        let sent = match progress {
            None => tokio::time::timeout(self.upstream.response_timeout, self.pool.send(request))
                .await
                .ok(),
            Some(progress) => tokio::select! {
                sent = self.pool.send(request) => Some(sent),
                () = progress.idle_for(self.upstream.response_timeout) => None,
            },
        };
        if let (Some(timing), Some(started)) = (&self.timing, started) {
            timing.observe(started.elapsed());
        }
        let mut response = match sent {
            Some(Ok(response)) => response,
            Some(Err(error)) => return self.failed(&error, context.as_ref()),
            None => return self.refuse(StatusCode::GATEWAY_TIMEOUT, "response_timeout", context.as_ref()),
        };
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some((client_side, hold))) = (switching, client_side) {
            let upstream_side = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client_side, upstream_side, hold));
        }
        strip_hop_by_hop(response.headers_mut(), switching);
        // An upstream that stalls mid-body must not hold the client forever.
        let stall_limit = self.upstream.response_timeout;
        response.map(|b| body::boxed(ReadTimeout::new(b, stall_limit)))
    }

    /// The request body's progress, watched so that the wait for the answer
    /// counts from the body's last move towards the app (`response_timeout`
    /// after it), not from the head: a slow but steady upload is not the
    /// app's fault. `None` for a request without a body: the wait counts
    /// from now.
    fn track_body(&self, request: &mut Request<Body>) -> Option<BodyProgress> {
        if http_body::Body::is_end_stream(request.body()) {
            return None;
        }
        let body = std::mem::replace(request.body_mut(), body::empty());
        let (body, progress) = BodyProgress::track(body);
        *request.body_mut() = body;
        Some(progress)
    }

    /// Turns the client's request into the upstream's.
    fn prepare(
        &self,
        request: &mut Request<Body>,
        upgrade: bool,
        context: Option<&RequestContext>,
    ) -> Result<(), StatusCode> {
        // HTTP/2 clients send `:authority` instead of `Host`; the app needs a Host.
        let host = match request.headers().get(header::HOST) {
            Some(host) => Some(host.clone()),
            None => request
                .uri()
                .authority()
                .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok()),
        };
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        // Origin form (`/path?query`): the connection already goes to the app.
        *request.uri_mut() = Uri::from(path);
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        strip_hop_by_hop(headers, upgrade);
        if let Some(host) = &host {
            headers.insert(header::HOST, host.clone());
        }
        if let Some(context) = context {
            set_forwarding_headers(headers, context, host.as_ref());
        }
        Ok(())
    }

    fn failed(&self, error: &SendError, context: Option<&RequestContext>) -> Response<Body> {
        let error = match error {
            SendError::Connect { timed_out: true } => {
                return self.refuse(StatusCode::GATEWAY_TIMEOUT, "connect_timeout", context)
            }
            SendError::Connect { timed_out: false } => {
                return self.refuse(StatusCode::BAD_GATEWAY, "connect_failed", context)
            }
            SendError::Exchange(error) => error,
        };
        let (mut client_body, mut client_stalled) = (false, false);
        let mut cause = error.source();
        while let Some(error) = cause {
            // The request body is the only `BodyError` on this path: the client's stream broke.
            client_body |= error.is::<BodyError>();
            client_stalled |= error.is::<BodyReadTimedOut>();
            cause = error.source();
        }
        match (client_body, client_stalled) {
            (_, true) => self.refuse(StatusCode::REQUEST_TIMEOUT, "body_read_timeout", context),
            (true, _) => self.refuse(StatusCode::BAD_REQUEST, "malformed_request_body", context),
            _ => self.refuse(StatusCode::BAD_GATEWAY, "upstream_error", context),
        }
    }

    fn refuse(&self, status: StatusCode, rule: &'static str, context: Option<&RequestContext>) -> Response<Body> {
        if let Some(context) = context {
            let action = match status {
                StatusCode::GATEWAY_TIMEOUT => "served_504",
                StatusCode::BAD_GATEWAY => "served_502",
                _ => "refused",
            };
            self.events.emit(context.event("proxy", rule, action));
        }
        self.pages.render(status, context)
    }
}

/// Copies bytes both ways between an upgraded client and upstream
/// connection, holding the client connection's place within the limits.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade, _hold: Option<ConnectionHold>) {
    if let Ok((client, upstream)) = tokio::try_join!(client, upstream) {
        let _ = Tunnel::new(TokioIo::new(client), TokioIo::new(upstream)).await;
    }
}

impl Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let proxy = self.0.clone();
        Box::pin(async move { Ok(proxy.forward(request).await) })
    }
}
