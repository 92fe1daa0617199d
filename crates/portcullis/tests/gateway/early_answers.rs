//! Requests refused before their body is read (cross-site POSTs, bodies over
//! the limit) must still reach the client as a clean answer, over HTTP/1.1
//! and HTTP/2, however much the client is still sending.

use std::path::Path;
use std::process::Command;

use crate::harness::Gateway;
use crate::tls::{https_gateway, TestCertificates};

/// What curl made of one POST: its exit code, the status and the protocol.
fn curl_post(gateway: &Gateway, ca: &Path, protocol: &str, body: &Path, headers: &[&str]) -> (i32, String) {
    let port = gateway.addr.port();
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code} HTTP/%{http_version}"])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1"), protocol])
        .args(["-H", "content-type: application/x-www-form-urlencoded"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()));
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command.arg(format!("https://localhost:{port}/form")).output().unwrap();
    let written = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), written)
}

const CROSS_SITE: &[&str] = &["origin: https://evil.example", "sec-fetch-site: cross-site"];
const RUNS: usize = 10;

#[tokio::test]
async fn refusals_reach_curl_whole_over_http1_and_http2() {
    let certificates = TestCertificates::new();
    let (app, gateway, _) = https_gateway(&certificates, "");
    let ca = certificates.path("ca.pem");
    let body = |name: &str, bytes: usize| {
        let path = certificates.dir.0.join(name);
        std::fs::write(&path, "a".repeat(bytes)).unwrap();
        path
    };
    let (small, medium, large) = (body("9", 9), body("100k", 100 * 1024), body("2m", 2 * 1024 * 1024));
    let kept_away: [(&Path, &[&str], u16); 4] = [
        (&small, CROSS_SITE, 403),
        (&medium, CROSS_SITE, 403),
        (&large, CROSS_SITE, 413),
        (&large, &[], 413),
    ];
    // Chunked past the limit: refused while it streams, after the app saw its start.
    let streamed: (&Path, &[&str], u16) = (&large, &["transfer-encoding: chunked"], 413);
    for (cases, app_sees_them) in [(&kept_away[..], false), (&[streamed][..], true)] {
        for protocol in ["--http1.1", "--http2"] {
            for (body, headers, status) in cases {
                for run in 0..RUNS {
                    let (code, written) = curl_post(&gateway, &ca, protocol, body, headers);
                    let version = if protocol == "--http2" { "HTTP/2" } else { "HTTP/1.1" };
                    assert!(
                        code == 0 && written == format!("{status} {version}"),
                        "run {run}, {protocol}, {} bytes, {headers:?}: curl exit {code}: {written}",
                        std::fs::metadata(body).unwrap().len()
                    );
                }
            }
        }
        if !app_sees_them {
            assert_eq!(app.received().await, 0, "the app never saw a refused request");
        }
    }
}
