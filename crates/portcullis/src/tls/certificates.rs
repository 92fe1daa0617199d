//! The certificates served, chosen per handshake by SNI, and swapped whole
//! when they are reloaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::acme::{Challenges, ALPN_ACME_TLS};

/// Where one certificate comes from: its chain and its key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate ready to serve.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// DNS names from the leaf's subjectAltName (lowercased; may start with `*.`).
    pub names: Vec<String>,
    pub not_after: SystemTime,
}

/// Why a certificate cannot be served; `in_key` says which file is at fault.
#[derive(Debug)]
pub struct LoadError {
    pub in_key: bool,
    pub message: String,
}

impl Loaded {
    /// For the log: the names and when the certificate expires.
    pub fn describe(&self) -> String {
        format!(
            "{} until {}",
            self.names.join(","),
            humantime::format_rfc3339_seconds(self.not_after)
        )
    }
}

impl LoadError {
    fn cert(message: impl Into<String>) -> Self {
        Self {
            in_key: false,
            message: message.into(),
        }
    }

    fn key(message: impl Into<String>) -> Self {
        Self {
            in_key: true,
            message: message.into(),
        }
    }
}

impl CertificateFiles {
    /// Reads and checks both files: a chain, a key the provider can sign
    /// with, the key matching the leaf, and a leaf valid now.
    pub fn load(&self, provider: &CryptoProvider) -> Result<Loaded, LoadError> {
        let read = |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()));
        let chain_pem = read(&self.cert).map_err(LoadError::cert)?;
        let chain = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LoadError::cert(format!("`{}` is not PEM certificates: {e}", self.cert.display())))?;
        let Some(leaf) = chain.first() else {
            return Err(LoadError::cert(format!(
                "`{}` holds no certificate",
                self.cert.display()
            )));
        };
        let key_pem = read(&self.key).map_err(LoadError::key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| LoadError::key(format!("`{}` is not a PEM private key: {e}", self.key.display())))?;
        let signing = provider.key_provider.load_private_key(key).map_err(|e| {
            LoadError::key(format!(
                "`{}`: unsupported key ({e}); ECDSA P-256/P-384, RSA 2048+ and Ed25519 work",
                self.key.display()
            ))
        })?;
        let (names, not_before, not_after) = leaf_facts(leaf).map_err(LoadError::cert)?;
        let now = SystemTime::now();
        if now > not_after {
            return Err(LoadError::cert(format!(
                "`{}` expired on {}",
                self.cert.display(),
                humantime::format_rfc3339_seconds(not_after)
            )));
        }
        if now < not_before {
            return Err(LoadError::cert(format!(
                "`{}` is not valid before {}",
                self.cert.display(),
                humantime::format_rfc3339_seconds(not_before)
            )));
        }
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(|_| {
            LoadError::key(format!(
                "`{}` does not match the certificate in `{}`",
                self.key.display(),
                self.cert.display()
            ))
        })?;
        Ok(Loaded {
            key: Arc::new(certified),
            names,
            not_after,
        })
    }
}

/// The leaf's DNS names and validity period.
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, SystemTime, SystemTime), String> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    let names = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let time = |t: x509_parser::time::ASN1Time| {
        let seconds = u64::try_from(t.timestamp()).unwrap_or(0);
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
    };
    let validity = parsed.validity();
    Ok((names, time(validity.not_before), time(validity.not_after)))
}

/// The certificates in service. The first is served to clients that send no
/// name or a name no certificate covers.
#[derive(Debug, Default)]
pub struct CertificateSet {
    certificates: Vec<Loaded>,
}

impl CertificateSet {
    pub fn new(certificates: Vec<Loaded>) -> Self {
        Self { certificates }
    }

    /// Each name served and when its certificate expires (the earliest, if
    /// several certificates cover it), by name.
    pub fn expiries(&self) -> Vec<(String, SystemTime)> {
        let mut earliest: std::collections::BTreeMap<&str, SystemTime> = Default::default();
        for certificate in &self.certificates {
            for name in &certificate.names {
                let at = earliest.entry(name).or_insert(certificate.not_after);
                *at = (*at).min(certificate.not_after);
            }
        }
        earliest.into_iter().map(|(name, at)| (name.to_owned(), at)).collect()
    }

    /// For the log: each certificate's names and when it expires.
    pub fn describe(&self) -> String {
        let lines: Vec<String> = self.certificates.iter().map(Loaded::describe).collect();
        lines.join("; ")
    }

