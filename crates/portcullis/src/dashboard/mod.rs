//! The live security dashboard, on the metrics listener (`[metrics]
//! dashboard`): the last security events as they happen (server-sent
//! events), the clients blocked most, blocks per detector minute by minute,
//! recent bans, the store's health and the certificates' expiry. One small
//! page, its script and its style, all served from the binary under a strict
//! CSP: no CDN, no build step, nothing inline.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use portcullis_core::body::{self, Body, BodyError};
use portcullis_core::events::SecurityEvent;
use portcullis_core::store::StoreHealth;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::metrics::listener::text;
use crate::tls::Resolver;

pub const PAGE: &str = include_str!("assets/index.html");
pub const SCRIPT: &str = include_str!("assets/app.js");
pub const STYLE: &str = include_str!("assets/style.css");

/// What the page's CSP allows: its own script, style and feed, nothing else.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Events the page gets when it opens.
const RECENT: usize = 50;
/// Minutes of blocks kept for the chart.
const MINUTES: usize = 60;
/// Clients whose blocks are counted; past this, new ones are not (a flood of
/// addresses cannot grow the map).
const MAX_CLIENTS: usize = 10_000;
/// Events a slow page may fall behind by before it is told it missed some.
const FEED: usize = 1024;

/// A comment on an idle event feed this often, so that proxies and
/// browsers keep it open.
const FEED_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the page shows beside the events, read when it asks: the store's
/// health and the certificates in service.
#[derive(Clone, Default)]
pub struct Sources {
    pub health: Option<Arc<StoreHealth>>,
    pub resolver: Option<Arc<Resolver>>,
}

impl Sources {
    pub fn store(&self) -> &'static str {
        match &self.health {
            None => "memory",
            Some(_) if self.store_down() => "down",
            Some(_) => "up",
        }
    }

    /// Whether the shared store is in an outage (memory never is).
    pub fn store_down(&self) -> bool {
        self.health.as_ref().is_some_and(|health| health.is_down())
    }

    pub fn certificates(&self) -> Vec<(String, SystemTime)> {
        self.resolver
            .as_ref()
            .map(|r| r.current().expiries())
            .unwrap_or_default()
    }
}

/// Actions that stopped a request or a client.
fn is_block(action: &str) -> bool {
    matches!(action, "blocked" | "refused" | "banned" | "closed")
}

pub struct Dashboard {
    state: Mutex<State>,
    feed: broadcast::Sender<Arc<str>>,
}

#[derive(Default)]
struct State {
    recent: VecDeque<Arc<str>>,
    blocks_by_client: HashMap<IpAddr, u64>,
    /// Unix minute, and blocks in it by detector (`kind:rule`).
    minutes: VecDeque<(u64, BTreeMap<String, u64>)>,
    /// The last bans: client and when.
    bans: VecDeque<(IpAddr, u64)>,
}

static DASHBOARD: OnceLock<Dashboard> = OnceLock::new();

/// The dashboard, once a config has turned it on.
pub fn enabled() -> Option<&'static Dashboard> {
    DASHBOARD.get()
}

