//! The per-route request series, updated through handles resolved when the
//! route's stack is built: a request costs a few atomic adds and two
//! histogram observations, and no label lookup.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use portcullis_core::body::{self, Body, BodyError};
use portcullis_core::policy::{Policy, PolicyLayer, Verdict};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{class_index, method_index, Metrics, RequestLabels, RouteLabel, METHODS, STATUS_CLASSES};

/// One route's handles.
pub struct RouteMetrics {
    /// By method, then status class.
    requests: [[Counter; STATUS_CLASSES.len()]; METHODS.len()],
    duration: Histogram,
    request_bytes: Counter,
    response_bytes: Counter,
}

pub type RouteMetricsLayer = PolicyLayer<RouteMetrics>;

impl RouteMetrics {
    pub(super) fn resolve(metrics: &Metrics, route: &str) -> Self {
        let label = RouteLabel { route: route.into() };
        let requests = METHODS.map(|method| {
            STATUS_CLASSES.map(|status_class| {
                let labels = RequestLabels {
                    route: route.into(),
                    method,
                    status_class,
                };
                metrics.requests.get_or_create(&labels).clone()
            })
        });
        Self {
            requests,
            duration: metrics.request_duration.get_or_create(&label).clone(),
            request_bytes: metrics.request_bytes.get_or_create(&label).clone(),
            response_bytes: metrics.response_bytes.get_or_create(&label).clone(),
        }
    }
}

impl Policy for RouteMetrics {
    type State = (Instant, usize);

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<(Instant, usize)> {
        if !http_body::Body::is_end_stream(request.body()) {
            let inner = std::mem::replace(request.body_mut(), body::empty());
            *request.body_mut() = body::boxed(Counted {
                inner,
                bytes: self.request_bytes.clone(),
            });
        }
        Verdict::Forward((Instant::now(), method_index(request.method())))
    }

    async fn on_response(
        self: Arc<Self>,
        (start, method): (Instant, usize),
        response: Response<Body>,
    ) -> Response<Body> {
        self.requests[method][class_index(response.status())].inc();
        response.map(|inner| {
            body::boxed(Timed {
                inner,
                start,
                bytes: 0,
                route: self,
            })
        })
    }
}

/// A request body whose bytes are counted as they are read.
struct Counted {
    inner: Body,
    bytes: Counter,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that, once sent or abandoned, records the request's
/// duration and its bytes.
struct Timed {
    inner: Body,
    start: Instant,
    bytes: u64,
    route: Arc<RouteMetrics>,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.route.duration.observe(self.start.elapsed().as_secs_f64());
        self.route.response_bytes.inc_by(self.bytes);
    }
}

/// Times the app: from forwarding a request to its answer's head.
pub struct UpstreamTiming(Histogram);

pub type UpstreamTimingLayer = PolicyLayer<UpstreamTiming>;

impl UpstreamTiming {
    pub fn new(metrics: &Metrics, route: &str) -> Self {
        let label = RouteLabel { route: route.into() };
        Self(metrics.upstream_duration.get_or_create(&label).clone())
    }
}

impl Policy for UpstreamTiming {
    type State = Instant;

    fn on_request(&self, _: &mut Request<Body>) -> Verdict<Instant> {
        Verdict::Forward(Instant::now())
    }

    async fn on_response(self: Arc<Self>, start: Instant, response: Response<Body>) -> Response<Body> {
        self.0.observe(start.elapsed().as_secs_f64());
        response
    }
}
