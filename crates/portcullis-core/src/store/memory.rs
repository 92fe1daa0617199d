//! The embedded store: sharded maps, bounded in size.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use std::time::Duration;

use super::{gcra, GcraOutcome, Rate, Store, StoreFuture, StrikeRule, Strikes};

/// Keys are held as a 128-bit keyed hash, not as strings: 16 bytes each
/// whatever the key's length, so a million clients fit in about 50 MiB. The
/// hash is SipHash under keys chosen at random per process, so clients cannot
/// pick addresses that collide; by chance, two of a million keys share a hash
/// with probability about 10⁻²⁷.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyHash(u64, u64);

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The key is already a random hash: the map uses its first half as is.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Map<V> = HashMap<KeyHash, V, BuildHasherDefault<Prehashed>>;

#[derive(Default)]
struct Shard {
    /// Rate-limit keys → TAT.
    tats: Map<u64>,
    strikes: Map<Strikes>,
    /// Sessions and one-time markers → (value, expiry).
    values: Map<(String, u64)>,
}

impl Shard {
    fn len(&self) -> usize {
        self.tats.len() + self.strikes.len() + self.values.len()
    }

    /// Makes room for one more key when the store is full: this shard's
    /// expired entries go first, then an arbitrary rate-limit entry (that
    /// client starts again with a full allowance), and only when there is
    /// none an arbitrary value (a session: its user logs in again), and last an
    /// arbitrary strike entry: blocks are worth more than allowances and
    /// sessions. Returns how many entries were removed.
    fn make_room(&mut self, now: u64) -> usize {
        let before = self.len();
        self.tats.retain(|_, tat| *tat > now);
        self.strikes.retain(|_, strikes| strikes.expires_at() > now);
        self.values.retain(|_, (_, expires)| *expires > now);
        if self.len() == before {
            if let Some(victim) = self.tats.keys().next().copied() {
                self.tats.remove(&victim);
            } else if let Some(victim) = self.values.keys().next().copied() {
                self.values.remove(&victim);
            } else if let Some(victim) = self.strikes.keys().next().copied() {
                self.strikes.remove(&victim);
            }
        }
        before - self.len()
    }
}

/// The in-memory [`Store`]: 64 independently locked shards.
///
/// Entries expire once they no longer change a decision (a TAT in the past, a
/// strike window and block that have ended) and are purged when a shard is
/// full. The bound is `max_keys` (default 1,000,000) for the whole store:
/// size it for the number of clients you expect; see [`Shard::make_room`] for
/// what is evicted. (Concurrent new keys, or a new key in a shard with
/// nothing to evict, may pass the bound by a few.)
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    /// Entries held, across shards: the bound is on the whole store.
    len: AtomicUsize,
    max_keys: usize,
    hashers: (RandomState, RandomState),
}

const SHARDS: usize = 64;

