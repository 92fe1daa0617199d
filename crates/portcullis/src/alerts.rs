//! Alerts (checklist C13): someone is told when an attack goes on.
//!
//! Security events are offered to the alerter as they are logged; offering
//! never waits (a bounded queue; when it is full the event is only logged,
//! and the next webhook call says how many were dropped). A background task
//! counts events per threshold and client: more than `count` events of a
//! kind (and rule, if given) from one client within `window` make one alert,
//! and that client is quiet for that threshold until the window has passed.
//! Alerts are batched for `batch_window`, then posted to the webhook as JSON
//! (generic, or Slack's `{"text": ...}`), retried with exponential backoff.
//! While the webhook is down the gateway serves as ever and logs that it is.
//!
//! Counts are per gateway: behind a load balancer, each counts what it sees.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_core::events::SecurityEvent;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::duration;
use crate::log::JsonLog;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"source": "portcullis", "dropped": 0, "alerts": [...]}`.
    #[default]
    Generic,
    /// Slack's incoming webhooks (and Mattermost, Rocket.Chat): `{"text": "..."}`.
    Slack,
}

/// One `[[alerts.thresholds]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The event kind counted: `login`, `waf`, `access`, `portal`, `rate_limit`, ...
    pub kind: String,
    /// Only this rule of the kind (e.g. `login_failed`); every rule if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Alert when one client causes more than this many events...
    pub count: u64,
    /// ... within this time.
    #[serde(with = "duration")]
    pub window: Duration,
}

/// The `[alerts]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSection {
    /// Where alerts are posted (http or https). Unset: no alerts.
    pub webhook: Option<String>,
    pub format: Format,
    pub thresholds: Vec<Threshold>,
    /// How long alerts are gathered before one call.
    #[serde(with = "duration")]
    pub batch_window: Duration,
    /// Events waiting to be counted at most.
    pub max_queue: usize,
    /// One call's longest wait.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Tries after the first failed call (waiting 1 s, 2 s, 4 s, ...).
    pub retries: u32,
}

fn threshold(kind: &str, rule: Option<&str>, count: u64) -> Threshold {
    Threshold {
        kind: kind.into(),
        rule: rule.map(Into::into),
        count,
        window: Duration::from_secs(5 * 60),
    }
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            webhook: None,
            format: Format::Generic,
            thresholds: vec![
                threshold("login", None, 10),
                threshold("portal", Some("login_failed"), 10),
                threshold("portal", Some("code_failed"), 5),
                threshold("waf", None, 20),
                threshold("access", None, 20),
                threshold("bans", None, 0),
            ],
            batch_window: Duration::from_secs(5),
            max_queue: 10_000,
            timeout: Duration::from_secs(5),
            retries: 5,
        }
    }
}

