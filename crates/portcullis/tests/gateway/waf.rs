//! The WAF in front of the example app: attacks of every detector, in every
//! place a request carries input, never reach it (by the app's own count);
//! realistic traffic does; detect mode and exclusions do what they say.

use reqwest::multipart::{Form, Part};
use reqwest::RequestBuilder;

use crate::harness::{client, ExpressApp, Gateway};
use crate::protected;

/// The rate limit lifted for the test client, so only the WAF decides.
const OPEN: &str = "[rate_limit]\nallow = [\"127.0.0.0/8\"]\n";

/// Every way a value can arrive: the request that carries `value` there.
fn placements(gateway: &Gateway, value: &str) -> Vec<(&'static str, RequestBuilder)> {
    let http = client();
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    // Cookies and headers as browsers' encodeURIComponent writes them.
    let component = encoded.replace('+', "%20");
    vec![
        ("query", http.get(gateway.url(&format!("/echo?q={encoded}")))),
        ("query name", http.get(gateway.url(&format!("/echo?{encoded}=1")))),
        (
            "form",
            http.post(gateway.url("/form"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("name={encoded}")),
        ),
        (
            "json",
            http.post(gateway.url("/echo"))
                .json(&serde_json::json!({ "user": { "address": { "street": value } } })),
        ),
        (
            "multipart field",
            http.post(gateway.url("/upload"))
                .multipart(Form::new().text("comment", value.to_owned())),
        ),
        (
            "cookie",
            http.get(gateway.url("/echo"))
                .header("cookie", format!("pref={component}")),
        ),
        ("header", http.get(gateway.url("/echo")).header("x-note", component)),
        (
            "referer",
            http.get(gateway.url("/echo"))
                .header("referer", format!("https://shop.example/?q={encoded}")),
        ),
    ]
}

/// One attack per detector.
const ATTACKS: &[(&str, &str)] = &[
    ("sqli", "1' OR '1'='1' -- "),
    ("xss", "<img src=x onerror=alert(document.cookie)>"),
    ("command_injection", "127.0.0.1; cat /etc/passwd"),
    ("path_traversal", "../../../../etc/passwd"),
    (
        "template_injection",
        "{{constructor.constructor('return process')().mainModule}}",
    ),
    (
        "ssrf",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    ),
];

#[tokio::test]
async fn attacks_in_every_location_never_reach_the_app() {
    let (app, gateway) = protected(OPEN);
    let before = app.received().await;
    let mut passed = Vec::new();
    for (detector, attack) in ATTACKS {
        for (place, request) in placements(&gateway, attack) {
            let response = request.send().await.unwrap();
            if response.status() != 403 {
                passed.push(format!("{detector} in {place}: {}", response.status()));
                continue;
            }
            let page = response.text().await.unwrap();
            assert!(page.contains("403 Forbidden"), "{page}");
        }
        gateway
            .process
            .stdout
            .wait_for(&format!("\"kind\":\"waf\",\"rule\":\"{detector}\""));
    }
    // The keys only attacks send: prototype pollution and MongoDB operators.
    let http = client();
    for (detector, request) in [
        (
            "prototype_pollution",
            http.get(gateway.url("/echo?a[__proto__][admin]=1")),
        ),
        (
            "prototype_pollution",
            http.post(gateway.url("/echo"))
                .header("content-type", "application/json")
                .body(r#"{"settings":{"constructor":{"prototype":{"admin":true}}}}"#),
        ),
        ("nosql_injection", http.get(gateway.url("/login?user[$ne]=x"))),
        (
            "nosql_injection",
            http.post(gateway.url("/login"))
                .json(&serde_json::json!({"username": "ada", "password": {"$gt": ""}})),
        ),
        (
            "path_traversal",
            http.post(gateway.url("/upload"))
                .multipart(Form::new().part("file", Part::bytes(b"x".to_vec()).file_name("../../../etc/cron.d/x"))),
        ),
        (
            "path_traversal",
            http.get(gateway.url("/static/..%252f..%252f..%252fetc%252fpasswd")),
        ),
        (
            "sqli",
            http.get(gateway.url("/api/products/1%20UNION%20SELECT%20password%20FROM%20users--")),
        ),
    ] {
        let status = request.send().await.unwrap().status();
        if status != 403 {
            passed.push(format!("{detector}: {status}"));
        }
    }
    assert!(passed.is_empty(), "reached the app:\n{}", passed.join("\n"));
    assert_eq!(app.received().await, before, "the app saw a blocked request");
}

/// Values real users send: names, passwords, searches that mention SQL and
/// shell words, editor HTML, JSON, tokens, filters, text in other scripts.
const BENIGN: &[&str] = &[
    "O'Brien",
    "Renée d'Arc-Léger",
    "Tr0ub4dor&3'-=/",
    "correct horse battery staple",
    "P@ssw0rd!#$%^&*()_+{}|:\"<>?",
    "union station",
    "select comfort mattress",
    "how to drop a table in postgres",
    "rock & roll | AT&T",
    "ping pong table; cat toys",
    "1=1 math proof",
    "5' 10\" tall, 160 lbs",
    "<p>Hello <strong>world</strong>, see <a href=\"https://example.com/x?a=1&b=2\">this</a></p>",
    "<img src=\"/uploads/cat.png\" alt=\"cat\">",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "price[gte]=10&price[lte]=100",
    "東京都渋谷区 1-2-3",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "C:\\Users\\ada\\Documents\\report.docx",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
    "Use `npm install --save express` then run it",
    "if (a < b && c > d) { return a; }",
    "I'm 100% sure; it's {{good}}",
    "../images/logo.png",
    "SELECT * is slow, avoid it",
];

#[tokio::test]
async fn realistic_traffic_reaches_the_app() {
    let (app, gateway) = protected(OPEN);
    let before = app.received().await;
    let mut sent = 0;
    let mut blocked = Vec::new();
    for value in BENIGN {
        for (place, request) in placements(&gateway, value) {
            sent += 1;
            let status = request.send().await.unwrap().status();
            if status == 403 {
                blocked.push(format!("{value:?} in {place}"));
            }
        }
    }
    assert!(blocked.is_empty(), "blocked:\n{}", blocked.join("\n"));
    assert_eq!(app.received().await, before + sent);
}

#[tokio::test]
async fn detect_mode_forwards_and_logs() {
    let (app, gateway) = protected(&format!("{OPEN}[waf]\nmode = \"detect\"\n"));
    let before = app.received().await;
    let response = client()
        .get(gateway.url("/echo?q=%27%20OR%201%3D1--"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = gateway.process.stdout.wait_for("\"kind\":\"waf\"");
    assert!(
        line.contains("\"action\":\"detected\"") && line.contains("query.q"),
        "{line}"
    );
    assert_eq!(app.received().await, before + 1);
}

#[tokio::test]
async fn the_exclusion_an_event_names_lets_exactly_that_request_through() {
    let attack = "/echo?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let (_app, gateway) = protected(OPEN);
    assert_eq!(client().get(gateway.url(attack)).send().await.unwrap().status(), 403);
    let line = gateway.process.stdout.wait_for("\"kind\":\"waf\"");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let exclusion = event["exclusion"].as_str().unwrap().to_owned();
    assert!(exclusion.contains("location = \"query.q\""), "{exclusion}");

    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), &format!("{OPEN}{exclusion}"));
    let before = app.received().await;
    assert_eq!(client().get(gateway.url(attack)).send().await.unwrap().status(), 200);
    assert_eq!(app.received().await, before + 1);
    // The same payload anywhere else is still an attack.
    for other in [
        "/echo?other=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/form?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/echo?q=%27%20OR%201%3D1--",
    ] {
        assert_eq!(
            client().get(gateway.url(other)).send().await.unwrap().status(),
            403,
            "{other}"
        );
    }
    assert_eq!(app.received().await, before + 1);
}

#[tokio::test]
async fn routes_choose_their_own_mode() {
    let config = format!("{OPEN}[[route]]\npath = \"/api\"\n[route.waf]\nmode = \"off\"\n");
    let (_app, gateway) = protected(&config);
    let attack = "?q=%27%20OR%201%3D1--";
    let status = |path: String| async move { client().get(path).send().await.unwrap().status().as_u16() };
    assert_eq!(status(gateway.url(&format!("/api/products{attack}"))).await, 200);
    assert_eq!(status(gateway.url(&format!("/echo{attack}"))).await, 403);
}

#[test]
fn waf_explain_shows_findings_decodings_and_the_exclusion() {
    let explain = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["waf", "explain"])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, text) = explain(&["--path", "/search", "--query", "q=%2527%20OR%201%3D1--"]);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "sqli at query.q (score 5)",
        "percent-decoded 2 times",
        "single-quoted SQL string",
        "blocked (403)",
        "[[waf.exclude]]\npath = \"/search\"\nlocation = \"query.q\"\ndetectors = [\"sqli\"]",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    let (code, text) = explain(&["--json", r#"{"name":"O'Brien","note":"rock & roll"}"#]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no findings: forwarded"), "{text}");
    let (code, _) = explain(&["--path", "no-slash"]);
    assert_eq!(code, Some(2));
}