impl MemoryStore {
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            len: AtomicUsize::new(0),
            max_keys: max_keys.max(1),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    fn locate(&self, key: &str) -> (KeyHash, MutexGuard<'_, Shard>) {
        let hash = KeyHash(self.hashers.0.hash_one(key), self.hashers.1.hash_one(key));
        // The map uses the first half; the shard is chosen by the second.
        let shard = &self.shards[hash.1 as usize % SHARDS];
        (hash, shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub fn gcra_now(&self, key: &str, now: u64, rate: Rate) -> GcraOutcome {
        let (hash, mut shard) = self.locate(key);
        // Known clients are updated in place: one lookup per request.
        if let Some(stored) = shard.tats.get_mut(&hash) {
            let (outcome, tat) = gcra(Some(*stored), now, rate);
            *stored = tat;
            return outcome;
        }
        let (outcome, tat) = gcra(None, now, rate);
        self.admit(&mut shard, now);
        shard.tats.insert(hash, tat);
        outcome
    }

    pub fn strike_now(&self, key: &str, now: u64, rule: StrikeRule) -> u64 {
        let (hash, mut shard) = self.locate(key);
        if !shard.strikes.contains_key(&hash) {
            self.admit(&mut shard, now);
        }
        shard.strikes.entry(hash).or_default().strike(now, rule)
    }

    /// Counts a new key in, evicting from its shard if the store is full.
    fn admit(&self, shard: &mut Shard, now: u64) {
        if self.len.load(Ordering::Relaxed) >= self.max_keys {
            let removed = shard.make_room(now);
            self.len.fetch_sub(removed, Ordering::Relaxed);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    pub fn blocked_now(&self, key: &str, now: u64) -> u64 {
        let (hash, shard) = self.locate(key);
        shard.strikes.get(&hash).map_or(0, |s| s.blocked_ms(now))
    }

    pub fn forgive_now(&self, key: &str) {
        let (hash, mut shard) = self.locate(key);
        if let Some(strikes) = shard.strikes.get_mut(&hash) {
            strikes.count = 0;
        }
    }

    /// Stores `value` if `replace` or if `key` holds nothing live; true if stored.
    pub fn put_now(&self, key: &str, value: String, now: u64, ttl: Duration, replace: bool) -> bool {
        let (hash, mut shard) = self.locate(key);
        let expires = now + ttl.as_millis() as u64;
        match shard.values.get_mut(&hash) {
            Some(held) if replace || held.1 <= now => *held = (value, expires),
            Some(_) => return false,
            None => {
                self.admit(&mut shard, now);
                shard.values.insert(hash, (value, expires));
            }
        }
        true
    }

    pub fn get_now(&self, key: &str, now: u64) -> Option<String> {
        let (hash, shard) = self.locate(key);
        shard
            .values
            .get(&hash)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    pub fn delete_now(&self, key: &str) {
        let (hash, mut shard) = self.locate(key);
        if shard.values.remove(&hash).is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn ready<T: Send + 'static>(value: T) -> StoreFuture<T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Store for MemoryStore {
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome> {
        ready(self.gcra_now(key, now_ms, rate))
    }

    fn gcra_at_once(&self, key: &str, now_ms: u64, rate: Rate) -> Option<GcraOutcome> {
        Some(self.gcra_now(key, now_ms, rate))
    }

    fn strike(&self, key: &str, now_ms: u64, rule: StrikeRule) -> StoreFuture<u64> {
        ready(self.strike_now(key, now_ms, rule))
    }

    fn blocked(&self, keys: &[String], now_ms: u64) -> StoreFuture<u64> {
        ready(keys.iter().map(|key| self.blocked_now(key, now_ms)).max().unwrap_or(0))
    }

    fn forgive(&self, key: &str, _now_ms: u64) -> StoreFuture<()> {
        self.forgive_now(key);
        ready(())
    }

    fn put(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<()> {
        self.put_now(key, value, now_ms, ttl, true);
        ready(())
    }

    fn put_new(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<bool> {
        ready(self.put_now(key, value, now_ms, ttl, false))
    }

    fn get(&self, key: &str, now_ms: u64) -> StoreFuture<Option<String>> {
        ready(self.get_now(key, now_ms))
    }

    fn delete(&self, key: &str) -> StoreFuture<()> {
        self.delete_now(key);
        ready(())
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

    const RULE: StrikeRule = StrikeRule {
        limit: 2,
        window: Duration::from_secs(60),
        block: Duration::from_secs(10),
    };

    #[test]
    fn values_expire_and_put_new_stores_only_once() {
        let store = MemoryStore::new(100);
        let minute = Duration::from_secs(60);
        assert!(store.put_now("code", "1".into(), 0, minute, false));
        assert!(!store.put_now("code", "2".into(), 1, minute, false), "already held");
        assert_eq!(store.get_now("code", 59_999).as_deref(), Some("1"));
        assert_eq!(store.get_now("code", 60_000), None, "expired");
        assert!(
            store.put_now("code", "3".into(), 60_000, minute, false),
            "an expired key is free"
        );
        store.put_now("session", "a".into(), 0, minute, true);
        store.put_now("session", "b".into(), 0, minute, true);
        assert_eq!(store.get_now("session", 1).as_deref(), Some("b"));
        let held = store.len();
        store.delete_now("session");
        assert_eq!((store.get_now("session", 1), store.len()), (None, held - 1));
    }

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
    fn strikes_block_forgiving_clears_the_count_not_the_block() {
        let store = MemoryStore::new(100);
        assert_eq!(store.strike_now("pair", 0, RULE), 0);
        store.forgive_now("pair");
        assert_eq!(store.strike_now("pair", 1, RULE), 0, "the count started again");
        assert_eq!(store.strike_now("pair", 2, RULE), 10_000);
        store.forgive_now("pair");
        assert_eq!(store.blocked_now("pair", 3), 9_999, "the block stays");
        assert_eq!(store.blocked_now("other", 3), 0);
        assert_eq!(store.blocked_now("pair", 10_002), 0);
    }

    #[test]
    fn memory_is_bounded_and_blocks_are_evicted_last() {
        // 16 blocks fit in any one shard, even if all land in the same one.
        let store = MemoryStore::new(SHARDS * 16);
        for i in 0..16 {
            store.strike_now(&format!("blocked-{i}"), 0, StrikeRule { limit: 1, ..RULE });
        }
        for i in 0..100_000 {
            store.gcra_now(&format!("client-{i}"), 1_000, RATE);
        }
        assert!(store.len() <= SHARDS * 16, "{} keys", store.len());
        for i in 0..16 {
            assert!(store.blocked_now(&format!("blocked-{i}"), 1_000) > 0, "block {i} kept");
        }
    }
}
