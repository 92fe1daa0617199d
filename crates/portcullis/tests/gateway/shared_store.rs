//! State shared through a real `redis-server`: several gateways as one, the
//! fail modes while Redis is down, recovery without a restart, and the Redis
//! store deciding exactly as the in-memory one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::store::Clock;
use portcullis_core::store::{ManualClock, MemoryStore, Rate, RedisConfig, RedisStore, Store, StoreHealth, StrikeRule};

use crate::harness::{client, ExpressApp, Gateway, RedisServer};

fn store_config(redis: &RedisServer, extra: &str) -> String {
    format!("[store]\nredis = \"{}\"\n{extra}", redis.url())
}

#[tokio::test]
async fn two_gateways_on_one_redis_enforce_one_limit() {
    let redis = RedisServer::start();
    let app = ExpressApp::start();
    let config = store_config(&redis, "[rate_limit]\nrequests = 40\nwindow_secs = 3600\nburst = 40\n");
    let gateways = [Gateway::start(&app.url(), &config), Gateway::start(&app.url(), &config)];
    let urls: Vec<String> = (0..400).map(|i| gateways[i % 2].url("/hit")).collect();
    let statuses: Vec<u16> = stream::iter(urls)
        .map(|url| async move { client().get(url).send().await.unwrap().status().as_u16() })
        .buffer_unordered(64)
        .collect()
        .await;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(allowed, 40, "exactly the limit, across both gateways");
    assert!(statuses.iter().all(|s| [200, 429, 403].contains(s)), "{statuses:?}");
    assert_eq!(app.hits().await, 40, "the app saw exactly the limit");
}

/// Polls until `url` answers `status`, for at most 15 s.
async fn wait_for_status(url: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = client().get(url).send().await.unwrap().status().as_u16();
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "{url} still answers {got}, not {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fail_closed_while_redis_is_down_and_limits_return_with_it() {
    let mut redis = RedisServer::start();
    let app = ExpressApp::start();
    let config = store_config(
        &redis,
        "on_error = \"fail_closed\"\ntimeout = \"200ms\"\n[rate_limit]\nrequests = 2\nwindow_secs = 3600\nburst = 2\n[bans]\nenabled = false\n",
    );
    let gateway = Gateway::start(&app.url(), &config);
    let url = gateway.url("/");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);

    redis.kill();
    let started = Instant::now();
    let refused = client().get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 503, "fail closed");
    assert!(started.elapsed() < Duration::from_secs(2), "no hang past the timeout");
    assert!(refused.text().await.unwrap().contains("503"));
    gateway.process.stdout.wait_for("\"action\":\"outage\"");

    redis.restart();
    // The restarted server is empty: the client has its whole allowance again,
    // then the limit holds (each worker's connection comes back on its own).
    wait_for_status(&url, 200).await;
    gateway.process.stdout.wait_for("\"action\":\"recovered\"");
    wait_for_status(&url, 429).await;
}

#[tokio::test]
async fn fail_open_serves_unlimited_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let app = ExpressApp::start();
    let config = store_config(&redis, "[rate_limit]\nrequests = 1\nwindow_secs = 3600\nburst = 1\n");
    let gateway = Gateway::start(&app.url(), &config);
    let url = gateway.url("/");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 429);
    redis.kill();
    for _ in 0..3 {
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "fail open");
        assert!(response.headers().get("ratelimit").is_none(), "no limit was applied");
    }
    gateway.process.stdout.wait_for("\"action\":\"outage\"");
}

/// The longest of `count` sequential requests to `url`, and their statuses.
async fn slowest_of(url: &str, count: usize) -> (Duration, Vec<u16>) {
    let mut slowest = Duration::ZERO;
    let mut statuses = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        statuses.push(client().get(url).send().await.unwrap().status().as_u16());
        slowest = slowest.max(started.elapsed());
    }
    (slowest, statuses)
}

