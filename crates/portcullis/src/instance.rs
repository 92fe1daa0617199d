//! The running gateway beside its workers: the background tasks a config
//! asks for (certificates, the redirect and metrics listeners, alerts), and the
//! whole-config reload (SIGHUP, or `portcullis reload`) that validates a new
//! config and swaps it in for new connections and requests while in-flight
//! ones finish on the old one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use portcullis_core::events::SecurityEvent;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Overrides};
use crate::log::JsonLog;
use crate::server::{Listeners, Running};
use crate::{alerts, tls};

/// Where the config comes from, to read it again on a reload.
pub struct Source {
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

impl Source {
    /// The config as it reads now; without a file, the command line's.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        match &self.path {
            Some(path) => Config::load(path, &self.overrides),
            None => Config::from_overrides(&self.overrides),
        }
    }
}

/// Every socket a config asks for, bound before privileges are dropped.
pub struct Sockets {
    pub listeners: Listeners,
    pub redirect: Option<std::net::TcpListener>,
    pub metrics: Option<std::net::TcpListener>,
}

impl Sockets {
    pub fn bind(config: &Config) -> Result<Self, String> {
        let listen = config.server.listen;
        let listeners = Listeners::bind(listen, config.server.workers.get())
            .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
        Ok(Self {
            listeners,
            redirect: bind_side(redirect_address(config), "[tls] redirect_listen")?,
            metrics: bind_side(metrics_address(config), "[metrics] listen")?,
        })
    }
}

fn redirect_address(config: &Config) -> Option<SocketAddr> {
    config.tls.as_ref().and_then(|tls| tls.redirect_listen)
}

fn metrics_address(config: &Config) -> Option<SocketAddr> {
    config.metrics.as_ref().map(|metrics| metrics.listen)
}

fn bind_side(address: Option<SocketAddr>, key: &str) -> Result<Option<std::net::TcpListener>, String> {
    address.map(|address| bind_one(address, key)).transpose()
}

fn bind_one(address: SocketAddr, key: &str) -> Result<std::net::TcpListener, String> {
    std::net::TcpListener::bind(address).map_err(|error| format!("cannot listen on {address} ({key}): {error}"))
}

/// What runs beside the workers for the config in force.
pub struct Instance {
    source: Source,
    running: watch::Sender<Arc<Running>>,
    /// Workers cannot be added to a running gateway: their count when it started.
    workers: usize,
    /// The port the workers listen on, where redirects point.
    https_port: u16,
    certificates: JoinHandle<()>,
    redirect: Option<Side>,
    metrics: Option<Side>,
}

/// A listener beside the workers' (the redirect, the metrics): its socket,
/// kept to restart it on new settings, and the stop of the task serving it.
struct Side {
    address: SocketAddr,
    socket: std::net::TcpListener,
    stop: watch::Sender<bool>,
}

impl Side {
    /// Runs `serve` on a copy of `socket` until the side is dropped.
    fn start<F>(
        socket: std::net::TcpListener,
        serve: impl FnOnce(std::net::TcpListener, watch::Receiver<bool>) -> F,
    ) -> Option<Self>
    where
        F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let address = socket.local_addr().ok()?;
        let kept = socket.try_clone().ok()?;
        let (stop, stopping) = watch::channel(false);
        let serving = serve(socket, stopping);
        tokio::spawn(async move {
            if let Err(error) = serving.await {
                JsonLog.notice("listener failed", Some(format!("{address}: {error}")));
            }
        });
        Some(Self {
            address,
            socket: kept,
            stop,
        })
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        // Stops accepting; the redirects in flight finish.
        let _ = self.stop.send(true);
    }
}

