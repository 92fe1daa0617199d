//! The cookie and CSRF policies as a browser meets them: headless Chromium
//! driven by tests/browser/scenarios.mjs (playwright-core).

use std::path::Path;
use std::process::Command;

use crate::harness::{ExpressApp, Gateway};
use crate::tls::TestCertificates;

const TOKEN_MODE: &str = "[csrf.token]\nenabled = true\nkeys = [\"a signing key of at least thirty-two bytes\"]\n";

fn scenarios_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn cookies_and_csrf_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "headless tests need Debian's chromium (apt-get install -y chromium)"
    );
    crate::harness::npm_ci_once(&scenarios_dir());
    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), "");
    let token_gateway = Gateway::start(&app.url(), TOKEN_MODE);
    let certificates = TestCertificates::new();
    let https_gateway = Gateway::start(&app.url(), &certificates.config(""));
    let output = Command::new("node")
        .arg("scenarios.mjs")
        .current_dir(scenarios_dir())
        .env("GATEWAY", format!("http://{}", gateway.addr))
        .env("TOKEN_GATEWAY", format!("http://{}", token_gateway.addr))
        .env(
            "HTTPS_GATEWAY",
            format!("https://localhost:{}", https_gateway.addr.port()),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scenarios failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(results["login"], 200, "{results}");
    assert_eq!(
        results["documentCookie"], "",
        "scripts cannot read the session cookie: {results}"
    );
    let cookies = results["cookies"].as_array().unwrap();
    assert!(cookies.iter().any(|c| c["name"] == "id-1"), "{results}");
    for cookie in cookies {
        assert_ne!(cookie["name"], "connect.sid");
        assert_eq!(cookie["httpOnly"], true, "{cookie}");
        assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    }
    assert_eq!(results["me"]["user"], "ada", "the session works: {results}");

    assert_eq!(results["sameOriginForm"]["status"], 200, "{results}");
    assert!(results["sameOriginForm"]["text"]
        .as_str()
        .unwrap()
        .contains("Thanks, Ada."));
    assert_eq!(results["crossOriginForm"]["status"], 403, "{results}");
    assert!(!results["crossOriginForm"]["text"].as_str().unwrap().contains("mallory"));
    gateway.process.stdout.wait_for("\"rule\":\"sec_fetch_site\"");

    let refused = results["httpsCrossOriginForms"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{results}");
    for (form, status) in refused.iter().zip([403, 413]) {
        assert_eq!(form["protocol"], "h2", "{form}");
        assert_eq!(form["status"], status, "{form}");
        let text = form["text"].as_str().unwrap();
        assert!(
            text.contains(&status.to_string()) && !text.contains("mallory"),
            "{form}"
        );
    }

    let token_mode = &results["tokenMode"];
    assert_eq!(
        token_mode["token"], true,
        "the front-end read the token cookie: {results}"
    );
    assert_eq!(token_mode["withToken"], 200, "{results}");
    assert_eq!(token_mode["without"], 403, "{results}");
}
