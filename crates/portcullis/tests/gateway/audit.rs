//! `portcullis audit URL` against the real example app: directly, through
//! portcullis, and through portcullis with one protection switched off.

use std::collections::BTreeSet;

use crate::harness::{free_port, ExpressApp, Process, TempDir};
use crate::protected;
use crate::tls::{https_gateway, rsa_chain, TestCertificates};

/// `portcullis audit TARGET --format FORMAT`, quick on loopback, with the
/// fixture advisories as its database.
fn run_audit(target: &str, format: &str, extra: &[&str]) -> std::process::Output {
    let advisories = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-audit/fixtures/advisories");
    std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env("PORTCULLIS_ADVISORIES", advisories)
        .args(["audit", target, "--format", format, "--timeout", "5", "--rate", "100"])
        .args(extra)
        .output()
        .unwrap()
}

/// Runs the audit with `--format json`: its exit code and the rules found.
fn audit(target: &str) -> (Option<i32>, BTreeSet<String>, serde_json::Value) {
    audit_with(target, &[])
}

fn audit_with(target: &str, extra: &[&str]) -> (Option<i32>, BTreeSet<String>, serde_json::Value) {
    let output = run_audit(target, "json", extra);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let rules = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect();
    (output.status.code(), rules, report)
}

fn finding<'a>(report: &'a serde_json::Value, rule: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {report:#}"))
}

#[test]
fn the_bare_app_fails_fingerprinting_leaks_its_stack_and_takes_cross_site_posts() {
    let app = ExpressApp::start();
    let (code, rules, report) = audit(&app.url());
    for expected in [
        "fingerprint.x-powered-by",
        "fingerprint.default-404",
        "fingerprint.default-error-page",
        "leaks.stack-trace",
        "csrf.cross-site-post-accepted",
        "libraries.vulnerable",
    ] {
        assert!(rules.contains(expected), "{expected} missing from {report:#}");
    }
    let jquery = finding(&report, "libraries.vulnerable");
    assert!(
        jquery["title"].as_str().unwrap().starts_with("jQuery 1.12.4"),
        "{jquery:#}"
    );
    assert!(
        jquery["evidence"]["excerpt"]
            .as_str()
            .unwrap()
            .contains("CVE-2020-11022"),
        "{jquery:#}"
    );
    assert_eq!(jquery["item"], "C16");
    // No CSP, no X-Frame-Options, no HTTPS: what the Observatory gives it.
    assert_eq!(report["grade"]["grade"], "F", "{report:#}");
    assert!(rules.contains("observatory.csp-not-implemented"), "{report:#}");
    // The home page and the five pages it links to.
    let scope = report["scope"].as_str().unwrap();
    assert!(scope.ends_with(", 6 pages crawled"), "{scope}");
    // The stack trace is high: the default --fail-on.
    assert_eq!(code, Some(1), "{report:#}");
    let leak = finding(&report, "leaks.stack-trace");
    // A frame with its file and line: the crawl's `/boom` or the JSON probe's.
    let excerpt = leak["evidence"]["excerpt"].as_str().unwrap();
    assert!(
        excerpt.contains("examples/express-app/") && excerpt.contains(".js:"),
        "{excerpt}"
    );
    assert_eq!(leak["item"], "C4");
}

/// The example app's admin page, kept to a private network.
const ADMIN_RULE: &str = "[[access]]\npath = \"/admin\"\nallow = [\"10.0.0.0/8\"]\n";

#[test]
fn through_portcullis_over_https_the_grade_is_a_plus_and_findings_return_with_their_protection_off() {
    // (config, the findings the audit must report, its exit code, the grade);
    // every config but the second keeps the app's admin page to 10.0.0.0/8.
    let cases: [(&str, &[&str], i32, &str); 7] = [
        ("", &[], 0, "A+"),
        ("", &["exposed.path"], 0, "A+"),
        (
            "[fingerprint]\nremove_headers = []\n",
            &["fingerprint.x-powered-by"],
            0,
            "A+",
        ),
        ("[csrf]\nenabled = false\n", &["csrf.cross-site-post-accepted"], 1, "A+"),
        (
            "[errors]\nreplace_leaking_errors = false\nreplace_default_404 = false\n",
            &[
                "fingerprint.default-404",
                "fingerprint.default-error-page",
                "leaks.stack-trace",
            ],
            1,
            "A+",
        ),
        (
            "[headers.content_security_policy]\nmode = \"remove\"\n",
            &["observatory.csp-not-implemented"],
            0,
            "B",
        ),
        (
            "[headers]\nstrict_transport_security = false\n",
            &["observatory.hsts-not-implemented"],
            0,
            "B+",
        ),
    ];
    let certificates = TestCertificates::new();
    for (i, (config, expected, exit, grade)) in cases.into_iter().enumerate() {
        let config = if i == 1 {
            config.to_owned()
        } else {
            format!("{ADMIN_RULE}{config}")
        };
        let (_app, gateway, redirect) = https_gateway(&certificates, &config);
        let (code, rules, report) = audit_with(
            &format!("https://127.0.0.1:{}/", gateway.addr.port()),
            &[
                "--cacert",
                certificates.path("ca.pem").to_str().unwrap(),
                "--http-port",
                &redirect.port().to_string(),
            ],
        );
        assert_eq!(report["grade"]["grade"], grade, "with {config:?}: {report:#}");
        // The page's old jQuery is the app's to upgrade: reported through
        // the gateway too.
        assert!(rules.contains("libraries.vulnerable"), "with {config:?}: {report:#}");
        let rules: BTreeSet<String> = rules.into_iter().filter(|r| r != "libraries.vulnerable").collect();
        let expected: BTreeSet<String> = expected.iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, expected, "with {config:?}: {report:#}");
        assert_eq!(code, Some(exit), "with {config:?}: {report:#}");
    }
}

