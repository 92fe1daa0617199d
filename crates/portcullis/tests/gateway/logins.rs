//! Login brute-force protection against the example app's form and JSON logins.

use reqwest::multipart;

use crate::harness::client;
use crate::protected;

const LOGINS: &str = "[[login]]\npath = \"/login\"\n\n[[login]]\npath = \"/account/login\"\n";

const RIGHT: &str = "correct horse battery staple";

/// Status and `Retry-After` of a response.
fn answer(response: &reqwest::Response) -> (u16, Option<u64>) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status().as_u16(), retry_after)
}

async fn form_login(url: &str, username: &str, password: &str) -> reqwest::Response {
    client()
        .post(url)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn json_login(url: &str, username: &str, password: &str) -> reqwest::Response {
    let body = serde_json::json!({ "username": username, "password": password });
    client().post(url).json(&body).send().await.unwrap()
}

/// The page without its request id, which is the only thing that may differ.
async fn page_shape(response: reqwest::Response) -> String {
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    response.text().await.unwrap().replace(&id, "")
}

#[tokio::test]
async fn the_eleventh_failure_is_blocked_for_the_hour_other_users_still_work() {
    let (app, gateway) = protected(LOGINS);
    let login = gateway.url("/login");
    for user in ["ada", "nobody"] {
        for _ in 0..10 {
            assert_eq!(answer(&form_login(&login, user, "guess").await), (401, None));
        }
    }
    let before = app.received().await;
    let blocked = form_login(&login, "ada", RIGHT).await;
    let (status, retry_after) = answer(&blocked);
    assert_eq!(status, 429, "blocked even with the right password");
    assert!(
        (3590..=3600).contains(&retry_after.unwrap()),
        "Retry-After is the block's remaining time: {retry_after:?}"
    );
    assert_eq!(app.received().await, before, "the app never saw it");
    let unknown_user = form_login(&login, "nobody", "guess").await;
    assert_eq!(unknown_user.status(), 429);
    assert_eq!(
        page_shape(blocked).await,
        page_shape(unknown_user).await,
        "the same page whether or not the user exists"
    );
    assert_eq!(
        answer(&form_login(&login, "grace", "guess").await),
        (401, None),
        "another username"
    );
    assert_eq!(
        answer(&form_login(&login, "ADA ", RIGHT).await).0,
        429,
        "usernames compare case-blind"
    );
    gateway.process.stdout.wait_for("\"rule\":\"consecutive_failures\"");
}

#[tokio::test]
async fn json_logins_count_and_a_success_resets_the_pair() {
    let (_app, gateway) = protected(LOGINS);
    let login = gateway.url("/account/login");
    for _ in 0..9 {
        assert_eq!(json_login(&login, "ada", "guess").await.status(), 401);
    }
    assert_eq!(json_login(&login, "ada", RIGHT).await.status(), 200);
    for _ in 0..9 {
        assert_eq!(
            json_login(&login, "ada", "guess").await.status(),
            401,
            "counting started again"
        );
    }
    assert_eq!(json_login(&login, "ada", "guess").await.status(), 401);
    assert_eq!(json_login(&login, "ada", RIGHT).await.status(), 429);
    assert_eq!(
        form_login(&gateway.url("/login"), "ada", RIGHT).await.status(),
        200,
        "each [[login]] counts apart"
    );
}

#[tokio::test]
async fn a_hundred_failures_a_day_block_the_address() {
    let (_app, gateway) = protected(LOGINS);
    let login = gateway.url("/login");
    for i in 0..100 {
        assert_eq!(form_login(&login, &format!("user{i}"), "guess").await.status(), 401);
    }
    let (status, retry_after) = answer(&form_login(&login, "ada", RIGHT).await);
    assert_eq!(status, 429);
    assert!((86_390..=86_400).contains(&retry_after.unwrap()), "{retry_after:?}");
}

#[tokio::test]
async fn multipart_usernames_and_odd_bodies_are_counted() {
    let (_app, gateway) = protected(&format!(
        "{LOGINS}\n[[login]]\npath = \"/upload\"\nip_failures = 3\nfailure_status = [400]\n"
    ));
    let login = gateway.url("/login");
    // The app reads no multipart logins (401), but the gateway finds the username.
    for _ in 0..10 {
        let form = multipart::Form::new().text("username", "ada").text("password", "guess");
        let response = client().post(&login).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(form_login(&login, "ada", RIGHT).await.status(), 429);

    // Bodies with no single username count against the address alone.
    let upload = gateway.url("/upload");
    // (No NUL byte in the garbage: the WAF would refuse that first.)
    for body in ["username=a&username=b", "\u{1}\u{ff}garbage"] {
        let response = client()
            .post(&upload)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
    let response = client()
        .post(&upload)
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let blocked = client().post(&upload).body("x").send().await.unwrap();
    assert_eq!(answer(&blocked).0, 429, "three failures of the address");
}
