//! HTTPS: the gateway terminating TLS in front of the example app, checked
//! with a rustls client trusting a test CA, `openssl s_client`, and raw sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::harness::{address_in, ExpressApp, Gateway, Process, TempDir};

/// Certificates written by `portcullis cert self-signed`, readable by the
/// user the gateway drops to.
pub struct TestCertificates {
    pub dir: TempDir,
}

impl TestCertificates {
    pub fn new() -> Self {
        let dir = TempDir::new();
        let certificates = Self { dir };
        certificates.issue("certs");
        certificates
    }

    /// A fresh CA and leaf for localhost in `name/` (a new key every time).
    fn issue(&self, name: &str) -> PathBuf {
        let out = self.dir.0.join(name);
        let status = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "cert",
                "self-signed",
                "--host",
                "localhost",
                "--host",
                "127.0.0.1",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap()
            .status;
        assert!(status.success());
        give_to_nobody(&self.dir.0);
        out
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join("certs").join(file)
    }

    /// An RSA chain for `name` beside the ECDSA one (see [`rsa_chain`]):
    /// its CA file, and the `[[tls.certificates]]` entry that loads it.
    pub fn with_rsa(&self, name: &str, alt_names: &str) -> (PathBuf, String) {
        let rsa = self.dir.0.join("rsa");
        let ca = rsa_chain(&rsa, name, alt_names, 30);
        give_to_nobody(&self.dir.0);
        let entry = format!(
            "[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
            rsa.join("cert.pem").display(),
            rsa.join("key.pem").display()
        );
        (ca, entry)
    }

    pub fn config(&self, extra: &str) -> String {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\nredirect_listen = \"127.0.0.1:0\"\nhandshake_timeout = \"1s\"\nreload_interval = \"200ms\"\n{extra}",
            self.path("cert.pem").display(),
            self.path("key.pem").display()
        )
    }
}

/// An RSA CA and a leaf it signed for `name` (`alt_names` in openssl's
/// form), written by openssl into `dir` (`cert.pem` holds the leaf, then the
/// CA). Returns the CA file.
pub fn rsa_chain(dir: &Path, name: &str, alt_names: &str, leaf_days: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=test RSA CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    let subject = format!("/CN={name}");
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-subj",
        subject.as_str(),
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName={alt_names}\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n\
             authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
        ),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-days",
        &leaf_days.to_string(),
        "-out",
        "leaf.pem",
        "-extfile",
        "leaf.ext",
    ]);
    let chain =
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap() + &std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("cert.pem"), chain).unwrap();
    dir.join("ca.pem")
}

/// Run as root, the gateway drops to nobody and must still read its files.
pub fn give_to_nobody(dir: &Path) {
    if nix::unistd::Uid::effective().is_root() {
        let status = Command::new("chown").args(["-R", "nobody"]).arg(dir).status().unwrap();
        assert!(status.success());
    }
}

pub fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    connect_to(addr, "localhost", config).await
}

pub async fn connect_to(addr: SocketAddr, name: &str, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap()
}

pub fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header(header::HOST, "localhost")
        .body(Empty::new())
        .unwrap()
}

/// An HTTP/1.1 keep-alive connection over TLS.
pub async fn http1(stream: TlsStream<TcpStream>) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

pub fn https_gateway(certificates: &TestCertificates, extra: &str) -> (ExpressApp, Gateway, SocketAddr) {
    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), &certificates.config(extra));
    let redirect = address_in(&gateway.process.stdout.wait_for("\"redirecting\""));
    (app, gateway, redirect)
}

