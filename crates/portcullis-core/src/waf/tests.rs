use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use tower::{service_fn, Layer, ServiceExt};

use super::*;
use crate::context::{ConnectionInfo, RequestContextPolicy};
use crate::events::testing::Recorder;

fn waf(config: WafConfig, events: &Arc<Recorder>) -> Waf {
    Waf::compile(config)
        .unwrap()
        .with_reporting(NeutralPages::default(), events.clone())
}

/// Sends `request` through the WAF in front of a service that counts what
/// reaches it and returns the body it read.
async fn send(waf: &Waf, request: Request<Body>) -> (StatusCode, usize, Bytes) {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let before = SEEN.load(Ordering::SeqCst);
    let app = service_fn(|request: Request<Body>| async move {
        SEEN.fetch_add(1, Ordering::SeqCst);
        let body = request.into_body().collect().await.unwrap().to_bytes();
        Ok::<_, std::convert::Infallible>(Response::new(crate::body::full(body)))
    });
    let stack = crate::context::RequestContextLayer::new(RequestContextPolicy::default())
        .layer(WafLayer::from(Arc::new(waf.clone())).layer(app));
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectionInfo::new(SocketAddr::from(([127, 0, 0, 1], 5000)), false));
    let response = stack.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, SEEN.load(Ordering::SeqCst) - before, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(crate::body::empty()).unwrap()
}

fn post(uri: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(crate::body::full(body.into()))
        .unwrap()
}

#[tokio::test]
async fn attacks_are_blocked_and_benign_requests_pass() {
    let events = Arc::new(Recorder::default());
    let waf = waf(WafConfig::default(), &events);
    let (status, reached, _) = send(&waf, get("/search?q=1%27%20OR%20%271%27%3D%271")).await;
    assert_eq!((status, reached), (StatusCode::FORBIDDEN, 0));
    let event = &events.taken()[0];
    assert_eq!((event.kind, event.rule, event.action), ("waf", "sqli", "blocked"));
    assert!(event.detail.as_deref().unwrap().contains("query.q"), "{event:?}");
    assert_eq!(
        event.exclusion.as_deref(),
        Some("[[waf.exclude]]\npath = \"/search\"\nlocation = \"query.q\"\ndetectors = [\"sqli\"]\n")
    );
    let (status, reached, _) = send(&waf, get("/search?q=O%27Brien&sort=price")).await;
    assert_eq!((status, reached), (StatusCode::OK, 1));
    assert!(events.taken().is_empty());
}

