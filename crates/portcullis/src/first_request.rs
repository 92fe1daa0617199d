//! A connection before its first request reaches the stack.
//!
//! hyper answers some requests itself, before any layer sees them: a request
//! head larger than its buffer gets an empty `431` with none of the
//! gateway's headers, a head it cannot parse an empty `400`. Until the first
//! request is dispatched, whatever hyper writes is such an answer, so
//! [`Watched`] replaces it with the gateway's own neutral page, with the
//! security headers and a request id, and logs it (`414` when the request
//! line alone filled the buffer). Later requests on a keep-alive connection
//! keep hyper's answer: from outside, a new head cannot be told from the
//! previous body.
//!
//! It also notes whether any byte arrived, so a connection cut by the header
//! timeout with part of a head (slowloris) can be told from a silent one.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use portcullis_core::body::{self, Body};
use portcullis_core::client_ip::ip_text;
use portcullis_core::context::{ContextData, RequestContext};
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::fingerprint::FingerprintLayer;
use portcullis_core::headers::SecurityHeadersLayer;
use portcullis_core::request_id;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::{service_fn, ServiceBuilder, ServiceExt};

use crate::config::Config;
use crate::log::JsonLog;

/// What one connection has shown so far. Cheap to clone.
#[derive(Clone, Default)]
pub struct FirstRequest(Arc<State>);

#[derive(Default)]
struct State {
    bytes_arrived: AtomicBool,
    /// A line end arrived before the first request was dispatched.
    line_ended: AtomicBool,
    dispatched: AtomicBool,
}

impl FirstRequest {
    /// `stream`, watched; hyper's own answers replaced with `refusals`.
    pub fn watch<I>(&self, stream: I, refusals: Option<Arc<HeadRefusals>>, client: IpAddr) -> Watched<I> {
        Watched {
            inner: stream,
            first: self.clone(),
            refusals,
            client,
            replacing: None,
            watching: true,
        }
    }

    /// The stack has a request: from now on hyper's writes are its answers.
    pub fn dispatched(&self) {
        if !self.0.dispatched.load(Ordering::Relaxed) {
            self.0.dispatched.store(true, Ordering::Relaxed);
        }
    }

    /// Bytes came, but never a whole request head.
    pub fn stalled(&self) -> bool {
        self.0.bytes_arrived.load(Ordering::Relaxed) && !self.0.dispatched.load(Ordering::Relaxed)
    }
}

/// The gateway's answers to heads hyper refuses, rendered once per worker
/// with a placeholder request id that each use replaces.
pub struct HeadRefusals {
    pages: Vec<(StatusCode, Vec<u8>)>,
}

/// As long as a generated id, so a page's Content-Length holds after the swap.
const PLACEHOLDER_ID: &str = "00000000000000000000000000000000";

impl HeadRefusals {
    /// The pages for `400`, `414` and `431`, with the global headers policy
    /// (HSTS included when `https`). `None` if one could not be rendered at
    /// once; hyper's answers then go out as they are.
    pub fn render(config: &Config, https: bool) -> Option<Arc<Self>> {
        let policies = &config.policies;
        let pages = [
            StatusCode::BAD_REQUEST,
            StatusCode::URI_TOO_LONG,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ]
        .into_iter()
        .map(|status| {
            let neutral = policies.pages.clone();
            let answer = service_fn(move |request: Request<Body>| {
                let page = neutral.render(status, request.extensions().get::<RequestContext>());
                std::future::ready(Ok::<_, std::convert::Infallible>(page))
            });
            let stack = ServiceBuilder::new()
                .layer(SecurityHeadersLayer::from(policies.headers.clone()))
                .layer(FingerprintLayer::from(policies.fingerprint.clone()))
                .service(answer);
            let response = stack.oneshot(placeholder_request(https)).now_or_never()?.ok()?;
            Some((status, serialize(response)?))
        })
        .collect::<Option<Vec<_>>>()?;
        Some(Arc::new(Self { pages }))
    }

    /// The page for `status` with a fresh request id, and the id.
    fn page(&self, status: StatusCode) -> Option<(Vec<u8>, HeaderValue)> {
        let (_, template) = self.pages.iter().find(|(s, _)| *s == status)?;
        let id = request_id::generate();
        Some((replace_all(template, PLACEHOLDER_ID.as_bytes(), id.as_bytes()), id))
    }
}