#[test]
fn active_probes_find_no_limits_on_the_bare_app_and_portcullis_limits() {
    let active = ["--active", "--burst", "150", "--slow-secs", "12"];
    let app = ExpressApp::start();
    let (_, rules, report) = audit_with(&app.url(), &active);
    for expected in [
        "limits.no-rate-limit",
        "limits.slow-head-not-cut",
        "limits.large-body-not-refused",
    ] {
        assert!(rules.contains(expected), "{expected} missing from {report:#}");
    }
    // The same probes over TLS, through portcullis.
    let certificates = TestCertificates::new();
    let (_app, gateway, redirect) = https_gateway(&certificates, ADMIN_RULE);
    let (code, rules, report) = audit_with(
        &format!("https://127.0.0.1:{}/", gateway.addr.port()),
        &[
            &active[..],
            &[
                "--cacert",
                certificates.path("ca.pem").to_str().unwrap(),
                "--http-port",
                &redirect.port().to_string(),
            ],
        ]
        .concat(),
    );
    // Only the page's old jQuery, which no gateway can upgrade.
    assert_eq!(rules, BTreeSet::from(["libraries.vulnerable".to_owned()]), "{report:#}");
    assert_eq!(code, Some(0));
    let cut = gateway.process.stdout.wait_for("\"rule\":\"header_read_timeout\"");
    assert!(cut.contains("\"action\":\"closed\""), "{cut}");
}

#[test]
fn failed_logins_are_never_blocked_by_the_bare_app_and_are_by_portcullis() {
    // The other active probes kept short: only the login's finding counts here.
    let active = ["--active", "--burst", "1", "--slow-secs", "1", "--login", "/login"];
    let app = ExpressApp::start();
    let (_, rules, report) = audit_with(&app.url(), &active);
    assert!(rules.contains("brute-force.no-block"), "{report:#}");
    let (_app, gateway) = protected("[[login]]\npath = \"/login\"\n");
    let (_, rules, report) = audit_with(&gateway.url("/"), &active);
    assert!(!rules.contains("brute-force.no-block"), "{report:#}");
}

#[test]
fn an_unreachable_site_or_a_bad_target_exits_2_and_says_why() {
    for (target, says) in [
        ("http://127.0.0.1:1/", "did not answer"),
        ("ftp://127.0.0.1/", "not an http or https URL"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["audit", target, "--timeout", "2"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{target}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{target}: {stderr}");
    }
}

#[test]
fn the_html_report_shows_every_finding_in_chromium_and_runs_nothing() {
    let app = ExpressApp::start();
    let (_, _, report) = audit(&app.url());
    let output = run_audit(&app.url(), "html", &[]);
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-report");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("report.html");
    std::fs::write(&page, &output.stdout).unwrap();
    let browser = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    crate::harness::npm_ci_once(&browser);
    let shown = std::process::Command::new("node")
        .arg("report.mjs")
        .arg(&page)
        .arg(out_dir.join("report.png"))
        .current_dir(&browser)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let text = shown["text"].as_str().unwrap();
    for finding in report["findings"].as_array().unwrap() {
        let title = finding["title"].as_str().unwrap();
        assert!(text.contains(title), "{title:?} not shown in:\n{text}");
    }
    assert!(text.contains("findings:"), "{text}");
    assert_eq!(shown["dialogs"], 0);
    assert!(out_dir.join("report.png").exists());
}

#[test]
fn the_sarif_report_validates_against_the_sarif_2_1_0_schema() {
    let schema_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sarif");
    crate::harness::npm_ci_once(&schema_dir);
    let schema =
        std::fs::read(schema_dir.join("node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"))
            .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&schema).unwrap();
    // The published schema has a pattern (`language`'s, with a stray `]`)
    // that only an ECMAScript regex engine takes; `language` is a property
    // the report never writes, so the pattern is set aside.
    let mut schema = schema;
    for definition in schema["definitions"].as_object_mut().unwrap().values_mut() {
        if let Some(language) = definition.pointer_mut("/properties/language") {
            language.as_object_mut().unwrap().remove("pattern");
        }
    }
    let validator = jsonschema::validator_for(&schema).unwrap();
    let app = ExpressApp::start();
    let output = run_audit(&app.url(), "sarif", &[]);
    let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "leaks.stack-trace"), "{sarif:#}");
    // And the schema can fail: a level SARIF does not have.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "severe".into();
    assert!(!validator.is_valid(&broken));
}