    /// The certificate for `name`: an exact name first, then a wildcard,
    /// then the default; among those, the first whose key type the client
    /// accepts (a name may have both an ECDSA and an RSA certificate).
    ///
    /// A client that accepts none of them still gets the default: rustls then
    /// fails the handshake over cipher suites with alert 40
    /// (`handshake_failure`), as nginx does. Without a certificate it would
    /// send alert 49 (`access_denied`), which scanners such as sslyze take for
    /// a broken server rather than a refusal.
    fn choose(&self, name: Option<&str>, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = name.map(str::to_ascii_lowercase);
        let exact = |c: &&Loaded| name.as_ref().is_some_and(|n| c.names.iter().any(|c| c == n));
        let wildcard = |c: &&Loaded| {
            name.as_ref().is_some_and(|n| {
                c.names.iter().any(|c| {
                    c.strip_prefix("*.")
                        .is_some_and(|parent| n.split_once('.').is_some_and(|(_, rest)| rest == parent))
                })
            })
        };
        let accepts = |c: &&Loaded| c.key.key.choose_scheme(hello.signature_schemes()).is_some();
        let pick = |filter: &dyn Fn(&&Loaded) -> bool| {
            self.certificates
                .iter()
                .filter(filter)
                .find(accepts)
                .map(|c| c.key.clone())
        };
        pick(&exact)
            .or_else(|| pick(&wildcard))
            .or_else(|| pick(&|_| true))
            .or_else(|| self.certificates.first().map(|c| c.key.clone()))
    }
}

/// Picks a certificate for each handshake from the current set; a reload
/// replaces the set for new handshakes only. An ACME CA checking a
/// TLS-ALPN-01 challenge gets the challenge certificate instead.
#[derive(Debug, Default)]
pub struct Resolver {
    current: RwLock<Arc<CertificateSet>>,
    challenges: Arc<Challenges>,
}

impl Resolver {
    pub fn new(set: CertificateSet, challenges: Arc<Challenges>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(set)),
            challenges,
        })
    }

    pub fn replace(&self, set: impl Into<Arc<CertificateSet>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = set.into();
    }

    pub fn current(&self) -> Arc<CertificateSet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validating = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ALPN_ACME_TLS));
        if validating {
            return self.challenges.tls_alpn(hello.server_name()?);
        }
        self.current().choose(hello.server_name(), &hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::provider;
    use rcgen::{CertificateParams, KeyPair};
    use time::{Duration, OffsetDateTime};

    struct Files(PathBuf);

    impl Files {
        /// A self-signed localhost certificate valid from `from` to `to` days from now.
        fn new(tag: &str, from: i64, to: i64) -> (Self, CertificateFiles) {
            let dir = std::env::temp_dir().join(format!("portcullis-certs-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut params = CertificateParams::new(vec!["localhost".into(), "*.example.test".into()]).unwrap();
            let now = OffsetDateTime::now_utc();
            params.not_before = now + Duration::days(from);
            params.not_after = now + Duration::days(to);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
            let files = CertificateFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            };
            (Self(dir), files)
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_valid_pair_loads_with_its_names() {
        let (_dir, files) = Files::new("valid", -1, 30);
        let loaded = files.load(&provider()).unwrap();
        assert_eq!(loaded.names, ["localhost", "*.example.test"]);
    }

    #[test]
    fn unusable_files_are_refused_naming_the_file_at_fault() {
        let (_expired_dir, expired) = Files::new("expired", -30, -1);
        let error = expired.load(&provider()).unwrap_err();
        assert!(
            !error.in_key && error.message.contains("expired on"),
            "{}",
            error.message
        );

        let (_future_dir, future) = Files::new("future", 2, 30);
        assert!(future
            .load(&provider())
            .unwrap_err()
            .message
            .contains("not valid before"));

        let (_other_dir, other) = Files::new("other", -1, 30);
        let (_dir, valid) = Files::new("mismatch", -1, 30);
        let mismatched = CertificateFiles {
            cert: valid.cert.clone(),
            key: other.key.clone(),
        };
        let error = mismatched.load(&provider()).unwrap_err();
        assert!(
            error.in_key && error.message.contains("does not match"),
            "{}",
            error.message
        );

        let missing = CertificateFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: valid.key.clone(),
        };
        let error = missing.load(&provider()).unwrap_err();
        assert!(!error.in_key && error.message.contains("cannot read `/nonexistent/cert.pem`"));

        std::fs::write(&valid.key, "garbage").unwrap();
        let error = valid.load(&provider()).unwrap_err();
        assert!(
            error.in_key && error.message.contains("not a PEM private key"),
            "{}",
            error.message
        );
    }
}
