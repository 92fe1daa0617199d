//! Request heads as hyper reads them, from below HTTP: its own answers to
//! heads it refuses, and heads that never finish.
//!
//! hyper answers some requests itself, before any layer sees them: a request
//! head larger than its buffer gets an empty `431` with none of the
//! gateway's headers, a head it cannot parse an empty `400`. Such an answer
//! has one exact form (`connection: close`, `content-length: 0` and `date`,
//! nothing else), which nothing that passes through the layers can have
//! (they always add the security headers), so [`Watched`] recognises it in
//! hyper's writes and sends the gateway's own neutral page instead, with the
//! security headers and a request id, and logs it: `414` when no line end
//! came within the last buffer's worth of bytes (the request line alone
//! filled it), else `431`.
//!
//! [`HeadWatch`] also counts the bytes that arrived since the last request
//! was dispatched, so a connection cut by the header timeout with part of a
//! head (slowloris) can be told from a silent or idle keep-alive one.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use portcullis_core::body::{self, Body};
use portcullis_core::client_ip::ip_text;
use portcullis_core::context::{ContextData, RequestContext};
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::request_id;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt;

use crate::config::Config;
use crate::log::JsonLog;
use crate::stack;

/// What one connection's reads have shown, shared by its stream and its
/// service. Cheap to clone.
#[derive(Clone, Default)]
pub struct HeadWatch(Arc<State>);

#[derive(Default)]
struct State {
    /// Bytes read on the connection.
    read: AtomicU64,
    /// `read` when the last request was dispatched (0 before the first).
    read_at_dispatch: AtomicU64,
    /// The last request had a body, so what came after it is not all head.
    last_had_body: AtomicBool,
}

impl HeadWatch {
    /// `stream`, watched; hyper's own answers replaced with `refusals`.
    /// `head_buffer` is hyper's limit for a request head.
    pub fn watch<I>(
        &self,
        stream: I,
        refusals: Option<Arc<HeadRefusals>>,
        head_buffer: usize,
        client: IpAddr,
    ) -> Watched<I> {
        Watched {
            inner: stream,
            watch: self.clone(),
            refusals,
            client,
            head_buffer: head_buffer as u64,
            since_line_end: 0,
            replacing: None,
        }
    }

    /// hyper has read a whole head and hands its request (`with_body`, or
    /// not) to the stack.
    pub fn dispatched(&self, with_body: bool) {
        let state = &self.0;
        state
            .read_at_dispatch
            .store(state.read.load(Ordering::Relaxed), Ordering::Relaxed);
        state.last_had_body.store(with_body, Ordering::Relaxed);
    }

