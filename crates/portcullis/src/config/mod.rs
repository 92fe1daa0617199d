//! `portcullis.toml`: one file, sections named after the checklist, secure
//! defaults for every key (docs/defaults.md lists them).
//!
//! Loading validates everything the gateway will use, so a config that loads
//! is one that runs. Errors name the file, line, key and what is allowed.

mod locate;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Method, Uri};
use ipnet::IpNet;
use portcullis_core::access::{AccessConfig, AccessRules, IdentityHeaders};
use portcullis_core::bans::BansConfig;
use portcullis_core::cookies::{CookieHardening, CookiesConfig};
use portcullis_core::csrf::{CrossOriginProtection, CsrfConfig};
use portcullis_core::errors::{ErrorsConfig, SafeErrors};
use portcullis_core::events::Events;
use portcullis_core::filter::{FilterConfig, ResponseFilter};
use portcullis_core::fingerprint::Fingerprint;
use portcullis_core::headers::SecurityHeaders;
use portcullis_core::limits::{LimitsConfig, RequestLimits};
use portcullis_core::login::{LoginConfig, LoginRules};
use portcullis_core::pages::NeutralPages;
use portcullis_core::rate_limit::{RateLimitConfig, RateLimitRules};
use portcullis_core::session::SessionConfig;
use portcullis_core::store::{OnError, RedisStore};
use portcullis_core::waf::{Waf, WafConfig};
use portcullis_core::InvalidConfig;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::alerts::AlertsSection;
use crate::log::JsonLog;
use crate::portal::{self, PortalSection, PortalSettings};
use crate::tls::{self, CertificateFiles, Challenges, Resolver, Tls, TlsSection};
use locate::Locator;
use portcullis_core::path::PathPattern;

/// Where the compiled policies report their events: the JSON log.
fn events() -> Events {
    Arc::new(JsonLog)
}

/// A config the gateway refuses to start with.
#[derive(Debug)]
pub struct ConfigError {
    /// The file, or the command-line flag the value came from.
    pub source: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub upstream: Option<String>,
    pub listen: Option<SocketAddr>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub upstream: Upstream,
    pub trusted_proxies: Vec<IpNet>,
    pub log: LogConfig,
    /// Policies for requests no route matches.
    pub policies: Policies,
    pub routes: Vec<Route>,
    /// `[bans]`, validated.
    pub bans: BansConfig,
    /// `[[login]]` entries, compiled; `None`: there are none.
    pub logins: Option<LoginRules>,
    /// `[tls]`, certificates loaded; `None`: plain HTTP.
    pub tls: Option<Tls>,
    /// `[[access]]` entries, compiled; `None`: there are none.
    pub access: Option<Arc<AccessRules>>,
    /// The login portal, when `[portal]` is given or an access rule needs a login.
    pub portal: Option<Arc<PortalSettings>>,
    pub session: SessionConfig,
    /// `[alerts]`, and its webhook when one is set.
    pub alerts: AlertsSection,
    pub alerts_webhook: Option<Uri>,
    /// `[metrics]`, when its listener is on.
    pub metrics: Option<MetricsConfig>,
    /// The file's top-level sections as written: what a reload compares to
    /// tell which parts changed.
    pub sections: toml::Table,
}

impl Config {
    /// Whether `section` reads the same in both files.
    pub fn same_section(&self, other: &Config, section: &str) -> bool {
        self.sections.get(section) == other.sections.get(section)
    }
}

/// Every per-route policy, compiled once when the config loads and shared
/// by every event loop's stack.
#[derive(Clone)]
pub struct Policies {
    pub headers: Arc<SecurityHeaders>,
    pub fingerprint: Arc<Fingerprint>,
    pub errors: Arc<SafeErrors>,
    pub pages: NeutralPages,
    pub limits: Arc<RequestLimits>,
    pub cookies: Arc<CookieHardening>,
    pub csrf: Arc<CrossOriginProtection>,
    /// Bound to each event loop's store. Its counters are `default`, or the
    /// route's own (`route-N`) when the route sets a `[route.rate_limit]`.
    pub rate_limit: RateLimitRules,
    pub waf: Arc<Waf>,
    pub filter: Arc<ResponseFilter>,
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("limits", self.limits.config())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Its label in metrics: `name`, or `route-N` (N from 1, in file order).
    pub name: String,
    pub path: PathPattern,
    /// `None`: every method.
    pub methods: Option<Vec<Method>>,
    pub policies: Policies,
}

