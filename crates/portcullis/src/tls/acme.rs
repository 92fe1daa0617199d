//! Automatic certificates (ACME, RFC 8555), as Caddy does it: the gateway
//! gets a certificate for its domains, proves control with TLS-ALPN-01 (on
//! the HTTPS port) or HTTP-01 (on the redirect listener), keeps it in its
//! storage directory across restarts, and renews it well before it expires.
//!
//! The client is instant-acme; challenge answers are served from memory by
//! the certificate resolver (TLS-ALPN-01) and the redirect listener (HTTP-01).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use portcullis_core::events::SecurityEvent;
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::Deserialize;

use super::certificates::{CertificateFiles, CertificateSet, Loaded, Resolver};
use super::{provider, write_file, OWNER_ONLY};
use crate::log::JsonLog;

/// Let's Encrypt's production directory. Staging, for trying things out
/// without its rate limits: `https://acme-staging-v02.api.letsencrypt.org/directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ALPN_ACME_TLS: &[u8] = b"acme-tls/1";

/// `[tls.acme]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// The names the certificate is for; the first names the storage files.
    pub domains: Vec<String>,
    /// Contact for expiry and policy notices from the CA.
    pub email: Option<String>,
    pub directory: String,
    /// A root certificate (PEM) to trust for the directory's own HTTPS, for
    /// private or test ACME servers.
    pub directory_ca: Option<PathBuf>,
    /// Account and certificates, kept across restarts.
    pub storage: PathBuf,
    pub challenge: Challenge,
    /// Renew when the certificate has fewer days left than this.
    pub renew_before_days: u64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            email: None,
            directory: LETS_ENCRYPT.into(),
            directory_ca: None,
            storage: "/var/lib/portcullis/acme".into(),
            challenge: Challenge::TlsAlpn01,
            renew_before_days: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Challenge {
    /// Answered on the HTTPS port: nothing else needs to be reachable.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// Answered on the redirect listener, which must be reachable on port 80.
    #[serde(rename = "http-01")]
    Http01,
}

