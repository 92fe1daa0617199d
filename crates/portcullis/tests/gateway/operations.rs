use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{client, TempDir};
use crate::protected;

#[tokio::test]
async fn access_log_has_one_line_per_request_without_query_values() {
    let (_app, gateway) = protected("");
    let response = client()
        .get(gateway.url("/api/products?token=s3cret&page=2"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let length = response.bytes().await.unwrap().len() as u64;
    gateway.process.stdout.wait_for(&id);
    let line = gateway
        .process
        .stdout
        .json("access")
        .into_iter()
        .find(|l| l["request_id"] == id.as_str())
        .unwrap();
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/products?token&page");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], length);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert!(line["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(!gateway.process.stdout.any_contains("s3cret"));
}

/// Waits until a request has reached the app (by its own count).
async fn in_flight_at(app: &crate::harness::ExpressApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.received().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never reached the app"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let (app, mut gateway) = protected("");
    let slow = tokio::spawn(client().get(gateway.url("/slow?ms=1500")).send());
    in_flight_at(&app).await;
    gateway.process.signal("TERM");
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done after 1500 ms");
    let status = gateway.process.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(std::net::TcpStream::connect(gateway.addr).is_err(), "stopped accepting");
}

#[tokio::test]
async fn drain_timeout_bounds_the_wait() {
    let (app, mut gateway) = protected("[server]\ndrain_timeout = \"300ms\"\n");
    let _slow = tokio::spawn(client().get(gateway.url("/slow?ms=10000")).send());
    in_flight_at(&app).await;
    let started = std::time::Instant::now();
    gateway.process.signal("TERM");
    assert!(gateway.process.wait_exit(Duration::from_secs(5)).success());
    assert!(started.elapsed() < Duration::from_secs(3));
    gateway.process.stdout.wait_for("stopped before every request finished");
}

fn portcullis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_accepts_a_valid_config_and_names_the_line_of_an_invalid_one() {
    let dir = TempDir::new();
    let good = dir.0.join("good.toml");
    std::fs::write(
        &good,
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[limits]\nmax_body_bytes = 10\n",
    )
    .unwrap();
    let output = portcullis(&["check", "--config", good.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n\n[headers]\nx_frame_options = \"ALLOWALL\"\n",
    )
    .unwrap();
    let output = portcullis(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(&format!("{}:5: key `headers.x_frame_options`", bad.display())),
        "{message}"
    );
    assert!(message.contains("SAMEORIGIN, DENY"), "{message}");
}

#[test]
fn a_bad_config_refuses_to_start() {
    let dir = TempDir::new();
    let bad = dir.0.join("portcullis.toml");
    std::fs::write(&bad, "[limits]\nmax_body_bites = 10\n").unwrap();
    let output = portcullis(&[
        "--config",
        bad.to_str().unwrap(),
        "--upstream",
        "http://127.0.0.1:3000",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains(":2: key `limits.max_body_bites`"), "{message}");
    assert!(message.contains("max_body_bytes"), "lists the allowed keys: {message}");

    let output = portcullis(&["--listen", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no upstream"));
}

#[test]
fn a_second_gateway_on_a_busy_port_refuses_to_start() {
    let (_app, gateway) = crate::protected("");
    let address = gateway.addr.to_string();
    let output = portcullis(&["--upstream", "http://127.0.0.1:9", "--listen", &address]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot listen on"),
        "{output:?}"
    );
}

/// The systemd unit in deploy/, as `systemd-analyze security` scores it
/// (offline: the unit file alone, no running systemd needed).
#[test]
fn the_systemd_unit_is_rated_ok_or_better_by_systemd_analyze() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/portcullis.service");
    let dir = TempDir::new();
    // systemd-analyze reads a unit by its file name, from the working directory.
    std::fs::copy(&unit, dir.0.join("portcullis.service")).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", "./portcullis.service"])
        .current_dir(&dir.0)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text = String::from_utf8_lossy(&output.stdout);
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}"));
    let score: f64 = overall
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        score <= 2.0,
        "exposure {score} (OK is up to 4.9; this unit scored 1.4): {overall}"
    );
    for hardening in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ] {
        assert!(
            std::fs::read_to_string(&unit).unwrap().contains(hardening),
            "{hardening}"
        );
    }
}

/// The image's files agree with each other: the container config is valid,
/// and the health check asks the metrics address that config listens on,
/// in exec form (the runtime image has no shell), as a non-root user.
/// Building the image needs a container runtime: docs/operations.md.
#[test]
fn the_container_config_is_valid_and_its_health_check_asks_its_metrics_listener() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("deploy/container/portcullis.toml");
    let checked = portcullis(&["check", "--config", config.to_str().unwrap()]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let text = std::fs::read_to_string(&config).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let metrics = table["metrics"]["listen"].as_str().unwrap();

    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let runtime = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(runtime.contains("USER nonroot"), "{runtime}");
    let check = format!("CMD [\"/usr/local/bin/portcullis\", \"healthcheck\", \"--address\", \"{metrics}\"]");
    assert!(runtime.contains(&check), "the health check asks {metrics}: {runtime}");
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/portcullis\"]"));
}

#[tokio::test]
async fn healthcheck_says_whether_the_metrics_listener_answers() {
    let app = crate::harness::ExpressApp::start();
    let port = crate::harness::free_port();
    let config = format!(
        "[upstream]\nurl = \"{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        app.url()
    );
    let gateway = crate::harness::Gateway::from_config(&config);
    gateway.process.stdout.wait_for("\"metrics\"");
    let address = format!("127.0.0.1:{port}");
    let healthy = portcullis(&["healthcheck", "--address", &address]);
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    assert_eq!(
        String::from_utf8_lossy(&healthy.stdout),
        "healthy: {\"status\":\"ok\",\"store\":\"memory\"}\n"
    );
    drop(gateway);
    let gone = portcullis(&["healthcheck", "--address", &address]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("unhealthy"));
}
