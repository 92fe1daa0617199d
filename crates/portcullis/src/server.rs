//! The listeners: one worker per core, each with its own event loop, its own
//! `SO_REUSEPORT` listener and its own upstream pool, as nginx runs one worker
//! process per core. A request is handled start to finish on one thread, so
//! serving it costs no cross-thread wake-ups. Workers share only the
//! connection limits. Each speaks HTTP/1.1 or HTTP/2 (h2c with prior
//! knowledge) and drains on shutdown.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use futures_util::FutureExt;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use portcullis_core::bans::Bans;
use portcullis_core::body;
use portcullis_core::client_ip::canonical;
use portcullis_core::context::{ConnectionHold, ConnectionInfo};
use portcullis_core::events::Events;
use portcullis_core::events::{EventSink, SecurityEvent};
use portcullis_core::store::{
    MemoryStore, OnError, RedisConfig, RedisStore, SharedState, Store, StoreHealth, SystemClock,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ServerConfig, StoreConfig};
use crate::dashboard::Sources;
use crate::heads::{HeadRefusals, HeadWatch};
use crate::idle;
use crate::log::{JsonLog, FLUSH_EVERY};
use crate::routes::{self, Stack};
use crate::stack;
use crate::timeouts::{IdleTimeout, InFlight, ReadTimeout};

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<body::Body>, std::convert::Infallible>> + Send>>;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Capacity of a worker's open-connection tracker: the drain takes all of it back.
const TRACKED: u32 = u32::MAX;

/// Pending connections the kernel queues per listener.
const BACKLOG: i32 = 1024;

/// One listening socket per worker, all on one address (`SO_REUSEPORT`).
///
/// All are bound at once, before privileges are dropped: the kernel lets a
/// socket join a `SO_REUSEPORT` group only under the same user. And since
/// `SO_REUSEPORT` would also let a second gateway started by mistake on the
/// same port silently share its traffic, a fixed port is first probed with a
/// plain bind, which fails while anything holds the port.
pub struct Listeners(Vec<std::net::TcpListener>);

impl Listeners {
    pub fn bind(address: SocketAddr, workers: usize) -> io::Result<Self> {
        if address.port() != 0 {
            drop(std::net::TcpListener::bind(address)?);
        }
        let first = reuse_port_listener(address)?;
        // Port 0: the others join the port the kernel picked for the first.
        let address = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..workers.max(1) {
            listeners.push(reuse_port_listener(address)?);
        }
        Ok(Self(listeners))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0[0].local_addr()
    }
}