fn placeholder_request(https: bool) -> Request<Body> {
    let unknown = IpAddr::from([0, 0, 0, 0]);
    let mut request = Request::new(body::empty());
    request.extensions_mut().insert(RequestContext::from(ContextData {
        request_id: HeaderValue::from_static(PLACEHOLDER_ID),
        client_ip: unknown,
        peer: SocketAddr::new(unknown, 0),
        peer_text: ip_text(unknown),
        client_ip_text: ip_text(unknown),
        peer_trusted: false,
        https,
        wants_json: false,
    }));
    request
}

/// A whole HTTP/1.1 response as bytes, closing the connection.
fn serialize(response: Response<Body>) -> Option<Vec<u8>> {
    let (parts, body) = response.into_parts();
    let body = body.collect().now_or_never()?.ok()?.to_bytes();
    let reason = parts.status.canonical_reason().unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_str()).into_bytes();
    let mut headers = parts.headers;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(request_id::HEADER, HeaderValue::from_static(PLACEHOLDER_ID));
    for (name, value) in &headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|window| window == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A stream watched until its first request is dispatched.
pub struct Watched<I> {
    inner: I,
    first: FirstRequest,
    refusals: Option<Arc<HeadRefusals>>,
    client: IpAddr,
    /// Our page in place of hyper's answer, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
    /// Until the first dispatch (or a replaced answer): after it, reads and
    /// writes pass straight through.
    watching: bool,
}

impl<I> Watched<I> {
    /// Whether reads and writes still need a look.
    fn watching(&mut self) -> bool {
        if self.watching && self.replacing.is_none() && self.first.0.dispatched.load(Ordering::Relaxed) {
            self.watching = false;
        }
        self.watching
    }
}

impl<I: AsyncWrite + Unpin> Watched<I> {
    /// Whether hyper's write `first` is taken over: it is hyper's own
    /// answer, before any request was dispatched.
    fn takes_over(&mut self, first: &[u8]) -> bool {
        if self.replacing.is_some() {
            return true; // The rest of hyper's answer goes nowhere.
        }
        let state = &self.first.0;
        if state.dispatched.load(Ordering::Relaxed) || !first.starts_with(b"HTTP/1.1 4") {
            return false;
        }
        let Some(refusals) = &self.refusals else {
            return false;
        };
        let hyper_status = first.get(9..12).and_then(|code| StatusCode::from_bytes(code).ok());
        let (status, rule) = match hyper_status {
            // The buffer filled before the request line ended: the URI is too long.
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE) if !state.line_ended.load(Ordering::Relaxed) => {
                (StatusCode::URI_TOO_LONG, "max_uri_bytes")
            }
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE) => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "max_header_bytes")
            }
            Some(StatusCode::URI_TOO_LONG) => (StatusCode::URI_TOO_LONG, "max_uri_bytes"),
            _ => (StatusCode::BAD_REQUEST, "malformed_request"),
        };
        let Some((page, id)) = refusals.page(status) else {
            return false;
        };
        JsonLog.emit(SecurityEvent {
            kind: "limits",
            rule,
            action: "refused",
            request_id: id.to_str().ok().map(str::to_owned),
            client_ip: Some(self.client),
            detail: None,
        });
        self.replacing = Some((page, 0));
        true
    }

    /// Writes what is left of our page; ready once all of it is out.
    fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((page, written)) = self.replacing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while *written < page.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &page[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.watching() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let state = &self.first.0;
        if buf.filled().len() > before && !state.dispatched.load(Ordering::Relaxed) {
            state.bytes_arrived.store(true, Ordering::Relaxed);
            if buf.filled()[before..].contains(&b'\n') {
                state.line_ended.store(true, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.watching() && self.takes_over(data) {
            // Reported written: hyper's answer is replaced, not sent.
            return match self.poll_page(cx) {
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                _ => Poll::Ready(Ok(data.len())),
            };
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_page(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_page(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.watching() {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        }
        let first = data
            .iter()
            .find(|slice| !slice.is_empty())
            .map_or(&[][..], |slice| &slice[..]);
        if self.takes_over(first) {
            let total = data.iter().map(|slice| slice.len()).sum();
            return match self.poll_page(cx) {
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                _ => Poll::Ready(Ok(total)),
            };
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_replaced() {
        assert_eq!(replace_all(b"a-XX-b-XX", b"XX", b"12"), b"a-12-b-12");
        assert_eq!(replace_all(b"none", b"XX", b"12"), b"none");
    }
}
