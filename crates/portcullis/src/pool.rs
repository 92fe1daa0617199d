//! Keep-alive connections to the app, one pool per worker event loop.
//!
//! There is one upstream, so the pool is a stack of idle connections, not a
//! map keyed by host: checking one out or in is a push or a pop under an
//! uncontended lock. A connection goes back when its response body has been
//! read to the end; one whose body is abandoned, or that switched protocols,
//! is not reused. One whose exchange is abandoned before the response head
//! (the response timeout) is closed at once: it may be stuck sending a body
//! the app no longer reads, and it holds the client's body while it is.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use portcullis_core::body::Body;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::config::Upstream;

/// Why an exchange with the app failed.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, unreachable, or timed out).
    Connect { timed_out: bool },
    /// The connection failed while sending the request or reading the response head.
    Exchange(hyper::Error),
}

#[derive(Clone)]
pub struct UpstreamPool(Arc<Pool>);

struct Pool {
    upstream: Upstream,
    /// Idle connections, the most recently used at the back.
    idle: Mutex<VecDeque<(Connection, Instant)>>,
}

/// One keep-alive connection: the handle to send on, and its task.
struct Connection {
    sender: SendRequest<Body>,
    task: AbortHandle,
}

/// Closes a connection whose exchange was abandoned before its response head.
struct Exchange(Option<AbortHandle>);

impl Exchange {
    fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl UpstreamPool {
    pub fn new(upstream: Upstream) -> Self {
        Self(Arc::new(Pool {
            upstream,
            idle: Mutex::default(),
        }))
    }

    /// Sends `request` (in origin form, with its Host) on an idle connection,
    /// or on a new one if none is left or the idle one turns out closed.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Pooled>, SendError> {
        let mut request = request;
        while let Some(mut connection) = self.0.check_out() {
            if connection.sender.ready().await.is_err() {
                continue; // Closed by the app while idle.
            }
            let exchange = Exchange(Some(connection.task.clone()));
            match connection.sender.try_send_request(request).await {
                Ok(response) => {
                    exchange.finished();
                    return Ok(self.track(connection, response));
                }
                Err(mut failed) => match failed.take_message() {
                    // Never written: safe to send again, whatever the method.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Exchange(failed.into_error())),
                },
            }
        }
        let mut connection = self.0.connect().await?;
        let exchange = Exchange(Some(connection.task.clone()));
        let response = connection
            .sender
            .send_request(request)
            .await
            .map_err(SendError::Exchange)?;
        exchange.finished();
        Ok(self.track(connection, response))
    }

    /// Arranges for the connection to come back once the response is read.
    fn track(&self, connection: Connection, response: Response<Incoming>) -> Response<Pooled> {
        let reusable = response.status() != StatusCode::SWITCHING_PROTOCOLS;
        let mut give_back = reusable.then(|| (connection, self.0.clone()));
        if response.body().is_end_stream() {
            // No body will be read (204, 304, HEAD, empty): reusable at once.
            if let Some((connection, pool)) = give_back.take() {
                pool.check_in(connection);
            }
        }
        response.map(|body| Pooled { body, give_back })
    }
}

impl Pool {
    fn check_out(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((connection, since)) = idle.pop_back() {
            if since.elapsed() < self.upstream.pool_idle_timeout && !connection.sender.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    fn check_in(&self, connection: Connection) {
        if connection.sender.is_closed() || self.upstream.pool_max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The oldest are at the front: drop those past the idle timeout, and
        // make room within the bound (dropping a sender closes its connection).
        while idle
            .front()
            .is_some_and(|(_, since)| since.elapsed() >= self.upstream.pool_idle_timeout)
        {
            idle.pop_front();
        }
        if idle.len() >= self.upstream.pool_max_idle {
            idle.pop_front();
        }
        idle.push_back((connection, Instant::now()));
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let address = self.upstream.authority.as_str();
        let stream = match tokio::time::timeout(self.upstream.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(SendError::Connect { timed_out: false }),
            Err(_) => return Err(SendError::Connect { timed_out: true }),
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Exchange)?;
        // Ends when the app closes the connection or every sender is dropped.
        let task = tokio::spawn(connection.with_upgrades()).abort_handle();
        Ok(Connection { sender, task })
    }
}

pin_project! {
    /// A response body that returns its connection to the pool when read to the end.
    pub struct Pooled {
        #[pin]
        body: Incoming,
        give_back: Option<(Connection, Arc<Pool>)>,
    }
}

impl HttpBody for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.body.as_mut().poll_frame(cx);
        // Done at the last frame already: a reader that knows the length
        // (hyper, with Content-Length) never polls for the end.
        let done = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            _ => false,
        };
        if done {
            if let Some((connection, pool)) = this.give_back.take() {
                pool.check_in(connection);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