/// `[server]`: the listener and connection-level limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Worker threads, each with its own event loop and upstream pool.
    pub workers: NonZeroUsize,
    /// Time a client has to send a complete request head (slowloris defence).
    /// On an HTTP/1.1 keep-alive connection the clock restarts after each
    /// response, so it also bounds the idle time between requests.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Time allowed between two reads of a request body (slow POST defence).
    #[serde(with = "duration")]
    pub body_read_timeout: Duration,
    /// Idle time allowed on a connection with no request waiting for its
    /// response and no bytes moving (HTTP/1.1: the smaller of this and
    /// `header_read_timeout`).
    #[serde(with = "duration")]
    pub keep_alive_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
    /// Open client connections in total; past this, new ones wait to be accepted.
    pub max_connections: usize,
    /// Open connections from one client IP; past this, a neutral 429 and close.
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// Started as root (to bind ports below 1024), the gateway switches to
    /// this user and group right after binding, before serving anything.
    pub user: String,
    pub group: String,
    /// Where the gateway writes its process id, for `portcullis reload`.
    pub pid_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            drain_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            h2_max_concurrent_streams: 128,
            user: "nobody".into(),
            group: "nogroup".into(),
            pid_file: None,
        }
    }
}

/// `[upstream]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpstreamSection {
    url: Option<String>,
    #[serde(with = "duration")]
    connect_timeout: Duration,
    #[serde(with = "duration")]
    response_timeout: Duration,
    #[serde(with = "duration")]
    pool_idle_timeout: Duration,
    pool_max_idle: usize,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        Self {
            url: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            // Below Node.js's default keepAliveTimeout (5 s), so the gateway
            // never reuses a connection the app is about to close.
            pool_idle_timeout: Duration::from_secs(4),
            pool_max_idle: 256,
        }
    }
}

/// The upstream app, validated.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub authority: Authority,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub pool_max_idle: usize,
}

/// `[store]`: where counters, blocks and bans live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Keys the in-memory store holds at most (then expired ones are purged,
    /// then rate-limit entries, and blocks last).
    pub max_keys: usize,
    /// A Redis server shared by several gateways, e.g. `redis://127.0.0.1:6379`.
    /// Unset: state is kept in memory.
    pub redis: Option<String>,
    /// Longest wait for Redis, connecting included, before the fail mode applies.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Put before every Redis key.
    pub key_prefix: String,
    /// What requests get while Redis cannot answer.
    pub on_error: OnError,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_keys: 1_000_000,
            redis: None,
            timeout: Duration::from_millis(250),
            key_prefix: "portcullis:".into(),
            on_error: OnError::FailOpen,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// One JSON line per request on stdout.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { access: true }
    }
}

/// The file as written: policy sections stay raw so routes can merge onto them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    server: ServerConfig,
    store: StoreConfig,
    upstream: UpstreamSection,
    trusted_proxies: Vec<String>,
    log: LogConfig,
    headers: toml::Table,
    fingerprint: toml::Table,
    errors: toml::Table,
    limits: toml::Table,
    cookies: toml::Table,
    csrf: toml::Table,
    rate_limit: toml::Table,
    waf: toml::Table,
    filter: toml::Table,
    bans: toml::Table,
    login: Vec<toml::Table>,
    access: Vec<toml::Table>,
    portal: Option<toml::Table>,
    session: toml::Table,
    alerts: AlertsSection,
    tls: TlsSection,
    metrics: MetricsSection,
    route: Vec<RouteSection>,
}

/// `[metrics]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MetricsSection {
    /// The metrics, health and dashboard listener, or `"off"`.
    listen: String,
    /// Who may connect to it.
    allow: Vec<String>,
    /// The live security dashboard at `/dashboard`.
    dashboard: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            listen: "off".into(),
            allow: vec!["127.0.0.0/8".into(), "::1".into()],
            dashboard: true,
        }
    }
}

/// The metrics listener, validated.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    pub allow: Vec<IpNet>,
    pub dashboard: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    name: Option<String>,
    path: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    headers: toml::Table,
    #[serde(default)]
    fingerprint: toml::Table,
    #[serde(default)]
    errors: toml::Table,
    #[serde(default)]
    limits: toml::Table,
    #[serde(default)]
    cookies: toml::Table,
    #[serde(default)]
    csrf: toml::Table,
    #[serde(default)]
    rate_limit: toml::Table,
    #[serde(default)]
    waf: toml::Table,
    #[serde(default)]
    filter: toml::Table,
}

impl Config {
    /// Reads and validates `path`, then applies the command-line overrides.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            source: path.display().to_string(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {error}"),
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// The configuration with no file: defaults plus the command line.
    pub fn from_overrides(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::parse("", "command line", overrides)
    }

