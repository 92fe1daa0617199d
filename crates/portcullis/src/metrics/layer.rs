//! The per-route request series. They change on every request, so each
//! worker thread counts in shards of its own (plain atomics no other core
//! writes: no cache line bounces between workers, no lock) and the shards
//! are summed when Prometheus scrapes. A route's shard is resolved when its
//! stack is built, so a request costs a few uncontended atomic adds and no
//! label lookup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use http::{Request, Response};
use portcullis_core::body::{self, Body};
use portcullis_core::policy::{Policy, PolicyLayer, Responded, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::{class_index, method_index, RequestLabels, RouteLabel, LATENCY_BUCKETS, METHODS, STATUS_CLASSES};

/// Buckets as observed: one per bound, then the overflow (`+Inf`).
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

#[derive(Default)]
struct Latency {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    nanos: AtomicU64,
}

impl Latency {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn add_to(&self, total: &mut LatencyTotal) {
        for (sum, bucket) in total.buckets.iter_mut().zip(&self.buckets) {
            *sum += bucket.load(Ordering::Relaxed);
        }
        total.count += self.count.load(Ordering::Relaxed);
        total.nanos += self.nanos.load(Ordering::Relaxed);
    }
}

/// One worker thread's counts for one route.
#[derive(Default)]
pub struct RouteShard {
    /// By method, then status class.
    requests: [[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()],
    duration: Latency,
    upstream: Latency,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

/// Every shard, by route and thread: shards outlive reloads (a counter never
/// goes back), and a thread's stack for a route finds its shard again.
#[derive(Default)]
pub struct RequestSeries {
    shards: Mutex<Vec<(String, ThreadId, Arc<RouteShard>)>>,
}

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestSeries")
    }
}

impl RequestSeries {
    /// The calling thread's shard for `route`.
    pub fn shard(&self, route: &str) -> Arc<RouteShard> {
        let thread = std::thread::current().id();
        let mut shards = self.shards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, _, shard)) = shards.iter().find(|(r, t, _)| r == route && *t == thread) {
            return shard.clone();
        }
        let shard = Arc::new(RouteShard::default());
        shards.push((route.to_owned(), thread, shard.clone()));
        shard
    }

    fn totals(&self) -> BTreeMap<String, RouteTotal> {
        let shards = self.shards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut totals: BTreeMap<String, RouteTotal> = BTreeMap::new();
        for (route, _, shard) in shards.iter() {
            let total = totals.entry(route.clone()).or_default();
            for (method, classes) in shard.requests.iter().enumerate() {
                for (class, count) in classes.iter().enumerate() {
                    total.requests[method][class] += count.load(Ordering::Relaxed);
                }
            }
            shard.duration.add_to(&mut total.duration);
            shard.upstream.add_to(&mut total.upstream);
            total.request_bytes += shard.request_bytes.load(Ordering::Relaxed);
            total.response_bytes += shard.response_bytes.load(Ordering::Relaxed);
        }
        totals
    }
}

#[derive(Default)]
struct LatencyTotal {
    buckets: [u64; BUCKETS],
    count: u64,
    nanos: u64,
}

#[derive(Default)]
struct RouteTotal {
    requests: [[u64; STATUS_CLASSES.len()]; METHODS.len()],
    duration: LatencyTotal,
    upstream: LatencyTotal,
    request_bytes: u64,
    response_bytes: u64,
}

impl Collector for RequestSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        let help = "Requests answered, by route, method and status class";
        let mut requests = encoder.encode_descriptor("http_requests", help, None, MetricType::Counter)?;
        for (route, total) in &totals {
            for (method, classes) in METHODS.iter().zip(&total.requests) {
                for (status_class, count) in STATUS_CLASSES.iter().zip(classes).filter(|(_, n)| **n > 0) {
                    let labels = RequestLabels {
                        route: route.clone(),
                        method,
                        status_class,
                    };
                    ConstCounter::new(*count).encode(requests.encode_family(&labels)?)?;
                }
            }
        }
        let request_duration = "From the request head to the last byte of the answer, by route";
        encode_latency(
            &mut encoder,
            ("http_request_duration", request_duration),
            &totals,
            |t| &t.duration,
        )?;
        let upstream_duration = "From forwarding a request to the app's answer head, by route";
        encode_latency(&mut encoder, ("upstream_duration", upstream_duration), &totals, |t| {
            &t.upstream
        })?;
        let request_body = "Request body bytes read, by route";
        encode_bytes(&mut encoder, ("http_request_body", request_body), &totals, |t| {
            t.request_bytes
        })?;
        let response_body = "Response body bytes sent, by route";
        encode_bytes(&mut encoder, ("http_response_body", response_body), &totals, |t| {
            t.response_bytes
        })
    }
}