impl Instance {
    /// Starts what `running`'s config needs beside the workers, on
    /// `sockets` (bound before privileges dropped). Returns the instance,
    /// what the workers follow, and the workers' sockets.
    pub fn start(
        source: Source,
        running: Running,
        sockets: Sockets,
    ) -> (Self, watch::Receiver<Arc<Running>>, Listeners) {
        let config = running.config().clone();
        alerts::start(&config.alerts, config.alerts_webhook.as_ref());
        switch_on(&config);
        let workers = config.server.workers.get();
        let listeners = sockets.listeners;
        let https_port = listeners.local_addr().map_or(config.server.listen.port(), |a| a.port());
        let (sender, receiver) = watch::channel(Arc::new(running));
        let mut instance = Self {
            source,
            running: sender,
            workers,
            https_port,
            certificates: keep_certificates(&config),
            redirect: None,
            metrics: None,
        };
        instance.redirect = sockets
            .redirect
            .and_then(|socket| start_redirect(socket, &config, https_port));
        instance.metrics = sockets
            .metrics
            .and_then(|socket| instance.start_metrics(socket, &config));
        (instance, receiver, listeners)
    }

    /// Reloads on every SIGHUP until `stopping`; then the side listeners stop.
    pub async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        use tokio::signal::unix::{signal, SignalKind};
        // Without a handler SIGHUP would end the process: its default action.
        let mut hangup = signal(SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                _ = stopping.wait_for(|stop| *stop) => return,
                Some(()) = async { hangup.as_mut()?.recv().await } => self.reload(),
            }
        }
    }

    /// Reads the config again; if it validates and its listeners bind, puts
    /// it in force. If not, says why and keeps the one in force.
    pub fn reload(&mut self) {
        if self.source.path.is_none() {
            return JsonLog.notice("SIGHUP: no config file to reload", None);
        }
        let reloaded = self.try_reload();
        if let Some(metrics) = crate::metrics::enabled() {
            metrics.reload(reloaded.is_ok());
        }
        match reloaded {
            Ok(changed) => JsonLog.notice("config reloaded", Some(changed)),
            Err(reason) => JsonLog.emit_now(SecurityEvent {
                kind: "config",
                rule: "reload",
                action: "refused",
                request_id: None,
                client_ip: None,
                detail: Some(format!("{reason}; the config in force is kept")),
                exclusion: None,
            }),
        }
    }

    fn try_reload(&mut self) -> Result<String, String> {
        let old = self.running.borrow().config().clone();
        let mut new = self.source.load().map_err(|error| error.to_string())?;
        for key in ["workers", "user", "group"] {
            let section = |c: &Config| c.sections.get("server").and_then(|s| s.get(key)).cloned();
            if section(&old) != section(&new) {
                let message = format!("reload: [server] {key} takes effect at the next start");
                JsonLog.notice(&message, None);
            }
        }
        let listeners = match new.server.listen == old.server.listen {
            true => None,
            false => Some(
                Listeners::bind(new.server.listen, self.workers)
                    .map_err(|error| format!("cannot listen on {}: {error}", new.server.listen))?,
            ),
        };
        let https_port = match &listeners {
            Some(bound) => bound.local_addr().map_or(new.server.listen.port(), |a| a.port()),
            None => self.https_port,
        };
        let redirect = next_side(
            &self.redirect,
            redirect_address(&new),
            old.same_section(&new, "tls") && old.server.listen == new.server.listen,
            "[tls] redirect_listen",
        )?;
        let metrics = next_side(
            &self.metrics,
            metrics_address(&new),
            old.same_section(&new, "metrics"),
            "[metrics] listen",
        )?;
        // Every socket is bound: from here on nothing is refused but a TLS setup.
        let kept_tls = carry_tls(&old, &mut new);
        switch_on(&new);
        let next = self
            .running
            .borrow()
            .next(new, listeners)
            .map_err(|error| error.to_string())?;
        let new = next.config().clone();
        self.running.send_replace(Arc::new(next));
        self.https_port = https_port;
        if !kept_tls {
            self.certificates.abort();
            self.certificates = keep_certificates(&new);
        }
        if let Some(redirect) = redirect {
            self.redirect = redirect.and_then(|socket| start_redirect(socket, &new, https_port));
        }
        if let Some(metrics) = metrics {
            self.metrics = metrics.and_then(|socket| self.start_metrics(socket, &new));
        }
        if !old.same_section(&new, "alerts") {
            alerts::start(&new.alerts, new.alerts_webhook.as_ref());
        }
        Ok(changed_sections(&old, &new))
    }

    fn start_metrics(&self, socket: std::net::TcpListener, config: &Config) -> Option<Side> {
        let allow = config.metrics.as_ref()?.allow.clone();
        let running = self.running.subscribe();
        JsonLog.notice(
            "metrics",
            socket.local_addr().ok().map(|a| format!("http://{a}/metrics")),
        );
        Side::start(socket, |socket, stopping| {
            crate::metrics::listener::serve(socket, allow, running, stopping)
        })
    }
}

