//! Idle HTTP/1.1 connections, held without hyper.
//!
//! hyper keeps two 8 KiB buffers for each HTTP/1.1 connection for as long as
//! the connection lives, idle or not (hyper 1.12 `proto/h1/io.rs`): 10,000
//! idle keep-alive clients cost 160 MiB that way. So between requests the
//! socket is taken back from hyper. Once every request read on it has been
//! answered and the answer flushed, and no byte of a next request has come
//! for [`REST_AFTER`], [`Lent`] ends hyper's connection as a client closing
//! would, without closing the socket. The socket then waits alone
//! ([`rest`]) and a new hyper connection serves its next request.
//!
//! That is only safe when hyper holds no byte of a next request, which hyper
//! does not tell. [`Framing`] follows the bytes hyper is given, head by head
//! (parsed with httparse, as hyper parses them) and body by body, so it knows
//! when they are all whole requests. What it does not follow (chunked bodies,
//! upgrades, CONNECT, heads hyper would refuse) keeps the connection with
//! hyper until it closes, as before.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::timeouts::InFlight;

/// How long a connection stays idle with hyper before its socket is taken
/// back. A client that sends its next request at once (a page's assets, a
/// busy API client) keeps its hyper connection, so the hand-over, a new
/// hyper connection and its buffers, is paid only by connections that rest.
pub const REST_AFTER: Duration = Duration::from_millis(50);

/// hyper's own limit on the header fields of a request.
const MAX_HEADERS: usize = 100;

/// Longer heads are not followed: they are rare, and a head is copied while
/// it spans reads.
const MAX_FOLLOWED_HEAD: usize = 16 * 1024;

/// Where the request stream given to hyper stands.
#[derive(Debug, PartialEq)]
pub enum Framing {
    /// Between requests (empty) or inside a head that spans reads (its bytes so far).
    Head(Vec<u8>),
    /// Inside a request body, with this many bytes still to come.
    Body(u64),
    /// Not followed any more on this connection.
    Lost,
}

impl Default for Framing {
    fn default() -> Self {
        Self::Head(Vec::new())
    }
}

impl Framing {
    /// Everything given so far was whole requests.
    pub fn between_requests(&self) -> bool {
        matches!(self, Self::Head(partial) if partial.is_empty())
    }

    /// Follows `bytes`, the next ones given to hyper.
    pub fn follow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self {
                Self::Lost => return,
                Self::Body(left) => {
                    let taken = bytes.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= taken as u64;
                    bytes = &bytes[taken..];
                    if *left == 0 {
                        *self = Self::default();
                    }
                }
                Self::Head(partial) if partial.is_empty() => match read_head(bytes) {
                    Head::Whole { length, body } => {
                        bytes = &bytes[length..];
                        *self = body;
                    }
                    Head::Partial => return self.keep_partial(bytes),
                    Head::Refused => *self = Self::Lost,
                },
                Self::Head(partial) => {
                    let before = partial.len();
                    self.keep_partial(bytes);
                    let Self::Head(partial) = self else { return };
                    if !ends_a_line_pair(partial, before) {
                        return;
                    }
                    match read_head(partial) {
                        Head::Whole { length, body } => {
                            // The part before was not a whole head, so it ends in `bytes`.
                            let Some(rest) = length.checked_sub(before).and_then(|end| bytes.get(end..)) else {
                                *self = Self::Lost;
                                return;
                            };
                            bytes = rest;
                            *self = body;
                        }
                        Head::Partial => return,
                        Head::Refused => *self = Self::Lost,
                    }
                }
            }
        }
    }

    fn keep_partial(&mut self, bytes: &[u8]) {
        if let Self::Head(partial) = self {
            if partial.len() + bytes.len() > MAX_FOLLOWED_HEAD {
                *self = Self::Lost;
            } else {
                partial.extend_from_slice(bytes);
            }
        }
    }
}

/// Whether `head` has an empty line ending after `from`: a head can only
/// become whole there, so a head trickled in byte by byte is not parsed
/// again for every byte.
fn ends_a_line_pair(head: &[u8], from: usize) -> bool {
    let window = &head[from.saturating_sub(2)..];
    window.windows(2).any(|pair| pair == b"\n\n") || window.windows(3).any(|three| three == b"\n\r\n")
}

enum Head {
    Whole { length: usize, body: Framing },
    Partial,
    Refused,
}

fn read_head(bytes: &[u8]) -> Head {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(length)) => Head::Whole {
            length,
            body: body_framing(&request),
        },
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Refused,
    }
}

/// The body that follows `request`'s head, if this reading follows it.
fn body_framing(request: &httparse::Request) -> Framing {
    if request.method == Some("CONNECT") {
        return Framing::Lost;
    }
    let mut length = None;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding") || name.eq_ignore_ascii_case("upgrade") {
            return Framing::Lost;
        }
        if name.eq_ignore_ascii_case("content-length") {
            let digits = header.value;
            if length.is_some() || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Framing::Lost;
            }
            let Some(value) = std::str::from_utf8(digits).ok().and_then(|text| text.parse().ok()) else {
                return Framing::Lost;
            };
            length = Some(value);
        }
    }
    match length {
        None | Some(0) => Framing::default(),
        Some(length) => Framing::Body(length),
    }
}

/// Where a [`Lent`] socket goes back to when hyper lets it go idle, with
/// the moment it became idle.
pub struct Home<S>(Arc<Mutex<Option<(S, Instant)>>>);

impl<S> Default for Home<S> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<S> Home<S> {
    /// The socket, if the last hyper connection gave it back idle.
    pub fn take(&self) -> Option<(S, Instant)> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    fn put(&self, stream: S, idle_since: Instant) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((stream, idle_since));
    }
}

