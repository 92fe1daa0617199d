//! The shared store: Redis, one atomic Lua script per operation.
//!
//! Each script reads and writes its key in one step inside Redis, so any
//! number of gateways sharing the server count every request exactly once.
//! Decisions use the same arithmetic as the in-memory store, with `now`
//! passed in from the gateway's clock; Redis expiry only collects keys that
//! no longer matter.
//!
//! A circuit breaker keeps an outage of Redis from slowing the site: the
//! first failed call opens it, and until a background probe (with the
//! reconnect backoff) gets an answer, calls fail at once without touching
//! Redis, or are answered from this gateway's own memory store when one is
//! given ([`RedisStore::with_local_fallback`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::sync::{mpsc, oneshot};

use super::{GcraOutcome, Rate, Store, StoreError, StoreFuture, StrikeRule};
use crate::events::{Events, SecurityEvent};

/// GCRA as in [`super::gcra`], for a batch of keys in one call: KEYS are the
/// TAT keys; ARGV holds now, emission and tolerance for each key in turn.
/// Returns {allowed, remaining, reset_ms, retry_after_ms} for each key. Keys
/// are decided one after another inside one atomic call, exactly as separate
/// calls would decide them.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local call, out, written = redis.call, {}, {}
local stored = call('MGET', unpack(KEYS))
for i = 1, #KEYS do
  local key, now, emission, tolerance = KEYS[i], tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  -- A key may come twice in a batch: the later decision sees the earlier one.
  local tat = written[key] or tonumber(stored[i]) or now
  if tat < now then tat = now end
  local ahead = tat + emission - now
  local at = 4 * i
  if ahead > tolerance then
    out[at - 3], out[at - 2], out[at - 1], out[at] = 0, 0, tat - now, ahead - tolerance
  else
    call('SET', key, tat + emission, 'PX', ahead)
    written[key] = tat + emission
    out[at - 3], out[at - 2], out[at - 1], out[at] = 1, math.floor((tolerance - ahead) / emission), ahead, 0
  end
end
return out
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
/// each outage and each recovery is reported once: the outage when the first
/// connection's circuit opens, the recovery when the last one closes.
pub struct StoreHealth {
    /// Connections whose circuit is open.
    open: AtomicUsize,
    events: Events,
    /// Told how long each call took, answered or not (for a latency histogram).
    on_call: Option<fn(Duration)>,
}

impl StoreHealth {
    pub fn new(events: Events) -> Arc<Self> {
        Self::timed(events, None)
    }

    /// Health that also reports each call's duration to `on_call`.
    pub fn timed(events: Events, on_call: Option<fn(Duration)>) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            events,
            on_call,
        })
    }

    pub fn is_down(&self) -> bool {
        self.open.load(Ordering::Relaxed) > 0
    }

    fn opened(&self, error: &StoreError) {
        if self.open.fetch_add(1, Ordering::Relaxed) == 0 {
            self.report("outage", Some(error.to_string()));
        }
    }

    fn closed(&self) {
        if self.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.report("recovered", None);
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
            exclusion: None,
        });
    }
}

/// One connection (multiplexed: concurrent requests are pipelined on it),
/// reconnected in the background with exponential backoff.
///
/// Rate-limit decisions, one per request, are batched: those that arrive
/// while a call is out travel together in the next one, so under load Redis
/// runs one script for many requests and the gateway makes one round trip.
///
/// The connection's driver runs on the Tokio runtime it is created on, so a
/// gateway with one event loop per core creates one `RedisStore` per loop.
#[derive(Clone)]
pub struct RedisStore {
    connection: Arc<Connection>,
    gcra_batches: mpsc::UnboundedSender<GcraRequest>,
    /// Answers while the circuit is open (`on_error = "local"`).
    local: Option<Arc<dyn Store>>,
}

struct Connection {
    manager: ConnectionManager,
    config: RedisConfig,
    health: Arc<StoreHealth>,
    /// The circuit breaker: open from a failed call until a probe is answered.
    open: AtomicBool,
}

/// The probe's first and longest wait between two tries.
const PROBE_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// One rate-limit decision waiting for the next batch.
struct GcraRequest {
    key: String,
    args: [u64; 3],
    reply: oneshot::Sender<Result<GcraOutcome, StoreError>>,
}