#[tokio::test]
async fn bodies_are_inspected_and_forwarded_unchanged() {
    let events = Arc::new(Recorder::default());
    let waf = waf(WafConfig::default(), &events);
    let json = r#"{"user":{"name":"ada","bio":"<img src=x onerror=alert(1)>"}}"#;
    let (status, reached, _) = send(&waf, post("/api", "application/json", json)).await;
    assert_eq!((status, reached), (StatusCode::FORBIDDEN, 0));
    assert!(events.taken()[0].detail.as_deref().unwrap().contains("json.user.bio"));
    let benign = r#"{"user":{"name":"O'Brien","bio":"<p>I like <strong>SQL</strong> & shells</p>"}}"#;
    let (status, reached, body) = send(&waf, post("/api", "application/json", benign)).await;
    assert_eq!((status, reached, &body[..]), (StatusCode::OK, 1, benign.as_bytes()));
    let (status, _, _) = send(&waf, post("/login", "application/json", r#"{"user":{"$ne":null}}"#)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &waf,
        post("/f", "application/x-www-form-urlencoded", "a[__proto__][admin]=1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let multipart =
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"\r\n\r\nx\r\n--B--\r\n";
    let (status, _, _) = send(&waf, post("/up", "multipart/form-data; boundary=B", multipart)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn compressed_bodies_are_read_as_the_app_reads_them() {
    let events = Arc::new(Recorder::default());
    let waf = waf(WafConfig::default(), &events);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(br#"{"q":"'; DROP TABLE users; --"}"#).unwrap();
    let mut request = post("/api", "application/json", gzip.finish().unwrap());
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
    assert_eq!(send(&waf, request).await.0, StatusCode::FORBIDDEN);
    let mut request = post("/api", "application/json", "{}");
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, http::HeaderValue::from_static("br"));
    assert_eq!(send(&waf, request).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn detect_mode_forwards_and_reports() {
    let events = Arc::new(Recorder::default());
    let config = WafConfig {
        mode: Mode::Detect,
        ..WafConfig::default()
    };
    let waf = waf(config, &events);
    let (status, reached, _) = send(&waf, get("/x?cmd=%3Bcat%20/etc/passwd")).await;
    assert_eq!((status, reached), (StatusCode::OK, 1));
    assert_eq!(events.taken()[0].action, "detected");
}

/// The defaults, with one exclusion under `/cms` (no detectors: all of them).
fn excluding_on_cms(location: &str, detectors: Vec<Detector>) -> WafConfig {
    WafConfig {
        exclude: vec![ExclusionConfig {
            path: "/cms".into(),
            location: location.into(),
            detectors,
        }],
        ..WafConfig::default()
    }
}

#[tokio::test]
async fn exclusions_let_exactly_their_requests_through() {
    let events = Arc::new(Recorder::default());
    let waf = waf(excluding_on_cms("json.body", vec![Detector::Xss]), &events);
    let script = r#"{"body":"<script>track()</script>"}"#;
    assert_eq!(
        send(&waf, post("/cms/page", "application/json", script)).await.0,
        StatusCode::OK
    );
    // Another location, another path, another detector: still blocked.
    let elsewhere = r#"{"title":"<script>track()</script>"}"#;
    assert_eq!(
        send(&waf, post("/cms/page", "application/json", elsewhere)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&waf, post("/blog", "application/json", script)).await.0,
        StatusCode::FORBIDDEN
    );
    let sqli = r#"{"body":"' OR 1=1--"}"#;
    assert_eq!(
        send(&waf, post("/cms/page", "application/json", sqli)).await.0,
        StatusCode::FORBIDDEN
    );
}

/// A header let through by an exclusion on one path was not found clean,
/// only excused there: on another path it is still an attack.
#[tokio::test]
async fn a_header_excused_on_one_path_is_blocked_on_the_next_request_elsewhere() {
    let events = Arc::new(Recorder::default());
    let waf = waf(excluding_on_cms("header.x-preview", vec![]), &events);
    let with_header = |uri: &str| {
        Request::get(uri)
            .header("x-preview", "<script>alert(document.cookie)</script>")
            .header(header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
            .body(crate::body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(send(&waf, with_header("/cms/page")).await.0, StatusCode::OK);
        assert_eq!(send(&waf, with_header("/blog")).await.0, StatusCode::FORBIDDEN);
    }
}

/// Clean paths are remembered (see `memo`); one with an attack never is.
#[tokio::test]
async fn a_path_with_an_attack_is_blocked_each_time_it_is_sent() {
    let events = Arc::new(Recorder::default());
    let waf = waf(WafConfig::default(), &events);
    for _ in 0..3 {
        assert_eq!(send(&waf, get("/products/list")).await.0, StatusCode::OK);
        let (status, reached, _) = send(&waf, get("/files/..%2f..%2f..%2fetc%2fpasswd")).await;
        assert_eq!((status, reached), (StatusCode::FORBIDDEN, 0));
    }
    assert_eq!(events.taken().len(), 3);
}

#[tokio::test]
async fn limits_give_a_defined_answer() {
    let events = Arc::new(Recorder::default());
    let config = WafConfig {
        inspect_body_bytes: 1024,
        max_parameters: 100,
        ..WafConfig::default()
    };
    let lenient = waf(config.clone(), &events);
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        send(&lenient, post("/api", "application/json", deep)).await.0,
        StatusCode::FORBIDDEN
    );
    let many: String = (0..500).map(|i| format!("p{i}=1&")).collect();
    assert_eq!(send(&lenient, get(&format!("/?{many}"))).await.0, StatusCode::FORBIDDEN);
    // The limit counts the query and the body together (30 pairs each: 120 names and values).
    let half: String = (0..30).map(|i| format!("p{i}=1&")).collect();
    let split = post(&format!("/?{half}"), "application/x-www-form-urlencoded", half.clone());
    assert_eq!(send(&lenient, split).await.0, StatusCode::FORBIDDEN);
    // Past the prefix: inspected as far as it goes, forwarded whole.
    let long = format!("a={}&b=%27%20OR%201%3D1--", "x".repeat(4096));
    let (status, reached, body) = send(&lenient, post("/f", "application/x-www-form-urlencoded", long.clone())).await;
    assert_eq!((status, reached, body.len()), (StatusCode::OK, 1, long.len()));
    let strict = waf(
        WafConfig {
            past_limit: PastLimit::Block,
            ..config
        },
        &events,
    );
    assert_eq!(
        send(&strict, post("/f", "application/x-www-form-urlencoded", long))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn config_errors_name_the_key() {
    let bad = |config: WafConfig| config.validate().unwrap_err().key;
    assert_eq!(
        bad(WafConfig {
            level: 4,
            ..WafConfig::default()
        }),
        "level"
    );
    let exclusion = ExclusionConfig {
        path: "api".into(),
        location: "*".into(),
        detectors: vec![],
    };
    assert_eq!(
        bad(WafConfig {
            exclude: vec![exclusion],
            ..WafConfig::default()
        }),
        "exclude[0].path"
    );
}

#[test]
fn encodings_only_evasions_produce_are_findings() {
    let waf = Waf::compile(WafConfig::default()).unwrap();
    let detectors = |value: &str| -> Vec<&str> {
        waf.inspect_values(&[("q", value)])
            .iter()
            .map(|f| f.detector.name())
            .collect()
    };
    assert_eq!(detectors("%c0%ae%c0%aeetc"), ["encoding_evasion"]);
    assert_eq!(detectors("file%00.png"), ["encoding_evasion"]);
    // Invalid UTF-8 alone (a Latin-1 form) is not an evasion.
    assert!(detectors("caf%E9").is_empty());
}

/// Multi-byte characters right before the bytes detectors look back from
/// (`=`, `://`): a slice there once split a character.
#[test]
fn multibyte_text_before_punctuation() {
    let waf = Waf::compile(WafConfig::default()).unwrap();
    for value in [
        "1′) and '1′",
        "é=\"x\";",
        "location′=\"a\";",
        "東://169.254.169.254/",
        "x′://a//b://c",
        "http://a/?u=é://x",
    ] {
        let _ = waf.inspect_values(&[("q", value)]);
    }
}

mod fuzz {
    use proptest::prelude::*;

    use super::super::*;

    /// Text made of the characters the detectors and decoders give a meaning to.
    fn syntax() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            r#"([ -~\t\n%&#;\\'"`<>(){}\[\]$|*/=.:,!a-zA-Z0-9_\-\x00é東′]|é=|′:|東/|é\(|′'){0,200}"#,
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn every_detector_reads_any_text(text in syntax()) {
            let _ = sqli::inspect(&text);
            let _ = xss::inspect(&text);
            let _ = command::inspect(&text);
            let _ = traversal::inspect(&text);
            let _ = template::inspect(&text);
            let _ = ssrf::inspect(&text);
            let _ = scanner::inspect(&text);
            let _ = prototype::inspect(walk::segments(&text));
            let _ = nosql::key(walk::segments(&text));
            let _ = nosql::value(&text);
        }

        #[test]
        fn byte_sets_hold_exactly_the_bytes_given(
            bytes in prop_oneof![
                proptest::collection::vec(0u8..128, 0..300),
                proptest::collection::vec(any::<u8>(), 0..600),
            ],
        ) {
            let set = ByteSet::in_bytes(&bytes);
            for byte in 0..=255u8 {
                prop_assert_eq!(set.has(byte), bytes.contains(&byte), "byte {}", byte);
            }
        }

        #[test]
        fn any_request_gets_a_decision(
            path in "/[ -~]{0,40}",
            query in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let waf = Waf::compile(WafConfig { max_parameters: 50, ..WafConfig::default() }).unwrap();
            let query = String::from_utf8_lossy(&query).into_owned();
            for kind in [BodyKind::Form, BodyKind::Json, BodyKind::Multipart { boundary: "b".into() }] {
                let inspection = waf.inspect(&path, Some(&query), &HeaderMap::new(), Some((&kind, &body, false)));
                let _ = inspection.score();
            }
        }
    }
}
