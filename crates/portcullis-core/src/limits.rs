//! Request limits (checklist C9): URI length (414), header size (431) and body
//! size (413), checked before anything reaches the upstream, with the
//! framing a reverse proxy must not pass on: two `Host` headers or none
//! (HTTP/1.1), an HTTP/2 `Host` that differs from `:authority` (400),
//! `CONNECT` and `TRACE` (405). An absolute-form target names the host
//! itself (RFC 9112 §3.2.2): its authority replaces `Host`, so the app and
//! every later policy see the same host.
//!
//! A declared `Content-Length` over the limit is refused at once. A streamed
//! (chunked) body is counted as it flows; the moment it passes the limit the
//! stream fails, the upstream request is aborted, and the client gets a 413.
//! Either way the rest of the body is left to be read and discarded after the
//! answer ([`Unread`]), so the client really receives the 413.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode, Version};
use http_body::Frame;
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::body::{Body, BodyError, Unread};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};

/// The `[limits]` section (per route).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Path and query, in bytes (nginx: 8 KiB request line).
    pub max_uri_bytes: usize,
    /// All header names and values, in bytes (Node.js refuses more than 16 KiB).
    pub max_header_bytes: usize,
    /// Request body, in bytes.
    pub max_body_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), crate::InvalidConfig> {
        crate::InvalidConfig::require_positive(&[
            ("max_uri_bytes", self.max_uri_bytes as u64),
            ("max_header_bytes", self.max_header_bytes as u64),
        ])
    }
}

pub struct RequestLimits {
    config: LimitsConfig,
    pages: NeutralPages,
    events: Events,
}

pub type RequestLimitsLayer = PolicyLayer<RequestLimits>;

/// Where a streamed body that went over the limit leaves the rest of itself,
/// so the refusal can drain it.
type Leftover = Arc<Mutex<Option<Body>>>;

pub struct Overflow {
    /// `None` for a request whose body had already ended: nothing to count.
    leftover: Option<Leftover>,
    context: Option<RequestContext>,
}

impl RequestLimits {
    pub fn new(config: LimitsConfig, pages: NeutralPages, events: Events) -> Self {
        Self { config, pages, events }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// The refusal page. The connection carries nothing after an oversized
    /// request, so it says `Connection: close`.
    fn refuse(&self, status: StatusCode, rule: &'static str, context: Option<&RequestContext>) -> Response<Body> {
        if let Some(context) = context {
            self.events.emit(context.event("limits", rule, "refused"));
        }
        let mut page = self.pages.render(status, context);
        page.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        page
    }

    fn check_head(&self, request: &mut Request<Body>) -> Result<(), (StatusCode, &'static str)> {
        check_framing(request)?;
        let uri_bytes = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if uri_bytes > self.config.max_uri_bytes {
            return Err((StatusCode::URI_TOO_LONG, "max_uri_bytes"));
        }
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > self.config.max_header_bytes {
            return Err((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "max_header_bytes"));
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.config.max_body_bytes) {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "max_body_bytes"));
        }
        Ok(())
    }
}

impl Policy for RequestLimits {
    type State = Overflow;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Overflow> {
        let context = request.extensions().get::<RequestContext>().cloned();
        if let Err((status, rule)) = self.check_head(request) {
            // The policy layer leaves the body to be discarded after the answer.
            return Verdict::Answer(self.refuse(status, rule, context.as_ref()));
        }
        if http_body::Body::is_end_stream(request.body()) {
            return Verdict::Forward(Overflow {
                leftover: None,
                context,
            });
        }
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        let leftover = Leftover::default();
        let counted = Counted {
            inner: Some(body),
            left: self.config.max_body_bytes,
            leftover: leftover.clone(),
        };
        *request.body_mut() = counted.boxed_unsync();
        Verdict::Forward(Overflow {
            leftover: Some(leftover),
            context,
        })
    }

    fn on_response(self: &Arc<Self>, overflow: Overflow, response: Response<Body>) -> Responded {
        let rest = overflow
            .leftover
            .and_then(|leftover| leftover.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
        match rest {
            Some(rest) => {
                let mut page = self.refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "max_body_bytes",
                    overflow.context.as_ref(),
                );
                Unread::attach(&mut page, rest);
                Responded::Now(page)
            }
            None => Responded::Now(response),
        }
    }
}

