//! JSON lines on stdout: one access line per request, one line per security event.
//!
//! Each thread appends lines to its own buffer; the buffer is written to
//! stdout when it fills, and by each worker's event loop every few
//! milliseconds. No line crosses threads on its way out, so logging costs no
//! wake-ups, and whole buffers are written under stdout's lock, so lines from
//! different threads never interleave.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use portcullis_core::body::{Body, BodyError};
use portcullis_core::context::RequestContext;
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::policy::{Policy, PolicyLayer, Verdict};
use serde::Serialize;

/// A buffer this full is written at once rather than at the next tick.
const FLUSH_AT: usize = 32 * 1024;

/// How often a worker writes out what its thread has buffered.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(FLUSH_AT + 1024));
}

/// A handle to the log; cheap to clone, usable from any thread.
#[derive(Clone, Default)]
pub struct JsonLog;

impl JsonLog {
    pub fn write(&self, record: &impl Serialize) {
        let full = BUFFER.with_borrow_mut(|buffer| {
            let start = buffer.len();
            if serde_json::to_writer(&mut *buffer, record).is_ok() {
                buffer.push(b'\n');
            } else {
                buffer.truncate(start);
            }
            buffer.len() >= FLUSH_AT
        });
        if full {
            Self::flush_thread();
        }
    }

    /// Writes this thread's buffered lines to stdout.
    pub fn flush_thread() {
        BUFFER.with_borrow_mut(|buffer| {
            if !buffer.is_empty() {
                // A closed stdout must not take the gateway down; the lines are dropped.
                let _ = std::io::stdout().lock().write_all(buffer);
                buffer.clear();
            }
        });
    }

    /// A one-off notice (startup, shutdown, failures), written at once.
    pub fn notice(&self, message: &str, detail: Option<String>) {
        self.write(&Notice {
            ts: now(),
            r#type: "notice",
            message,
            detail,
        });
        Self::flush_thread();
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[derive(Serialize)]
struct Notice<'a> {
    ts: String,
    r#type: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct EventLine {
    ts: String,
    r#type: &'static str,
    #[serde(flatten)]
    event: SecurityEvent,
}

impl EventSink for JsonLog {
    fn emit(&self, event: SecurityEvent) {
        self.write(&EventLine {
            ts: now(),
            r#type: "event",
            event,
        });
    }
}

/// Logs each request when its response body is finished (or abandoned), so
/// `bytes` and `duration_ms` cover the whole exchange, as nginx's do.
pub struct AccessLog {
    log: JsonLog,
}

pub type AccessLogLayer = PolicyLayer<AccessLog>;

impl AccessLog {
    pub fn new(log: JsonLog) -> Self {
        Self { log }
    }
}

#[derive(Serialize)]
struct AccessLine {
    ts: String,
    r#type: &'static str,
    method: String,
    path: String,
    status: u16,
    bytes: u64,
    duration_ms: f64,
    client_ip: Option<std::net::IpAddr>,
    request_id: Option<String>,
}

pub struct Pending {
    start: Instant,
    line: AccessLine,
}

impl Policy for AccessLog {
    type State = Pending;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Pending> {
        let context = request.extensions().get::<RequestContext>();
        Verdict::Forward(Pending {
            start: Instant::now(),
            line: AccessLine {
                ts: now(),
                r#type: "access",
                method: request.method().to_string(),
                path: path_without_query_values(request.uri()),
                status: 0,
                bytes: 0,
                duration_ms: 0.0,
                client_ip: context.map(|c| c.client_ip),
                request_id: context.map(|c| c.request_id_str().to_owned()),
            },
        })
    }

    async fn on_response(self: Arc<Self>, mut pending: Pending, response: Response<Body>) -> Response<Body> {
        pending.line.status = response.status().as_u16();
        response.map(|body| {
            use http_body_util::BodyExt;
            Logged {
                inner: body,
                pending: Some(pending),
                log: self.log.clone(),
            }
            .boxed_unsync()
        })
    }
}

/// Query values may hold tokens or personal data: only the names are logged.
pub fn path_without_query_values(uri: &http::Uri) -> String {
    let mut path = uri.path().to_owned();
    if let Some(query) = uri.query() {
        path.push('?');
        let names: Vec<&str> = query
            .split('&')
            .map(|pair| pair.split('=').next().unwrap_or(""))
            .collect();
        path.push_str(&names.join("&"));
    }
    path
}

struct Logged {
    inner: Body,
    pending: Option<Pending>,
    log: JsonLog,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(pending)) = (frame.data_ref(), self.pending.as_mut()) {
                pending.line.bytes += data.len() as u64;
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

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(mut pending) = self.pending.take() {
            pending.line.duration_ms = (pending.start.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
            self.log.write(&pending.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_not_logged() {
        let uri: http::Uri = "/search?q=secret&token=abc&flag".parse().unwrap();
        assert_eq!(path_without_query_values(&uri), "/search?q&token&flag");
        assert_eq!(path_without_query_values(&"/a/b".parse().unwrap()), "/a/b");
    }

    proptest::proptest! {
        // Whatever the query, no value ever reaches the log.
        #[test]
        fn no_query_value_is_logged(names in proptest::collection::vec("[a-z]{1,6}", 1..5), value in "[A-Z0-9]{8}") {
            let query: Vec<String> = names.iter().map(|n| format!("{n}={value}")).collect();
            let uri: http::Uri = format!("/p?{}", query.join("&")).parse().unwrap();
            let logged = path_without_query_values(&uri);
            proptest::prop_assert!(!logged.contains(&value));
            proptest::prop_assert_eq!(logged, format!("/p?{}", names.join("&")));
        }
    }
}