    pub fn parse(text: &str, source: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let loader = Loader {
            source,
            locator: Locator::new(text),
        };
        let value: toml::Table = toml::from_str(text).map_err(|error| ConfigError {
            source: source.to_owned(),
            line: error.span().map(|span| locate::line_at(text, span.start)),
            key: None,
            message: error.message().to_owned(),
        })?;
        let sections = value.clone();
        let mut file: FileConfig = loader.deserialize("", toml::Value::Table(value))?;
        if let Some(listen) = overrides.listen {
            file.server.listen = listen;
        }
        loader.validate_server(&file.server)?;
        file.server.pid_file = file.server.pid_file.map(|path| loader.beside_config(&path));
        let upstream = match &overrides.upstream {
            Some(url) => upstream(&file.upstream, url).map_err(|message| ConfigError {
                source: "--upstream".into(),
                line: None,
                key: None,
                message,
            })?,
            None => match &file.upstream.url {
                Some(url) => upstream(&file.upstream, url).map_err(|m| loader.error("upstream.url", m))?,
                None => {
                    return Err(loader.error(
                        "upstream.url",
                        "no upstream: give `--upstream http://127.0.0.1:3000` or `[upstream] url`",
                    ))
                }
            },
        };
        let trusted_proxies = file
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, cidr)| {
                portcullis_core::client_ip::parse_net(cidr)
                    .map_err(|m| loader.error(&format!("trusted_proxies[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        let global = RawPolicies {
            headers: &file.headers,
            fingerprint: &file.fingerprint,
            errors: &file.errors,
            limits: &file.limits,
            cookies: &file.cookies,
            csrf: &file.csrf,
            rate_limit: &file.rate_limit,
            waf: &file.waf,
            filter: &file.filter,
        };
        let policies = loader.policies(&global, None, "")?;
        let routes = file
            .route
            .iter()
            .enumerate()
            .map(|(i, route)| loader.route(&global, route, i))
            .collect::<Result<_, _>>()?;
        loader.validate_store(&file.store)?;
        let (_, bans) = loader.checked(("bans".into(), toml::Value::Table(file.bans)), BansConfig::validate)?;
        let (_, session) = loader.checked(
            ("session".into(), toml::Value::Table(file.session)),
            SessionConfig::validate,
        )?;
        let portal_given = file.portal.is_some();
        let portal_section: PortalSection =
            loader.deserialize("portal", toml::Value::Table(file.portal.unwrap_or_default()))?;
        let identity = loader.identity(&portal_section)?;
        let access = file
            .access
            .into_iter()
            .enumerate()
            .map(|(i, table)| loader.deserialize(&format!("access[{i}]"), toml::Value::Table(table)))
            .collect::<Result<Vec<AccessConfig>, _>>()?;
        let access = AccessRules::new(&access, identity, &portal_section.prefix)
            .map_err(|e| loader.error(&format!("access{}", e.key), e.message))?;
        let portal = match portal_given || access.needs_login() {
            true => Some(Arc::new(loader.portal(&portal_section)?)),
            false => None,
        };
        let mut login = file.login;
        if let Some(portal) = &portal {
            login.push(portal::login_protection(&portal.prefix));
        }
        let logins: Vec<LoginConfig> = login
            .into_iter()
            .enumerate()
            .map(|(i, table)| {
                let entry = (format!("login[{i}]"), toml::Value::Table(table));
                loader.checked(entry, LoginConfig::validate).map(|(_, login)| login)
            })
            .collect::<Result<_, _>>()?;
        let logins = match logins.is_empty() {
            true => None,
            // Errors name the entry as `[i].key`.
            false => Some(
                LoginRules::new(&logins, events()).map_err(|e| loader.error(&format!("login{}", e.key), e.message))?,
            ),
        };
        let alerts_webhook = file
            .alerts
            .validate()
            .map_err(|(key, message)| loader.error(&format!("alerts.{key}"), message))?;
        let metrics = loader.metrics(&file.metrics, &file.server)?;
        Ok(Self {
            server: file.server,
            store: file.store,
            upstream,
            trusted_proxies,
            log: file.log,
            policies,
            routes,
            bans,
            logins,
            tls: loader.tls(&file.tls)?,
            access: (!access.is_empty()).then(|| Arc::new(access)),
            portal,
            session,
            alerts: file.alerts,
            alerts_webhook,
            metrics,
            sections,
        })
    }
}

struct RawPolicies<'a> {
    headers: &'a toml::Table,
    fingerprint: &'a toml::Table,
    errors: &'a toml::Table,
    limits: &'a toml::Table,
    cookies: &'a toml::Table,
    csrf: &'a toml::Table,
    rate_limit: &'a toml::Table,
    waf: &'a toml::Table,
    filter: &'a toml::Table,
}

struct Loader<'a> {
    source: &'a str,
    locator: Locator<'a>,
}