#[tokio::test]
async fn http1_and_http2_over_tls_with_hsts() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let ca = certificates.path("ca.pem");

    let stream = connect(gateway.addr, client_config(&ca, &[b"http/1.1"])).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let response = http1(stream).await.send_request(get("/echo")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let echoed: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");

    let stream = connect(gateway.addr, client_config(&ca, &[b"h2", b"http/1.1"])).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "h2 is preferred");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("https://localhost/api/products")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert!(response.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn plain_http_is_redirected_with_308() {
    let certificates = TestCertificates::new();
    let (_app, gateway, redirect) = https_gateway(&certificates, "");
    let response = crate::harness::client_without_redirects()
        .post(format!("http://{redirect}/login?next=%2Fme"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308, "308 keeps the method and body");
    assert_eq!(
        response.headers()["location"],
        format!("https://localhost:{}/login?next=%2Fme", gateway.addr.port()).as_str()
    );
    assert!(
        response.headers().get("strict-transport-security").is_none(),
        "HSTS only over HTTPS"
    );
    let line = gateway.process.stdout.wait_for("\"status\":308");
    let access: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(access["type"], "access", "{access}");
    assert_eq!(access["method"], "POST", "{access}");
    assert_eq!(access["path"], "/login?next", "query names only: {access}");
    assert_eq!(access["client_ip"], "127.0.0.1", "{access}");
    assert_eq!(
        access["request_id"].as_str(),
        response.headers()["x-request-id"].to_str().ok(),
        "{access}"
    );
}

/// `openssl s_client` with `args`; returns (success, output).
fn s_client(addr: SocketAddr, ca: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-servername")
        .arg("localhost")
        .arg("-CAfile")
        .arg(ca)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (
        output.status.success() && text.contains("Verify return code: 0 (ok)"),
        text,
    )
}

#[tokio::test]
async fn old_protocols_and_weak_ciphers_are_refused() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let ca = certificates.path("ca.pem");
    for args in [&["-tls1"][..], &["-tls1_1"]] {
        let (ok, output) = s_client(gateway.addr, &ca, args);
        assert!(!ok, "{args:?} was accepted:\n{output}");
        assert!(output.contains("SSL alert number"), "{args:?}:\n{output}");
    }
    // Nothing in common must be alert 40, handshake_failure, as nginx sends:
    // scanners (sslyze) take any other alert for a broken server.
    for args in [
        &["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA:DES-CBC3-SHA:RC4-SHA"][..],
        &["-tls1_2", "-cipher", "AES128-SHA"],
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"],
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
        &["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"],
    ] {
        let (ok, output) = s_client(gateway.addr, &ca, args);
        assert!(!ok, "{args:?} was accepted:\n{output}");
        assert!(output.contains("alert number 40"), "{args:?}:\n{output}");
    }
    let (ok, output) = s_client(gateway.addr, &ca, &["-tls1_3"]);
    assert!(ok && output.contains("TLSv1.3"), "{output}");
    let (ok, output) = s_client(gateway.addr, &ca, &["-tls1_2"]);
    assert!(ok && output.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "{output}");
    gateway
        .process
        .stdout
        .wait_for("\"kind\":\"tls\",\"rule\":\"handshake\"");
}

#[tokio::test]
async fn bad_bytes_and_stalled_handshakes_are_cut_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let ca = certificates.path("ca.pem");

    let mut plain = TcpStream::connect(gateway.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");

    let mut garbage = TcpStream::connect(gateway.addr).await.unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
        .await
        .unwrap();
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();

    // Meanwhile a real client is served.
    let response = http1(connect(gateway.addr, client_config(&ca, &[])).await)
        .await
        .send_request(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a handshake that never starts is cut at the timeout");
    let _ = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut rest))
        .await
        .unwrap();
    gateway.process.stdout.wait_for("\"rule\":\"plain_http\"");
    gateway.process.stdout.wait_for("\"rule\":\"handshake_timeout\"");
}

pub fn served_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn new_certificates_are_picked_up_without_dropping_connections() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let first_ca = certificates.path("ca.pem");
    let old = connect(gateway.addr, client_config(&first_ca, &[])).await;
    let old_certificate = served_certificate(&old);
    let mut kept = http1(old).await;
    assert_eq!(kept.send_request(get("/")).await.unwrap().status(), 200);

    // A new CA and leaf replace the files (written elsewhere, then renamed in).
    let next = certificates.issue("next");
    for file in ["cert.pem", "key.pem"] {
        std::fs::rename(next.join(file), certificates.path(file)).unwrap();
    }
    gateway.process.stdout.wait_for("\"certificates reloaded\"");
    let fresh = connect(gateway.addr, client_config(&next.join("ca.pem"), &[])).await;
    assert_ne!(
        served_certificate(&fresh),
        old_certificate,
        "new handshakes get the new certificate"
    );
    assert_eq!(
        kept.send_request(get("/")).await.unwrap().status(),
        200,
        "the open connection is still served"
    );

    // A broken file is refused and the certificate in service stays.
    std::fs::write(certificates.path("key.pem"), "not a key").unwrap();
    let refused = gateway.process.stdout.wait_for("is not a PEM private key");
    assert!(refused.contains("\"rule\":\"certificate_reload\""), "{refused}");
    let after = connect(gateway.addr, client_config(&next.join("ca.pem"), &[])).await;
    assert_eq!(served_certificate(&after), served_certificate(&fresh));
}

#[tokio::test]
async fn started_as_root_it_runs_as_nobody() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.process.pid())).unwrap();
    let ids = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    if nix::unistd::Uid::effective().is_root() {
        gateway.process.stdout.wait_for("\"dropped root\"");
        assert_eq!(ids("Uid:"), ["65534"; 4], "real, effective, saved and filesystem uid");
        assert_eq!(ids("Gid:"), ["65534"; 4]);
        assert!(ids("Groups:").is_empty(), "no supplementary groups");
    } else {
        let me = nix::unistd::Uid::effective().to_string();
        assert_eq!(ids("Uid:")[1], me, "not root: runs as who started it");
    }
}