/// The socket a side listener restarts on for the new config: `None` if it
/// goes on as it is (`unchanged` settings, same address), `Some(None)` if it
/// stops, else its current socket if the address is the same, or a new one.
fn next_side(
    current: &Option<Side>,
    address: Option<SocketAddr>,
    unchanged: bool,
    key: &str,
) -> Result<Option<Option<std::net::TcpListener>>, String> {
    if unchanged && address == current.as_ref().map(|side| side.address) {
        return Ok(None);
    }
    let Some(address) = address else {
        return Ok(Some(None));
    };
    let socket = match current {
        Some(side) if side.address == address => side
            .socket
            .try_clone()
            .map_err(|error| format!("cannot reuse {address} ({key}): {error}")),
        _ => bind_one(address, key),
    };
    socket.map(|socket| Some(Some(socket)))
}

/// Turns the metrics, and the dashboard, on if `config` asks for them: before
/// any stack is built for it, since routes resolve their metrics then.
fn switch_on(config: &Config) {
    if let Some(wanted) = &config.metrics {
        crate::metrics::enable();
        if wanted.dashboard {
            crate::dashboard::enable();
        }
    }
    if config
        .portal
        .as_ref()
        .is_some_and(|portal| !portal.dashboard_groups.is_empty())
    {
        crate::dashboard::enable();
    }
}

/// Keeps the certificates in force when `[tls]` did not change: the same
/// resolver (and so the same session tickets and ACME state), with the
/// certificate files read again. Returns whether it did.
fn carry_tls(old: &Config, new: &mut Config) -> bool {
    if !old.same_section(new, "tls") {
        return false;
    }
    let (Some(kept), Some(fresh)) = (&old.tls, &mut new.tls) else {
        return false;
    };
    if kept.acme.is_none() {
        let set = fresh.resolver.current();
        JsonLog.notice("certificates reloaded", Some(set.describe()));
        kept.resolver.replace(set);
    }
    *fresh = kept.clone();
    true
}

/// The top-level sections a reload changed, for its notice.
fn changed_sections(old: &Config, new: &Config) -> String {
    let mut names: Vec<&str> = old
        .sections
        .keys()
        .chain(new.sections.keys())
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    names.retain(|name| !old.same_section(new, name));
    match names.is_empty() {
        true => "nothing changed".into(),
        false => format!("changed: {}", names.join(", ")),
    }
}

/// Keeps certificates current: from ACME, or reloaded from their files when
/// they change. A handle that does nothing without TLS.
fn keep_certificates(config: &Config) -> JoinHandle<()> {
    let Some(tls) = config.tls.as_ref() else {
        return tokio::spawn(async {});
    };
    match &tls.acme {
        Some(acme) => {
            let (resolver, challenges) = (tls.resolver.clone(), tls.challenges.clone());
            tokio::spawn(tls::acme::run(acme.clone(), resolver, challenges, JsonLog))
        }
        None => {
            JsonLog.notice("certificates", Some(tls.resolver.current().describe()));
            tokio::spawn(tls::reload::watch(tls.clone(), JsonLog))
        }
    }
}

/// Redirects plain HTTP on `socket` to HTTPS on `https_port`.
fn start_redirect(socket: std::net::TcpListener, config: &Config, https_port: u16) -> Option<Side> {
    let tls = config.tls.as_ref()?;
    let address = socket.local_addr().ok()?;
    JsonLog.notice(
        "redirecting",
        Some(format!("http://{address} -> https (port {https_port})")),
    );
    let redirect = tls::redirect::Redirect {
        https_port,
        challenges: tls.challenges.clone(),
    };
    let server = config.server.clone();
    Side::start(socket, move |socket, stopping| {
        tls::redirect::serve(
            socket,
            redirect,
            server.max_connections,
            server.header_read_timeout,
            stopping,
        )
    })
}
