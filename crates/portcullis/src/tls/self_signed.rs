//! `portcullis cert self-signed`: certificates for development.
//!
//! Writes a local CA and a leaf certificate it signed, never a leaf that is
//! its own CA: clients trust the CA file, and the leaf can be replaced
//! without touching them. The CA's private key is not kept, so nothing can
//! sign more certificates under a CA someone added to a trust store.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::{write_file, OWNER_ONLY};

/// The files written.
pub struct Written {
    /// The CA certificate, for clients to trust.
    pub ca: PathBuf,
    /// The leaf followed by the CA: `[tls] cert`.
    pub cert: PathBuf,
    /// The leaf's key, readable by its owner only: `[tls] key`.
    pub key: PathBuf,
}

/// Creates a CA and a leaf for `hosts` (names or IP addresses) in `out`.
pub fn write(hosts: &[String], out: &Path) -> Result<Written, String> {
    let generated = generate(hosts).map_err(|e| format!("cannot create the certificates: {e}"))?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let written = Written {
        ca: out.join("ca.pem"),
        cert: out.join("cert.pem"),
        key: out.join("key.pem"),
    };
    write_file(&written.ca, &generated.ca, 0o644)?;
    write_file(&written.cert, &format!("{}{}", generated.leaf, generated.ca), 0o644)?;
    write_file(&written.key, &generated.key, OWNER_ONLY)?;
    Ok(written)
}

struct Generated {
    ca: String,
    leaf: String,
    key: String,
}

fn generate(hosts: &[String]) -> Result<Generated, rcgen::Error> {
    let now = OffsetDateTime::now_utc();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name("portcullis development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::days(1);
    ca.not_after = now + Duration::days(3650);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(hosts.to_vec())?;
    leaf.distinguished_name = name(hosts.first().map_or("localhost", String::as_str));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // RFC 5280 §4.2.1.1 requires it in every certificate a CA issues, and
    // strict verifiers (Python's cryptography, so sslyze) refuse a chain without it.
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - Duration::days(1);
    // Within the 398 days browsers accept for a leaf.
    leaf.not_after = now + Duration::days(365);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        ca: ca_cert.pem(),
        leaf: leaf_cert.pem(),
        key: leaf_key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{provider, CertificateFiles};

    #[test]
    fn the_leaf_is_signed_by_a_separate_ca_and_loads() {
        let dir = std::env::temp_dir().join(format!("portcullis-self-signed-{}", std::process::id()));
        let written = write(&["localhost".into(), "127.0.0.1".into()], &dir).unwrap();
        let files = CertificateFiles {
            cert: written.cert.clone(),
            key: written.key.clone(),
        };
        let loaded = files.load(&provider()).unwrap();
        assert_eq!(loaded.names, ["localhost"]);
        assert_eq!(loaded.key.cert.len(), 2, "leaf, then the CA");
        assert_ne!(loaded.key.cert[0], loaded.key.cert[1], "the leaf is not its own CA");
        let ca = std::fs::read_to_string(&written.ca).unwrap();
        assert!(std::fs::read_to_string(&written.cert).unwrap().ends_with(&ca));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