/// Decisions sent in one call at most.
const MAX_BATCH: usize = 128;

impl RedisStore {
    /// Checks the URL; connects lazily, so a gateway starts even while Redis
    /// is down (requests get the fail mode until it is back). Must be called
    /// on a Tokio runtime: the batching task runs there.
    pub fn new(config: RedisConfig, health: Arc<StoreHealth>) -> Result<Self, RedisError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // One attempt per reconnect: a refused connection fails at once
            // (the circuit then opens), and the probe does the waiting.
            .set_number_of_retries(0)
            .set_min_delay(PROBE_BACKOFF.0)
            .set_max_delay(PROBE_BACKOFF.1);
        let connection = Arc::new(Connection {
            manager: ConnectionManager::new_lazy_with_config(client, manager)?,
            config,
            health,
            open: AtomicBool::new(false),
        });
        let (gcra_batches, queue) = mpsc::unbounded_channel();
        tokio::spawn(connection.clone().batch_gcra(queue));
        Ok(Self {
            connection,
            gcra_batches,
            local: None,
        })
    }

    /// While Redis is away, decides from `local` (this gateway's own memory)
    /// instead of failing: limits then hold per gateway, not across them.
    pub fn with_local_fallback(mut self, local: Arc<dyn Store>) -> Self {
        self.local = Some(local);
        self
    }

    /// The local store, when Redis is known to be away and there is one.
    fn local_while_open(&self) -> Option<&dyn Store> {
        let local = self.local.as_deref()?;
        self.connection.open.load(Ordering::Relaxed).then_some(local)
    }

    /// An answer without a round trip: the local store's, or the failure,
    /// while the circuit is open.
    fn while_open<T: Send + 'static>(
        &self,
        local: impl FnOnce(&dyn Store) -> StoreFuture<T>,
    ) -> Option<StoreFuture<T>> {
        if !self.connection.open.load(Ordering::Relaxed) {
            return None;
        }
        Some(match self.local.as_deref() {
            Some(store) => local(store),
            None => Box::pin(std::future::ready(Err(Connection::unreachable()))),
        })
    }

    /// `remote`, or on its failure the local store's answer (if there is one).
    fn or_local<T: Send + 'static>(
        &self,
        remote: StoreFuture<T>,
        local: impl FnOnce(&dyn Store) -> StoreFuture<T> + Send + 'static,
    ) -> StoreFuture<T> {
        let Some(fallback) = self.local.clone() else {
            return remote;
        };
        Box::pin(async move {
            match remote.await {
                Err(_) => local(&*fallback).await,
                answered => answered,
            }
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
        let connection = self.connection.clone();
        Box::pin(async move { connection.invoke(script, &keys, &args).await })
    }
}

impl Connection {
    /// Runs `script` once, within the timeout; a failure opens the circuit.
    /// While it is open, fails at once.
    async fn invoke<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        script: &Script,
        keys: &[String],
        args: &[u64],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        for arg in args {
            invocation.arg(arg);
        }
        let invocation = &invocation;
        self.attempt(|mut manager| async move { invocation.invoke_async(&mut manager).await })
            .await
    }

    /// Runs one command, as [`Connection::invoke`] runs a script.
    async fn query<T: redis::FromRedisValue>(self: &Arc<Self>, command: redis::Cmd) -> Result<T, StoreError> {
        let command = &command;
        self.attempt(|mut manager| async move { command.query_async(&mut manager).await })
            .await
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.key_prefix)
    }

    /// One call through `request`, within the timeout; a failure opens the
    /// circuit. While it is open, fails at once.
    async fn attempt<T, F, Fut>(self: &Arc<Self>, request: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if self.open.load(Ordering::Relaxed) {
            return Err(Self::unreachable());
        }
        let timeout = self.config.timeout;
        let started = std::time::Instant::now();
        let attempts = async {
            match request(self.manager.clone()).await {
                // A connection that broke while idle (Redis restarted, say) fails
                // its next call; the manager reconnects, so try once more on the
                // new one before calling Redis away.
                Err(error) if error.is_connection_dropped() || error.is_io_error() => {
                    request(self.manager.clone()).await
                }
                answered => answered,
            }
        };
        // The connection has its own timeouts; this bounds both tries and reconnects.
        let result = match tokio::time::timeout(timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError(format!("redis: {error}"))),
            Err(_) => Err(StoreError(format!("redis: no answer within {timeout:?}"))),
        };
        if let Some(on_call) = self.health.on_call {
            on_call(started.elapsed());
        }
        if let Err(error) = &result {
            self.open_circuit(error);
        }
        result
    }

    fn unreachable() -> StoreError {
        StoreError("redis: unreachable, waiting for it to answer again".into())
    }

    fn open_circuit(self: &Arc<Self>, error: &StoreError) {
        if !self.open.swap(true, Ordering::Relaxed) {
            self.health.opened(error);
            tokio::spawn(self.clone().probe());
        }
    }

    /// Pings Redis with growing pauses until it answers, then closes the circuit.
    async fn probe(self: Arc<Self>) {
        let mut pause = PROBE_BACKOFF.0;
        loop {
            tokio::time::sleep(pause).await;
            let mut manager = self.manager.clone();
            let ping = redis::cmd("PING");
            let ping = ping.query_async::<String>(&mut manager);
            if let Ok(Ok(_)) = tokio::time::timeout(self.config.timeout, ping).await {
                self.open.store(false, Ordering::Relaxed);
                self.health.closed();
                return;
            }
            pause = (pause * 2).min(PROBE_BACKOFF.1);
        }
    }

    /// Sends waiting decisions in batches, one call at a time, until every
    /// sender is gone.
    async fn batch_gcra(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<GcraRequest>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let keys: Vec<String> = batch.iter().map(|r| r.key.clone()).collect();
            let args: Vec<u64> = batch.iter().flat_map(|r| r.args).collect();
            let answers = self.invoke::<Vec<u64>>(&GCRA, &keys, &args).await.and_then(|flat| {
                if flat.len() == 4 * batch.len() {
                    Ok(flat)
                } else {
                    Err(StoreError(format!(
                        "redis: {} values for {} keys",
                        flat.len(),
                        batch.len()
                    )))
                }
            });
            for (i, request) in batch.drain(..).enumerate() {
                let outcome = answers.as_ref().map_err(Clone::clone).map(|flat| GcraOutcome {
                    allowed: flat[4 * i] == 1,
                    remaining: flat[4 * i + 1],
                    reset_ms: flat[4 * i + 2],
                    retry_after_ms: flat[4 * i + 3],
                });
                // The request may have given up waiting; nothing to do then.
                let _ = request.reply.send(outcome);
            }
        }
    }
}

