//! Automatic certificates from a real ACME server on loopback: Debian's
//! `pebble`, resolving every name to 127.0.0.1 through `pebble-challtestsrv`.

use std::path::PathBuf;
use std::process::Command;

use http_body_util::BodyExt;

use crate::harness::{free_port, ExpressApp, Gateway, Process, TempDir};
use crate::tls::{client_config, connect_to, get, give_to_nobody, http1, served_certificate};

const DOMAIN: &str = "shop.portcullis.test";

struct Pebble {
    _dns: Process,
    server: Process,
    directory: String,
    management: u16,
    /// The CA of pebble's own HTTPS listener.
    listener_ca: PathBuf,
    dir: TempDir,
}

impl Pebble {
    /// Pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`.
    fn start(http_port: u16, tls_port: u16) -> Self {
        let dir = TempDir::new();
        let tls = dir.0.join("pebble-tls");
        let written = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["cert", "self-signed", "--host", "127.0.0.1", "--out"])
            .arg(&tls)
            .output()
            .unwrap();
        assert!(written.status.success());
        let (listen, management, dns) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": tls.join("cert.pem"),
            "privateKey": tls.join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.0.join("pebble.json"), config.to_string()).unwrap();
        let dns_process = Process::spawn(Command::new("pebble-challtestsrv").args([
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{}", free_port()),
        ]));
        dns_process.stdout.wait_for("Starting management server");
        let server = Process::spawn(
            Command::new("pebble")
                .arg("-config")
                .arg(dir.0.join("pebble.json"))
                .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1"),
        );
        server.stdout.wait_for("ACME directory available");
        Self {
            _dns: dns_process,
            server,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            management,
            listener_ca: tls.join("ca.pem"),
            dir,
        }
    }

    /// The root pebble issues under (new every run), as PEM in a file.
    async fn issuing_root(&self) -> PathBuf {
        let addr = format!("127.0.0.1:{}", self.management).parse().unwrap();
        let stream = connect_to(addr, "127.0.0.1", client_config(&self.listener_ca, &[])).await;
        let request = http::Request::get("/roots/0")
            .header("host", "127.0.0.1")
            .body(http_body_util::Empty::new())
            .unwrap();
        let response = http1(stream).await.send_request(request).await.unwrap();
        let pem = response.into_body().collect().await.unwrap().to_bytes();
        let path = self.dir.0.join("issuing-root.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn config(&self, challenge: &str, storage: &std::path::Path, redirect_port: u16) -> String {
        format!(
            "[tls]\nredirect_listen = \"127.0.0.1:{redirect_port}\"\n[tls.acme]\ndomains = [\"{DOMAIN}\"]\nemail = \"ops@portcullis.test\"\ndirectory = \"{}\"\ndirectory_ca = \"{}\"\nstorage = \"{}\"\nchallenge = \"{challenge}\"\n",
            self.directory,
            self.listener_ca.display(),
            storage.display()
        )
    }
}

async fn issued_by_pebble(challenge: &str) -> Renewal {
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(http_port, tls_port);
    let app = ExpressApp::start();
    let storage = TempDir::new();
    give_to_nobody(&pebble.dir.0);
    let config = pebble.config(challenge, &storage.0.join("acme"), http_port);
    let listen = format!("127.0.0.1:{tls_port}");
    let gateway = Gateway::launch(&app.url(), &config, &listen, &[]);
    let issued = gateway.process.stdout.wait_for("\"certificate issued\"");
    assert!(issued.contains(DOMAIN), "{issued}");
    assert!(
        pebble.server.stdout.any_contains("Issued certificate"),
        "pebble issued it"
    );

    // The issued certificate is served, and verifies against pebble's root.
    let root = pebble.issuing_root().await;
    let stream = connect_to(gateway.addr, DOMAIN, client_config(&root, &[])).await;
    let served = served_certificate(&stream);
    let response = http1(stream).await.send_request(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);

    // It survives a restart: loaded from storage, no new order.
    drop(gateway);
    let restarted = Gateway::launch(&app.url(), &config, &listen, &[]);
    restarted.process.stdout.wait_for("\"certificate loaded from storage\"");
    let stream = connect_to(restarted.addr, DOMAIN, client_config(&root, &[])).await;
    assert_eq!(served_certificate(&stream), served);
    // The renewal decision is logged either way: an order, or the next check.
    restarted.process.stdout.wait_for("\"next certificate check\"");
    assert!(!restarted.process.stdout.any_contains("\"certificate issued\""));
    drop(restarted);
    Renewal {
        pebble,
        app,
        config,
        listen,
        root,
        served,
        _storage: storage,
    }
}

/// What a renewal test needs from a first issuance.
struct Renewal {
    pebble: Pebble,
    app: ExpressApp,
    config: String,
    listen: String,
    root: PathBuf,
    served: Vec<u8>,
    _storage: TempDir,
}

#[tokio::test]
async fn a_certificate_is_issued_over_tls_alpn_01_and_renewed_when_due() {
    let first = issued_by_pebble("tls-alpn-01").await;
    // Pebble issues for 5 years: a renewal window of 2,000 days makes the
    // stored certificate due at the next start.
    let config = format!("{}renew_before_days = 2000\n", first.config);
    let gateway = Gateway::launch(&first.app.url(), &config, &first.listen, &[]);
    gateway.process.stdout.wait_for("\"certificate loaded from storage\"");
    gateway.process.stdout.wait_for("\"certificate issued\"");
    let stream = connect_to(gateway.addr, DOMAIN, client_config(&first.root, &[])).await;
    assert_ne!(served_certificate(&stream), first.served, "a new certificate is served");
    // After an order the next check is half a day away: no loop of orders.
    gateway.process.stdout.wait_for("\"next certificate check\"");
    let orders = first.pebble.server.stdout.count("Issued certificate");
    assert_eq!(orders, 2, "one renewal, not a loop of them");
}

#[tokio::test]
async fn a_certificate_is_issued_over_http_01() {
    issued_by_pebble("http-01").await;
}

#[tokio::test]
async fn failures_are_events_with_the_next_attempt() {
    let app = ExpressApp::start();
    let storage = TempDir::new();
    give_to_nobody(&storage.0);
    let config = format!(
        "[tls]\nredirect_listen = \"off\"\n[tls.acme]\ndomains = [\"{DOMAIN}\"]\ndirectory = \"https://127.0.0.1:{}/dir\"\nstorage = \"{}\"\n",
        free_port(),
        storage.0.join("acme").display()
    );
    let gateway = Gateway::launch(&app.url(), &config, "127.0.0.1:0", &[]);
    let failed = gateway.process.stdout.wait_for("\"rule\":\"acme\"");
    assert!(
        failed.contains("\"action\":\"failed\"") && failed.contains("next attempt at"),
        "{failed}"
    );
    // No certificate yet: the gateway keeps running and says so for each handshake.
    let client = Command::new("openssl")
        .args(["s_client", "-connect", &gateway.addr.to_string(), "-servername", DOMAIN])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!client.status.success());
    let refused = gateway.process.stdout.wait_for("\"rule\":\"handshake\"");
    assert!(refused.contains("no server certificate"), "{refused}");
}
