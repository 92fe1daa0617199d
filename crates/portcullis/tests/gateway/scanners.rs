//! Outside scanners against the HTTPS gateway: they must reach a verdict,
//! and the verdict must be good.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tls::{https_gateway, TestCertificates};

/// sslyze, installed by `scripts/test-deps.sh` into its own virtualenv.
fn sslyze() -> PathBuf {
    let path = std::env::var_os("PORTCULLIS_SSLYZE").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/portcullis-test-tools/sslyze/bin/sslyze")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "sslyze not found at {}: run scripts/test-deps.sh",
        path.display()
    );
    path
}

/// Runs sslyze's Mozilla "intermediate" check; returns its whole report.
fn mozilla_intermediate(port: u16, ca: &Path) -> (bool, String) {
    let output = Command::new(sslyze())
        .arg("--mozilla_config=intermediate")
        .arg("--certinfo_ca_file")
        .arg(ca)
        .arg(format!("localhost:{port}"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), report)
}

#[tokio::test]
async fn sslyze_finds_an_ecdsa_certificate_compliant_with_mozilla_intermediate() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let (ok, report) = mozilla_intermediate(gateway.addr.port(), &certificates.path("ca.pem"));
    assert!(ok && report.contains("OK - Compliant."), "{report}");
}

#[tokio::test]
async fn sslyze_finds_ecdsa_and_rsa_certificates_compliant_with_mozilla_intermediate() {
    let certificates = TestCertificates::new();
    let (rsa_ca, extra) = certificates.with_rsa("localhost", "DNS:localhost,IP:127.0.0.1");
    let (_app, gateway, _) = https_gateway(&certificates, &extra);
    let both = certificates.dir.0.join("both-cas.pem");
    let cas =
        std::fs::read_to_string(certificates.path("ca.pem")).unwrap() + &std::fs::read_to_string(&rsa_ca).unwrap();
    std::fs::write(&both, cas).unwrap();
    let (ok, report) = mozilla_intermediate(gateway.addr.port(), &both);
    assert!(
        report.contains("RSAPublicKey") && report.contains("ECPublicKey"),
        "both served:\n{report}"
    );
    assert!(ok && report.contains("OK - Compliant."), "{report}");
}
