use super::*;
use crate::body::full;
use crate::context::ContextData;
use crate::events::testing::Recorder;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::{service_fn, Layer, ServiceExt};

fn filter() -> ResponseFilter {
    ResponseFilter::new(&FilterConfig::default(), "default", Arc::new(Recorder::default()))
}

fn filtered(json: &str) -> String {
    match filter().filter(json.as_bytes()).unwrap() {
        (Some(bytes), _) => String::from_utf8(bytes).unwrap(),
        (None, _) => json.to_owned(),
    }
}

#[test]
fn members_go_at_any_depth_and_the_rest_is_kept_byte_for_byte() {
    let json =
        r#"{"id": 7, "password":"x", "profile" : {"passwordHash": "$argon2id$...", "tags":[{"salt":1,"name":"a"}]}}"#;
    assert_eq!(filtered(json), r#"{"id": 7, "profile" : {"tags":[{"name":"a"}]}}"#);
}

#[test]
fn first_middle_last_and_every_member() {
    assert_eq!(filtered(r#"{"password":1,"a":2}"#), r#"{"a":2}"#);
    assert_eq!(filtered(r#"{"a":1,"password":2,"b":3}"#), r#"{"a":1,"b":3}"#);
    assert_eq!(filtered(r#"{"a":1, "password":2, "salt": 3}"#), r#"{"a":1}"#);
    assert_eq!(filtered(r#"{ "password":1, "salt":2 }"#), r#"{  }"#);
    assert_eq!(filtered("{\n  \"a\": 1,\n  \"salt\": 2\n}"), "{\n  \"a\": 1\n}");
    assert_eq!(filtered(r#"[{"salt":{"password":1}},{"b":{}}]"#), r#"[{},{"b":{}}]"#);
}

#[test]
fn names_compare_decoded_and_without_case_or_separators() {
    assert_eq!(filtered(r#"{"pass\u0077ord":1,"a":2}"#), r#"{"a":2}"#);
    assert_eq!(filtered(r#"{"password_hash":1,"PASSWORD-HASH":2,"a":3}"#), r#"{"a":3}"#);
    assert_eq!(filtered(r#"{"passwords":1}"#), r#"{"passwords":1}"#, "whole names only");
    let (_, fields) = filter().filter(br#"{"Password_Hash":1,"x":{"salt":2}}"#).unwrap();
    assert_eq!(fields, ["Password_Hash", "salt"], "reported as written");
}

#[test]
fn what_is_not_json_is_said_so() {
    for text in [
        "",
        "{",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        "[1 2]",
        "01",
        "1.",
        "tru",
        "\"\u{1}\"",
        r#""\x""#,
        "{} x",
        r#""\ud800\u0041""#,
    ] {
        assert_eq!(
            find(text.as_bytes(), &|_| false).map(|_| ()),
            Err(Unreadable::NotJson),
            "{text:?}"
        );
    }
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(find(deep.as_bytes(), &|_| false).map(|_| ()), Err(Unreadable::TooDeep));
    let fits = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(find(fits.as_bytes(), &|_| false).is_ok());
    assert!(find(br#"[-0.5e+3, 1E2, "\ud83d\ude00", null, true, false]"#, &|_| false).is_ok());
}

#[test]
fn config_errors_name_the_key() {
    let config = FilterConfig {
        extra_fields: vec!["ok".into(), "_-".into()],
        ..FilterConfig::default()
    };
    assert_eq!(config.validate().unwrap_err().key, "extra_fields[1]");
    let config = FilterConfig {
        max_bytes: 0,
        ..FilterConfig::default()
    };
    assert_eq!(config.validate().unwrap_err().key, "max_bytes");
}

fn without(value: &serde_json::Value, sensitive: &dyn Fn(&str) -> bool) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !sensitive(k))
            .map(|(k, v)| (k.clone(), without(v, sensitive)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => items.iter().map(|v| without(v, sensitive)).collect(),
        other => other.clone(),
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i32>().prop_map(Into::into),
        "[a-z\"\\\\\u{e9}\n]{0,6}".prop_map(Into::into),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Into::into),
            prop::collection::vec(
                (
                    prop_oneof!["[a-c]", Just("salt".to_owned()), Just("password".to_owned())],
                    inner
                ),
                0..6
            )
            .prop_map(|members| members.into_iter().collect::<serde_json::Map<_, _>>().into()),
        ]
    })
}

proptest! {
    /// Compact or pretty, the result is JSON equal to the document without
    /// the sensitive members.
    #[test]
    fn the_result_is_the_document_without_the_members(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
        let filter = filter();
        let out = filtered(&text);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(parsed, without(&value, &|name| filter.is_sensitive(name)));
    }

    #[test]
    fn any_bytes_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = filter().filter(&bytes);
    }
}

async fn through(
    config: FilterConfig,
    method: Method,
    response: Response<Body>,
) -> (Response<Body>, Vec<crate::events::SecurityEvent>) {
    let recorder = Arc::new(Recorder::default());
    let layer = ResponseFilterLayer::new(ResponseFilter::new(&config, "route[0] /api", recorder.clone()));
    let response = Arc::new(std::sync::Mutex::new(Some(response)));
    let service = layer.layer(service_fn(move |_: Request<Body>| {
        let response = response.lock().unwrap().take().unwrap();
        async move { Ok::<_, std::convert::Infallible>(response) }
    }));
    let mut request = Request::builder()
        .method(method)
        .uri("/api/users")
        .body(full(""))
        .unwrap();
    request
        .extensions_mut()
        .insert(RequestContext::from(ContextData::for_tests()));
    let response = service.oneshot(request).await.unwrap();
    (response, recorder.taken())
}

fn json_response(body: impl Into<Bytes>, extra: &[(&str, &str)]) -> Response<Body> {
    let body = body.into();
    let mut builder = Response::builder()
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", body.len());
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(full(body)).unwrap()
}

async fn text(response: Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_removal_fixes_the_length_and_its_event_names_route_and_field_not_value() {
    let body = r#"{"user":"ann","passwordHash":"$argon2id$secret"}"#;
    let (response, events) = through(FilterConfig::default(), Method::GET, json_response(body, &[])).await;
    assert_eq!(response.headers()["content-length"], "14");
    assert_eq!(&text(response).await[..], br#"{"user":"ann"}"#);
    assert_eq!((events[0].rule, events[0].action), ("sensitive_field", "removed"));
    let detail = events[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("route[0] /api") && detail.contains("passwordHash"),
        "{detail}"
    );
    assert!(!detail.contains("secret"), "{detail}");
}

#[tokio::test]
async fn gzip_answers_are_filtered_and_compressed_again() {
    let body = Encoding::Gzip.encode(br#"{"a":1,"salt":"s"}"#.to_vec()).unwrap();
    let (response, _) = through(
        FilterConfig::default(),
        Method::GET,
        json_response(body, &[("content-encoding", "gzip")]),
    )
    .await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let length: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = text(response).await;
    assert_eq!(bytes.len(), length);
    assert_eq!(&Encoding::Gzip.decode(bytes, 1000).unwrap().unwrap()[..], br#"{"a":1}"#);
}

#[tokio::test]
async fn what_cannot_be_filtered_passes_unchanged_with_an_event() {
    let large = format!(r#"{{"password":"x","pad":"{}"}}"#, "a".repeat(200));
    let small = FilterConfig {
        max_bytes: 100,
        ..FilterConfig::default()
    };
    let cases = [
        (small.clone(), json_response(large.clone(), &[]), "too_large"),
        (
            FilterConfig::default(),
            json_response(r#"{"password":"x""#, &[]),
            "unfilterable",
        ),
        (
            FilterConfig::default(),
            json_response(r#"{"password":"x"}"#, &[("content-encoding", "br")]),
            "unfilterable",
        ),
        // A bomb: small compressed, past the bound once decompressed.
        (
            small,
            json_response(
                Encoding::Gzip.encode(large.clone().into_bytes()).unwrap(),
                &[("content-encoding", "gzip")],
            ),
            "too_large",
        ),
    ];
    for (config, response, rule) in cases {
        let before = response.headers()["content-length"].clone();
        let (response, events) = through(config, Method::GET, response).await;
        assert_eq!(response.headers()["content-length"], before);
        let length: usize = before.to_str().unwrap().parse().unwrap();
        assert_eq!(text(response).await.len(), length);
        assert_eq!((events[0].rule, events[0].action), (rule, "passed"));
    }
}

#[tokio::test]
async fn detect_mode_only_reports_and_other_answers_are_not_read() {
    let detect = FilterConfig {
        mode: FilterMode::Detect,
        ..FilterConfig::default()
    };
    let body = r#"{"password":"x"}"#;
    let (response, events) = through(detect, Method::GET, json_response(body, &[])).await;
    assert_eq!(&text(response).await[..], body.as_bytes());
    assert_eq!(events[0].action, "detected");

    let html = Response::builder()
        .header("content-type", "text/html")
        .body(full(body))
        .unwrap();
    let (response, events) = through(FilterConfig::default(), Method::GET, html).await;
    assert_eq!(&text(response).await[..], body.as_bytes());
    assert!(events.is_empty());
    let problem = Response::builder()
        .header("content-type", "application/problem+json")
        .body(full(body))
        .unwrap();
    let (response, _) = through(FilterConfig::default(), Method::GET, problem).await;
    assert_eq!(&text(response).await[..], b"{}");
}