/// Refuses framing a proxy must not forward, and makes an absolute-form
/// target's authority the `Host`.
fn check_framing(request: &mut Request<Body>) -> Result<(), (StatusCode, &'static str)> {
    if request.method() == Method::CONNECT || request.method() == Method::TRACE {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "method"));
    }
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err((StatusCode::BAD_REQUEST, "duplicate_host"));
    }
    let authority = request.uri().authority();
    let replacement = match (request.version(), authority, host) {
        (Version::HTTP_2, Some(authority), Some(host)) if host.as_bytes() != authority.as_str().as_bytes() => {
            return Err((StatusCode::BAD_REQUEST, "host_mismatch"))
        }
        (Version::HTTP_2, ..) => return Ok(()),
        (_, Some(authority), _) => {
            http::HeaderValue::from_str(authority.as_str()).map_err(|_| (StatusCode::BAD_REQUEST, "host"))?
        }
        (Version::HTTP_11, None, None) => return Err((StatusCode::BAD_REQUEST, "missing_host")),
        _ => return Ok(()),
    };
    request.headers_mut().insert(header::HOST, replacement);
    Ok(())
}

/// The error a streamed body fails with once it passes the limit.
#[derive(Debug)]
pub struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body is over the configured limit")
    }
}

impl std::error::Error for BodyTooLarge {}

