use crate::harness::client;
use crate::protected;

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let config = "[rate_limit]\nrequests = 60\nwindow_secs = 60\nburst = 3\n\n[[route]]\npath = \"/api\"\n[route.rate_limit]\nburst = 1\n";
    let (_app, gateway) = protected(config);
    for remaining in [2, 1, 0] {
        let response = client().get(gateway.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-policy"], "\"default\";q=60;w=60");
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.starts_with(&format!("\"default\";r={remaining};t=")), "{state}");
    }
    let refused = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(refused.text().await.unwrap().contains("429 Too Many Requests"));
    gateway.process.stdout.wait_for("\"kind\":\"rate_limit\"");

    // A route with a limit of its own counts apart from the default one.
    let api = client().get(gateway.url("/api/products")).send().await.unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers()["ratelimit-policy"], "\"route-1\";q=60;w=60");
    assert_eq!(
        client()
            .get(gateway.url("/api/products"))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
}

#[tokio::test]
async fn allow_listed_clients_are_not_limited() {
    let (_app, gateway) = protected("[rate_limit]\nburst = 1\nallow = [\"127.0.0.0/8\"]\n");
    for _ in 0..5 {
        let response = client().get(gateway.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit").is_none());
    }
}

const REPEAT_OFFENDERS: &str = "[rate_limit]\nrequests = 1\nwindow_secs = 3600\nburst = 1\n[bans]\nrefusals = 3\n";

#[tokio::test]
async fn repeat_offenders_are_banned_with_403() {
    let (_app, gateway) = protected(REPEAT_OFFENDERS);
    let status = || async { client().get(gateway.url("/")).send().await.unwrap().status().as_u16() };
    assert_eq!(status().await, 200);
    for _ in 0..3 {
        assert_eq!(status().await, 429);
    }
    let banned = client().get(gateway.url("/")).send().await.unwrap();
    assert_eq!(banned.status(), 403);
    assert_eq!(banned.headers()["x-content-type-options"], "nosniff");
    assert!(
        banned.headers().get("ratelimit").is_none(),
        "refused before the rate limit"
    );
    let event = gateway.process.stdout.wait_for("\"rule\":\"repeat_offender\"");
    assert!(event.contains("\"detail\":\"banned for 900 s\""), "{event}");
}

#[tokio::test]
async fn banned_peers_can_have_their_connections_closed() {
    let (_app, gateway) = protected(&format!("{REPEAT_OFFENDERS}action = \"close\"\n"));
    for _ in 0..4 {
        client().get(gateway.url("/")).send().await.unwrap();
    }
    gateway.process.stdout.wait_for("\"rule\":\"repeat_offender\"");
    // Accepted, then closed with not a byte of answer.
    let answer = crate::harness::raw_exchange(
        gateway.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        std::time::Duration::from_secs(5),
    );
    assert!(answer.is_empty(), "closed without an answer: {answer:.80}");
}
