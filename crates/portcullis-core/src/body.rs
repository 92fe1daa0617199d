//! The one body type the layers exchange.
//!
//! Layers wrap, inspect or replace bodies, so they need a single concrete type
//! that can hold an upstream stream, a generated page, or a chain of both.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A streamed body; never buffered as a whole unless a layer says so with a bound.
pub type Body = UnsyncBoxBody<Bytes, BodyError>;

/// Why a body stream failed.
///
/// A concrete type rather than a bare boxed trait object: hyper boxes body
/// errors itself, and rustc cannot prove that conversion for an already-boxed
/// trait object inside spawned connection tasks.
#[derive(Debug)]
pub struct BodyError(BoxError);

impl BodyError {
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }

    /// True if the failure was caused by an error of type `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.0.is::<E>()
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body that fails at once: the answer is cut off rather than sent short.
pub fn failed(error: impl Into<BoxError>) -> Body {
    let error = BodyError::new(error);
    let frames = futures_util::stream::once(std::future::ready(Err::<http_body::Frame<Bytes>, _>(error)));
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

/// Boxes any body whose errors can be boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(BodyError::new).boxed_unsync()
}

/// `body`, with its data bytes counted as they pass; `done` gets the count
/// once, when the body is dropped: sent whole, failed or abandoned.
pub fn counted(body: Body, done: impl FnOnce(u64) + Send + Unpin + 'static) -> Body {
    Counted {
        inner: body,
        bytes: 0,
        done: Some(done),
    }
    .boxed_unsync()
}

struct Counted<F: FnOnce(u64)> {
    inner: Body,
    bytes: u64,
    done: Option<F>,
}

impl<F: FnOnce(u64) + Unpin> http_body::Body for Counted<F> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
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

impl<F: FnOnce(u64)> Drop for Counted<F> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.bytes);
        }
    }
}

/// How much of a refused request's body is read and discarded after the
/// refusal.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// What is left of a request body that was answered before it was read,
/// attached to the answer. The server that owns the connection sends the
/// answer at once, then reads and discards this ([`discard`]) instead of
/// dropping it.
///
/// A client still sending when its answer comes must be let finish: over
/// HTTP/1.1, closing a socket with unread data makes the kernel send a reset
/// that can destroy the answer before the client reads it; over HTTP/2, a
/// request stream dropped unread is reset, and many clients report that as a
/// network error. Waiting for the body before answering is no better: a
/// client that sees an error status stops sending, and both sides would wait.
/// nginx does the same ("lingering close", discarded request bodies).
#[derive(Clone)]
pub struct Unread(Arc<Mutex<Option<Body>>>);

impl Unread {
    /// Attaches `rest` to `answer`.
    pub fn attach(answer: &mut http::Response<Body>, rest: Body) {
        answer.extensions_mut().insert(Self(Arc::new(Mutex::new(Some(rest)))));
    }

    /// The body left unread behind `response`, if any.
    pub fn take<B>(response: &mut http::Response<B>) -> Option<Body> {
        let unread = response.extensions_mut().remove::<Self>()?;
        let rest = unread.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        rest
    }
}

/// Reads and discards `rest` until it ends, fails (a client that stalls meets
/// its body read timeout) or passes [`DRAIN_LIMIT`] bytes.
pub async fn discard(mut rest: Body) {
    let mut left = DRAIN_LIMIT;
    while let Some(Ok(frame)) = rest.frame().await {
        let len = frame.data_ref().map_or(0, |data| data.len() as u64);
        match left.checked_sub(len) {
            Some(remaining) if remaining > 0 => left = remaining,
            _ => return,
        }
    }
}

/// The first bytes of a body, read up to a bound, and a body that replays
/// them followed by whatever was not read yet.
pub struct Prefix {
    pub bytes: Bytes,
    pub body: Body,
}

/// Reads at most about `limit` bytes of `body` (whole frames, so a little more
/// may be held) without losing anything: the returned body is the original.
pub async fn read_prefix(body: Body, limit: usize) -> Result<Prefix, BodyError> {
    let Frames { frames, seen, rest, .. } = read_frames(body, limit).await?;
    Ok(Prefix {
        bytes: seen.freeze(),
        body: Replay { frames, rest }.boxed_unsync(),
    })
}

