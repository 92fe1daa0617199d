//! Whole-config hot reload: SIGHUP or `portcullis reload` puts a new config in
//! force for new requests, without losing one; a config that does not
//! validate is refused and the one in force stays.

use std::process::Command;
use std::time::Duration;

use crate::harness::{client, eventually, free_port, ExpressApp, Gateway, Process};

/// A deployment's config: everything in the file, the rate limit lifted for
/// the loopback load generator.
fn config(app: &ExpressApp, port: u16, more: &str) -> String {
    format!(
        "[upstream]\nurl = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\npid_file = \"pid\"\n\n\
         [rate_limit]\nallow = [\"127.0.0.0/8\"]\n\n{more}",
        app.url()
    )
}

fn rewrite(gateway: &Gateway, text: &str) {
    // Written aside and renamed in, as deployment tools do.
    let path = gateway.config_path();
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(aside, path).unwrap();
}

/// `portcullis reload --config FILE`, run where the relative pid file lives.
fn reload(gateway: &Gateway) -> std::process::Output {
    let path = gateway.config_path();
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["reload", "--config"])
        .arg(&path)
        .current_dir(path.parent().unwrap())
        .output()
        .unwrap()
}

async fn frame_options(url: &str) -> String {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["x-frame-options"].to_str().unwrap().to_owned()
}

/// Waits until new requests get `expected` (each worker swaps in the new
/// config when its event loop next runs).
async fn until_frame_options(url: &str, expected: &str) {
    let never = format!("X-Frame-Options never became {expected}");
    eventually(Duration::from_secs(5), &never, async || {
        frame_options(url).await == expected
    })
    .await;
}

#[tokio::test]
async fn a_reload_under_load_loses_no_request_and_a_broken_config_is_refused() {
    let app = ExpressApp::start();
    let port = free_port();
    let gateway = Gateway::from_config(&config(&app, port, ""));
    let url = gateway.url("/");
    assert_eq!(frame_options(&url).await, "SAMEORIGIN");
    let wrk = Process::spawn(Command::new("wrk").args(["-t1", "-c8", "-d4s", &url]));
    let never = "wrk's load never reached the app";
    eventually(Duration::from_secs(5), never, async || app.received().await >= 100).await;

    rewrite(&gateway, &config(&app, port, "[headers]\nx_frame_options = \"DENY\"\n"));
    let sent = reload(&gateway);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let notice = gateway.process.stdout.wait_for("\"config reloaded\"");
    assert!(notice.contains("changed: headers"), "{notice}");
    until_frame_options(&url, "DENY").await;

    // Refused by the command, which checks first, and by the gateway itself.
    let broken = config(&app, port, "[headers]\nx_frame_options = \"ALLOW\"\n");
    rewrite(&gateway, &broken);
    let refused = reload(&gateway);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    let line = 1 + broken.lines().position(|l| l.contains("ALLOW")).unwrap();
    let named = format!("portcullis.toml:{line}: key `headers.x_frame_options`");
    assert!(said.contains(&named), "{said}");
    gateway.process.signal("HUP");
    let event = gateway.process.stdout.wait_for("\"rule\":\"reload\"");
    assert!(
        event.contains("\"action\":\"refused\"") && event.contains(&named),
        "{event}"
    );
    assert_eq!(frame_options(&url).await, "DENY", "the config in force stays");

    let mut wrk = wrk;
    assert!(wrk.wait_exit(Duration::from_secs(20)).success());
    wrk.stdout.wait_for("Transfer/sec");
    let report = wrk.stdout.text();
    assert!(report.contains("requests in"), "{report}");
    // wrk names these only when there are some.
    assert!(
        !report.contains("Non-2xx") && !report.contains("Socket errors"),
        "{report}"
    );
}

