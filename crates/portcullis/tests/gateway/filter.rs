//! The response filter in front of the app's user list, which sends password
//! hashes and reset tokens to whoever asks.

use crate::harness::client;
use crate::protected;

#[tokio::test]
async fn password_hashes_never_leave_the_gateway_and_each_removal_is_an_event() {
    let (app, gateway) = protected("");
    let direct = client().get(format!("{}/api/users", app.url())).send().await.unwrap();
    assert!(
        direct.text().await.unwrap().contains("passwordHash"),
        "the app leaks them"
    );

    for encoding in ["identity", "gzip"] {
        let response = client()
            .get(gateway.url("/api/users"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        let users: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(users[0]["name"], "ada", "{body}");
        assert_eq!(users[1]["id"], 2, "{body}");
        assert!(
            !body.contains("passwordHash") && !body.contains("argon2") && !body.contains("resetToken"),
            "{body}"
        );
    }
    gateway.process.stdout.wait_for("\"sensitive_field\"");
    let event = &gateway
        .process
        .stdout
        .json("event")
        .into_iter()
        .find(|e| e["rule"] == "sensitive_field")
        .unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["action"].as_str()),
        (Some("filter"), Some("removed"))
    );
    let detail = event["detail"].as_str().unwrap();
    assert!(
        detail.contains("passwordHash") && detail.contains("/api/users"),
        "{detail}"
    );
    assert!(!detail.contains("argon2"), "events name fields, not values: {detail}");
}

#[tokio::test]
async fn longer_answers_pass_unchanged_with_an_event_and_detect_mode_changes_nothing() {
    let (_app, gateway) =
        protected("[filter]\nmax_bytes = 4096\n[[route]]\npath = \"/api/users\"\n[route.filter]\nmode = \"detect\"\n");
    let long = client()
        .get(gateway.url("/api/users/export?kb=8"))
        .send()
        .await
        .unwrap();
    assert!(long.text().await.unwrap().contains("passwordHash"));
    gateway.process.stdout.wait_for("\"too_large\"");
    let detected = client().get(gateway.url("/api/users")).send().await.unwrap();
    assert!(detected.text().await.unwrap().contains("passwordHash"));
    gateway.process.stdout.wait_for("\"detected\"");
}
