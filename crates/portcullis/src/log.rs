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

use http::{Request, Response};
use portcullis_core::body::{self, Body};
use portcullis_core::context::RequestContext;
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::policy::{Policy, PolicyLayer, Responded, Verdict};
use portcullis_core::text::decimal;
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
        self.append(|buffer| serde_json::to_writer(buffer, record).is_ok());
    }

    /// Appends one line written by `line` (which says whether it succeeded;
    /// a failed line is taken back whole).
    fn append(&self, line: impl FnOnce(&mut Vec<u8>) -> bool) {
        let full = BUFFER.with_borrow_mut(|buffer| {
            let start = buffer.len();
            if line(buffer) {
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
            ts: Timestamp(SystemTime::now()),
            r#type: "notice",
            message,
            detail,
        });
        Self::flush_thread();
    }
}

#[derive(Serialize)]
struct Notice<'a> {
    ts: Timestamp,
    r#type: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct EventLine {
    ts: Timestamp,
    r#type: &'static str,
    #[serde(flatten)]
    event: SecurityEvent,
}

impl EventSink for JsonLog {
    fn emit(&self, event: SecurityEvent) {
        crate::alerts::offer(&event);
        if let Some(metrics) = crate::metrics::enabled() {
            metrics.security_event(event.kind, event.rule, event.action);
        }
        let line = EventLine {
            ts: Timestamp(SystemTime::now()),
            r#type: "event",
            event,
        };
        let Some(dashboard) = crate::dashboard::enabled() else {
            return self.write(&line);
        };
        // Written once, for the log and for the dashboard.
        if let Ok(json) = serde_json::to_string(&line) {
            self.append(|buffer| {
                buffer.extend_from_slice(json.as_bytes());
                true
            });
            dashboard.record(&line.event, json.into());
        }
    }
}

impl JsonLog {
    /// An event from outside the worker threads (whose buffers are flushed
    /// on a timer), written at once.
    pub fn emit_now(&self, event: SecurityEvent) {
        self.emit(event);
        Self::flush_thread();
    }
}

/// Logs each request when its response body is finished (or abandoned), so
/// `bytes` and `duration_ms` cover the whole exchange, as nginx's do.
pub struct AccessLog {
    log: JsonLog,
    /// Write each line out at once: for listeners outside the worker
    /// threads, whose buffers no timer flushes.
    unbuffered: bool,
}

pub type AccessLogLayer = PolicyLayer<AccessLog>;

impl AccessLog {
    pub fn new(log: JsonLog) -> Self {
        Self { log, unbuffered: false }
    }

    /// Lines written out one by one, for a listener outside the workers.
    pub fn unbuffered(log: JsonLog) -> Self {
        Self { log, unbuffered: true }
    }
}

/// What is known of a request until its response body is done.
pub struct Pending {
    started: SystemTime,
    start: Instant,
    method: http::Method,
    uri: http::Uri,
    status: u16,
    bytes: u64,
    client_ip: Option<http::HeaderValue>,
    request_id: Option<http::HeaderValue>,
}

impl Pending {
    /// One access line, written by hand: it is the one line every request
    /// writes. Only the path can hold bytes JSON must escape; the method
    /// (an HTTP token), the address, the id (alphanumeric, see request_id)
    /// and the numbers cannot.
    fn write(&self, log: &JsonLog) {
        let micros = self.start.elapsed().as_micros() as u64;
        log.append(|line| {
            line.extend_from_slice(b"{\"ts\":\"");
            write_timestamp(line, self.started);
            line.extend_from_slice(b"\",\"type\":\"access\",\"method\":\"");
            line.extend_from_slice(self.method.as_str().as_bytes());
            line.extend_from_slice(b"\",\"path\":");
            let escaped = match self.uri.query() {
                None => serde_json::to_writer(&mut *line, self.uri.path()),
                Some(_) => serde_json::to_writer(&mut *line, &LoggedPath(&self.uri).to_string()),
            };
            line.extend_from_slice(b",\"status\":");
            line.extend_from_slice(decimal(u64::from(self.status), &mut [0; 20]).as_bytes());
            line.extend_from_slice(b",\"bytes\":");
            line.extend_from_slice(decimal(self.bytes, &mut [0; 20]).as_bytes());
            line.extend_from_slice(b",\"duration_ms\":");
            line.extend_from_slice(decimal(micros / 1000, &mut [0; 20]).as_bytes());
            line.push(b'.');
            let fraction = micros % 1000;
            line.extend_from_slice(&[
                b'0' + (fraction / 100) as u8,
                b'0' + (fraction / 10 % 10) as u8,
                b'0' + (fraction % 10) as u8,
            ]);
            for (name, value) in [
                (&b",\"client_ip\":"[..], &self.client_ip),
                (b",\"request_id\":", &self.request_id),
            ] {
                line.extend_from_slice(name);
                match value {
                    Some(value) => {
                        line.push(b'"');
                        line.extend_from_slice(value.as_bytes());
                        line.push(b'"');
                    }
                    None => line.extend_from_slice(b"null"),
                }
            }
            line.push(b'}');
            escaped.is_ok()
        });
    }
}

