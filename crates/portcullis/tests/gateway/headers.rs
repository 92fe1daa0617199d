use crate::harness::client;
use crate::protected;

const HELMET_CSP: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

#[tokio::test]
async fn every_helmet_default_is_sent_once_with_its_exact_value() {
    let (_app, gateway) = protected("");
    let response = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let expected = [
        ("content-security-policy", HELMET_CSP),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-dns-prefetch-control", "off"),
        ("x-download-options", "noopen"),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-xss-protection", "0"),
    ];
    for (name, value) in expected {
        let values: Vec<_> = response.headers().get_all(name).iter().collect();
        assert_eq!(values, [value], "{name}");
    }
    // Plain HTTP: HSTS must not be sent.
    assert!(response.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn fingerprinting_headers_are_removed() {
    let (app, gateway) = protected("");
    let direct = client().get(format!("{}/", app.url())).send().await.unwrap();
    assert_eq!(
        direct.headers()["x-powered-by"],
        "Express",
        "the app itself does fingerprint"
    );
    let response = client().get(gateway.url("/")).send().await.unwrap();
    for name in ["x-powered-by", "server", "x-aspnet-version", "x-runtime"] {
        assert!(response.headers().get(name).is_none(), "{name} leaked");
    }
}

#[tokio::test]
async fn https_as_reported_by_a_trusted_proxy_gets_hsts() {
    let (_app, gateway) = protected("trusted_proxies = [\"127.0.0.1\"]\n");
    let response = client()
        .get(gateway.url("/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

#[tokio::test]
async fn routes_override_headers_and_csp_directives_merge() {
    let config = r#"
[headers.content_security_policy.directives]
script-src = ["'self'", "https://cdn.example.com"]

[[route]]
path = "/api"
[route.headers]
x_frame_options = "DENY"
referrer_policy = false
"#;
    let (_app, gateway) = protected(config);
    let page = client().get(gateway.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains(";script-src 'self' https://cdn.example.com;"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "SAMEORIGIN");
    let api = client().get(gateway.url("/API/products")).send().await.unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers()["x-frame-options"], "DENY");
    assert!(api.headers().get("referrer-policy").is_none());
    assert_eq!(
        api.headers()["content-security-policy"],
        csp,
        "the route inherits the global CSP"
    );
}