impl AlertsSection {
    /// Checks the section; errors name the key.
    pub fn validate(&self) -> Result<Option<Uri>, (String, String)> {
        let Some(webhook) = &self.webhook else {
            return Ok(None);
        };
        let uri: Uri = webhook
            .parse()
            .map_err(|_| ("webhook".to_owned(), format!("`{webhook}` is not a URL")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err((
                "webhook".into(),
                format!("`{webhook}`: an http:// or https:// URL with a host"),
            ));
        }
        if self.max_queue == 0 {
            return Err(("max_queue".into(), "must be at least 1".into()));
        }
        if let Some(i) = self.thresholds.iter().position(|t| t.kind.is_empty()) {
            return Err((format!("thresholds[{i}].kind"), "an event kind, e.g. \"login\"".into()));
        }
        Ok(Some(uri))
    }
}

/// Where the log offers events, when alerts are configured; a reload
/// replaces it (the old alerter sends what it holds, then ends).
static ALERTER: ArcSwapOption<Offer> = ArcSwapOption::const_empty();

struct Offer {
    queue: mpsc::Sender<SecurityEvent>,
    kinds: Vec<String>,
    dropped: Arc<AtomicU64>,
}

/// Called by the log for every event: cheap, never waits.
pub fn offer(event: &SecurityEvent) {
    let offer = ALERTER.load();
    let Some(offer) = offer.as_deref() else {
        return;
    };
    if !offer.kinds.iter().any(|kind| kind == event.kind) {
        return;
    }
    if offer.queue.try_send(event.clone()).is_err() {
        offer.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts the alerter `section` and `webhook` ask for, on the current
/// runtime, in place of any earlier one; none if there is no webhook.
pub fn start(section: &AlertsSection, webhook: Option<&Uri>) {
    let Some(webhook) = webhook.cloned() else {
        ALERTER.store(None);
        return;
    };
    let (queue, events) = mpsc::channel(section.max_queue);
    let dropped = Arc::new(AtomicU64::new(0));
    let mut kinds: Vec<String> = section.thresholds.iter().map(|t| t.kind.clone()).collect();
    kinds.dedup();
    let offer = Offer {
        queue,
        kinds,
        dropped: dropped.clone(),
    };
    ALERTER.store(Some(Arc::new(offer)));
    let alerter = Alerter {
        section: section.clone(),
        webhook,
        counts: HashMap::new(),
        dropped,
    };
    tokio::spawn(alerter.run(events));
}

/// One alert: a threshold passed by one client.
#[derive(Debug, Clone, Serialize)]
struct Alert {
    threshold: Threshold,
    client_ip: Option<IpAddr>,
    count: u64,
    /// The event that passed the threshold.
    last_event: SecurityEvent,
}

#[derive(Default)]
struct Count {
    times: VecDeque<Instant>,
    quiet_until: Option<Instant>,
}

/// Clients tracked per threshold at most: a flood of addresses cannot grow it.
const MAX_CLIENTS: usize = 100_000;

struct Alerter {
    section: AlertsSection,
    webhook: Uri,
    counts: HashMap<(usize, Option<IpAddr>), Count>,
    dropped: Arc<AtomicU64>,
}

impl Alerter {
    async fn run(mut self, mut events: mpsc::Receiver<SecurityEvent>) {
        let client = match webhook_client() {
            Ok(client) => client,
            Err(error) => return notice("webhook_unreachable", "disabled", format!("no TLS client: {error}")),
        };
        let mut batch: Vec<Alert> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let wait = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else {
                        // Replaced by a reload: what was batched still goes.
                        return self.send(&client, batch).await;
                    };
                    let now = Instant::now();
                    batch.extend(self.count(event, now));
                    if !batch.is_empty() && deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + self.section.batch_window);
                    }
                }
                () = wait => {
                    deadline = None;
                    let alerts = std::mem::take(&mut batch);
                    self.send(&client, alerts).await;
                }
            }
        }
    }

    /// The alerts `event` raises (one per threshold it passes).
    fn count(&mut self, event: SecurityEvent, now: Instant) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (index, threshold) in self.section.thresholds.iter().enumerate() {
            let applies = threshold.kind == event.kind && threshold.rule.as_deref().is_none_or(|r| r == event.rule);
            if !applies {
                continue;
            }
            if self.counts.len() >= MAX_CLIENTS {
                self.counts
                    .retain(|_, count| count.times.back().is_some_and(|t| now - *t < threshold.window));
            }
            let count = self.counts.entry((index, event.client_ip)).or_default();
            while count.times.front().is_some_and(|t| now - *t >= threshold.window) {
                count.times.pop_front();
            }
            count.times.push_back(now);
            let quiet = count.quiet_until.is_some_and(|until| now < until);
            if count.times.len() as u64 > threshold.count && !quiet {
                count.quiet_until = Some(now + threshold.window);
                alerts.push(Alert {
                    threshold: threshold.clone(),
                    client_ip: event.client_ip,
                    count: count.times.len() as u64,
                    last_event: event.clone(),
                });
            }
        }
        alerts
    }

    fn body(&self, alerts: &[Alert], dropped: u64) -> Vec<u8> {
        let value = match self.section.format {
            Format::Generic => serde_json::json!({ "source": "portcullis", "dropped": dropped, "alerts": alerts }),
            Format::Slack => {
                let mut text = format!("portcullis: {} alert(s)", alerts.len());
                for alert in alerts {
                    let client = alert
                        .client_ip
                        .map_or("an unknown client".to_owned(), |ip| ip.to_string());
                    let what = match &alert.threshold.rule {
                        Some(rule) => format!("{} {rule}", alert.threshold.kind),
                        None => alert.threshold.kind.clone(),
                    };
                    text.push_str(&format!(
                        "\n• {} {what} events from {client} within {} (last: {} {})",
                        alert.count,
                        humantime::format_duration(alert.threshold.window),
                        alert.last_event.rule,
                        alert.last_event.action
                    ));
                }
                if dropped > 0 {
                    text.push_str(&format!("\n({dropped} events were not counted: the queue was full)"));
                }
                serde_json::json!({ "text": text })
            }
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    async fn send(&self, client: &WebhookClient, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let body = Bytes::from(self.body(&alerts, dropped));
        let mut pause = Duration::from_secs(1);
        for attempt in 0..=self.section.retries {
            match self.post(client, body.clone()).await {
                Ok(()) => {
                    notice("alerts", "sent", format!("{} alert(s) to the webhook", alerts.len()));
                    return;
                }
                Err(error) => {
                    notice(
                        "webhook_unreachable",
                        "retrying",
                        format!("try {}: {error}", attempt + 1),
                    );
                    if attempt < self.section.retries {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
        notice(
            "webhook_unreachable",
            "dropped",
            format!(
                "{} alert(s) not delivered after {} tries",
                alerts.len(),
                self.section.retries + 1
            ),
        );
    }

    async fn post(&self, client: &WebhookClient, body: Bytes) -> Result<(), String> {
        let request = Request::post(self.webhook.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "portcullis")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.section.timeout, client.request(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.section.timeout))?
            .map_err(|e| e.to_string())?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(format!("the webhook answered {}", response.status())),
        }
    }
}

type WebhookClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

/// HTTPS with the system's roots (none readable: HTTPS calls fail and say
/// why, plain-HTTP webhooks still work).
fn webhook_client() -> Result<WebhookClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An event about the alerter itself: logged, never alerted on.
fn notice(rule: &'static str, action: &'static str, detail: String) {
    JsonLog.emit_now(SecurityEvent {
        kind: "alerts",
        rule,
        action,
        request_id: None,
        client_ip: None,
        detail: Some(detail),
        exclusion: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &'static str, rule: &'static str, ip: &str) -> SecurityEvent {
        SecurityEvent {
            kind,
            rule,
            action: "refused",
            request_id: None,
            client_ip: Some(ip.parse().unwrap()),
            detail: None,
            exclusion: None,
        }
    }

    #[test]
    fn one_alert_per_client_past_the_threshold_then_quiet_for_the_window() {
        let mut alerter = Alerter {
            section: AlertsSection {
                thresholds: vec![threshold("portal", Some("login_failed"), 3)],
                ..AlertsSection::default()
            },
            webhook: "http://127.0.0.1:9/".parse().unwrap(),
            counts: HashMap::new(),
            dropped: Arc::default(),
        };
        let start = Instant::now();
        let mut alerts = 0;
        for i in 0..10 {
            alerts += alerter
                .count(
                    event("portal", "login_failed", "192.0.2.1"),
                    start + Duration::from_secs(i),
                )
                .len();
            alerts += alerter.count(event("portal", "login", "192.0.2.1"), start).len();
        }
        assert_eq!(alerts, 1, "the fourth failure alerts, the rest are quiet");
        let other = alerter.count(event("portal", "login_failed", "192.0.2.2"), start);
        assert!(other.is_empty(), "another client has its own count");
        let later = start + Duration::from_secs(6 * 60);
        for i in 0..4 {
            alerts += alerter
                .count(
                    event("portal", "login_failed", "192.0.2.1"),
                    later + Duration::from_secs(i),
                )
                .len();
        }
        assert_eq!(alerts, 2, "after the window, a new burst alerts again");
        let slack = Alerter {
            section: AlertsSection {
                format: Format::Slack,
                ..AlertsSection::default()
            },
            ..alerter
        };
        let alert = Alert {
            threshold: threshold("waf", None, 20),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            count: 21,
            last_event: event("waf", "sql_injection", "192.0.2.1"),
        };
        let body: serde_json::Value = serde_json::from_slice(&slack.body(&[alert], 0)).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("21 waf events from 192.0.2.1 within 5m"), "{text}");
    }

    #[test]
    fn webhooks_are_urls() {
        let section = |webhook: &str| AlertsSection {
            webhook: Some(webhook.into()),
            ..AlertsSection::default()
        };
        assert!(section("https://hooks.example.com/x").validate().is_ok());
        assert_eq!(section("ftp://x/").validate().unwrap_err().0, "webhook");
        assert_eq!(section("not a url").validate().unwrap_err().0, "webhook");
    }
}
