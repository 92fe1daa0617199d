//! Timeouts hyper does not provide.
//!
//! - [`IdleTimeout`] closes HTTP/2 connections that sit idle: no request
//!   waiting for its response and no bytes moving for the keep-alive timeout.
//!   hyper bounds the wait between HTTP/1.1 requests with its header timer but
//!   has no such bound for HTTP/2, so an idle h2 client could hold a
//!   connection slot forever. The check is lazy: the timer is only re-armed
//!   when it fires.
//! - [`ReadTimeout`] fails a body that stops delivering data: a client that
//!   sends its head and then trickles or stalls its body (slow POST), or an
//!   upstream that stalls mid-response.
//! - [`BodyProgress`] lets the wait for the app's answer count from the
//!   moment the request body last moved towards it, not from the request
//!   head: a slow upload is the body read timeout's business, not the app's.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use portcullis_core::body::{Body, BodyError, BoxError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests of one connection whose answer is not yet all handed to hyper.
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

pub struct InFlightGuard(InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.clone())
    }

    pub fn busy(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
    in_flight: InFlight,
}

impl<T> IdleTimeout<T> {
    pub fn new(inner: T, timeout: Duration, in_flight: InFlight) -> Self {
        let now = Instant::now();
        Self {
            inner,
            timeout,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
            in_flight,
        }
    }

    /// True once the connection has been idle for the whole timeout.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.in_flight.busy() {
                self.last_active = Instant::now();
            }
            let deadline = self.last_active + self.timeout;
            if deadline <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    /// Passes `polled` through, noting activity, or fails a pending poll once idle.
    fn observe<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
        moved: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        match &polled {
            Poll::Ready(Ok(result)) if moved(result) => self.last_active = Instant::now(),
            Poll::Pending if self.expired(cx) => return Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
            _ => {}
        }
        polled
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let arrived = buf.filled().len() > before;
        self.observe(cx, polled, |_| arrived)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.observe(cx, polled, |written| *written > 0)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        self.observe(cx, polled, |written| *written > 0)
    }
}

/// A body that fails with [`BodyReadTimedOut`] when no frame arrives for `timeout`.
pub struct ReadTimeout<B> {
    inner: B,
    timeout: Duration,
    /// Created on the first wait, re-armed on each later one.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<B> ReadTimeout<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
            armed: false,
        }
    }
}

/// A body stopped delivering data for longer than its read timeout.
#[derive(Debug)]
pub struct BodyReadTimedOut;

impl std::fmt::Display for BodyReadTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no body data within the read timeout")
    }
}

impl std::error::Error for BodyReadTimedOut {}

impl<B> http_body::Body for ReadTimeout<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(BodyError::new)));
        }
        let deadline = Instant::now() + this.timeout;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            timer.as_mut().reset(deadline);
            this.armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::new(BodyReadTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// When a request body last moved on its way upstream (a frame taken, or its
/// end). Shared by the body and the proxy's response timer.
#[derive(Clone)]
pub struct BodyProgress {
    started: Instant,
    /// Milliseconds after `started`.
    last_ms: Arc<AtomicU64>,
}

impl BodyProgress {
    /// `body`, noting its progress, and the progress to watch.
    pub fn track(body: Body) -> (Body, Self) {
        let progress = Self {
            started: Instant::now(),
            last_ms: Arc::default(),
        };
        let tracked = Tracked {
            inner: body,
            progress: progress.clone(),
        };
        (tracked.boxed_unsync(), progress)
    }

    fn moved(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once the body has not moved for `timeout`: it was sent whole
    /// that long ago, or the app stopped reading it.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

struct Tracked {
    inner: Body,
    progress: BodyProgress,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self.progress.moved();
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_timeout_and_a_steady_one_does_not() {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, BodyError>::new(4);
        let mut body = ReadTimeout::new(body, Duration::from_secs(5));
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            sender.send_data(Bytes::from_static(b"x")).await.unwrap();
            assert!(body.frame().await.unwrap().is_ok(), "each frame within the timeout");
        }
        let started = Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.is::<BodyReadTimedOut>());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(sender);
    }

    #[tokio::test(start_paused = true)]
    async fn the_response_wait_counts_from_the_bodys_last_move() {
        let (mut sender, body) = http_body_util::channel::Channel::<Bytes, BodyError>::new(4);
        let (mut body, progress) = BodyProgress::track(body.boxed_unsync());
        let started = Instant::now();
        let waiting = tokio::spawn(async move { progress.idle_for(Duration::from_secs(5)).await });
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            sender.send_data(Bytes::from_static(b"x")).await.unwrap();
            body.frame().await.unwrap().unwrap();
        }
        drop(sender);
        assert!(body.frame().await.is_none());
        waiting.await.unwrap();
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(16 + 5),
            "5 s after the body ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_time_out_and_busy_ones_do_not() {
        let (client, server) = tokio::io::duplex(64);
        let in_flight = InFlight::default();
        let mut idle = IdleTimeout::new(server, Duration::from_secs(10), in_flight.clone());
        let mut client = client;

        // Traffic keeps it alive.
        client.write_all(b"a").await.unwrap();
        let mut byte = [0u8; 1];
        idle.read_exact(&mut byte).await.unwrap();

        // A request in flight keeps it alive past the timeout.
        let guard = in_flight.enter();
        let read = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut byte)).await;
        assert!(read.is_err(), "still open while a request is in flight");
        drop(guard);

        // Then, with nothing moving, the read fails once the timeout passes.
        let started = Instant::now();
        let error = idle.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
            "{waited:?}"
        );
    }
}