pub fn enable() -> &'static Dashboard {
    DASHBOARD.get_or_init(|| Dashboard {
        state: Mutex::default(),
        feed: broadcast::channel(FEED).0,
    })
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Dashboard {
    /// Takes in one event, `line` being its log line (JSON).
    pub fn record(&self, event: &SecurityEvent, line: Arc<str>) {
        let now = unix_seconds();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.recent.len() == RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(line.clone());
        if is_block(event.action) {
            state.count_block(event, now);
        }
        drop(state);
        // No page open: nobody to tell.
        let _ = self.feed.send(line);
    }

    /// The answer to `page` (what follows `…/dashboard` in the path).
    pub fn answer(&'static self, page: &str, sources: &Sources) -> Response<Body> {
        let mut response = match page {
            "" => text(StatusCode::OK, "text/html; charset=utf-8", PAGE.into()),
            "/app.js" => text(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT.into()),
            "/style.css" => text(StatusCode::OK, "text/css; charset=utf-8", STYLE.into()),
            "/state" => {
                let state = self.snapshot(sources.store(), sources.certificates());
                text(StatusCode::OK, "application/json", state)
            }
            "/events" => {
                let mut response = text(StatusCode::OK, "text/event-stream", String::new());
                *response.body_mut() = self.feed();
                response
            }
            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }

    /// Each event as a server-sent event, with a comment now and then.
    fn feed(&'static self) -> Body {
        let frames = futures_util::stream::unfold(self.feed.subscribe(), |mut feed| async move {
            let text = match tokio::time::timeout(FEED_KEEP_ALIVE, feed.recv()).await {
                Ok(Ok(line)) => format!("data: {line}\n\n"),
                Ok(Err(broadcast::error::RecvError::Lagged(missed))) => format!(": {missed} events missed\n\n"),
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Err(_) => ": keep-alive\n\n".to_owned(),
            };
            Some((Ok::<_, BodyError>(Frame::data(Bytes::from(text))), feed))
        });
        body::boxed(StreamBody::new(frames))
    }

    /// The page's state as JSON, with what the running config adds.
    fn snapshot(&self, store: &'static str, certificates: Vec<(String, SystemTime)>) -> String {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut top: Vec<(IpAddr, u64)> = state.blocks_by_client.iter().map(|(ip, n)| (*ip, *n)).collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(10);
        let snapshot = Snapshot {
            now: unix_seconds(),
            recent: state.recent.iter().map(|line| RawJson(line.clone())).collect(),
            top_clients: top.into_iter().map(|(ip, blocks)| Client { ip, blocks }).collect(),
            minutes: state
                .minutes
                .iter()
                .map(|(at, counts)| Minute {
                    at: at * 60,
                    counts: counts.clone(),
                })
                .collect(),
            bans: state.bans.iter().map(|(ip, at)| Ban { ip: *ip, at: *at }).collect(),
            store,
            certificates: certificates
                .into_iter()
                .map(|(name, expires)| Certificate {
                    name,
                    expires: humantime::format_rfc3339_seconds(expires).to_string(),
                })
                .collect(),
        };
        serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".into())
    }
}

impl State {
    fn count_block(&mut self, event: &SecurityEvent, now: u64) {
        let minute = now / 60;
        if self.minutes.back().is_none_or(|(at, _)| *at != minute) {
            if self.minutes.len() == MINUTES {
                self.minutes.pop_front();
            }
            self.minutes.push_back((minute, BTreeMap::new()));
        }
        if let Some((_, counts)) = self.minutes.back_mut() {
            *counts.entry(format!("{}:{}", event.kind, event.rule)).or_default() += 1;
        }
        let Some(ip) = event.client_ip else {
            return;
        };
        if self.blocks_by_client.len() < MAX_CLIENTS || self.blocks_by_client.contains_key(&ip) {
            *self.blocks_by_client.entry(ip).or_default() += 1;
        }
        if event.action == "banned" {
            if self.bans.len() == RECENT {
                self.bans.pop_front();
            }
            self.bans.push_back((ip, now));
        }
    }
}

#[derive(Serialize)]
struct Snapshot {
    now: u64,
    recent: Vec<RawJson>,
    top_clients: Vec<Client>,
    minutes: Vec<Minute>,
    bans: Vec<Ban>,
    store: &'static str,
    certificates: Vec<Certificate>,
}

/// An event's log line, embedded as it is.
struct RawJson(Arc<str>);

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<serde_json::Value>(&self.0) {
            Ok(value) => value.serialize(serializer),
            Err(_) => serializer.serialize_none(),
        }
    }
}

#[derive(Serialize)]
struct Client {
    ip: IpAddr,
    blocks: u64,
}

#[derive(Serialize)]
struct Minute {
    at: u64,
    counts: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Ban {
    ip: IpAddr,
    at: u64,
}

#[derive(Serialize)]
struct Certificate {
    name: String,
    expires: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &'static str, rule: &'static str, action: &'static str, ip: &str) -> SecurityEvent {
        SecurityEvent {
            kind,
            rule,
            action,
            request_id: None,
            client_ip: Some(ip.parse().unwrap()),
            detail: None,
            exclusion: None,
        }
    }

    #[test]
    fn blocks_are_counted_by_client_and_detector_and_the_recent_are_bounded() {
        let dashboard = Dashboard {
            state: Mutex::default(),
            feed: broadcast::channel(4).0,
        };
        for i in 0..RECENT + 5 {
            let ip = if i % 3 == 0 { "192.0.2.1" } else { "192.0.2.2" };
            dashboard.record(&event("waf", "sqli", "blocked", ip), format!("{{\"n\":{i}}}").into());
        }
        dashboard.record(
            &event("safe_errors", "framework_404", "replaced", "192.0.2.3"),
            "{}".into(),
        );
        dashboard.record(&event("bans", "repeat_offender", "banned", "192.0.2.2"), "{}".into());
        let snapshot: serde_json::Value = serde_json::from_str(&dashboard.snapshot("memory", Vec::new())).unwrap();
        assert_eq!(snapshot["recent"].as_array().unwrap().len(), RECENT);
        assert_eq!(snapshot["top_clients"][0]["ip"], "192.0.2.2");
        assert_eq!(snapshot["top_clients"][0]["blocks"], 37);
        assert_eq!(
            snapshot["top_clients"].as_array().unwrap().len(),
            2,
            "replacing a page blocks no one"
        );
        let counts = &snapshot["minutes"].as_array().unwrap().last().unwrap()["counts"];
        assert_eq!(counts["waf:sqli"], 55);
        assert_eq!(snapshot["bans"][0]["ip"], "192.0.2.2");
    }
}