/// nginx as it is often left: TLS 1.0 and 1.1 on, RSA key exchange and CBC
/// suites allowed, a certificate about to expire. (portcullis's own TLS is
/// audited in the test above: no finding at all.)
#[test]
fn old_protocols_weak_suites_and_a_short_lived_certificate_are_reported_on_nginx() {
    let dir = TempDir::new();
    let ca = rsa_chain(&dir.0.join("rsa"), "localhost", "DNS:localhost,IP:127.0.0.1", 10);
    let port = free_port();
    let config = dir.0.join("nginx.conf");
    std::fs::create_dir_all(dir.0.join("logs")).unwrap();
    std::fs::write(
        &config,
        format!(
            "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log;\n\
             events {{ worker_connections 64; }}\nhttp {{ access_log off; server {{\n\
             listen 127.0.0.1:{port} ssl;\nssl_certificate {dir}/rsa/cert.pem;\nssl_certificate_key {dir}/rsa/key.pem;\n\
             ssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n\
             ssl_ciphers \"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0\";\n\
             location / {{ return 200 \"ok\"; }}\n}} }}\n",
            dir = dir.0.display()
        ),
    )
    .unwrap();
    let _nginx = Process::spawn(
        std::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&config),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.0.join("logs/error.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // With the socket probes, over TLS: nginx reads a slow head for 60 s,
    // and refuses a declared body over 1 MiB.
    let (_, rules, report) = audit_with(
        &format!("https://127.0.0.1:{port}/"),
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "--max-pages",
            "1",
            "--active",
            "--burst",
            "5",
            "--slow-secs",
            "3",
        ],
    );
    assert!(rules.contains("limits.slow-head-not-cut"), "{report:#}");
    assert!(!rules.contains("limits.large-body-not-refused"), "{report:#}");
    let tls: BTreeSet<&str> = rules
        .iter()
        .map(String::as_str)
        .filter(|r| r.starts_with("tls."))
        .collect();
    assert_eq!(
        tls,
        BTreeSet::from([
            "tls.protocol-tls1-0",
            "tls.protocol-tls1-1",
            "tls.suite-no-forward-secrecy",
            "tls.suite-cbc",
            "tls.certificate-expires-soon",
        ]),
        "{report:#}"
    );
}

/// A site that answers every request the same way, from a thread, until
/// the test ends.
fn hostile_site(answer: &'static [u8], endless: bool) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if stream.write_all(answer).is_err() {
                    return;
                }
                let chunk = format!("1000\r\n{}\r\n", "a".repeat(4096));
                while endless && stream.write_all(chunk.as_bytes()).is_ok() {}
            });
        }
    });
    port
}

#[test]
fn hostile_answers_end_in_a_report_or_a_clear_error() {
    let redirect_loop = hostile_site(b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n", false);
    let endless = hostile_site(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    );
    let garbage = hostile_site(b"HELLO THERE\r\n\r\n", false);
    let run = |port: u16| {
        let mut audit = Process::spawn(std::process::Command::new(env!("CARGO_BIN_EXE_portcullis")).args([
            "audit",
            &format!("http://127.0.0.1:{port}/"),
            "--format",
            "json",
            "--timeout",
            "3",
            "--rate",
            "100",
            "--http-port",
            &port.to_string(),
            "--https-port",
            "1",
        ]));
        // Bounded by the per-request timeout and the request budget.
        let status = audit.wait_exit(std::time::Duration::from_secs(120));
        (status.code(), audit.stdout.clone(), audit.stderr.clone())
    };
    // Ten redirects followed, then graded as the Observatory grades a 302.
    let (code, stdout, _) = run(redirect_loop);
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    stdout.wait_for("\"grade\"");
    // Bodies are read to --max-body-bytes, never to their end.
    let (code, stdout, _) = run(endless);
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    stdout.wait_for("\"findings\"");
    // Not HTTP at all: exit 2, saying what failed.
    let (code, _, stderr) = run(garbage);
    assert_eq!(code, Some(2));
    stderr.wait_for("did not answer");
}
