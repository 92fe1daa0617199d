use crate::harness::{client, text_of};
use crate::protected;

#[tokio::test]
async fn stack_trace_is_replaced_and_kept_in_the_security_log() {
    let (app, gateway) = protected("");
    let direct = text_of(&format!("{}/boom", app.url())).await;
    assert!(direct.contains("app.js:"), "the app itself leaks its stack trace");

    let response = client().get(gateway.url("/boom")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        response.headers()["x-frame-options"],
        "SAMEORIGIN",
        "neutral pages carry the security headers"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains(&id), "the page gives the request id");
    for leak in ["TypeError", "app.js", "node_modules", " at ", "/work", "Cannot read"] {
        assert!(!body.contains(leak), "{leak:?} leaked in {body}");
    }
    gateway.process.stdout.wait_for("\"stack_trace\"");
    let event = gateway
        .process
        .stdout
        .json("event")
        .into_iter()
        .find(|e| e["rule"] == "stack_trace")
        .unwrap();
    assert_eq!(event["request_id"], id.as_str());
    assert_eq!(event["kind"], "safe_errors");
    assert!(event["detail"].as_str().unwrap().contains("app.js:"));
}

#[tokio::test]
async fn express_default_404_is_neutral_and_reflects_nothing() {
    // The WAF would refuse this path first; the page must be safe without it.
    let (_app, gateway) = protected("[waf]\nmode = \"off\"\n");
    let response = client()
        .get(gateway.url("/no-such-page-%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(!body.contains("Cannot GET"), "{body}");
    assert!(
        !body.contains("no-such-page") && !body.to_lowercase().contains("script"),
        "{body}"
    );
}

#[tokio::test]
async fn json_clients_get_json_error_pages() {
    let (_app, gateway) = protected("");
    let response = client()
        .get(gateway.url("/boom"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["status"], 500);
    assert!(json["request_id"].as_str().is_some_and(|id| id.len() == 32));
}

#[tokio::test]
async fn sql_error_text_is_replaced() {
    let (_app, gateway) = protected("");
    let response = client().get(gateway.url("/db-error")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(!response.text().await.unwrap().contains("SQL"));
    gateway.process.stdout.wait_for("\"sql_error\"");
}

#[tokio::test]
async fn designed_error_pages_and_api_errors_pass_unchanged() {
    let (app, gateway) = protected("");
    for path in ["/designed-error", "/api/products/99"] {
        let direct = client().get(format!("{}{path}", app.url())).send().await.unwrap();
        let (status, body) = (direct.status(), direct.text().await.unwrap());
        let through = client().get(gateway.url(path)).send().await.unwrap();
        assert_eq!(through.status(), status, "{path}");
        assert_eq!(through.text().await.unwrap(), body, "{path}");
    }
}

#[tokio::test]
async fn custom_error_pages_replace_the_built_in_ones() {
    let dir = crate::harness::TempDir::new();
    let page = dir.0.join("500.html");
    std::fs::write(&page, "<h1>Our apologies</h1><p>ref {{request_id}}</p>").unwrap();
    let (_app, gateway) = protected(&format!("[errors.pages]\n500 = \"{}\"\n", page.display()));
    let response = client().get(gateway.url("/boom")).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        response.text().await.unwrap(),
        format!("<h1>Our apologies</h1><p>ref {id}</p>")
    );
}

#[tokio::test]
async fn upstream_down_is_a_neutral_502() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = crate::harness::Gateway::start(&format!("http://127.0.0.1:{port}"), "");
    let response = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.text().await.unwrap().contains("502 Bad Gateway"));
    gateway.process.stdout.wait_for("\"connect_failed\"");
}

#[tokio::test]
async fn upstream_too_slow_is_a_neutral_504() {
    let (_app, gateway) = protected("[upstream]\nresponse_timeout = \"500ms\"\n");
    let response = client().get(gateway.url("/slow?ms=3000")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(response.text().await.unwrap().contains("504 Gateway Timeout"));
    gateway.process.stdout.wait_for("\"response_timeout\"");
}