/// A body read to its end within a bound, or the body itself, unchanged.
pub enum Bounded {
    Whole(Bytes),
    /// Longer than the bound, or with trailers: replayed from its start.
    Longer(Body),
}

/// Reads `body` whole if it has at most `limit` bytes and no trailers;
/// otherwise gives it back as it was, having held at most about `limit` bytes.
pub async fn read_bounded(body: Body, limit: usize) -> Result<Bounded, BodyError> {
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Ok(Bounded::Longer(body));
    }
    let read = read_frames(body, limit + 1).await?;
    let trailers = read.frames.iter().any(|frame| !frame.is_data());
    if read.ended && read.seen.len() <= limit && !trailers {
        return Ok(Bounded::Whole(read.seen.freeze()));
    }
    Ok(Bounded::Longer(read.replay()))
}

struct Frames {
    frames: std::collections::VecDeque<http_body::Frame<Bytes>>,
    seen: bytes::BytesMut,
    ended: bool,
    rest: Body,
}

impl Frames {
    fn replay(self) -> Body {
        Replay {
            frames: self.frames,
            rest: self.rest,
        }
        .boxed_unsync()
    }
}

/// Reads frames until `limit` bytes are seen or the body ends.
async fn read_frames(mut body: Body, limit: usize) -> Result<Frames, BodyError> {
    let mut frames = std::collections::VecDeque::new();
    let mut seen = bytes::BytesMut::new();
    let mut ended = false;
    while seen.len() < limit {
        let Some(frame) = body.frame().await else {
            ended = true;
            break;
        };
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            seen.extend_from_slice(data);
        }
        frames.push_back(frame);
    }
    Ok(Frames {
        frames,
        seen,
        ended: ended || http_body::Body::is_end_stream(&body),
        rest: body,
    })
}

struct Replay {
    frames: std::collections::VecDeque<http_body::Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        match self.frames.pop_front() {
            Some(frame) => std::task::Poll::Ready(Some(Ok(frame))),
            None => std::pin::Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(rest.lower() + buffered);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::StreamBody;

    fn chunked(chunks: &[&'static [u8]]) -> Body {
        let frames = chunks
            .iter()
            .map(|c| Ok::<_, BodyError>(http_body::Frame::data(Bytes::from_static(c))));
        StreamBody::new(stream::iter(frames.collect::<Vec<_>>())).boxed_unsync()
    }

    #[tokio::test]
    async fn counted_bodies_report_their_bytes_once_read_or_abandoned() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let report = |seen: &Arc<Mutex<Vec<u64>>>| {
            let seen = seen.clone();
            move |bytes| seen.lock().unwrap().push(bytes)
        };
        let whole = counted(chunked(&[b"abc", b"defg"]), report(&seen));
        assert_eq!(whole.collect().await.unwrap().to_bytes(), "abcdefg");
        let mut abandoned = counted(chunked(&[b"abc", b"defg"]), report(&seen));
        abandoned.frame().await.unwrap().unwrap();
        drop(abandoned);
        assert_eq!(*seen.lock().unwrap(), [7, 3]);
    }

    #[tokio::test]
    async fn prefix_is_bounded_and_nothing_is_lost() {
        let prefix = read_prefix(chunked(&[b"abc", b"def", b"ghi"]), 4).await.unwrap();
        assert_eq!(&prefix.bytes[..], b"abcdef");
        let all = prefix.body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcdefghi");
    }

    #[tokio::test]
    async fn short_bodies_are_read_whole() {
        let prefix = read_prefix(full("tiny"), 1024).await.unwrap();
        assert_eq!(&prefix.bytes[..], b"tiny");
        assert_eq!(http_body::Body::size_hint(&prefix.body).exact(), Some(4));
        assert_eq!(&prefix.body.collect().await.unwrap().to_bytes()[..], b"tiny");
    }
}