fn reuse_port_listener(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// What the workers serve with: a config, and what is built from it once
/// for all of them. A reload hands the workers a new one; each keeps what
/// did not change (the store, the connection limits, TLS sessions).
pub struct Running {
    config: Arc<Config>,
    backend: Arc<Backend>,
    bans: Arc<Bans>,
    limits: Limits,
    tls: Option<TlsTermination>,
    /// Sockets on a new `[server] listen`, one for each worker to take.
    listeners: Vec<Mutex<Option<std::net::TcpListener>>>,
}

impl Running {
    pub fn new(config: Config) -> io::Result<Self> {
        let events: Events = Arc::new(JsonLog);
        let bans = Bans::new(config.bans.clone(), config.policies.pages.clone(), events.clone());
        Ok(Self {
            backend: Arc::new(Backend::new(&config.store, events)),
            bans: bans.map_err(io::Error::other)?,
            limits: Limits::new(&config.server, PerIp::default()),
            tls: config.tls.as_ref().map(TlsTermination::new).transpose()?,
            config: Arc::new(config),
            listeners: Vec::new(),
        })
    }

    /// The next config's, keeping what it shares with this one. `listeners`:
    /// the sockets of a changed `[server] listen`.
    pub fn next(&self, config: Config, listeners: Option<Listeners>) -> io::Result<Self> {
        let old = &self.config;
        let backend = match old.same_section(&config, "store") {
            true => self.backend.clone(),
            false => Arc::new(Backend::new(&config.store, Arc::new(JsonLog))),
        };
        let limits = match old.same_section(&config, "server") {
            true => self.limits.clone(),
            false => Limits::new(&config.server, self.limits.per_ip.clone()),
        };
        // The same resolver: the reload kept `[tls]`, and with it the ticket keys.
        let same_tls = match (&old.tls, &config.tls) {
            (Some(old), Some(new)) => Arc::ptr_eq(&old.resolver, &new.resolver),
            _ => false,
        };
        let tls = match same_tls {
            true => self.tls.clone(),
            false => config.tls.as_ref().map(TlsTermination::new).transpose()?,
        };
        let bans = self
            .bans
            .reconfigured(config.bans.clone(), config.policies.pages.clone());
        let listeners = listeners.map_or_else(Vec::new, |Listeners(l)| {
            l.into_iter().map(|l| Mutex::new(Some(l))).collect()
        });
        Ok(Self {
            backend,
            bans: bans.map_err(io::Error::other)?,
            limits,
            tls,
            config: Arc::new(config),
            listeners,
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Where the metrics and the dashboard read the store's health and the
    /// certificates in service.
    pub fn sources(&self) -> Sources {
        self.backend.sources(&self.config)
    }

    /// Worker `index`'s new socket, if the listen address changed.
    fn take_listener(&self, index: usize) -> Option<std::net::TcpListener> {
        let slot = self.listeners.get(index)?;
        slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Runs the gateway on `listeners` with the config `running` holds, and each
/// one it is given next, until `shutdown`; then drains. Returns whether every
/// connection finished within the drain timeout.
pub async fn serve(
    running: watch::Receiver<Arc<Running>>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> io::Result<bool> {
    let Listeners(listeners) = listeners;
    let (stop, stopping) = watch::channel(false);
    let mut handles = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let (running, stopping) = (running.clone(), stopping.clone());
        let handle = std::thread::Builder::new()
            .name(format!("portcullis-worker-{index}"))
            .spawn(move || worker(index, listener, running, stopping))?;
        handles.push(handle);
    }
    shutdown.await;
    let _ = stop.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .all(|h| h.join().unwrap_or(Ok(false)).unwrap_or(false))
    });
    Ok(joined.await.unwrap_or(false))
}

/// One worker thread: its own runtime, stacks and upstream pool.
fn worker(
    index: usize,
    listener: std::net::TcpListener,
    mut running: watch::Receiver<Arc<Running>>,
    mut stopping: watch::Receiver<bool>,
) -> io::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let drained = runtime.block_on(async {
        let first = running.borrow_and_update().clone();
        let store = first.backend.store()?;
        let server = Arc::new(Server {
            current: ArcSwap::from_pointee(Generation::new(&first, store)),
            log: JsonLog,
        });
        let flusher = tokio::spawn(async {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                JsonLog::flush_thread();
            }
        });
        let listener = TcpListener::from_std(listener)?;
        let drained = server
            .run(listener, (index, running), async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await;
        flusher.abort();
        io::Result::Ok(drained)
    });
    JsonLog::flush_thread();
    drained
}

/// The next connection, once the connection limit lets one more in.
async fn accept(
    limits: &Limits,
    listener: &TcpListener,
) -> (OwnedSemaphorePermit, io::Result<(TcpStream, SocketAddr)>) {
    let permit = limits.total.clone().acquire_owned().await;
    (permit.expect("the semaphore is never closed"), listener.accept().await)
}

/// hyper's own head buffer: above every route's URI and header limits, so that
/// those limits (with their neutral 414/431 pages) are what clients meet.
fn max_head_bytes(config: &Config) -> usize {
    std::iter::once(&config.policies)
        .chain(config.routes.iter().map(|r| &r.policies))
        .map(|p| p.limits.config().max_uri_bytes + p.limits.config().max_header_bytes)
        .max()
        .unwrap_or(0)
        .saturating_mul(2)
}

/// Where limit state lives. Redis connections are driven by the event loop
/// they are opened on, so each worker opens its own.
#[derive(Clone)]
enum Backend {
    Memory(Arc<MemoryStore>),
    Redis {
        config: RedisConfig,
        health: Arc<StoreHealth>,
        /// Shared by every worker while Redis is away (`on_error = "local"`).
        local: Option<Arc<MemoryStore>>,
    },
}

impl Backend {
    fn new(config: &StoreConfig, events: Events) -> Self {
        let memory = || Arc::new(MemoryStore::new(config.max_keys));
        match &config.redis {
            None => Self::Memory(memory()),
            Some(url) => Self::Redis {
                config: RedisConfig {
                    url: url.clone(),
                    timeout: config.timeout,
                    key_prefix: config.key_prefix.clone(),
                },
                health: StoreHealth::timed(events, Some(crate::metrics::store_call)),
                local: (config.on_error == OnError::Local).then(memory),
            },
        }
    }

    fn sources(&self, config: &Config) -> Sources {
        Sources {
            health: match self {
                Self::Memory(_) => None,
                Self::Redis { health, .. } => Some(health.clone()),
            },
            resolver: config.tls.as_ref().map(|tls| tls.resolver.clone()),
        }
    }

    /// This worker's store; call it on the worker's event loop.
    fn store(&self) -> io::Result<Arc<dyn Store>> {
        Ok(match self {
            Self::Memory(store) => store.clone(),
            Self::Redis { config, health, local } => {
                let store = RedisStore::new(config.clone(), health.clone()).map_err(io::Error::other)?;
                Arc::new(match local {
                    Some(local) => store.with_local_fallback(local.clone()),
                    None => store,
                })
            }
        })
    }
}

/// Connection limits, shared by every worker.
#[derive(Clone)]
struct Limits {
    total: Arc<Semaphore>,
    per_ip: PerIp,
    max_per_ip: usize,
}

impl Limits {
    /// The counts per IP carry over a reload: they are open connections.
    fn new(config: &ServerConfig, per_ip: PerIp) -> Self {
        Self {
            total: Arc::new(Semaphore::new(config.max_connections)),
            per_ip,
            max_per_ip: config.max_connections_per_ip,
        }
    }
}

/// One worker's server: the generation new connections and requests get.
struct Server {
    current: ArcSwap<Generation>,
    log: JsonLog,
}

/// One worker's stacks and settings for one config.
struct Generation {
    config: ServerConfig,
    /// Serves requests.
    gateway: Stack,
    /// Serves connections from a client already at its connection limit.
    over_limit: Stack,
    /// The largest request head any route accepts; hyper's own buffer is sized above it.
    max_head_bytes: usize,
    limits: Limits,
    /// This worker's store and the bans, also checked when a connection is accepted.
    shared: stack::Shared,
    /// Whose store `shared` holds: a reload that keeps it keeps the store.
    backend: Arc<Backend>,
    /// `None`: plain HTTP.
    tls: Option<TlsTermination>,
    /// The pages that replace hyper's own answers to heads it refuses.
    head_refusals: Option<Arc<HeadRefusals>>,
}

impl Generation {
    fn new(running: &Running, store: Arc<dyn Store>) -> Self {
        let config = &running.config;
        let log = JsonLog;
        let shared = stack::Shared {
            state: SharedState {
                store,
                clock: Arc::new(SystemClock),
                on_error: config.store.on_error,
            },
            bans: running.bans.clone(),
        };
        let sources = running.backend.sources(config);
        Self {
            gateway: stack::gateway(config, &log, &shared, sources),
            over_limit: stack::refusal(config, &log, StatusCode::TOO_MANY_REQUESTS),
            head_refusals: HeadRefusals::render(config, running.tls.is_some()),
            max_head_bytes: max_head_bytes(config),
            config: config.server.clone(),
            limits: running.limits.clone(),
            shared,
            backend: running.backend.clone(),
            tls: running.tls.clone(),
        }
    }

    /// The generation for `running`, on this worker's event loop.
    fn next(&self, running: &Running) -> io::Result<Self> {
        let store = match Arc::ptr_eq(&self.backend, &running.backend) {
            true => self.shared.state.store.clone(),
            false => running.backend.store()?,
        };
        Ok(Self::new(running, store))
    }
}

/// What HTTPS connections go through before HTTP.
#[derive(Clone)]
struct TlsTermination {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl TlsTermination {
    fn new(tls: &crate::tls::Tls) -> io::Result<Self> {
        Ok(Self {
            acceptor: TlsAcceptor::from(tls.server_config().map_err(io::Error::other)?),
            handshake_timeout: tls.handshake_timeout,
        })
    }
}

impl Server {
    /// Serves until `shutdown` resolves, then stops accepting and lets this
    /// worker's in-flight requests finish for up to the drain timeout. Each
    /// config `running` is given next is swapped in for new connections and
    /// requests (`index`: this worker's, to take its socket if the address changed).
    async fn run(
        self: Arc<Self>,
        mut listener: TcpListener,
        (index, mut running): (usize, watch::Receiver<Arc<Running>>),
        shutdown: impl Future<Output = ()>,
    ) -> bool {
        // Every open connection of this worker holds one of these, so the
        // drain is over once all of them are back.
        let open = Arc::new(Semaphore::new(TRACKED as usize));
        let (draining, drain_signal) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let generation = self.current.load_full();
            let next = tokio::select! {
                _ = &mut shutdown => break,
                Ok(()) = running.changed() => None,
                accepted = accept(&generation.limits, &listener) => Some(accepted),
            };
            let Some((permit, accepted)) = next else {
                let next = running.borrow_and_update().clone();
                self.swap(&generation, &next, index, &mut listener);
                continue;
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    self.log.notice("accept failed", Some(error.to_string()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let tracked = open
                .clone()
                .try_acquire_owned()
                .expect("far more permits than connections");
            self.clone()
                .spawn_connection(generation, stream, peer, [permit, tracked], drain_signal.clone());
        }
        drop(listener);
        let _ = draining.send(true);
        let drain_timeout = self.current.load().config.drain_timeout;
        let drained = tokio::time::timeout(drain_timeout, open.acquire_many(TRACKED)).await;
        drained.is_ok()
    }

    /// Puts `running`'s generation in place of `current`, and its socket in
    /// place of `listener` if it brings one. A worker that cannot open the
    /// new store keeps serving with the old generation.
    fn swap(&self, current: &Generation, running: &Running, index: usize, listener: &mut TcpListener) {
        match current.next(running) {
            Ok(next) => self.current.store(Arc::new(next)),
            Err(error) => {
                return self
                    .log
                    .notice("reload: store unavailable, config kept", Some(error.to_string()))
            }
        }
        if let Some(socket) = running.take_listener(index) {
            match TcpListener::from_std(socket) {
                Ok(socket) => *listener = socket,
                Err(error) => self
                    .log
                    .notice("reload: listener unusable, address kept", Some(error.to_string())),
            }
        }
    }

    fn spawn_connection(
        self: Arc<Self>,
        generation: Arc<Generation>,
        stream: TcpStream,
        peer: SocketAddr,
        permits: [OwnedSemaphorePermit; 2],
        drain_signal: watch::Receiver<bool>,
    ) {
        let client = canonical(peer.ip());
        let bans = &generation.shared.bans;
        if bans.closes_connections() && bans.banned_ms(client, &*generation.shared.state.clock) > 0 {
            // Closed before any other work; the ban was reported when it began.
            return;
        }
        let limits = &generation.limits;
        let within_limit = limits.per_ip.enter(client, limits.max_per_ip);
        if within_limit.is_none() {
            self.log.emit(SecurityEvent {
                kind: "limits",
                rule: "max_connections_per_ip",
                action: "refused",
                request_id: None,
                client_ip: Some(client),
                detail: None,
                exclusion: None,
            });
        }
        let counted = crate::metrics::enabled().map(|metrics| metrics.connection_opened());
        tokio::spawn(async move {
            // Over the limit: every request gets the refusal, whatever the config.
            let fixed = within_limit.is_none().then(|| generation.over_limit.clone());
            // The drain waits for the connection; its place within the limits
            // is held as long as a tunnel it became lives too.
            let [limit, tracked] = permits;
            let connection = Connection {
                http2: false,
                tls: generation.tls.is_some(),
                peer,
                hold: ConnectionHold::new((within_limit, limit, counted)),
                fixed,
            };
            self.connection(&generation, stream, connection, drain_signal).await;
            drop(tracked);
        });
    }

    /// Serves one connection: its `fixed` stack answers all its requests if
    /// given; otherwise each request gets the current generation's gateway.
    async fn connection(
        self: &Arc<Self>,
        generation: &Generation,
        stream: TcpStream,
        connection: Connection,
        draining: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        // Each start boxed and gone once done: otherwise a connection's task
        // would keep room for a TLS handshake (a whole rustls session) or
        // the protocol detection as long as it lives, resting or not.
        let serving = match &generation.tls {
            Some(tls) => Box::pin(self.start_tls(tls, generation, stream, connection, draining)).await,
            None => Box::pin(self.start_plain(generation, stream, connection, draining)).await,
        };
        if let Some(serving) = serving {
            serving.await;
        }
    }

    /// The handshake, then HTTP as ALPN chose.
    async fn start_tls(
        self: &Arc<Self>,
        tls: &TlsTermination,
        generation: &Generation,
        stream: TcpStream,
        mut connection: Connection,
        draining: watch::Receiver<bool>,
    ) -> Option<Serving> {
        let stream = self.handshake(tls, stream, connection.peer).await?;
        let alpn = stream.get_ref().1.alpn_protocol();
        if alpn == Some(crate::tls::ALPN_ACME_TLS) {
            return None; // An ACME CA checking a challenge: the handshake was the answer.
        }
        connection.http2 = alpn == Some(crate::tls::ALPN_H2);
        Some(self.serve_http(generation, stream, connection, draining))
    }

    /// HTTP/1.1 or HTTP/2 by the first bytes, within the header timeout.
    async fn start_plain(
        self: &Arc<Self>,
        generation: &Generation,
        stream: TcpStream,
        mut connection: Connection,
        draining: watch::Receiver<bool>,
    ) -> Option<Serving> {
        let header_read_timeout = generation.config.header_read_timeout;
        // Silent or gone before saying anything: nothing to answer.
        let (stream, http2) = tokio::time::timeout(header_read_timeout, detect_http2(stream))
            .await
            .ok()?
            .ok()?;
        connection.http2 = http2;
        Some(self.serve_http(generation, stream, connection, draining))
    }

    /// The TLS handshake, within its timeout. Plain HTTP sent to this port
    /// gets a short 400 in plain HTTP; every failure is an event, and none
    /// affects other connections.
    async fn handshake(
        &self,
        tls: &TlsTermination,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let refused = |rule: &'static str, detail: String| {
            self.log.emit(SecurityEvent {
                kind: "tls",
                rule,
                action: "refused",
                request_id: None,
                client_ip: Some(canonical(peer.ip())),
                detail: Some(detail),
                exclusion: None,
            });
        };
        let attempt = async {
            if speaks_plain_http(&stream).await? {
                let mut stream = stream;
                stream.write_all(PLAIN_HTTP_ON_TLS_PORT).await?;
                let _ = stream.shutdown().await;
                return Ok(None);
            }
            tls.acceptor.accept(stream).await.map(Some)
        };
        let metrics = crate::metrics::enabled();
        let counted = |failure| metrics.inspect(|m| m.tls_handshake(failure));
        match tokio::time::timeout(tls.handshake_timeout, attempt).await {
            Ok(Ok(Some(stream))) => {
                counted(None);
                Some(stream)
            }
            Ok(Ok(None)) => {
                counted(Some("plain_http"));
                refused("plain_http", "plain HTTP sent to the HTTPS port".into());
                None
            }
            Ok(Err(error)) => {
                counted(Some("handshake"));
                refused("handshake", error.to_string());
                None
            }
            Err(_) => {
                counted(Some("handshake_timeout"));
                refused(
                    "handshake_timeout",
                    format!("no handshake within {:?}", tls.handshake_timeout),
                );
                None
            }
        }
    }

    /// The hyper connection for an accepted stream, boxed here, outside any
    /// async fn: rustc cannot prove hyper's connection futures `Send` inside
    /// a task that also holds borrows across awaits, but it can at this
    /// coercion, where every type is concrete.
    fn serve_http<I>(
        self: &Arc<Self>,
        generation: &Generation,
        stream: I,
        Connection {
            http2,
            tls,
            peer,
            hold,
            fixed,
        }: Connection,
        draining: watch::Receiver<bool>,
    ) -> Serving
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + idle::Socket + Unpin + Send + 'static,
    {
        let config = &generation.config;
        let info = ConnectionInfo::new(peer, tls).holding(hold);
        let in_flight = InFlight::default();
        let requests = in_flight.clone();
        let heads = HeadWatch::default();
        let dispatched = heads.clone();
        let body_read_timeout = config.body_read_timeout;
        let stack = ConnectionStack::new(self.clone(), fixed);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(|b| body::boxed(ReadTimeout::new(b, body_read_timeout)));
            request.extensions_mut().insert(info.clone());
            dispatched.dispatched(!http_body::Body::is_end_stream(request.body()));
            let waiting = requests.enter();
            // Boxed with its type spelled out: rustc cannot infer that the
            // unboxed future is `Send` for every lifetime when it is spawned.
            let response: ResponseFuture = Box::pin(stack.call(request).map(move |response| {
                // In flight until hyper has taken the whole answer.
                response.map(|response| {
                    discard_unread(response).map(|answer| body::counted(answer, move |_| drop(waiting)))
                })
            }));
            response
        });
        if http2 {
            let io = TokioIo::new(IdleTimeout::new(stream, config.keep_alive_timeout, in_flight));
            let connection = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(config.h2_max_concurrent_streams)
                .max_header_list_size(u32::try_from(generation.max_head_bytes).unwrap_or(u32::MAX))
                // No pings: they would count as traffic and keep idle connections
                // open; the idle timeout already drops dead peers.
                .keep_alive_interval(None)
                .serve_connection(io, service);
            Box::pin(drive(connection, draining).map(drop))
        } else {
            let head_buffer = generation.max_head_bytes.max(8192);
            let refusals = generation.head_refusals.clone();
            // hyper restarts its header timer whenever it waits for a request
            // head, so it bounds the idle time between keep-alive requests; a
            // resting connection waits no longer.
            let keep_alive = config.header_read_timeout.min(config.keep_alive_timeout);
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(keep_alive)
                .max_buf_size(head_buffer);
            let client = canonical(peer.ip());
            let log = self.log.clone();
            let serve = async move {
                let home = idle::Home::default();
                let (mut stream, mut draining) = (stream, draining);
                loop {
                    let lent = idle::Lent::new(stream, &home, in_flight.clone());
                    let io = TokioIo::new(heads.watch(lent, refusals.clone(), head_buffer, client));
                    let connection = builder.serve_connection(io, service.clone()).with_upgrades();
                    // Boxed: a resting connection's task keeps no room for hyper's.
                    let ended = Box::pin(drive(connection, draining.clone())).await;
                    if ended.is_err_and(|error| error.is_timeout()) && heads.stalled() {
                        log.emit(SecurityEvent {
                            kind: "limits",
                            rule: "header_read_timeout",
                            action: "closed",
                            request_id: None,
                            client_ip: Some(client),
                            detail: None,
                            exclusion: None,
                        });
                    }
                    // Closed or upgraded unless hyper gave the socket back idle.
                    let Some(resting) = home.take() else { return };
                    let counted = crate::metrics::enabled().map(|metrics| metrics.connection_idle());
                    let Some(woken) = idle::rest(resting, keep_alive, &mut draining).await else {
                        return;
                    };
                    drop(counted);
                    stream = woken;
                }
            };
            Box::pin(serve)
        }
    }
}

/// The stack one hyper connection's requests go through: its `fixed` one,
/// or the current generation's gateway. Cloned when the connection's first
/// request comes and again only after a reload, not for every request; a
/// clone of it (hyper's, for each run of a connection between rests) starts
/// without one, so a resting connection holds none.
struct ConnectionStack {
    server: Arc<Server>,
    fixed: Option<Stack>,
    /// The stack, and the generation it belongs to (kept, so that a new
    /// one cannot take its address and pass for it).
    held: RefCell<Option<(Arc<Generation>, Stack)>>,
}

impl ConnectionStack {
    fn new(server: Arc<Server>, fixed: Option<Stack>) -> Self {
        Self {
            server,
            fixed,
            held: RefCell::new(None),
        }
    }

    fn call(&self, request: Request<body::Body>) -> routes::Answer {
        let current = self.server.current.load();
        let mut held = self.held.borrow_mut();
        if held
            .as_ref()
            .is_some_and(|(generation, _)| !Arc::ptr_eq(generation, &current))
        {
            *held = None;
        }
        let (_, stack) = held.get_or_insert_with(|| {
            let stack = self.fixed.clone().unwrap_or_else(|| current.gateway.clone());
            (Arc::clone(&current), stack)
        });
        routes::call_ready(stack, request)
    }
}

impl Clone for ConnectionStack {
    fn clone(&self) -> Self {
        Self::new(self.server.clone(), self.fixed.clone())
    }
}

/// A connection's HTTP, from its first request to its close.
type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An accepted connection, as HTTP is about to be spoken on it.
struct Connection {
    /// Known once the client has spoken (ALPN, or the h2c preface).
    http2: bool,
    tls: bool,
    peer: SocketAddr,
    hold: ConnectionHold,
    /// Serves every request instead of the current gateway (a refusal).
    fixed: Option<Stack>,
}

/// An answer given before its request body was read goes out at once; the
/// rest of the body is read and discarded beside it (see [`body::Unread`]).
fn discard_unread(mut response: http::Response<body::Body>) -> http::Response<body::Body> {
    if let Some(rest) = body::Unread::take(&mut response) {
        tokio::spawn(body::discard(rest));
    }
    response
}

/// Runs a connection; when draining starts, asks it to finish its in-flight
/// requests and close.
async fn drive<C: Drain>(connection: C, mut draining: watch::Receiver<bool>) -> C::Output {
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => return ended,
        _ = draining.wait_for(|draining| *draining) => connection.as_mut().drain(),
    }
    connection.await
}

/// A connection that can be asked to finish its requests and close.
trait Drain: Future {
    fn drain(self: Pin<&mut Self>);
}

impl<I, S> Drain for http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = body::Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Drain for http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = body::Body>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn drain(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The whole answer to plain HTTP on the HTTPS port.
const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\nThis port only speaks HTTPS.\r\n";

/// Whether the first byte is a letter, as in an HTTP method, rather than the
/// 0x16 that starts a TLS handshake.
async fn speaks_plain_http(stream: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let mut window = tokio::io::ReadBuf::new(&mut first);
    let seen = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut window)).await?;
    if seen == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(first[0].is_ascii_uppercase())
}

/// Peeks (without consuming) until the bytes either match the HTTP/2
/// connection preface or cannot: a client must say which protocol it speaks
/// within the header timeout, however slowly it sends.
async fn detect_http2(stream: TcpStream) -> io::Result<(TcpStream, bool)> {
    let mut buffer = [0u8; H2_PREFACE.len()];
    loop {
        // poll_peek rather than peek: rustc cannot prove the `peek` future
        // `Send` once it shares a task with hyper's connection types.
        let mut window = tokio::io::ReadBuf::new(&mut buffer);
        let seen = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut window)).await?;
        if seen == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if buffer[..seen] != H2_PREFACE[..seen] {
            return Ok((stream, false));
        }
        if seen == H2_PREFACE.len() {
            return Ok((stream, true));
        }
        // Part of the preface: peek returns at once until more arrives.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Open connections per client IP.
#[derive(Clone, Default)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct PerIpSlot {
    counts: PerIp,
    ip: IpAddr,
}

impl PerIp {
    /// A slot for one more connection from `ip`, unless it already has `max`.
    fn enter(&self, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PerIpSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_and_released() {
        let counts = PerIp::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = counts.enter(ip, 2).unwrap();
        let _second = counts.enter(ip, 2).unwrap();
        assert!(counts.enter(ip, 2).is_none());
        assert!(counts.enter("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(first);
        assert!(counts.enter(ip, 2).is_some());
    }
}