/// One histogram family, by route: `(name, help)`, and which latency of a route.
fn encode_latency(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    totals: &BTreeMap<String, RouteTotal>,
    latency: impl Fn(&RouteTotal) -> &LatencyTotal,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (route, total) in totals {
        let latency = latency(total);
        let bounds = LATENCY_BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY));
        let buckets: Vec<(f64, u64)> = bounds.zip(latency.buckets).collect();
        let seconds = latency.nanos as f64 / 1e9;
        let label = RouteLabel { route: route.clone() };
        family
            .encode_family(&label)?
            .encode_histogram::<NoLabelSet>(seconds, latency.count, &buckets, None)?;
    }
    Ok(())
}

/// One byte counter family, by route.
fn encode_bytes(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    totals: &BTreeMap<String, RouteTotal>,
    bytes: impl Fn(&RouteTotal) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Counter)?;
    for (route, total) in totals {
        let label = RouteLabel { route: route.clone() };
        ConstCounter::new(bytes(total)).encode(family.encode_family(&label)?)?;
    }
    Ok(())
}

/// Counts one route's requests, on this thread's shard.
pub struct RouteMetrics(Arc<RouteShard>);

pub type RouteMetricsLayer = PolicyLayer<RouteMetrics>;

impl RouteMetrics {
    pub(super) fn new(shard: Arc<RouteShard>) -> Self {
        Self(shard)
    }
}

impl Policy for RouteMetrics {
    type State = (Instant, usize);

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<(Instant, usize)> {
        if !http_body::Body::is_end_stream(request.body()) {
            let shard = self.0.clone();
            let inner = std::mem::replace(request.body_mut(), body::empty());
            *request.body_mut() = body::counted(inner, move |bytes| {
                shard.request_bytes.fetch_add(bytes, Ordering::Relaxed);
            });
        }
        Verdict::Forward((Instant::now(), method_index(request.method())))
    }

    fn on_response(self: &Arc<Self>, (start, method): (Instant, usize), response: Response<Body>) -> Responded {
        self.0.requests[method][class_index(response.status())].fetch_add(1, Ordering::Relaxed);
        // Done when its last byte is sent (or it is abandoned): the request's whole time.
        let route = self.clone();
        Responded::Now(response.map(|inner| {
            body::counted(inner, move |bytes| {
                route.0.duration.observe(start.elapsed());
                route.0.response_bytes.fetch_add(bytes, Ordering::Relaxed);
            })
        }))
    }
}

/// Times the app, from forwarding a request to its answer's head: the
/// proxy observes it.
#[derive(Clone)]
pub struct UpstreamTiming(Arc<RouteShard>);

impl UpstreamTiming {
    pub(super) fn new(shard: Arc<RouteShard>) -> Self {
        Self(shard)
    }

    pub fn observe(&self, took: Duration) {
        self.0.upstream.observe(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_counts_apart_and_a_scrape_sums_them() {
        let series = Arc::new(RequestSeries::default());
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let series = series.clone();
                std::thread::spawn(move || {
                    let shard = series.shard("api");
                    assert!(Arc::ptr_eq(&shard, &series.shard("api")), "found again on its thread");
                    for _ in 0..10 {
                        shard.requests[0][1].fetch_add(1, Ordering::Relaxed);
                        shard.duration.observe(Duration::from_millis(3));
                    }
                    shard.upstream.observe(Duration::from_secs(60));
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let totals = series.totals();
        let api = &totals["api"];
        assert_eq!(series.shards.lock().unwrap().len(), 3, "one shard per thread");
        assert_eq!(api.requests[0][1], 30);
        assert_eq!(api.duration.count, 30);
        assert_eq!(api.duration.buckets[3], 30, "3 ms falls in the 5 ms bucket");
        assert_eq!(api.duration.nanos, 90_000_000);
        assert_eq!(api.upstream.buckets[BUCKETS - 1], 3, "past every bound: +Inf");
    }
}
