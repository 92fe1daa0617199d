//! Request limits (checklist C9): URI length (414), header size (431) and body
//! size (413), checked before anything reaches the upstream.
//!
//! A declared `Content-Length` over the limit is refused at once. A streamed
//! (chunked) body is counted as it flows; the moment it passes the limit the
//! stream fails, the upstream request is aborted, and the client gets a 413.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::body::{Body, BodyError};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Verdict};

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

pub struct RequestLimits {
    config: LimitsConfig,
    pages: NeutralPages,
    events: Events,
}

pub type RequestLimitsLayer = PolicyLayer<RequestLimits>;

/// Set when a streamed body went over the limit.
pub struct Overflow {
    tripped: Arc<AtomicBool>,
    context: Option<RequestContext>,
}

impl RequestLimits {
    pub fn new(config: LimitsConfig, pages: NeutralPages, events: Events) -> Self {
        Self { config, pages, events }
    }

    fn refuse(&self, status: StatusCode, rule: &'static str, context: Option<&RequestContext>) -> Response<Body> {
        if let Some(context) = context {
            self.events.emit(context.event("limits", rule, "refused"));
        }
        let mut page = self.pages.render(status, context);
        // The rest of an oversized request is not worth reading: close the connection.
        page.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        page
    }

    fn check_head(&self, request: &Request<Body>) -> Result<(), (StatusCode, &'static str)> {
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
            return Verdict::Answer(self.refuse(status, rule, context.as_ref()));
        }
        let tripped = Arc::new(AtomicBool::new(false));
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        *request.body_mut() = Counted {
            inner: body,
            left: self.config.max_body_bytes,
            tripped: tripped.clone(),
        }
        .boxed_unsync();
        Verdict::Forward(Overflow { tripped, context })
    }

    async fn on_response(self: Arc<Self>, overflow: Overflow, response: Response<Body>) -> Response<Body> {
        if overflow.tripped.load(Ordering::Acquire) {
            return self.refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "max_body_bytes",
                overflow.context.as_ref(),
            );
        }
        response
    }
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

struct Counted {
    inner: Body,
    left: u64,
    tripped: Arc<AtomicBool>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
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
                self.tripped.store(true, Ordering::Release);
                Poll::Ready(Some(Err(BodyError::new(BodyTooLarge))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use crate::events::testing::Recorder;
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

    /// An upstream that reads the whole body and answers 200, or 502 if reading failed.
    async fn send(request: Request<Body>) -> (StatusCode, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let layer = PolicyLayer::new(RequestLimits::new(limits(), NeutralPages::default(), recorder.clone()));
        let service = layer.layer(service_fn(|req: Request<Body>| async move {
            let status = if req.into_body().collect().await.is_ok() {
                200
            } else {
                502
            };
            Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(full("")).unwrap())
        }));
        (service.oneshot(request).await.unwrap().status(), recorder)
    }

    #[tokio::test]
    async fn long_uri_is_414() {
        let request = Request::builder()
            .uri(format!("/{}", "a".repeat(40)))
            .body(full(""))
            .unwrap();
        assert_eq!(send(request).await.0, 414);
    }

    #[tokio::test]
    async fn large_headers_are_431() {
        let request = Request::builder()
            .uri("/")
            .header("cookie", "x".repeat(300))
            .body(full(""))
            .unwrap();
        assert_eq!(send(request).await.0, 431);
    }

    #[tokio::test]
    async fn declared_large_body_is_413_before_upstream() {
        let request = Request::builder()
            .uri("/")
            .header("content-length", "11")
            .body(full("01234567890"))
            .unwrap();
        assert_eq!(send(request).await.0, 413);
    }

    #[tokio::test]
    async fn streamed_body_over_the_limit_is_413() {
        let chunks: Vec<Result<_, BodyError>> =
            (0..2).map(|_| Ok(Frame::data(Bytes::from_static(b"123456")))).collect();
        let request = Request::builder()
            .uri("/")
            .body(StreamBody::new(stream::iter(chunks)).boxed_unsync())
            .unwrap();
        assert_eq!(send(request).await.0, 413);
    }

    #[tokio::test]
    async fn body_at_the_limit_passes() {
        let request = Request::builder().uri("/").body(full("0123456789")).unwrap();
        let (status, events) = send(request).await;
        assert_eq!(status, 200);
        assert!(events.taken().is_empty());
    }
}
