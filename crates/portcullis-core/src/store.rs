//! Shared state behind one trait, so one gateway or several (through Redis)
//! enforce the same limits.
//!
//! The primitive is GCRA (the generic cell rate algorithm): per key the store
//! keeps one number, the theoretical arrival time (TAT) of the next request,
//! and updates it atomically. It gives smooth rate limiting with bursts, an
//! exact retry time, and needs no counters to reset.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock tests move by hand, so time-dependent behaviour needs no sleeps.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn at(ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A rate: `quota` requests per `window`, of which up to `burst` may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub quota: u64,
    pub window: Duration,
    pub burst: u64,
}

impl Rate {
    /// Time between two requests at the sustained rate, in ms (at least 1).
    fn emission_ms(&self) -> u64 {
        (self.window.as_millis() as u64 / self.quota.max(1)).max(1)
    }
}

/// What the store decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    pub allowed: bool,
    /// Requests that could still be made at once.
    pub remaining: u64,
    /// When the allowance is whole again, in ms from now.
    pub reset_ms: u64,
    /// When a refused request may be retried, in ms from now (0 when allowed).
    pub retry_after_ms: u64,
}

/// GCRA's decision, given the stored TAT (`None`: new key). Returns the
/// outcome and the TAT to store (unchanged when refused).
pub fn gcra(stored: Option<u64>, now: u64, rate: Rate) -> (GcraOutcome, u64) {
    let emission = rate.emission_ms();
    let tolerance = emission * rate.burst.max(1);
    let tat = stored.unwrap_or(now).max(now);
    let new_tat = tat + emission;
    let ahead = new_tat - now;
    if ahead > tolerance {
        let retry_after_ms = ahead - tolerance;
        let outcome = GcraOutcome {
            allowed: false,
            remaining: 0,
            reset_ms: tat - now,
            retry_after_ms,
        };
        return (outcome, tat);
    }
    let outcome = GcraOutcome {
        allowed: true,
        remaining: (tolerance - ahead) / emission,
        reset_ms: ahead,
        retry_after_ms: 0,
    };
    (outcome, new_tat)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// Where rate-limit state lives: in memory (one gateway) or shared.
pub trait Store: Send + Sync + 'static {
    /// Applies GCRA to `key` atomically: concurrent requests never over- or under-count.
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome>;
}

/// The embedded store: sharded maps of key → TAT, bounded in size.
///
/// Entries expire once their TAT has passed (the key's allowance is whole
/// again, so forgetting it changes nothing). When a shard is full, its expired
/// entries are purged; if none has expired, an arbitrary entry is evicted and
/// that client starts again with a full allowance. Size the store for the
/// number of clients you expect (`max_keys`, default 1,000,000).
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

const SHARDS: usize = 64;

impl MemoryStore {
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, u64>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The decision, taken under the shard's lock.
    pub fn gcra_now(&self, key: &str, now: u64, rate: Rate) -> GcraOutcome {
        let mut shard = self.shard(key).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stored = shard.get(key).copied();
        let (outcome, tat) = gcra(stored, now, rate);
        if stored.is_none() && shard.len() >= self.per_shard {
            shard.retain(|_, tat| *tat > now);
            if shard.len() >= self.per_shard {
                if let Some(victim) = shard.keys().next().cloned() {
                    shard.remove(&victim);
                }
            }
        }
        match shard.get_mut(key) {
            // Known clients are updated in place: no key allocation per request.
            Some(stored) => *stored = tat,
            None => {
                shard.insert(key.to_owned(), tat);
            }
        }
        outcome
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome> {
        let outcome = self.gcra_now(key, now_ms, rate);
        Box::pin(std::future::ready(Ok(outcome)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        quota: 60,
        window: Duration::from_secs(60),
        burst: 5,
    };

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let store = MemoryStore::new(100);
        let now = 1_000_000;
        for remaining in (0..5).rev() {
            let outcome = store.gcra_now("ip", now, RATE);
            assert!(outcome.allowed);
            assert_eq!(outcome.remaining, remaining);
        }
        let refused = store.gcra_now("ip", now, RATE);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 1000, "one emission interval");
        assert_eq!(refused.reset_ms, 5000, "five intervals until the burst is whole again");
        assert!(!store.gcra_now("ip", now + 999, RATE).allowed);
        assert!(
            store.gcra_now("ip", now + 1000, RATE).allowed,
            "exactly at the retry time"
        );
        assert!(store.gcra_now("other", now, RATE).allowed, "keys are independent");
    }

    #[test]
    fn refusals_do_not_push_the_retry_time_further() {
        let store = MemoryStore::new(100);
        for _ in 0..5 {
            store.gcra_now("ip", 0, RATE);
        }
        for _ in 0..100 {
            assert_eq!(store.gcra_now("ip", 0, RATE).retry_after_ms, 1000);
        }
    }

    #[test]
    fn memory_is_bounded() {
        let store = MemoryStore::new(SHARDS * 2);
        for i in 0..10_000 {
            store.gcra_now(&format!("client-{i}"), 1_000_000, RATE);
        }
        assert!(store.len() <= SHARDS * 2, "{} keys", store.len());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(5);
        clock.advance(Duration::from_millis(10));
        assert_eq!(clock.now_ms(), 15);
    }
}
