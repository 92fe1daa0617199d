//! Security events: every block, rewrite or replacement is reported once.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

/// One decision a layer took, with enough context to find the request again.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecurityEvent {
    /// The checklist capability that decided, e.g. `safe_errors`, `limits`.
    pub kind: &'static str,
    /// The rule inside that capability, e.g. `leaking_5xx`, `max_body_bytes`.
    pub rule: &'static str,
    /// What was done: `replaced`, `refused`, `closed`, ...
    pub action: &'static str,
    pub request_id: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// Extra evidence for the operator (never sent to the client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Config that would let exactly this request through (a WAF block's
    /// `[[waf.exclude]]` entries), ready to paste.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusion: Option<String>,
}

/// Where events go: the gateway writes JSON lines; an app may forward them anywhere.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: SecurityEvent);
}

pub type Events = Arc<dyn EventSink>;

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::sync::Mutex;

    /// Collects events so tests can assert on them.
    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<SecurityEvent>>);

    impl EventSink for Recorder {
        fn emit(&self, event: SecurityEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Recorder {
        pub fn taken(&self) -> Vec<SecurityEvent> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }
}