#[tokio::test]
async fn an_outage_costs_requests_no_wait_for_redis() {
    let mut redis = RedisServer::start();
    let app = ExpressApp::start();
    // A long store timeout: any request that waited for Redis would show it.
    let config = store_config(&redis, "timeout = \"3s\"\n");
    let gateway = Gateway::start(&app.url(), &config);
    let url = gateway.url("/");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    redis.kill();
    // Requests go on while every worker's connection finds Redis gone.
    while gateway.process.stdout.count("\"action\":\"outage\"") == 0 {
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
    let (slowest, statuses) = slowest_of(&url, 200).await;
    assert!(statuses.iter().all(|s| *s == 200), "fail open: {statuses:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest request during the outage took {slowest:?}"
    );
    redis.restart();
    gateway.process.stdout.wait_for("\"action\":\"recovered\"");
    assert_eq!(gateway.process.stdout.count("\"action\":\"outage\""), 1);
    assert_eq!(gateway.process.stdout.count("\"action\":\"recovered\""), 1);
}

#[tokio::test]
async fn local_limits_hold_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let app = ExpressApp::start();
    let limits =
        "on_error = \"local\"\n[rate_limit]\nrequests = 3\nwindow_secs = 3600\nburst = 3\n[bans]\nenabled = false\n";
    let gateway = Gateway::start(&app.url(), &store_config(&redis, limits));
    let url = gateway.url("/hit");
    let (_, statuses) = slowest_of(&url, 4).await;
    assert_eq!(statuses, [200, 200, 200, 429], "Redis decides");
    redis.kill();
    // The first request to find Redis gone is decided locally too, so the
    // gateway's own memory counts every request of the outage from its start.
    let before = app.hits().await;
    let (_, statuses) = slowest_of(&url, 5).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429], "the local store decides");
    assert_eq!(app.hits().await - before, 3, "the app saw exactly the local limit");
    gateway.process.stdout.wait_for("\"action\":\"outage\"");
    redis.restart();
    gateway.process.stdout.wait_for("\"action\":\"recovered\"");
    // Restarted empty: Redis decides again, with a whole allowance.
    let (_, statuses) = slowest_of(&url, 4).await;
    assert_eq!(statuses, [200, 200, 200, 429], "Redis decides again");
}

#[tokio::test]
async fn logins_are_counted_across_gateways() {
    let redis = RedisServer::start();
    let app = ExpressApp::start();
    let config = store_config(&redis, "[[login]]\npath = \"/login\"\nconsecutive_failures = 4\n");
    let gateways = [Gateway::start(&app.url(), &config), Gateway::start(&app.url(), &config)];
    for i in 0..4 {
        let response = client()
            .post(gateways[i % 2].url("/login"))
            .form(&[("username", "ada"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    for gateway in &gateways {
        let response = client()
            .post(gateway.url("/login"))
            .form(&[("username", "ada"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
    }
}

struct Ignore;

impl EventSink for Ignore {
    fn emit(&self, _: SecurityEvent) {}
}

/// A small deterministic generator, so a failure can be replayed.
struct Steps(u64);

impl Steps {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[tokio::test]
async fn redis_decides_exactly_as_the_memory_store() {
    let redis = RedisServer::start();
    let config = RedisConfig {
        url: redis.url(),
        timeout: Duration::from_secs(2),
        key_prefix: "parity:".into(),
    };
    let shared = RedisStore::new(config, StoreHealth::new(Arc::new(Ignore))).unwrap();
    let memory = MemoryStore::new(10_000);
    let clock = ManualClock::at(1_700_000_000_000);
    let rate = Rate {
        quota: 10,
        window: Duration::from_secs(60),
        burst: 3,
    };
    let rule = StrikeRule {
        limit: 3,
        window: Duration::from_secs(60),
        block: Duration::from_secs(3600),
    };
    let mut steps = Steps(7);
    for step in 0..3000 {
        // Rate-limit and strike keys never share a name (the layers prefix them).
        let key = format!("s{}", steps.next(5));
        let now = clock.now_ms();
        match steps.next(4) {
            0 => assert_eq!(
                shared.gcra(&key.replace('s', "r"), now, rate).await.unwrap(),
                memory.gcra(&key.replace('s', "r"), now, rate).await.unwrap(),
                "gcra, step {step}"
            ),
            1 => assert_eq!(
                shared.strike(&key, now, rule).await.unwrap(),
                memory.strike(&key, now, rule).await.unwrap(),
                "strike, step {step}"
            ),
            2 => {
                let keys = [key, format!("s{}", steps.next(5))];
                assert_eq!(
                    shared.blocked(&keys, now).await.unwrap(),
                    memory.blocked(&keys, now).await.unwrap(),
                    "blocked, step {step}"
                );
            }
            _ => {
                shared.forgive(&key, now).await.unwrap();
                memory.forgive(&key, now).await.unwrap();
            }
        }
        // Mostly small steps, sometimes past a window or a whole block.
        let advance = match steps.next(20) {
            0 => 3_600_000,
            1 => 60_000,
            _ => steps.next(3000),
        };
        clock.advance(Duration::from_millis(advance));
    }
}

#[tokio::test]
async fn concurrent_decisions_on_one_key_are_exact() {
    let redis = RedisServer::start();
    let config = RedisConfig {
        url: redis.url(),
        timeout: Duration::from_secs(2),
        key_prefix: "burst:".into(),
    };
    let store = RedisStore::new(config, StoreHealth::new(Arc::new(Ignore))).unwrap();
    let rate = Rate {
        quota: 50,
        window: Duration::from_secs(86_400),
        burst: 50,
    };
    // Many decisions in flight at once travel in shared batches.
    let decisions =
        futures_util::future::join_all((0..500).map(|_| store.gcra("client", 1_700_000_000_000, rate))).await;
    let allowed = decisions.iter().filter(|d| d.as_ref().unwrap().allowed).count();
    assert_eq!(allowed, 50);
}
