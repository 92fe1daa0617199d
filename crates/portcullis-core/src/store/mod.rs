//! Shared state behind one trait, so one gateway or several (through Redis)
//! enforce the same limits.
//!
//! Two primitives cover every limit:
//! - GCRA (the generic cell rate algorithm) for rate limits: per key the store
//!   keeps one number, the theoretical arrival time (TAT) of the next request,
//!   and updates it atomically. Smooth limiting with bursts, an exact retry
//!   time, no counters to reset.
//! - Strikes for failures and repeat offences: a count in a fixed window that,
//!   on reaching its limit, blocks the key for a while.
//!
//! Times are milliseconds since the Unix epoch from an injectable [`Clock`],
//! passed into every call, so tests move time by hand and every backend
//! decides with the same arithmetic. Instances sharing a store should keep
//! their clocks in sync (NTP); a skew of `d` ms shifts their limits by `d`.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Response, StatusCode};
use serde::Deserialize;

use crate::body::Body;
use crate::context::RequestContext;
use crate::pages::NeutralPages;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore, StoreHealth};

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
    pub fn emission_ms(&self) -> u64 {
        (self.window.as_millis() as u64 / self.quota.max(1)).max(1)
    }

    /// How far ahead of now the TAT may run: the burst, in ms.
    pub fn tolerance_ms(&self) -> u64 {
        self.emission_ms() * self.burst.max(1)
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
    let tolerance = rate.tolerance_ms();
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

/// `limit` strikes within `window` block the key for `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrikeRule {
    pub limit: u64,
    pub window: Duration,
    pub block: Duration,
}

/// One key's strikes. The window starts at the first strike; a block
/// replaces the count, so counting starts afresh once it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Strikes {
    pub count: u64,
    pub window_end: u64,
    pub blocked_until: u64,
}

impl Strikes {
    /// Counts one strike at `now`. Returns the remaining block in ms (0: not
    /// blocked). Strikes against a blocked key do not lengthen the block.
    pub fn strike(&mut self, now: u64, rule: StrikeRule) -> u64 {
        if self.blocked_until > now {
            return self.blocked_until - now;
        }
        if self.window_end <= now {
            *self = Self {
                count: 0,
                window_end: now + rule.window.as_millis() as u64,
                blocked_until: 0,
            };
        }
        self.count += 1;
        if self.count < rule.limit {
            return 0;
        }
        let block = rule.block.as_millis() as u64;
        *self = Self {
            count: 0,
            window_end: now,
            blocked_until: now + block,
        };
        block
    }

    /// The remaining block at `now`, in ms (0: not blocked).
    pub fn blocked_ms(&self, now: u64) -> u64 {
        self.blocked_until.saturating_sub(now)
    }

    /// When the entry no longer matters and may be dropped.
    pub fn expires_at(&self) -> u64 {
        self.window_end.max(self.blocked_until)
    }
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

/// Where limit state lives: in memory (one gateway) or shared. Every method
/// is atomic per key: concurrent requests never over- or under-count.
pub trait Store: Send + Sync + 'static {
    /// Applies GCRA to `key`.
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome>;

    /// Applies GCRA to `key` without waiting, if this store can (in memory):
    /// the common case then costs no future. `None`: use [`Store::gcra`].
    fn gcra_at_once(&self, _key: &str, _now_ms: u64, _rate: Rate) -> Option<GcraOutcome> {
        None
    }

    /// Counts a strike against `key`; returns the remaining block in ms (0: none).
    fn strike(&self, key: &str, now_ms: u64, rule: StrikeRule) -> StoreFuture<u64>;

    /// The longest remaining block among `keys`, in ms (0: none is blocked).
    fn blocked(&self, keys: &[String], now_ms: u64) -> StoreFuture<u64>;

    /// Clears `key`'s strike count; a block in force stays.
    fn forgive(&self, key: &str, now_ms: u64) -> StoreFuture<()>;

    /// Keeps `value` under `key` for `ttl` (a session), replacing what was there.
    fn put(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<()>;

    /// Keeps `value` under `key` for `ttl` only if `key` holds nothing: true
    /// if it was stored (a one-time code seen for the first time).
    fn put_new(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<bool>;

    /// What `key` holds, unless it has expired.
    fn get(&self, key: &str, now_ms: u64) -> StoreFuture<Option<String>>;

    /// Forgets what `key` holds.
    fn delete(&self, key: &str) -> StoreFuture<()>;
}

/// What requests get while the store cannot answer (`[store] on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Serve them unlimited: an outage of the store is not an outage of the site.
    #[default]
    FailOpen,
    /// Refuse them with a neutral 503 until the store is back.
    FailClosed,
    /// Decide from this gateway's own memory until the store is back, as
    /// rate-limiter-flexible's insurance limiter does: each gateway then
    /// enforces the limits alone, so N gateways let through up to N times a
    /// limit. Only a shared store can be away; others serve unlimited.
    Local,
}

impl OnError {
    /// What a request that needed the store gets while it cannot answer:
    /// nothing (`None`: serve it unlimited) or a neutral 503.
    pub fn answer(self, pages: &NeutralPages, context: Option<&RequestContext>) -> Option<Response<Body>> {
        match self {
            Self::FailOpen | Self::Local => None,
            Self::FailClosed => Some(pages.render(StatusCode::SERVICE_UNAVAILABLE, context)),
        }
    }
}

/// What a limiting layer needs: the store, the clock, and the fail mode.
#[derive(Clone)]
pub struct SharedState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub on_error: OnError,
}

impl SharedState {
    /// An in-memory store on the system clock.
    pub fn in_memory(max_keys: usize) -> Self {
        Self {
            store: Arc::new(MemoryStore::new(max_keys)),
            clock: Arc::new(SystemClock),
            on_error: OnError::FailOpen,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE_PER_MINUTE: StrikeRule = StrikeRule {
        limit: 3,
        window: Duration::from_secs(60),
        block: Duration::from_secs(3600),
    };

    #[test]
    fn the_limit_th_strike_blocks_and_a_block_is_not_extended() {
        let mut strikes = Strikes::default();
        assert_eq!(strikes.strike(1000, THREE_PER_MINUTE), 0);
        assert_eq!(strikes.strike(2000, THREE_PER_MINUTE), 0);
        assert_eq!(strikes.strike(3000, THREE_PER_MINUTE), 3_600_000);
        assert_eq!(strikes.strike(4000, THREE_PER_MINUTE), 3_599_000, "not extended");
        assert_eq!(strikes.blocked_ms(3000 + 3_600_000), 0);
        assert_eq!(
            strikes.strike(3000 + 3_600_000, THREE_PER_MINUTE),
            0,
            "counting starts afresh after the block"
        );
    }

    #[test]
    fn strikes_outside_the_window_start_a_new_count() {
        let mut strikes = Strikes::default();
        strikes.strike(0, THREE_PER_MINUTE);
        strikes.strike(1, THREE_PER_MINUTE);
        assert_eq!(strikes.strike(60_000, THREE_PER_MINUTE), 0, "the window ended");
        assert_eq!(strikes.count, 1);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(5);
        clock.advance(Duration::from_millis(10));
        assert_eq!(clock.now_ms(), 15);
    }
}
