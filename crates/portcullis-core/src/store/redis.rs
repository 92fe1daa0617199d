//! The shared store: Redis, one atomic Lua script per operation.
//!
//! Each script reads and writes its key in one step inside Redis, so any
//! number of gateways sharing the server count every request exactly once.
//! Decisions use the same arithmetic as the in-memory store, with `now`
//! passed in from the gateway's clock; Redis expiry only collects keys that
//! no longer matter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{GcraOutcome, Rate, Store, StoreError, StoreFuture, StrikeRule};
use crate::events::{Events, SecurityEvent};

/// GCRA as in [`super::gcra`]. KEYS: the TAT key. ARGV: now, emission, tolerance.
/// Returns {allowed, remaining, reset_ms, retry_after_ms}.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, emission, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat + emission - now
if ahead > tolerance then
  return {0, 0, tat - now, ahead - tolerance}
end
redis.call('SET', KEYS[1], tat + emission, 'PX', ahead)
return {1, math.floor((tolerance - ahead) / emission), ahead, 0}
",
    )
});

/// [`super::Strikes::strike`]. KEYS: the strikes hash (c: count, w: window
/// end, b: blocked until). ARGV: now, limit, window_ms, block_ms.
/// Returns the remaining block in ms.
static STRIKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, limit, window, block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'c', 'w', 'b')
local count, window_end, blocked = tonumber(s[1] or 0), tonumber(s[2] or 0), tonumber(s[3] or 0)
if blocked > now then return blocked - now end
if window_end <= now then count = 0; window_end = now + window end
count = count + 1
if count >= limit then
  redis.call('HSET', KEYS[1], 'c', 0, 'w', now, 'b', now + block)
  redis.call('PEXPIRE', KEYS[1], block)
  return block
end
redis.call('HSET', KEYS[1], 'c', count, 'w', window_end, 'b', 0)
redis.call('PEXPIRE', KEYS[1], window_end - now)
return 0
",
    )
});

/// The longest remaining block among KEYS. ARGV: now.
static BLOCKED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, longest = tonumber(ARGV[1]), 0
for _, key in ipairs(KEYS) do
  local blocked = tonumber(redis.call('HGET', key, 'b') or 0)
  if blocked - now > longest then longest = blocked - now end
end
return longest
",
    )
});

/// Clears the count of KEYS[1], keeping a block.
static FORGIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'c', 0) end
return 0
",
    )
});

/// `[store] redis = ...` and its settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Longest wait for one answer, connection included.
    pub timeout: Duration,
    /// Put before every key, so several deployments can share one server.
    pub key_prefix: String,
}

/// Whether Redis is answering, shared by every connection of one gateway, so
/// each outage and each recovery is reported once.
pub struct StoreHealth {
    down: AtomicBool,
    events: Events,
}

impl StoreHealth {
    pub fn new(events: Events) -> Arc<Self> {
        Arc::new(Self {
            down: AtomicBool::new(false),
            events,
        })
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn answered(&self) {
        if self.is_down() && self.down.swap(false, Ordering::Relaxed) {
            self.report("recovered", None);
        }
    }

    fn failed(&self, error: &StoreError) {
        if !self.down.swap(true, Ordering::Relaxed) {
            self.report("outage", Some(error.to_string()));
        }
    }

    fn report(&self, action: &'static str, detail: Option<String>) {
        self.events.emit(SecurityEvent {
            kind: "store",
            rule: "redis",
            action,
            request_id: None,
            client_ip: None,
            detail,
        });
    }
}

/// One connection (multiplexed: concurrent requests are pipelined on it),
/// reconnected in the background with exponential backoff.
///
/// The connection's driver runs on the Tokio runtime it is created on, so a
/// gateway with one event loop per core creates one `RedisStore` per loop.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    config: Arc<RedisConfig>,
    health: Arc<StoreHealth>,
}

impl RedisStore {
    /// Checks the URL; connects lazily, so a gateway starts even while Redis
    /// is down (requests get the fail mode until it is back).
    pub fn new(config: RedisConfig, health: Arc<StoreHealth>) -> Result<Self, RedisError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        Ok(Self {
            connection: ConnectionManager::new_lazy_with_config(client, manager)?,
            config: Arc::new(config),
            health,
        })
    }

    /// Checks that `url` is one the client can use.
    pub fn check_url(url: &str) -> Result<(), String> {
        redis::Client::open(url)
            .map(|_| ())
            .map_err(|e| format!("`{url}` is not a Redis URL ({e}), expected e.g. redis://127.0.0.1:6379"))
    }

    fn run<T: redis::FromRedisValue + Send + 'static>(
        &self,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<u64>,
    ) -> StoreFuture<T> {
        let mut connection = self.connection.clone();
        let health = self.health.clone();
        let timeout = self.config.timeout;
        let keys: Vec<String> = keys
            .into_iter()
            .map(|key| format!("{}{key}", self.config.key_prefix))
            .collect();
        Box::pin(async move {
            let mut invocation = script.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            for arg in &args {
                invocation.arg(arg);
            }
            // The connection has its own timeouts; this bounds reconnects too.
            let result = match tokio::time::timeout(timeout, invocation.invoke_async(&mut connection)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(StoreError(format!("redis: {error}"))),
                Err(_) => Err(StoreError(format!("redis: no answer within {timeout:?}"))),
            };
            match &result {
                Ok(_) => health.answered(),
                Err(error) => health.failed(error),
            }
            result
        })
    }
}

impl Store for RedisStore {
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome> {
        let answer = self.run::<(u64, u64, u64, u64)>(
            &GCRA,
            vec![key.to_owned()],
            vec![now_ms, rate.emission_ms(), rate.tolerance_ms()],
        );
        Box::pin(async move {
            let (allowed, remaining, reset_ms, retry_after_ms) = answer.await?;
            Ok(GcraOutcome {
                allowed: allowed == 1,
                remaining,
                reset_ms,
                retry_after_ms,
            })
        })
    }

    fn strike(&self, key: &str, now_ms: u64, rule: StrikeRule) -> StoreFuture<u64> {
        let args = vec![
            now_ms,
            rule.limit,
            rule.window.as_millis() as u64,
            rule.block.as_millis() as u64,
        ];
        self.run(&STRIKE, vec![key.to_owned()], args)
    }

    fn blocked(&self, keys: &[String], now_ms: u64) -> StoreFuture<u64> {
        self.run(&BLOCKED, keys.to_vec(), vec![now_ms])
    }

    fn forgive(&self, key: &str, _now_ms: u64) -> StoreFuture<()> {
        let answer = self.run::<u64>(&FORGIVE, vec![key.to_owned()], Vec::new());
        Box::pin(async move { answer.await.map(|_| ()) })
    }
}
