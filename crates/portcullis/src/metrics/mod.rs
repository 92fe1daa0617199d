//! Prometheus metrics (`[metrics] listen`): requests by route, method and
//! status class, latencies, bytes, connections, TLS handshakes, security
//! events, the store and the certificates, in the OpenMetrics text format
//! (prometheus-client's encoder) on a listener of their own.
//!
//! Every label value comes from a bounded set: routes by their config name,
//! methods folded to eight, status classes, and the `&'static str` kind, rule
//! and action of each event. No path and no client address is ever a label.

mod layer;
pub mod listener;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use layer::{RouteMetrics, RouteMetricsLayer, UpstreamTiming};

use crate::dashboard::Sources;

use layer::RequestSeries;

/// Latency buckets in seconds, 0.5 ms to 10 s: a gateway's own work is
/// sub-millisecond, an app's answers reach seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Methods as labels: the seven common ones, anything else as `OTHER`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &Method) -> usize {
    METHODS[..7]
        .iter()
        .position(|name| *name == method.as_str())
        .unwrap_or(7)
}

fn class_index(status: http::StatusCode) -> usize {
    (usize::from(status.as_u16() / 100)).clamp(1, 5) - 1
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: &'static str,
    rule: &'static str,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Every series the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Arc<RequestSeries>,
    open_connections: Gauge,
    idle_connections: Gauge,
    connections: Counter,
    tls_handshakes: Counter,
    tls_failures: Family<ReasonLabel, Counter>,
    events: Family<EventLabels, Counter>,
    store_up: Gauge,
    store_duration: Histogram,
    certificate_expiry: Family<NameLabel, Gauge>,
    reloads: Family<ResultLabel, Counter>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, once a config has turned them on; `None` costs nothing else.
pub fn enabled() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Turns the metrics on (for the life of the process: counters never go back).
pub fn enable() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// Where the store reports each call's duration.
pub fn store_call(took: Duration) {
    if let Some(metrics) = enabled() {
        metrics.store_duration.observe(took.as_secs_f64());
    }
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The running build; always 1", build);
        let metrics = Self {
            requests: Arc::default(),
            open_connections: Gauge::default(),
            idle_connections: Gauge::default(),
            connections: Counter::default(),
            tls_handshakes: Counter::default(),
            tls_failures: Family::default(),
            events: Family::default(),
            store_up: Gauge::default(),
            store_duration: Histogram::new(LATENCY_BUCKETS),
            certificate_expiry: Family::default(),
            reloads: Family::default(),
            registry,
        };
        metrics.register_all()
    }

    fn register_all(mut self) -> Self {
        let r = &mut self.registry;
        r.register_collector(Box::new(self.requests.clone()));
        r.register(
            "open_connections",
            "Client connections open now",
            self.open_connections.clone(),
        );
        r.register(
            "idle_connections",
            "HTTP/1.1 connections resting between requests, held without hyper's buffers",
            self.idle_connections.clone(),
        );
        r.register("connections", "Client connections accepted", self.connections.clone());
        r.register(
            "tls_handshakes",
            "TLS handshakes completed",
            self.tls_handshakes.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by reason",
            self.tls_failures.clone(),
        );
        r.register(
            "security_events",
            "Security events, by kind, rule and action (WAF blocks by detector, rate-limit refusals, bans, login blocks, CSRF refusals, replaced error pages...)",
            self.events.clone(),
        );
        r.register(
            "store_up",
            "1 while the shared store (Redis) answers, 0 during an outage",
            self.store_up.clone(),
        );
        r.register_with_unit(
            "store_call_duration",
            "Calls to the shared store (Redis), timeouts included",
            Unit::Seconds,
            self.store_duration.clone(),
        );
        r.register_with_unit(
            "certificate_expiry",
            "When each certificate in service expires (Unix time), by name",
            Unit::Seconds,
            self.certificate_expiry.clone(),
        );
        r.register("config_reloads", "Config reloads, by result", self.reloads.clone());
        self
    }

    /// The shard one route's requests update, resolved once per stack.
    /// Call it on the thread that serves the route: its counts go to that
    /// thread's shard.
    pub fn route(&self, route: &str) -> RouteMetrics {
        RouteMetrics::new(self.requests.shard(route))
    }

    pub fn upstream(&self, route: &str) -> UpstreamTiming {
        UpstreamTiming::new(self.requests.shard(route))
    }

    pub fn connection_opened(&'static self) -> Counting {
        self.connections.inc();
        Counting::in_gauge(&self.open_connections)
    }

    pub fn connection_idle(&'static self) -> Counting {
        Counting::in_gauge(&self.idle_connections)
    }

    pub fn tls_handshake(&self, failure: Option<&'static str>) {
        match failure {
            None => self.tls_handshakes.inc(),
            Some(reason) => self.tls_failures.get_or_create(&ReasonLabel { reason }).inc(),
        };
    }

    pub fn security_event(&self, kind: &'static str, rule: &'static str, action: &'static str) {
        self.events.get_or_create(&EventLabels { kind, rule, action }).inc();
    }

    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// The series read at scrape time (from `sources`), then the whole text.
    pub fn render(&self, sources: &Sources) -> String {
        self.store_up.set(i64::from(!sources.store_down()));
        self.certificate_expiry.clear();
        for (name, expires) in sources.certificates() {
            let at = expires.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            let seconds = i64::try_from(at.as_secs()).unwrap_or(i64::MAX);
            self.certificate_expiry.get_or_create(&NameLabel { name }).set(seconds);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts one in a gauge (open connections, resting ones) until dropped.
pub struct Counting(&'static Gauge);

impl Counting {
    fn in_gauge(gauge: &'static Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.0.dec();
    }
}