#[test]
fn root_with_no_user_to_drop_to_refuses_unless_allowed() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root (as .ci/run has): only root has privileges to drop"
    );
    let config = "[server]\nuser = \"no-such-user\"\n";
    let dir = TempDir::new();
    std::fs::write(dir.0.join("p.toml"), config).unwrap();
    let mut refused = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(dir.0.join("p.toml")),
    );
    assert!(!refused.wait_exit(Duration::from_secs(10)).success());
    let reason = refused.stderr.wait_for("refusing to serve");
    assert!(
        reason.contains("no-such-user") && reason.contains("--allow-root"),
        "{reason}"
    );

    let allowed = Gateway::start_with_args("http://127.0.0.1:9", config, &["--allow-root"]);
    allowed.process.stdout.wait_for("running as root (--allow-root)");
}

#[tokio::test]
async fn certificates_are_chosen_by_sni_ecdsa_and_rsa() {
    let certificates = TestCertificates::new();
    let (_, extra) = certificates.with_rsa("other.test", "DNS:other.test,DNS:*.wild.test");
    let (_app, gateway, _) = https_gateway(&certificates, &extra);
    let peer = |name: &str| {
        let output = Command::new("openssl")
            .args(["s_client", "-connect", &gateway.addr.to_string(), "-servername", name])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let other = peer("other.test");
    assert!(other.contains("CN = other.test") && other.contains("rsa"), "{other}");
    let wildcard = peer("a.wild.test");
    assert!(wildcard.contains("CN = other.test"), "wildcard names match: {wildcard}");
    let local = peer("localhost");
    assert!(
        local.contains("CN = localhost") && local.contains("id-ecPublicKey"),
        "{local}"
    );
    let unknown = peer("unknown.test");
    assert!(
        unknown.contains("CN = localhost"),
        "the first certificate is the default: {unknown}"
    );
}

#[tokio::test]
async fn sessions_resume_with_tickets() {
    let certificates = TestCertificates::new();
    let (_app, gateway, _) = https_gateway(&certificates, "");
    // rustls clients keep the tickets they get in their config.
    let config = client_config(&certificates.path("ca.pem"), &[]);
    for expected in [rustls::HandshakeKind::Full, rustls::HandshakeKind::Resumed] {
        let stream = connect(gateway.addr, config.clone()).await;
        assert_eq!(stream.get_ref().1.handshake_kind(), Some(expected));
        // Reading a response also reads the tickets sent after the handshake.
        let response = http1(stream).await.send_request(get("/")).await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn sighup_reloads_at_once() {
    let certificates = TestCertificates::new();
    let app = ExpressApp::start();
    let config = certificates
        .config("")
        .replace("reload_interval = \"200ms\"", "reload_interval = \"1h\"");
    let gateway = Gateway::start(&app.url(), &config);
    let first_ca = certificates.path("ca.pem");
    let next = certificates.issue("next");
    for file in ["cert.pem", "key.pem"] {
        std::fs::rename(next.join(file), certificates.path(file)).unwrap();
    }
    // Still the first certificate: the files changed, the reload interval is an hour.
    let before = connect(gateway.addr, client_config(&first_ca, &[])).await;
    assert_eq!(http1(before).await.send_request(get("/")).await.unwrap().status(), 200);
    gateway.process.signal("HUP");
    gateway.process.stdout.wait_for("\"certificates reloaded\"");
    // Verifies only if the new certificate is served: it is signed by the new CA.
    let fresh = connect(gateway.addr, client_config(&next.join("ca.pem"), &[])).await;
    let response = http1(fresh).await.send_request(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Mutated ClientHellos and random bytes on the TLS port: each connection is
/// refused or cut, the gateway never dies, and real clients are served.
#[tokio::test]
async fn mutated_handshakes_never_break_the_gateway() {
    use std::io::{Read, Write};
    let certificates = TestCertificates::new();
    let (_app, mut gateway, _) = https_gateway(&certificates, "");
    let config = client_config(&certificates.path("ca.pem"), &[b"h2", b"http/1.1"]);
    let mut hello = Vec::new();
    let mut connection =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
    connection.write_tls(&mut hello).unwrap();
    // A small deterministic generator, so a failure can be replayed.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..150 {
        let mut bytes = hello.clone();
        for _ in 0..(1 + next() % 6) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.insert(at, next() as u8),
                _ => bytes.truncate(at.max(1)),
            }
        }
        let mut stream = std::net::TcpStream::connect(gateway.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        // Closed by the gateway (at the latest at the 1 s handshake timeout).
        let closed = stream.read_to_end(&mut answer);
        assert!(closed.is_ok(), "round {round}: {bytes:?} left open: {closed:?}");
    }
    assert!(gateway.process.child.try_wait().unwrap().is_none(), "the gateway died");
    let http1_only = client_config(&certificates.path("ca.pem"), &[]);
    let response = http1(connect(gateway.addr, http1_only).await)
        .await
        .send_request(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
