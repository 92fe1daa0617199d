//! The live security dashboard: in headless Chromium on the metrics
//! listener, events the test causes appear within a second under a strict
//! CSP; on the gateway, behind the portal login and its groups.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::access::{login_form, post_login, set_cookie, user_add, PASSWORD};
use crate::harness::{client, client_without_redirects, free_port, get_with_cookie, ExpressApp, Gateway, TempDir};

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

/// Logs `user` in through the portal form; returns the session cookie.
async fn log_in(gateway: &Gateway, user: &str) -> String {
    let form = login_form(gateway).await;
    let fields = [
        ("username", user),
        ("password", PASSWORD),
        ("rd", "/.portcullis/dashboard"),
    ];
    let response = post_login(gateway, &form, &fields).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/.portcullis/dashboard",
        "back to the dashboard"
    );
    set_cookie(&response)
}

#[tokio::test]
async fn on_the_gateway_the_dashboard_needs_a_login_in_its_groups() {
    let dir = TempDir::new();
    let users = dir.0.join("users.toml");
    for (user, groups) in [("ada", "ops"), ("bob", "staff")] {
        let added = user_add(&users, &[user, "--groups", groups], PASSWORD);
        assert!(added.status.success(), "{added:?}");
    }
    crate::tls::give_to_nobody(&dir.0);
    let app = ExpressApp::start();
    let config = format!(
        "[portal]\nusers = \"{}\"\nsecond_factor = \"optional\"\ndashboard_groups = [\"ops\"]\n",
        users.display()
    );
    let gateway = Gateway::start(&app.url(), &config);
    let page = gateway.url("/.portcullis/dashboard");

    let anonymous = client_without_redirects().get(&page).send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/.portcullis/login?rd=%2F.portcullis%2Fdashboard"
    );

    let bob = log_in(&gateway, "bob").await;
    let refused = get_with_cookie(&page, &bob).await;
    assert_eq!(refused.status(), 403);
    gateway.process.stdout.wait_for("\"rule\":\"dashboard_group\"");

    let ada = log_in(&gateway, "ada").await;
    let shown = get_with_cookie(&page, &ada).await;
    assert_eq!(shown.status(), 200);
    let csp = shown.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'"), "the page's own policy: {csp}");
    assert!(shown.text().await.unwrap().contains("src=\"dashboard/app.js\""));
    let mut feed = get_with_cookie(&gateway.url("/.portcullis/dashboard/events"), &ada).await;
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let blocked = client()
        .get(gateway.url("/echo?q=%27%20OR%201%3D1--"))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 403);
    let chunk = tokio::time::timeout(Duration::from_secs(5), feed.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.starts_with("data: {") && text.contains("\"rule\":\"sqli\""),
        "{text}"
    );
    let state = get_with_cookie(&gateway.url("/.portcullis/dashboard/state"), &ada).await;
    let state: serde_json::Value = state.json().await.unwrap();
    assert_eq!(state["store"], "memory");
    assert_eq!(state["top_clients"][0]["ip"], "127.0.0.1");
}