impl Loader<'_> {
    /// A path the config gives, relative to the config file's directory.
    fn beside_config(&self, path: &Path) -> PathBuf {
        match Path::new(self.source).parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        }
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source: self.source.to_owned(),
            line: self.locator.line_of(key),
            key: (!key.is_empty()).then(|| key.to_owned()),
            message: message.into(),
        }
    }

    /// Deserializes `value`, reporting errors at the key where they occurred.
    fn deserialize<T: DeserializeOwned>(&self, prefix: &str, value: toml::Value) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|error| {
            let inner = error.path().to_string();
            let key = join_key(prefix, if inner == "." { "" } else { &inner });
            self.error(&key, error.into_inner().message().to_owned())
        })
    }

    fn invalid(&self, section: &str, error: InvalidConfig) -> ConfigError {
        self.error(&join_key(section, &error.key), error.message)
    }

    /// Loads and checks the certificates, so a config that loads can serve them.
    fn tls(&self, section: &TlsSection) -> Result<Option<Tls>, ConfigError> {
        if !section.is_enabled() {
            return Ok(None);
        }
        let mut files = Vec::new();
        let mut keys = Vec::new();
        match (&section.cert, &section.key) {
            (Some(cert), Some(key)) => {
                files.push(CertificateFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                });
                keys.push(("tls.cert".to_owned(), "tls.key".to_owned()));
            }
            (Some(_), None) => return Err(self.error("tls.cert", "a certificate needs its private key: add `key`")),
            (None, Some(_)) => return Err(self.error("tls.key", "a private key needs its certificate: add `cert`")),
            (None, None) => {}
        }
        if let Some(acme) = &section.acme {
            if section.cert.is_some() || !section.certificates.is_empty() {
                return Err(self.error(
                    "tls.acme",
                    "certificates come either from files (cert/key, certificates) or from ACME, not both",
                ));
            }
            acme.validate()
                .map_err(|(key, message)| self.error(&format!("tls.acme.{key}"), message))?;
        }
        for (i, pair) in section.certificates.iter().enumerate() {
            files.push(pair.clone());
            keys.push((
                format!("tls.certificates[{i}].cert"),
                format!("tls.certificates[{i}].key"),
            ));
        }
        let set = tls::reload::load_all(&files).map_err(|(i, error)| {
            let key = if error.in_key { &keys[i].1 } else { &keys[i].0 };
            self.error(key, error.message)
        })?;
        let redirect_listen = match section.redirect_listen.as_str() {
            "off" => None,
            address => Some(address.parse().map_err(|_| {
                self.error(
                    "tls.redirect_listen",
                    format!("`{address}` is not an address such as \"0.0.0.0:80\"; or \"off\""),
                )
            })?),
        };
        let challenges = Arc::new(Challenges::default());
        Ok(Some(Tls {
            files,
            resolver: Resolver::new(set, challenges.clone()),
            challenges,
            acme: section.acme.clone(),
            redirect_listen,
            handshake_timeout: section.handshake_timeout,
            reload_interval: section.reload_interval,
        }))
    }

    fn identity(&self, section: &PortalSection) -> Result<IdentityHeaders, ConfigError> {
        let user = portal::header_name(&section.user_header).map_err(|m| self.error("portal.user_header", m))?;
        let groups = portal::header_name(&section.groups_header).map_err(|m| self.error("portal.groups_header", m))?;
        Ok(IdentityHeaders { user, groups })
    }

    /// The portal's settings, with its users file read (relative to the
    /// config file's directory).
    fn portal(&self, section: &PortalSection) -> Result<PortalSettings, ConfigError> {
        let prefix = &section.prefix;
        let shaped = prefix.starts_with('/') && prefix.ends_with('/') && prefix.len() > 2;
        if !shaped || portcullis_core::path::normalize(prefix) != prefix.as_str() {
            return Err(self.error(
                "portal.prefix",
                "a lowercase path that starts and ends with `/`, e.g. \"/.portcullis/\"",
            ));
        }
        let path = self.beside_config(&section.users);
        let users = portal::users::UsersFile::open(&path).map_err(|e| ConfigError {
            source: e.path.display().to_string(),
            line: e.line,
            key: e.key,
            message: e.message,
        })?;
        Ok(PortalSettings {
            prefix: prefix.clone(),
            second_factor: section.second_factor,
            issuer: section.issuer.clone(),
            users,
            dashboard_groups: section.dashboard_groups.clone(),
        })
    }

    fn validate_store(&self, store: &StoreConfig) -> Result<(), ConfigError> {
        if store.max_keys == 0 {
            return Err(self.error("store.max_keys", "must be at least 1"));
        }
        match &store.redis {
            Some(url) => RedisStore::check_url(url).map_err(|m| self.error("store.redis", m)),
            None => Ok(()),
        }
    }

    fn metrics(&self, section: &MetricsSection, server: &ServerConfig) -> Result<Option<MetricsConfig>, ConfigError> {
        if section.listen == "off" {
            return Ok(None);
        }
        let listen: SocketAddr = section.listen.parse().map_err(|_| {
            self.error(
                "metrics.listen",
                format!(
                    "`{}` is not an address such as \"127.0.0.1:9464\"; or \"off\"",
                    section.listen
                ),
            )
        })?;
        if listen.port() == server.listen.port() && listen.port() != 0 {
            return Err(self.error(
                "metrics.listen",
                "metrics are never served on the gateway's own port: pick another, e.g. \"127.0.0.1:9464\"",
            ));
        }
        let allow = portcullis_core::client_ip::parse_nets(&section.allow, "metrics.allow")
            .map_err(|e| self.error(&e.key, e.message))?;
        Ok(Some(MetricsConfig {
            listen,
            allow,
            dashboard: section.dashboard,
        }))
    }

    fn validate_server(&self, server: &ServerConfig) -> Result<(), ConfigError> {
        InvalidConfig::require_positive(&[
            ("max_connections", server.max_connections as u64),
            ("max_connections_per_ip", server.max_connections_per_ip as u64),
            ("h2_max_concurrent_streams", u64::from(server.h2_max_concurrent_streams)),
        ])
        .map_err(|e| self.invalid("server", e))
    }

    /// Compiles the policies of the default route (`route` is `None`) or of a
    /// `[[route]]`, whose sections merge key by key onto the global ones.
    fn policies(
        &self,
        global: &RawPolicies,
        route: Option<(&RouteSection, usize)>,
        prefix: &str,
    ) -> Result<Policies, ConfigError> {
        let merged = |name: &str, base: &toml::Table, over: Option<&toml::Table>| {
            let mut table = base.clone();
            if let Some(over) = over {
                deep_merge(&mut table, over);
            }
            // A key the route sets is reported at the route; others at the global section.
            let section = match over {
                Some(over) if !over.is_empty() => join_key(prefix, name),
                _ => name.to_owned(),
            };
            (section, toml::Value::Table(table))
        };
        let over = |pick: fn(&RouteSection) -> &toml::Table| route.map(|(r, _)| pick(r));

        let (section, value) = merged("headers", global.headers, over(|r| &r.headers));
        let headers = self.deserialize(&section, value)?;
        let headers = SecurityHeaders::from_config(&headers).map_err(|e| self.invalid(&section, e))?;

        let (section, value) = merged("fingerprint", global.fingerprint, over(|r| &r.fingerprint));
        let fingerprint = self.deserialize(&section, value)?;
        let fingerprint = Fingerprint::from_config(&fingerprint).map_err(|e| self.invalid(&section, e))?;

        let (section, value) = merged("errors", global.errors, over(|r| &r.errors));
        let errors: ErrorsConfig = self.deserialize(&section, value)?;
        let pages = self.pages(&section, &errors)?;
        let errors = SafeErrors::new(errors, pages.clone(), events());

        let (_, limits) = self.checked(
            merged("limits", global.limits, over(|r| &r.limits)),
            LimitsConfig::validate,
        )?;
        let limits = RequestLimits::new(limits, pages.clone(), events());
        let (cookies_section, mut cookies) = self.checked(
            merged("cookies", global.cookies, over(|r| &r.cookies)),
            CookiesConfig::validate,
        )?;
        let (section, csrf) = self.checked(merged("csrf", global.csrf, over(|r| &r.csrf)), CsrfConfig::validate)?;
        if csrf.token.enabled {
            // Front-end code reads the token cookie by its name.
            if cookies.rename.contains(&csrf.token.cookie) {
                let key = join_key(&section, "token.cookie");
                return Err(self.error(
                    &key,
                    "the token cookie must not be one of cookies.rename: scripts read it by name",
                ));
            }
            if !cookies.script_readable.contains(&csrf.token.cookie) {
                cookies.script_readable.push(csrf.token.cookie.clone());
            }
        }

        let cookies = CookieHardening::new(cookies, events()).map_err(|e| self.invalid(&cookies_section, e))?;
        let csrf = CrossOriginProtection::new(csrf, pages.clone(), events()).map_err(|e| self.invalid(&section, e))?;

        let (section, rate_limit) = self.checked(
            merged("rate_limit", global.rate_limit, over(|r| &r.rate_limit)),
            RateLimitConfig::validate,
        )?;
        let rate_scope = match route {
            Some((r, index)) if !r.rate_limit.is_empty() => format!("route-{}", index + 1),
            _ => "default".to_owned(),
        };
        let rate_limit = RateLimitRules::new(rate_limit, &rate_scope, pages.clone(), events())
            .map_err(|e| self.invalid(&section, e))?;

        let (section, waf) = self.checked(merged("waf", global.waf, over(|r| &r.waf)), WafConfig::validate)?;
        let waf = Waf::compile(waf)
            .map_err(|e| self.invalid(&section, e))?
            .with_reporting(pages.clone(), events());

        let (_, filter) = self.checked(
            merged("filter", global.filter, over(|r| &r.filter)),
            FilterConfig::validate,
        )?;
        let route_name = match route {
            Some((r, index)) => format!("route[{index}] {}", r.path),
            None => "default".to_owned(),
        };
        let filter = ResponseFilter::new(&filter, route_name, events());

        Ok(Policies {
            headers: Arc::new(headers),
            fingerprint: Arc::new(fingerprint),
            errors: Arc::new(errors),
            pages,
            limits: Arc::new(limits),
            cookies: Arc::new(cookies),
            csrf: Arc::new(csrf),
            rate_limit,
            waf: Arc::new(waf),
            filter: Arc::new(filter),
        })
    }

    /// A section that checks itself: deserialized, then validated, errors
    /// pointing at the key either way.
    fn checked<T: DeserializeOwned>(
        &self,
        (section, value): (String, toml::Value),
        validate: fn(&T) -> Result<(), InvalidConfig>,
    ) -> Result<(String, T), ConfigError> {
        let config: T = self.deserialize(&section, value)?;
        validate(&config).map_err(|e| self.invalid(&section, e))?;
        Ok((section, config))
    }

    fn pages(&self, section: &str, errors: &ErrorsConfig) -> Result<NeutralPages, ConfigError> {
        let mut custom = HashMap::new();
        for (status, path) in &errors.pages {
            let key = join_key(section, &format!("pages.{status}"));
            let code = status
                .parse::<u16>()
                .ok()
                .filter(|code| (400..600).contains(code))
                .ok_or_else(|| self.error(&key, "a page is named by its status code, 400 to 599"))?;
            let html = std::fs::read_to_string(path)
                .map_err(|e| self.error(&key, format!("cannot read `{}`: {e}", path.display())))?;
            custom.insert(code, html);
        }
        Ok(NeutralPages::with_custom_html(custom))
    }

    fn route(&self, global: &RawPolicies, route: &RouteSection, index: usize) -> Result<Route, ConfigError> {
        let prefix = format!("route[{index}]");
        let path = PathPattern::parse(&route.path).map_err(|m| self.error(&format!("{prefix}.path"), m))?;
        let methods = portcullis_core::parse_methods(&route.methods, &format!("{prefix}.methods"))
            .map_err(|e| self.error(&e.key, e.message))?;
        let policies = self.policies(global, Some((route, index)), &prefix)?;
        let name = match &route.name {
            Some(name) if is_label(name) => name.clone(),
            Some(_) => {
                return Err(self.error(
                    &format!("{prefix}.name"),
                    "1 to 64 letters, digits, `-`, `_` or `.`, e.g. \"api\"",
                ))
            }
            None => format!("route-{}", index + 1),
        };
        Ok(Route {
            name,
            path,
            methods: (!methods.is_empty()).then_some(methods),
            policies,
        })
    }
}