/// A socket lent to one hyper connection, which ends (as on a client's
/// close) once the connection is idle; the socket then goes back home.
pub struct Lent<S> {
    stream: Option<S>,
    home: Home<S>,
    framing: Framing,
    /// Requests whose answer has not been fully handed to hyper.
    in_flight: InFlight,
    /// Written since the last completed flush.
    unflushed: bool,
    /// hyper was told the client closed; the socket goes home on drop.
    given_back: bool,
    /// When the connection became idle, while it is.
    idle_since: Option<Instant>,
    /// Wakes hyper once the connection has been idle for [`REST_AFTER`];
    /// made at the first rest, re-armed only when it fires.
    rest_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Lent<S> {
    pub fn new(stream: S, home: &Home<S>, in_flight: InFlight) -> Self {
        Self {
            stream: Some(stream),
            home: Home(home.0.clone()),
            framing: Framing::default(),
            in_flight,
            unflushed: false,
            given_back: false,
            idle_since: None,
            rest_timer: None,
        }
    }

    fn idle(&self) -> bool {
        self.framing.between_requests() && !self.unflushed && !self.in_flight.busy()
    }

    /// Whether the idle connection has waited [`REST_AFTER`]; if not, the
    /// timer will wake hyper to ask again. The timer is only reset when it
    /// has fired, so a busy connection pays a clock read per request, not a
    /// timer update.
    fn rest_is_due(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let due = *self.idle_since.get_or_insert(now) + REST_AFTER;
        if due <= now {
            return true;
        }
        let timer = self
            .rest_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            if timer.is_elapsed() {
                timer.as_mut().reset(due);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= due {
                return true;
            }
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut S>>
    where
        S: Unpin,
    {
        match &mut self.stream {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<S> Drop for Lent<S> {
    fn drop(&mut self) {
        if let (true, Some(stream)) = (self.given_back, self.stream.take()) {
            self.home.put(stream, self.idle_since.unwrap_or_else(Instant::now));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lent<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.given_back {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match self.stream()?.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                self.idle_since = None;
                self.framing.follow(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.idle() => {
                if !self.rest_is_due(cx) {
                    return Poll::Pending;
                }
                // An end of stream for hyper, which then lets the socket go.
                self.given_back = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Lent<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.wrote();
        self.stream()?.poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.wrote();
        self.stream()?.poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(S::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = self.stream()?.poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.unflushed = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.given_back {
            return Poll::Ready(Ok(())); // The socket stays open for its next request.
        }
        self.stream()?.poll_shutdown(cx)
    }
}

impl<S> Lent<S> {
    /// Anything written after the socket was given back means hyper still
    /// had something to say: it keeps the socket, and closes it when done.
    fn wrote(&mut self) {
        self.unflushed = true;
        self.given_back = false;
        self.idle_since = None;
    }
}

/// A connection's socket under its TLS session, if it has one.
pub trait Socket {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Waits, holding no buffer, until `stream`'s next request starts to
/// arrive; `None` when it stays silent until `keep_alive` after it became
/// idle, or the server drains.
pub async fn rest<S: Socket>(
    (stream, idle_since): (S, Instant),
    keep_alive: Duration,
    draining: &mut watch::Receiver<bool>,
) -> Option<S> {
    let woken = tokio::select! {
        ready = stream.tcp().readable() => ready.is_ok(),
        _ = tokio::time::sleep_until(idle_since + keep_alive) => false,
        _ = draining.wait_for(|draining| *draining) => false,
    };
    woken.then_some(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn followed(stream: &[u8]) -> Framing {
        let mut framing = Framing::default();
        framing.follow(stream);
        framing
    }

    #[test]
    fn whole_requests_end_between_requests() {
        let requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(followed(requests).between_requests());
        for cut in 1..requests.len() {
            assert!(
                !followed(&requests[..cut]).between_requests() || is_a_request_end(requests, cut),
                "{cut}"
            );
        }
    }

    /// The places in the stream above where one request ends.
    fn is_a_request_end(requests: &[u8], cut: usize) -> bool {
        let first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".len();
        let second = first + b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".len();
        cut == first || cut == second || cut == requests.len()
    }

    #[test]
    fn bodies_are_counted_through() {
        assert_eq!(
            followed(b"PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n1234"),
            Framing::Body(6)
        );
        assert_eq!(
            followed(b"GET / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"),
            Framing::default()
        );
    }

    #[test]
    fn what_is_not_followed_is_lost_for_good() {
        for head in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            let mut framing = followed(head);
            assert_eq!(framing, Framing::Lost, "{}", String::from_utf8_lossy(head));
            framing.follow(b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(framing, Framing::Lost);
        }
        let long = format!("GET / HTTP/1.1\r\nCookie: {}", "a".repeat(MAX_FOLLOWED_HEAD));
        assert_eq!(followed(long.as_bytes()), Framing::Lost);
    }

    proptest! {
        /// However the stream is cut into reads, it is followed to the same place.
        #[test]
        fn reads_can_be_cut_anywhere(cuts in proptest::collection::vec(0usize..200, 0..12), tail in 0usize..200) {
            let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /c HTTP/1.1\n\nHEAD / HTTP/1.1\r\nHost: y\r\n\r\nGET /partial HTTP/1.1\r\nHost";
            let end = stream.len() - tail.min(stream.len());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(end)).collect();
            cuts.push(end);
            cuts.sort_unstable();
            let mut framing = Framing::default();
            let mut from = 0;
            for cut in cuts {
                framing.follow(&stream[from..cut]);
                from = cut;
            }
            prop_assert_eq!(framing, followed(&stream[..end]));
        }
    }
}