#[tokio::test]
async fn a_new_listen_address_is_bound_and_limit_state_survives() {
    let app = ExpressApp::start();
    let (first, second) = (free_port(), free_port());
    let limited =
        "[[route]]\npath = \"/hit\"\n[route.rate_limit]\nrequests = 1\nwindow_secs = 3600\nburst = 2\nallow = []\n";
    let gateway = Gateway::from_config(&config(&app, first, limited));
    let hit = |port: u16| client().get(format!("http://127.0.0.1:{port}/hit")).send();
    for _ in 0..2 {
        assert_eq!(hit(first).await.unwrap().status(), 200);
    }
    assert_eq!(hit(first).await.unwrap().status(), 429);

    rewrite(
        &gateway,
        &config(
            &app,
            second,
            &format!("{limited}[headers]\nx_frame_options = \"DENY\"\n"),
        ),
    );
    gateway.process.signal("HUP");
    gateway.process.stdout.wait_for("\"config reloaded\"");
    until_frame_options(&format!("http://127.0.0.1:{second}/"), "DENY").await;
    assert_eq!(hit(second).await.unwrap().status(), 429, "the client's count is kept");
    assert_eq!(app.hits().await, 2);
    let never = "the old address is still served";
    eventually(Duration::from_secs(5), never, async || hit(first).await.is_err()).await;
}

#[tokio::test]
async fn a_reload_brings_new_waf_exclusions_and_access_rules() {
    let app = ExpressApp::start();
    let port = free_port();
    let gateway = Gateway::from_config(&config(&app, port, ""));
    let attack = gateway.url("/echo?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(client().get(&attack).send().await.unwrap().status(), 403);
    let line = gateway.process.stdout.wait_for("\"kind\":\"waf\"");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let exclusion = event["exclusion"].as_str().unwrap().to_owned();
    assert_eq!(client().get(gateway.url("/admin")).send().await.unwrap().status(), 200);

    let rule = "[[access]]\npath = \"/admin\"\nallow = [\"192.0.2.0/24\"]\n";
    rewrite(&gateway, &config(&app, port, &format!("{rule}{exclusion}")));
    gateway.process.signal("HUP");
    let notice = gateway.process.stdout.wait_for("\"config reloaded\"");
    assert!(notice.contains("access") && notice.contains("waf"), "{notice}");
    let refused = async || client().get(gateway.url("/admin")).send().await.unwrap().status() == 403;
    eventually(Duration::from_secs(5), "the access rule never applied", refused).await;
    let before = app.received().await;
    assert_eq!(
        client().get(&attack).send().await.unwrap().status(),
        200,
        "excluded now"
    );
    assert_eq!(app.received().await, before + 1, "and it reached the app");
}

/// One keep-alive connection asked again and again, through a reload: its
/// requests come too close together for it to rest, so the same hyper
/// connection, and the stack it holds, serve them all.
#[tokio::test]
async fn a_connection_kept_busy_through_a_reload_gets_the_new_config() {
    let app = ExpressApp::start();
    let port = free_port();
    let gateway = Gateway::from_config(&config(&app, port, ""));
    let (asked, first) = std::sync::mpsc::channel();
    let asking = std::thread::spawn(move || {
        let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut answers = Vec::new();
        while std::time::Instant::now() < deadline {
            let frame_options = frame_options_on(&mut connection);
            answers.push(frame_options.clone());
            if answers.len() == 1 {
                asked.send(()).unwrap();
            }
            if frame_options == "DENY" {
                break;
            }
        }
        answers
    });
    first.recv().unwrap();
    rewrite(&gateway, &config(&app, port, "[headers]\nx_frame_options = \"DENY\"\n"));
    gateway.process.signal("HUP");
    gateway.process.stdout.wait_for("\"config reloaded\"");
    let answers = asking.join().unwrap();
    assert_eq!(answers[0], "SAMEORIGIN");
    assert_eq!(
        answers.last().map(String::as_str),
        Some("DENY"),
        "{} answers",
        answers.len()
    );
}

/// `GET /` on `connection`, kept open: the answer's `X-Frame-Options`.
fn frame_options_on(connection: &mut std::net::TcpStream) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    connection
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(connection);
    let (mut frame_options, mut length) = (String::new(), 0);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "x-frame-options" => frame_options = value.trim().to_owned(),
            "content-length" => length = value.trim().parse().unwrap(),
            "transfer-encoding" => panic!("a chunked answer: {line}"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    // Nothing is pipelined: the reader holds no byte past this answer.
    assert!(reader.buffer().is_empty());
    frame_options
}