impl AcmeConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.domains.is_empty() {
            return Err(("domains".into(), "at least one domain, e.g. [\"example.com\"]".into()));
        }
        if let Some(wildcard) = self.domains.iter().find(|d| d.starts_with("*.")) {
            return Err((
                "domains".into(),
                format!("`{wildcard}`: wildcard certificates need the DNS-01 challenge, which is not supported; list the names"),
            ));
        }
        if let Some(bad) = self.domains.iter().find(|d| !is_domain(d)) {
            return Err(("domains".into(), format!("`{bad}` is not a domain name")));
        }
        if !self.directory.starts_with("https://") {
            return Err(("directory".into(), "the directory URL must be https://".into()));
        }
        if self.renew_before_days == 0 {
            return Err(("renew_before_days".into(), "must be at least 1".into()));
        }
        Ok(())
    }

    /// Where the certificate is kept.
    fn files(&self) -> CertificateFiles {
        let dir = self.storage.join(&self.domains[0]);
        CertificateFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

fn is_domain(name: &str) -> bool {
    name.contains('.')
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Challenge answers waiting for the CA to check them.
#[derive(Debug, Default)]
pub struct Challenges {
    /// Domain → the self-signed certificate TLS-ALPN-01 wants served.
    tls_alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// HTTP-01 token → key authorization.
    http: RwLock<HashMap<String, String>>,
}

impl Challenges {
    pub fn tls_alpn(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        let answers = self.tls_alpn.read().unwrap_or_else(|p| p.into_inner());
        answers.get(&domain.to_ascii_lowercase()).cloned()
    }

    /// The body for `GET /.well-known/acme-challenge/{token}`.
    pub fn http(&self, token: &str) -> Option<String> {
        self.http.read().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
    }

    fn clear(&self) {
        self.tls_alpn.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.http.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Keeps a valid certificate in service: loads the stored one, gets a new one
/// when there is none or it is due for renewal, retries failures with
/// backoff (each failure an event naming the next attempt). Runs until the
/// process ends.
pub async fn run(config: AcmeConfig, resolver: Arc<Resolver>, challenges: Arc<Challenges>, log: JsonLog) {
    let files = config.files();
    let renew_before = Duration::from_secs(config.renew_before_days * 24 * 60 * 60);
    let mut failures = 0u32;
    if let Ok(stored) = files.load(&provider()) {
        log.notice("certificate loaded from storage", Some(stored.describe()));
        resolver.replace(CertificateSet::new(vec![stored]));
    }
    loop {
        let due = files.load(&provider()).ok().map(|stored| {
            stored
                .not_after
                .checked_sub(renew_before)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        });
        let now = SystemTime::now();
        if let Some(due) = due.filter(|due| *due > now) {
            // Checked at least twice a day, so a certificate replaced on disk is noticed.
            let wait = due
                .duration_since(now)
                .unwrap_or_default()
                .min(Duration::from_secs(12 * 3600));
            next_check(&log, wait);
            tokio::time::sleep(wait).await;
            continue;
        }
        match issue(&config, &challenges).await {
            Ok(issued) => {
                failures = 0;
                log.notice("certificate issued", Some(issued.describe()));
                resolver.replace(CertificateSet::new(vec![issued]));
                // A renewal window longer than the CA's validity would make
                // every new certificate due at once: never renew in a loop.
                next_check(&log, MIN_BETWEEN_ORDERS);
                tokio::time::sleep(MIN_BETWEEN_ORDERS).await;
            }
            Err(error) => {
                challenges.clear();
                failures += 1;
                let wait = retry_delay(failures);
                let next = humantime::format_rfc3339_seconds(SystemTime::now() + wait);
                log.emit_now(SecurityEvent {
                    kind: "tls",
                    rule: "acme",
                    action: "failed",
                    request_id: None,
                    client_ip: None,
                    detail: Some(format!("{error}; next attempt at {next}")),
                    exclusion: None,
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Says when the certificate is looked at again: the operator sees that
/// nothing is due until then.
fn next_check(log: &JsonLog, wait: Duration) {
    let at = humantime::format_rfc3339_seconds(SystemTime::now() + wait);
    log.notice("next certificate check", Some(format!("at {at}")));
}

/// The shortest time between two successful orders.
const MIN_BETWEEN_ORDERS: Duration = Duration::from_secs(12 * 3600);

/// 1 minute after the first failure, doubling up to 6 hours: well within
/// Let's Encrypt's limit of 5 failed validations per hour per name.
fn retry_delay(failures: u32) -> Duration {
    let minutes = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs((minutes * 60).min(6 * 3600))
}

/// One order, from account to stored certificate.
async fn issue(config: &AcmeConfig, challenges: &Challenges) -> Result<Loaded, String> {
    let account = account(config).await?;
    let identifiers: Vec<Identifier> = config.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let kind = match config.challenge {
        Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        Challenge::Http01 => ChallengeType::Http01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => return Err(format!("authorization is {status:?}")),
        }
        let mut challenge = authorization
            .challenge(kind.clone())
            .ok_or_else(|| format!("the CA offers no {kind:?} challenge"))?;
        let domain = challenge.identifier().to_string();
        let key_authorization = challenge.key_authorization();
        match config.challenge {
            Challenge::TlsAlpn01 => {
                let answer = alpn_certificate(&domain, key_authorization.digest().as_ref())?;
                let mut answers = challenges.tls_alpn.write().unwrap_or_else(|p| p.into_inner());
                answers.insert(domain.to_ascii_lowercase(), answer);
            }
            Challenge::Http01 => {
                let mut answers = challenges.http.write().unwrap_or_else(|p| p.into_inner());
                answers.insert(challenge.token.clone(), key_authorization.as_str().to_owned());
            }
        }
        challenge.set_ready().await.map_err(|e| format!("challenge: {e}"))?;
    }
    let patient = RetryPolicy::new().timeout(Duration::from_secs(120));
    let status = order
        .poll_ready(&patient)
        .await
        .map_err(|e| format!("validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("validation failed: the order is {status:?}"));
    }
    let key = order.finalize().await.map_err(|e| format!("finalize: {e}"))?;
    let chain = order
        .poll_certificate(&patient)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    challenges.clear();
    let files = config.files();
    store(&files, &chain, &key)?;
    files.load(&provider()).map_err(|e| e.message)
}

/// The stored account, or a new one (stored for next time).
async fn account(config: &AcmeConfig) -> Result<Account, String> {
    let builder = || match &config.directory_ca {
        Some(root) => Account::builder_with_root(root),
        None => Account::builder(),
    };
    let builder = builder().map_err(|e| format!("ACME client: {e}"))?;
    let path = config.storage.join("account.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let credentials: AccountCredentials =
            serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
        return builder
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("account: {e}"));
    }
    let contact = config.email.as_ref().map(|email| format!("mailto:{email}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder
        .create(&new, config.directory.clone(), None)
        .await
        .map_err(|e| format!("new account at {}: {e}", config.directory))?;
    let text = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.storage)
        .map_err(|e| format!("cannot create `{}`: {e}", config.storage.display()))?;
    write_file(&path, &text, OWNER_ONLY)?;
    Ok(account)
}

/// The certificate TLS-ALPN-01 validation expects (RFC 8737): self-signed,
/// for the domain, carrying the key authorization's digest.
fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let failed = |e: rcgen::Error| format!("challenge certificate: {e}");
    let mut params = CertificateParams::new(vec![domain.to_owned()]).map_err(failed)?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("challenge key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)))
}

fn store(files: &CertificateFiles, chain: &str, key: &str) -> Result<(), String> {
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    // The key first: a certificate on disk always has its key beside it.
    write_file(&files.key, key, OWNER_ONLY)?;
    write_file(&files.cert, chain, OWNER_ONLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked() {
        let config = |domains: &[&str]| AcmeConfig {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        assert!(config(&["example.com", "www.example.com"]).validate().is_ok());
        assert!(config(&["*.example.com"]).validate().unwrap_err().1.contains("DNS-01"));
        assert_eq!(config(&[]).validate().unwrap_err().0, "domains");
        assert!(config(&["localhost"]).validate().is_err(), "one label");
        assert!(config(&["exa mple.com"]).validate().is_err());
        assert!(config(&["-a.com"]).validate().is_err());
    }

    #[test]
    fn retries_back_off_to_six_hours() {
        assert_eq!(retry_delay(1), Duration::from_secs(60));
        assert_eq!(retry_delay(2), Duration::from_secs(120));
        assert_eq!(retry_delay(30), Duration::from_secs(6 * 3600));
    }
}
