//! The live security dashboard in headless Chromium: events the test causes
//! appear on the page within a second, under a strict CSP.

use std::path::Path;
use std::process::Command;

use crate::harness::{free_port, ExpressApp, Gateway};

#[test]
fn events_appear_on_the_dashboard_within_a_second() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    crate::harness::npm_ci_once(&browser_dir);
    let app = ExpressApp::start();
    let port = free_port();
    let config = format!(
        "[upstream]\nurl = \"{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        app.url()
    );
    let gateway = Gateway::from_config(&config);
    let output_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&output_dir).unwrap();
    let screenshot = output_dir.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&browser_dir)
        .env("DASHBOARD", format!("http://127.0.0.1:{port}"))
        .env("GATEWAY", format!("http://{}", gateway.addr))
        .env("SCREENSHOT", &screenshot)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(results["failure"].is_null(), "{results}");
    assert_eq!(results["attackStatus"], 403);
    assert!(results["shownAfterMs"].as_u64().unwrap() <= 1000, "{results}");
    let csp = results["csp"].as_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(
        results["violations"],
        serde_json::json!([]),
        "nothing inline, nothing from elsewhere"
    );
    assert_eq!(results["errors"], serde_json::json!([]), "{results}");
    let rows = results["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r.as_str().unwrap().contains("sqliblocked127.0.0.1")),
        "{results}"
    );
    assert!(
        results["bars"].as_u64().unwrap() >= 1,
        "the chart shows the blocks: {results}"
    );
    let legend = results["legend"].to_string();
    assert!(legend.contains("waf:sqli") && legend.contains("waf:xss"), "{legend}");
    assert!(
        results["clients"].to_string().contains("127.0.0.12"),
        "127.0.0.1 with 2 blocks: {results}"
    );
    assert!(screenshot.exists());
    gateway.process.stdout.wait_for("\"rule\":\"xss\"");
}