impl Store for RedisStore {
    fn gcra(&self, key: &str, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome> {
        if let Some(answer) = self.while_open(|local| local.gcra(key, now_ms, rate)) {
            return answer;
        }
        if self.local.is_none() {
            return self.queue_gcra(key.to_owned(), now_ms, rate); // Every request: no second copy of the key.
        }
        let key = key.to_owned();
        self.or_local(self.queue_gcra(key.clone(), now_ms, rate), move |local| {
            local.gcra(&key, now_ms, rate)
        })
    }

    fn gcra_at_once(&self, key: &str, now_ms: u64, rate: Rate) -> Option<GcraOutcome> {
        self.local_while_open()?.gcra_at_once(key, now_ms, rate)
    }

    fn strike(&self, key: &str, now_ms: u64, rule: StrikeRule) -> StoreFuture<u64> {
        if let Some(answer) = self.while_open(|local| local.strike(key, now_ms, rule)) {
            return answer;
        }
        let args = vec![
            now_ms,
            rule.limit,
            rule.window.as_millis() as u64,
            rule.block.as_millis() as u64,
        ];
        let key = key.to_owned();
        self.or_local(self.run(&STRIKE, vec![key.clone()], args), move |local| {
            local.strike(&key, now_ms, rule)
        })
    }

    fn blocked(&self, keys: &[String], now_ms: u64) -> StoreFuture<u64> {
        if let Some(answer) = self.while_open(|local| local.blocked(keys, now_ms)) {
            return answer;
        }
        let keys = keys.to_vec();
        self.or_local(self.run(&BLOCKED, keys.clone(), vec![now_ms]), move |local| {
            local.blocked(&keys, now_ms)
        })
    }

    fn forgive(&self, key: &str, now_ms: u64) -> StoreFuture<()> {
        if let Some(answer) = self.while_open(|local| local.forgive(key, now_ms)) {
            return answer;
        }
        let answer = self.run::<u64>(&FORGIVE, vec![key.to_owned()], Vec::new());
        let key = key.to_owned();
        self.or_local(Box::pin(async move { answer.await.map(|_| ()) }), move |local| {
            local.forgive(&key, now_ms)
        })
    }

    fn put(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<()> {
        let command = self.set(key, &value, ttl, false);
        let key = key.to_owned();
        let answer = self.command::<redis::Value>(command, move |local| {
            let put = local.put(&key, value.clone(), now_ms, ttl);
            Box::pin(async move { put.await.map(|()| redis::Value::Okay) })
        });
        Box::pin(async move { answer.await.map(|_| ()) })
    }

    fn put_new(&self, key: &str, value: String, now_ms: u64, ttl: Duration) -> StoreFuture<bool> {
        let command = self.set(key, &value, ttl, true);
        let key = key.to_owned();
        // `SET NX` answers OK when it stored the value, nil when the key was held.
        let answer = self.command::<Option<String>>(command, move |local| {
            let put = local.put_new(&key, value.clone(), now_ms, ttl);
            Box::pin(async move { put.await.map(|stored| stored.then(|| "OK".to_owned())) })
        });
        Box::pin(async move { answer.await.map(|reply| reply.is_some()) })
    }

    fn get(&self, key: &str, now_ms: u64) -> StoreFuture<Option<String>> {
        let mut command = redis::cmd("GET");
        command.arg(self.connection.key(key));
        let key = key.to_owned();
        self.command(command, move |local| local.get(&key, now_ms))
    }

    fn delete(&self, key: &str) -> StoreFuture<()> {
        let mut command = redis::cmd("DEL");
        command.arg(self.connection.key(key));
        let key = key.to_owned();
        let answer = self.command::<u64>(command, move |local| {
            let delete = local.delete(&key);
            Box::pin(async move { delete.await.map(|()| 0) })
        });
        Box::pin(async move { answer.await.map(|_| ()) })
    }
}

impl RedisStore {
    /// `command` on the connection, or the local store's answer while Redis is away.
    fn command<T: redis::FromRedisValue + Send + 'static>(
        &self,
        command: redis::Cmd,
        local: impl Fn(&dyn Store) -> StoreFuture<T> + Send + 'static,
    ) -> StoreFuture<T> {
        if let Some(answer) = self.while_open(&local) {
            return answer;
        }
        let connection = self.connection.clone();
        self.or_local(Box::pin(async move { connection.query(command).await }), local)
    }

    /// `SET key value PX ttl`, with `NX` when `only_new`.
    fn set(&self, key: &str, value: &str, ttl: Duration, only_new: bool) -> redis::Cmd {
        let mut command = redis::cmd("SET");
        command
            .arg(self.connection.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        if only_new {
            command.arg("NX");
        }
        command
    }

    /// Queues one rate-limit decision for the next batch.
    fn queue_gcra(&self, key: String, now_ms: u64, rate: Rate) -> StoreFuture<GcraOutcome> {
        let (reply, answer) = oneshot::channel();
        let request = GcraRequest {
            key,
            args: [now_ms, rate.emission_ms(), rate.tolerance_ms()],
            reply,
        };
        let queued = self.gcra_batches.send(request).is_ok();
        let timeout = self.connection.config.timeout;
        Box::pin(async move {
            let gone = || StoreError("redis: the batching task has stopped".into());
            if !queued {
                return Err(gone());
            }
            // Waiting covers the batch ahead of this one and this one's call.
            match tokio::time::timeout(2 * timeout, answer).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(gone()),
                Err(_) => Err(StoreError(format!("redis: no answer within {:?}", 2 * timeout))),
            }
        })
    }
}