    /// Part of a head came and no more: bytes arrived since the last dispatch
    /// (or, before the first, at all), unless the last request had a body,
    /// which those bytes may be.
    pub fn stalled(&self) -> bool {
        let state = &self.0;
        !state.last_had_body.load(Ordering::Relaxed)
            && state.read.load(Ordering::Relaxed) > state.read_at_dispatch.load(Ordering::Relaxed)
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
        let pages = [
            StatusCode::BAD_REQUEST,
            StatusCode::URI_TOO_LONG,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ]
        .into_iter()
        .map(|status| {
            let page = stack::refusal_page(config, status).oneshot(placeholder_request(https));
            Some((status, serialize(page.now_or_never()?.ok()?)?))
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

/// A whole HTTP/1.1 response as bytes (the page says `Connection: close`).
fn serialize(response: Response<Body>) -> Option<Vec<u8>> {
    let (parts, body) = response.into_parts();
    let body = body.collect().now_or_never()?.ok()?.to_bytes();
    let reason = parts.status.canonical_reason().unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", parts.status.as_str()).into_bytes();
    let mut headers = parts.headers;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
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

/// A stream whose hyper-made answers are replaced.
pub struct Watched<I> {
    inner: I,
    watch: HeadWatch,
    refusals: Option<Arc<HeadRefusals>>,
    client: IpAddr,
    /// hyper's limit for a request head, in bytes.
    head_buffer: u64,
    /// Bytes read since the last line end.
    since_line_end: u64,
    /// Our page in place of hyper's answer, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

/// The status of hyper's own answer, if `write` is one: `HTTP/1.1 STATUS
/// REASON`, then `connection: close`, `content-length: 0` and a 29-byte
/// `date`, and nothing else.
fn hypers_own_answer(write: &[u8]) -> Option<StatusCode> {
    let rest = write.strip_prefix(b"HTTP/1.1 ")?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    let headers = format!(
        " {}\r\nconnection: close\r\ncontent-length: 0\r\ndate: ",
        status.canonical_reason()?
    );
    let date = rest.get(3..)?.strip_prefix(headers.as_bytes())?;
    (date.len() == 29 + 4 && date.ends_with(b"\r\n\r\n")).then_some(status)
}

impl<I: AsyncWrite + Unpin> Watched<I> {
    /// Whether hyper's write `first` is taken over: it is hyper's own answer.
    fn takes_over(&mut self, first: &[u8]) -> bool {
        if self.replacing.is_some() {
            return true; // The connection ends with our page.
        }
        if !first.starts_with(b"HTTP/1.1 4") {
            return false; // Every other write, at the cost of one comparison.
        }
        let (Some(hyper_status), Some(refusals)) = (hypers_own_answer(first), &self.refusals) else {
            return false;
        };
        let (status, rule) = match hyper_status {
            // No line end in a whole buffer's worth: the request line alone filled it.
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE if self.since_line_end >= self.head_buffer => {
                (StatusCode::URI_TOO_LONG, "max_uri_bytes")
            }
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "max_header_bytes")
            }
            StatusCode::URI_TOO_LONG => (StatusCode::URI_TOO_LONG, "max_uri_bytes"),
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
            exclusion: None,
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
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let arrived = &buf.filled()[before..];
        if !arrived.is_empty() {
            self.since_line_end = match memchr::memrchr(b'\n', arrived) {
                Some(at) => (arrived.len() - at - 1) as u64,
                None => self.since_line_end + arrived.len() as u64,
            };
            self.watch.0.read.fetch_add(arrived.len() as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.takes_over(data) {
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
    fn only_hypers_exact_answers_are_recognised() {
        let date = "date: Tue, 01 Dec 2026 10:33:25 GMT\r\n\r\n";
        let own = |head: &str| format!("{head}\r\nconnection: close\r\ncontent-length: 0\r\n{date}");
        assert_eq!(
            hypers_own_answer(own("HTTP/1.1 431 Request Header Fields Too Large").as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            hypers_own_answer(own("HTTP/1.1 400 Bad Request").as_bytes()),
            Some(StatusCode::BAD_REQUEST)
        );
        // What passes through the layers always has more headers.
        let proxied =
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\nx-content-type-options: nosniff\r\n";
        assert_eq!(hypers_own_answer(format!("{proxied}{date}").as_bytes()), None);
        assert_eq!(
            hypers_own_answer(format!("{}x", own("HTTP/1.1 400 Bad Request")).as_bytes()),
            None
        );
        assert_eq!(hypers_own_answer(b"HTTP/1.1 4"), None);
    }

    proptest::proptest! {
        // Writes carry the app's bytes too: any of them, a decision and no panic.
        #[test]
        fn any_write_is_judged_without_panicking(write in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = hypers_own_answer(&write);
            let mut prefixed = b"HTTP/1.1 4".to_vec();
            prefixed.extend_from_slice(&write);
            let _ = hypers_own_answer(&prefixed);
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        assert_eq!(replace_all(b"a-XX-b-XX", b"XX", b"12"), b"a-12-b-12");
        assert_eq!(replace_all(b"none", b"XX", b"12"), b"none");
    }
}