/// A route name fit for a metrics label and a log line.
fn is_label(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn join_key(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{key}"),
    }
}

/// Route sections override the global ones key by key, tables recursively.
fn deep_merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => deep_merge(base, over),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn upstream(section: &UpstreamSection, url: &str) -> Result<Upstream, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("`{url}` is not a URL, expected e.g. http://127.0.0.1:3000"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(format!("`{url}` needs a scheme and a host, e.g. http://127.0.0.1:3000"));
    };
    if scheme != &Scheme::HTTP {
        return Err(format!(
            "scheme `{scheme}` is not supported for the upstream, expected: http"
        ));
    }
    if uri.path() != "/" || uri.query().is_some() {
        return Err(format!(
            "`{url}` must not have a path or query: requests keep their own"
        ));
    }
    Ok(Upstream {
        authority: authority.clone(),
        connect_timeout: section.connect_timeout,
        response_timeout: section.response_timeout,
        pool_idle_timeout: section.pool_idle_timeout,
        pool_max_idle: section.pool_max_idle,
    })
}

/// Durations are written as `"10s"`, `"500ms"`, `"1m 30s"`.
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*duration).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if !duration.is_zero() => Ok(duration),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration above zero, expected e.g. \"10s\", \"500ms\", \"1m 30s\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "portcullis.toml", &Overrides::default())
    }

    const UPSTREAM: &str = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n";

    #[test]
    fn defaults_need_only_an_upstream() {
        let config = parse(UPSTREAM).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.policies.limits.config().max_body_bytes, 1024 * 1024);
        assert_eq!(config.upstream.authority, "127.0.0.1:3000");
        assert!(parse("").unwrap_err().to_string().contains("no upstream"));
    }

    #[test]
    fn metrics_are_off_by_default_and_refused_on_the_gateway_port() {
        assert!(parse(UPSTREAM).unwrap().metrics.is_none());
        let on = parse(&format!("{UPSTREAM}[metrics]\nlisten = \"127.0.0.1:9464\"\n")).unwrap();
        let metrics = on.metrics.unwrap();
        assert!(metrics.dashboard && metrics.allow.len() == 2);
        for (bad, message) in [
            ("listen = \"127.0.0.1:8080\"", "never served on the gateway's own port"),
            ("listen = \"localhost\"", "is not an address"),
            (
                "listen = \"127.0.0.1:9464\"\nallow = [\"10.0.0.0/33\"]",
                "metrics.allow[0]",
            ),
        ] {
            let text = parse(&format!("{UPSTREAM}[metrics]\n{bad}\n")).unwrap_err().to_string();
            assert!(text.contains(message) && text.contains("portcullis.toml:"), "{text}");
        }
    }

    #[test]
    fn routes_are_named_for_metrics() {
        let text = format!("{UPSTREAM}[[route]]\npath = \"/a\"\n[[route]]\nname = \"api\"\npath = \"/api\"\n");
        let config = parse(&text).unwrap();
        assert_eq!(config.routes[0].name, "route-1");
        assert_eq!(config.routes[1].name, "api");
        let bad = parse(&format!("{UPSTREAM}[[route]]\nname = \"a b\"\npath = \"/a\"\n")).unwrap_err();
        assert!(bad.to_string().contains("key `route[0].name`"), "{bad}");
    }

    #[test]
    fn unknown_keys_name_file_line_key_and_allowed_values() {
        let err = parse(&format!(
            "{UPSTREAM}\n[server]\nlisten = \"127.0.0.1:1\"\nheader_timeout = \"5s\"\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("portcullis.toml:6: key `server.header_timeout`"),
            "{text}"
        );
        assert!(text.contains("header_read_timeout"), "{text}");
    }

    #[test]
    fn bad_values_point_at_their_line() {
        let err = parse(&format!("{UPSTREAM}[headers]\nx_frame_options = \"ALLOW-FROM x\"\n")).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(4), Some("headers.x_frame_options"))
        );
        assert!(err.message.contains("SAMEORIGIN, DENY"));

        let err = parse(&format!(
            "{UPSTREAM}[headers.content_security_policy]\nmode = \"sometimes\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("set") && err.message.contains("remove"), "{err}");

        let err = parse(&format!("{UPSTREAM}[server]\ndrain_timeout = \"soon\"\n")).unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(4), Some("server.drain_timeout")));
    }

    #[test]
    fn sections_validate_themselves_at_the_key() {
        let err = parse(&format!("{UPSTREAM}[limits]\nmax_header_bytes = 0\n")).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(4), Some("limits.max_header_bytes")),
            "{err}"
        );
        let err = parse(&format!("{UPSTREAM}[rate_limit]\nburst = 0\n")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("rate_limit.burst"), "{err}");
    }

    #[test]
    fn abuse_sections_name_their_keys() {
        let key_and_line = |text: &str| {
            let err = parse(&format!("{UPSTREAM}{text}")).unwrap_err();
            (err.key.clone().unwrap_or_default(), err.line, err.message)
        };
        let (key, line, message) = key_and_line("[store]\nredis = \"http://x\"\n");
        assert_eq!((key.as_str(), line), ("store.redis", Some(4)));
        assert!(message.contains("redis://127.0.0.1:6379"), "{message}");
        let (key, _, message) = key_and_line("[store]\non_error = \"maybe\"\n");
        assert_eq!(key, "store.on_error");
        assert!(
            message.contains("fail_open") && message.contains("fail_closed") && message.contains("local"),
            "{message}"
        );
        let (key, _, message) = key_and_line("[bans]\naction = \"tarpit\"\n");
        assert_eq!(key, "bans.action");
        assert!(message.contains("forbid"), "{message}");
        let (key, line, _) = key_and_line("[[login]]\npath = \"/login\"\n\n[[login]]\nmethods = [\"POST\"]\n");
        assert_eq!((key.as_str(), line), ("login[1].path", Some(6)));
        let (key, line, _) = key_and_line("[[login]]\npath = \"/login\"\nfailure_location = \"(\"\n");
        assert_eq!((key.as_str(), line), ("login[0].failure_location", Some(5)));
        let config = parse(&format!("{UPSTREAM}[[login]]\npath = \"/login\"\n")).unwrap();
        assert_eq!(
            config.logins.unwrap().entries().next().unwrap().consecutive_failures,
            10
        );
        assert_eq!(config.store.on_error, OnError::FailOpen);
    }

    #[test]
    fn tls_errors_point_at_the_key() {
        let err = parse(&format!("{UPSTREAM}[tls]\ncert = \"/nonexistent.pem\"\n")).unwrap_err();
        assert_eq!((err.key.as_deref(), err.line), (Some("tls.cert"), Some(4)));
        assert!(err.message.contains("add `key`"), "{err}");
        let err = parse(&format!(
            "{UPSTREAM}[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("tls.cert"));
        assert!(err.message.contains("cannot read"), "{err}");
        let err = parse(&format!(
            "{UPSTREAM}[[tls.certificates]]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/k.pem\"\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("tls.certificates[0].cert"));
    }

    #[test]
    fn access_and_alert_errors_point_at_their_line() {
        let text = format!(
            "{UPSTREAM}[[access]]\npath = \"/admin\"\nlogin = true\n\n[[access]]\npath = \"/admin/x\"\ndeny = [\"::1\"]\n"
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(8), Some("access[1].path")),
            "{err}"
        );
        assert!(err.message.contains("never used"), "{err}");
        let err = parse(&format!(
            "{UPSTREAM}[[access]]\npath = \"/x\"\nallow = [\"10.0.0.0/40\"]\n"
        ))
        .unwrap_err();
        assert_eq!(err.key.as_deref(), Some("access[0].allow[0]"), "{err}");
        let err = parse(&format!("{UPSTREAM}[alerts]\nwebhook = \"ftp://x\"\n")).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(4), Some("alerts.webhook")),
            "{err}"
        );
        let err = parse(&format!("{UPSTREAM}[filter]\nmode = \"strip\"\n")).unwrap_err();
        assert!(
            err.message.contains("remove") && err.message.contains("detect"),
            "{err}"
        );
        let err = parse(&format!("{UPSTREAM}[portal]\nprefix = \"/Login\"\n")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("portal.prefix"), "{err}");
    }

    proptest::proptest! {
        /// Any text is a config or a config error, never a panic (toml_edit
        /// 0.23 panicked on `==\n["".]`, found by this test).
        #[test]
        fn any_text_is_loaded_or_refused(text in "(\\[{1,2}[a-z\" .]{0,8}\\]{1,2}\n|[a-z_.]{1,8} = (\"[^\"]{0,12}\"|\\[\"[a-z]{0,4}\"\\]|[0-9]{1,3}|true)\n|.{0,12}\n){0,8}") {
            let _ = parse(&text);
        }
    }

    #[test]
    fn a_malformed_table_header_is_an_error_with_a_line() {
        let err = parse("==\n[\"\".]\n").unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse("[upstream]\nurl = \"http://x\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn routes_merge_onto_global_sections() {
        let text = format!(
            "{UPSTREAM}[limits]\nmax_uri_bytes = 100\n[[route]]\npath = \"/upload\"\nmethods = [\"post\"]\n[route.limits]\nmax_body_bytes = 50000000\n"
        );
        let config = parse(&text).unwrap();
        let route = &config.routes[0];
        assert_eq!(route.policies.limits.config().max_body_bytes, 50_000_000);
        assert_eq!(route.policies.limits.config().max_uri_bytes, 100);
        assert_eq!(route.methods.as_deref(), Some(&[Method::POST][..]));
        assert_eq!(config.policies.limits.config().max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn route_errors_point_into_the_route() {
        let text = format!("{UPSTREAM}[[route]]\npath = \"/api\"\n[route.headers]\nreferrer_policy = \"bogus\"\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_deref()),
            (Some(6), Some("route[0].headers.referrer_policy")),
            "{err}"
        );
        let err = parse(&format!("{UPSTREAM}[[route]]\npath = \"api\"\n")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("route[0].path"));
    }

    #[test]
    fn command_line_overrides_the_file() {
        let overrides = Overrides {
            upstream: Some("http://127.0.0.1:4000".into()),
            listen: Some("127.0.0.1:9".parse().unwrap()),
        };
        let config = Config::parse(UPSTREAM, "f", &overrides).unwrap();
        assert_eq!(config.upstream.authority, "127.0.0.1:4000");
        assert_eq!(config.server.listen.port(), 9);
        let bad = Overrides {
            upstream: Some("https://x".into()),
            listen: None,
        };
        assert!(Config::parse("", "f", &bad)
            .unwrap_err()
            .to_string()
            .starts_with("--upstream: scheme `https`"));
    }

    #[test]
    fn trusted_proxies_accept_cidrs_and_addresses() {
        let config = parse(&format!("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n{UPSTREAM}")).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        let err = parse(&format!("trusted_proxies = [\"10.0.0.0/33\"]\n{UPSTREAM}")).unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (Some(1), Some("trusted_proxies[0]")));
    }
}
