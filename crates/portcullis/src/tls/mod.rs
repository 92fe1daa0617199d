//! HTTPS (checklist C1): TLS termination with rustls.
//!
//! TLS 1.2 and 1.3 only, ECDHE key exchange and AEAD ciphers only (rustls
//! implements nothing weaker), which is Mozilla's "intermediate" profile.
//! ALPN offers `h2` and `http/1.1`. Certificates are chosen by SNI, session
//! tickets are encrypted under keys rotated every 6 hours, and the files are
//! reloaded when they change or when the config is reloaded.

pub mod acme;
mod certificates;
pub mod redirect;
pub mod reload;
pub mod self_signed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::ServerSessionMemoryCache;
use rustls::ServerConfig;
use serde::Deserialize;

pub use acme::{AcmeConfig, Challenges, ALPN_ACME_TLS};
pub use certificates::{CertificateFiles, Resolver};

/// The `[tls]` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// One certificate chain and its key (PEM)...
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// ...and/or several, chosen by the name the client asks for (SNI).
    pub certificates: Vec<CertificateFiles>,
    /// The plain-HTTP listener that redirects to HTTPS, or `"off"`.
    pub redirect_listen: String,
    /// Time a client has to complete the TLS handshake.
    #[serde(with = "crate::config::duration")]
    pub handshake_timeout: Duration,
    /// How often the certificate files are checked for changes.
    #[serde(with = "crate::config::duration")]
    pub reload_interval: Duration,
    /// Certificates from an ACME CA instead of files.
    pub acme: Option<AcmeConfig>,
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            certificates: Vec::new(),
            redirect_listen: "0.0.0.0:80".into(),
            handshake_timeout: Duration::from_secs(10),
            reload_interval: Duration::from_secs(10),
            acme: None,
        }
    }
}

impl TlsSection {
    pub fn is_enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || !self.certificates.is_empty() || self.acme.is_some()
    }
}

/// TLS as the gateway runs it, certificates loaded and checked.
#[derive(Debug, Clone)]
pub struct Tls {
    pub files: Vec<CertificateFiles>,
    pub resolver: Arc<Resolver>,
    pub redirect_listen: Option<SocketAddr>,
    pub handshake_timeout: Duration,
    pub reload_interval: Duration,
    pub acme: Option<AcmeConfig>,
    /// ACME challenge answers, served by the resolver and the redirect listener.
    pub challenges: Arc<Challenges>,
}

/// Mode of files holding private keys.
pub const OWNER_ONLY: u32 = 0o600;

/// Writes `text` to `path` with `mode` through a temporary file and a
/// rename, so a reader (or a reload) never sees half a file.
pub fn write_file(path: &std::path::Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let fail = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

/// The one crypto provider: *ring* (no C toolchain needed to build it).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ALPN names, in order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Session resumption: tickets for TLS 1.3 and 1.2, and session ids for
/// TLS 1.2 clients without tickets, held for this many sessions.
const SESSION_CACHE: usize = 16 * 1024;

impl Tls {
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        if self.acme.is_some() {
            config.alpn_protocols.push(ALPN_ACME_TLS.to_vec());
        }
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        Ok(Arc::new(config))
    }
}