thread_local! {
    /// The last second formatted on this thread, `YYYY-MM-DDTHH:MM:SS`:
    /// requests within one second share it.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// Appends `time` as RFC 3339 with milliseconds, in UTC.
fn write_timestamp(line: &mut Vec<u8>, time: SystemTime) {
    let since_epoch = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (second, millis) = (since_epoch.as_secs(), since_epoch.subsec_millis());
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            let formatted = humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(second));
            let formatted = formatted.to_string();
            text.copy_from_slice(&formatted.as_bytes()[..19]);
            *cached = second;
        }
        line.extend_from_slice(&text[..]);
    });
    line.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

impl Policy for AccessLog {
    type State = Pending;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Pending> {
        let context = request.extensions().get::<RequestContext>();
        Verdict::Forward(Pending {
            started: SystemTime::now(),
            start: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            status: 0,
            bytes: 0,
            client_ip: context.map(|c| c.client_ip_text.clone()),
            request_id: context.map(|c| c.request_id.clone()),
        })
    }

    fn on_response(self: &Arc<Self>, mut pending: Pending, response: Response<Body>) -> Responded {
        pending.status = response.status().as_u16();
        let log = self.clone();
        Responded::Now(response.map(|body| {
            body::counted(body, move |bytes| {
                pending.bytes = bytes;
                pending.write(&log.log);
                if log.unbuffered {
                    JsonLog::flush_thread();
                }
            })
        }))
    }
}

/// An RFC 3339 timestamp, written without an intermediate string.
struct Timestamp(SystemTime);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_millis(self.0))
    }
}

/// The path and the query's parameter names: query values may hold tokens or
/// personal data, so they are never logged.
pub struct LoggedPath<'a>(pub &'a http::Uri);

impl std::fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.path())?;
        if let Some(query) = self.0.query() {
            for (index, pair) in query.split('&').enumerate() {
                f.write_str(if index == 0 { "?" } else { "&" })?;
                f.write_str(pair.split('=').next().unwrap_or(""))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lines_are_json_with_every_field() {
        let pending = Pending {
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_042),
            start: Instant::now(),
            method: http::Method::POST,
            uri: "/a\"b/\\c?token=secret&x".parse().unwrap(),
            status: 201,
            bytes: 1234,
            client_ip: Some(http::HeaderValue::from_static("192.0.2.1")),
            request_id: None,
        };
        JsonLog::flush_thread();
        pending.write(&JsonLog);
        let line = BUFFER.with_borrow_mut(std::mem::take);
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed["ts"], "2023-11-14T22:13:20.042Z");
        assert_eq!(parsed["type"], "access");
        assert_eq!(parsed["method"], "POST");
        assert_eq!(parsed["path"], "/a\"b/\\c?token&x");
        assert_eq!(parsed["status"], 201);
        assert_eq!(parsed["bytes"], 1234);
        assert!(parsed["duration_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(parsed["client_ip"], "192.0.2.1");
        assert_eq!(parsed["request_id"], serde_json::Value::Null);
        assert!(line.ends_with(b"}\n"));
    }

    #[test]
    fn query_values_are_not_logged() {
        let uri: http::Uri = "/search?q=secret&token=abc&flag".parse().unwrap();
        assert_eq!(LoggedPath(&uri).to_string(), "/search?q&token&flag");
        assert_eq!(LoggedPath(&"/a/b".parse().unwrap()).to_string(), "/a/b");
    }

    proptest::proptest! {
        // Whatever the query, no value ever reaches the log.
        #[test]
        fn no_query_value_is_logged(names in proptest::collection::vec("[a-z]{1,6}", 1..5), value in "[A-Z0-9]{8}") {
            let query: Vec<String> = names.iter().map(|n| format!("{n}={value}")).collect();
            let uri: http::Uri = format!("/p?{}", query.join("&")).parse().unwrap();
            let logged = LoggedPath(&uri).to_string();
            proptest::prop_assert!(!logged.contains(&value));
            proptest::prop_assert_eq!(logged, format!("/p?{}", names.join("&")));
        }
    }
}