/// Counts a request body on its way upstream. Past the limit it fails the
/// upstream stream and hands the rest of the client's body to the refusal.
struct Counted {
    inner: Option<Body>,
    left: u64,
    leftover: Leftover,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let len = frame.data_ref().map_or(0, |data| data.len() as u64);
        match self.left.checked_sub(len) {
            Some(left) => {
                self.left = left;
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                let rest = self.inner.take();
                *self.leftover.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = rest;
                Poll::Ready(Some(Err(BodyError::new(BodyTooLarge))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |inner| inner.size_hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use crate::context::testing::context_from;
    use crate::events::testing::Recorder;
    use crate::events::SecurityEvent;
    use futures_util::stream;
    use http_body_util::StreamBody;
    use tower::{service_fn, Layer, ServiceExt};

    fn limits() -> LimitsConfig {
        LimitsConfig {
            max_uri_bytes: 32,
            max_header_bytes: 256,
            max_body_bytes: 10,
        }
    }

    /// What the layer did with one request.
    struct Sent {
        status: StatusCode,
        /// The upstream was called.
        reached: bool,
        events: Vec<SecurityEvent>,
    }

    /// A request from a client with its context set, as the edge would.
    fn bare(uri: &str) -> http::request::Builder {
        let mut builder = Request::builder().uri(uri);
        if let Some(extensions) = builder.extensions_mut() {
            extensions.insert(context_from("192.0.2.7"));
        }
        builder
    }

    /// As [`bare`], with a `Host`.
    fn request(uri: &str) -> http::request::Builder {
        bare(uri).header("host", "app.example")
    }

    /// Through the layer to an upstream that reads the whole body and
    /// answers 200, or 502 if reading failed.
    async fn send(request: Request<Body>) -> Sent {
        let recorder = Arc::new(Recorder::default());
        let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let layer = PolicyLayer::new(RequestLimits::new(limits(), NeutralPages::default(), recorder.clone()));
        let upstream = reached.clone();
        let service = layer.layer(service_fn(move |req: Request<Body>| {
            upstream.store(true, std::sync::atomic::Ordering::Relaxed);
            async move {
                let status = if req.into_body().collect().await.is_ok() {
                    200
                } else {
                    502
                };
                Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(full("")).unwrap())
            }
        }));
        let status = service.oneshot(request).await.unwrap().status();
        Sent {
            status,
            reached: reached.load(std::sync::atomic::Ordering::Relaxed),
            events: recorder.taken(),
        }
    }

    /// Refused with `status` before the upstream, one event naming `rule`.
    fn assert_refused(sent: &Sent, status: u16, rule: &str) {
        assert_eq!(sent.status, status);
        assert!(!sent.reached, "refused before the upstream");
        let rules: Vec<&str> = sent.events.iter().map(|e| e.rule).collect();
        assert_eq!(rules, [rule]);
    }

    #[tokio::test]
    async fn long_uri_is_414() {
        let request = request(&format!("/{}", "a".repeat(40))).body(full("")).unwrap();
        assert_refused(&send(request).await, 414, "max_uri_bytes");
    }

    #[tokio::test]
    async fn large_headers_are_431() {
        let request = request("/").header("cookie", "x".repeat(300)).body(full("")).unwrap();
        assert_refused(&send(request).await, 431, "max_header_bytes");
    }

    #[tokio::test]
    async fn declared_large_body_is_413_before_upstream() {
        let request = request("/")
            .header("content-length", "11")
            .body(full("01234567890"))
            .unwrap();
        assert_refused(&send(request).await, 413, "max_body_bytes");
    }

    #[tokio::test]
    async fn streamed_body_over_the_limit_is_413() {
        let chunks: Vec<Result<_, BodyError>> =
            (0..2).map(|_| Ok(Frame::data(Bytes::from_static(b"123456")))).collect();
        let request = request("/")
            .body(StreamBody::new(stream::iter(chunks)).boxed_unsync())
            .unwrap();
        let sent = send(request).await;
        assert_eq!(sent.status, 413);
        assert!(sent.reached, "streamed: the upstream saw the start");
        assert_eq!(sent.events.len(), 1);
    }

    #[tokio::test]
    async fn framing_a_proxy_must_not_forward_is_refused() {
        let two_hosts = request("/").header("host", "other.example").body(full("")).unwrap();
        assert_refused(&send(two_hosts).await, 400, "duplicate_host");
        let no_host = bare("/").body(full("")).unwrap();
        assert_refused(&send(no_host).await, 400, "missing_host");
        let old = bare("/").version(Version::HTTP_10).body(full("")).unwrap();
        assert_eq!(send(old).await.status, 200, "HTTP/1.0 needs no Host");
        for method in [Method::CONNECT, Method::TRACE] {
            let request = request("/").method(method).body(full("")).unwrap();
            assert_refused(&send(request).await, 405, "method");
        }
        let h2 = |host: &str| {
            bare("https://app.example/")
                .version(Version::HTTP_2)
                .header("host", host)
                .body(full(""))
                .unwrap()
        };
        assert_refused(&send(h2("other.example")).await, 400, "host_mismatch");
        assert_eq!(send(h2("app.example")).await.status, 200);
    }

    /// A client body that counts how much of it was read.
    fn counted_chunks(chunks: usize, read: Arc<std::sync::atomic::AtomicUsize>) -> Body {
        let frames = (0..chunks).map(move |_| {
            read.fetch_add(6, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, BodyError>(Frame::data(Bytes::from_static(b"123456")))
        });
        StreamBody::new(stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn refusals_leave_the_rest_of_the_body_to_be_discarded() {
        let layer = PolicyLayer::new(RequestLimits::new(
            limits(),
            NeutralPages::default(),
            Arc::new(Recorder::default()),
        ));
        let service = layer.layer(service_fn(|req: Request<Body>| async move {
            let _ = req.into_body().collect().await;
            Ok::<_, std::convert::Infallible>(Response::new(full("")))
        }));
        let refused = |content_length: Option<&str>| {
            let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut request = request("/");
            if let Some(length) = content_length {
                request = request.header("content-length", length);
            }
            (request.body(counted_chunks(100, read.clone())).unwrap(), read)
        };
        // Streamed past the limit (the upstream stops reading at 12 bytes), then declared too large.
        for content_length in [None, Some("600")] {
            let (request, read) = refused(content_length);
            let mut response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 413);
            let rest = Unread::take(&mut response).expect("the rest of the body comes with the answer");
            let page = response.into_body().collect().await.unwrap().to_bytes();
            assert!(
                String::from_utf8_lossy(&page).contains("413"),
                "the answer is whole at once"
            );
            crate::body::discard(rest).await;
            assert_eq!(
                read.load(std::sync::atomic::Ordering::Relaxed),
                600,
                "{content_length:?}"
            );
        }
    }

    #[tokio::test]
    async fn body_at_the_limit_passes() {
        let request = request("/").body(full("0123456789")).unwrap();
        let sent = send(request).await;
        assert_eq!(sent.status, 200);
        assert!(sent.reached && sent.events.is_empty());
    }
}
