//! `[metrics] listen`: Prometheus series on a listener of its own, with
//! labels from bounded sets only, and `/healthz`.

use std::time::{Duration, Instant};

use crate::harness::{client, free_port, raw_exchange, ExpressApp, Gateway};

fn config(app: &ExpressApp, metrics: u16, allow: &str) -> String {
    format!(
        "[upstream]\nurl = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n{allow}\n\
         [[route]]\nname = \"api\"\npath = \"/api\"\n",
        app.url()
    )
}

async fn scrape(port: u16) -> String {
    let response = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    response.text().await.unwrap()
}

/// The value of the series `name{labels}` (labels as written, in order).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn requests_events_and_connections_are_counted_with_bounded_labels() {
    let app = ExpressApp::start();
    let port = free_port();
    let gateway = Gateway::from_config(&config(&app, port, ""));
    for path in ["/", "/api/products", "/unknown-page-7f3a9c"] {
        client().get(gateway.url(path)).send().await.unwrap();
    }
    let blocked = client()
        .get(gateway.url("/echo?q=%27%20OR%201%3D1--"))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 403);
    let upload = client()
        .post(gateway.url("/api/echo"))
        .json(&serde_json::json!({"a": "b"}));
    upload.send().await.unwrap();

    // A response is counted when its body is done: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = scrape(port).await;
    while !text.contains("route=\"api\",method=\"POST\"") {
        assert!(Instant::now() < deadline, "the POST was never counted:\n{text}");
        text = scrape(port).await;
    }
    assert_eq!(
        value(
            &text,
            r#"portcullis_http_requests_total{route="api",method="GET",status_class="2xx"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_http_requests_total{route="default",method="GET",status_class="4xx"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_security_events_total{kind="waf",rule="sqli",action="blocked"}"#
        ),
        1.0
    );
    assert!(value(&text, r#"portcullis_http_request_body_bytes_total{route="api"}"#) >= 9.0);
    assert!(value(&text, r#"portcullis_upstream_duration_seconds_count{route="api"}"#) >= 2.0);
    assert!(value(&text, "portcullis_connections_total") >= 5.0);
    assert_eq!(value(&text, r#"portcullis_build_info{version="0.1.0"}"#), 1.0);
    // Paths, queries and addresses are never labels.
    for never in ["unknown-page", "products", "127.0.0.1", "OR"] {
        assert!(!text.contains(never), "{never} in\n{text}");
    }
    let health = client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.text().await.unwrap(),
        "{\"status\":\"ok\",\"store\":\"memory\"}\n"
    );
    // The gateway's own port does not serve them.
    let public = client().get(gateway.url("/metrics")).send().await.unwrap();
    assert!(!public.text().await.unwrap().contains("portcullis_"));
}

#[tokio::test]
async fn only_allowed_clients_reach_the_metrics_and_never_on_the_public_port() {
    let app = ExpressApp::start();
    let port = free_port();
    let _gateway = Gateway::from_config(&config(&app, port, "allow = [\"192.0.2.0/24\"]\n"));
    let answer = raw_exchange(
        format!("127.0.0.1:{port}").parse().unwrap(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(answer, "", "closed unanswered");

    let dir = crate::harness::TempDir::new();
    let same = dir.0.join("portcullis.toml");
    let text = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[server]\nlisten = \"0.0.0.0:8080\"\n[metrics]\nlisten = \"127.0.0.1:8080\"\n";
    std::fs::write(&same, text).unwrap();
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&same)
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(
        said.contains(":6: key `metrics.listen`") && said.contains("never served on the gateway's own port"),
        "{said}"
    );
}
