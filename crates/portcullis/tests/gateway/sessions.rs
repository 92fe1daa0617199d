//! Sessions and CSRF against the example app's express-session and
//! cookie-session, with their default cookie names.

use crate::harness::client;
use crate::protected;

const ADA: [(&str, &str); 2] = [("username", "ada"), ("password", "correct horse battery staple")];

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `name=value` of each cookie, as a browser would send them back.
fn cookie_header(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn express_session_login_works_under_a_neutral_hardened_name() {
    let (_app, gateway) = protected("");
    let login = client().post(gateway.url("/login")).form(&ADA).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let cookies = set_cookies(&login);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("id-1=s%3A"), "{}", cookies[0]);
    for flag in ["; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(cookies[0].contains(flag), "{flag} missing in {}", cookies[0]);
    }
    assert!(!cookies[0].contains("Secure"), "plain HTTP: no Secure");

    let me = client()
        .get(gateway.url("/me"))
        .header("cookie", cookie_header(&cookies))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"], "ada");
    assert!(
        me["cookies"].as_str().unwrap().starts_with("connect.sid=s%3A"),
        "the app sees its own name: {me}"
    );
}

#[tokio::test]
async fn cookie_session_pair_is_renamed_and_still_verifies() {
    let (_app, gateway) = protected("");
    let login = client()
        .post(gateway.url("/account/login"))
        .json(&serde_json::json!({"username": "ada", "password": ADA[1].1}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookies = set_cookies(&login);
    let names: Vec<&str> = cookies.iter().map(|c| c.split('=').next().unwrap()).collect();
    assert_eq!(names, ["id-2", "id-3"], "session and session.sig: {cookies:?}");
    for cookie in &cookies {
        assert!(
            cookie.contains("; SameSite=Lax") && cookie.to_lowercase().contains("httponly"),
            "{cookie}"
        );
        assert_eq!(
            cookie.to_lowercase().matches("httponly").count(),
            1,
            "never twice: {cookie}"
        );
    }
    let me = client()
        .get(gateway.url("/account/me"))
        .header("cookie", cookie_header(&cookies))
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        200,
        "the signature still verifies under the original names"
    );
}

#[tokio::test]
async fn over_https_cookies_get_the_host_prefix_and_secure() {
    let (_app, gateway) = protected("trusted_proxies = [\"127.0.0.1\"]\n");
    let login = client()
        .post(gateway.url("/login"))
        .header("x-forwarded-proto", "https")
        .form(&ADA)
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&login);
    assert!(cookies[0].starts_with("__Host-id-1="), "{}", cookies[0]);
    assert!(cookies[0].contains("; Secure"), "{}", cookies[0]);
    let me = client()
        .get(gateway.url("/me"))
        .header("x-forwarded-proto", "https")
        .header("cookie", cookie_header(&cookies))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn a_cookie_planted_under_the_original_name_never_reaches_the_app() {
    let (app, gateway) = protected("");
    // A valid session obtained from the app directly, then offered under its real name.
    let direct = client()
        .post(format!("{}/login", app.url()))
        .form(&ADA)
        .send()
        .await
        .unwrap();
    let planted = cookie_header(&set_cookies(&direct));
    assert!(planted.starts_with("connect.sid="));
    let me = client()
        .get(gateway.url("/me"))
        .header("cookie", planted)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}

#[tokio::test]
async fn cross_site_posts_are_refused_before_the_app() {
    let (app, gateway) = protected("");
    let host = gateway.addr.to_string();
    let same_origin = format!("http://{host}");
    let cases: [(&[(&str, &str)], u16); 5] = [
        (
            &[("sec-fetch-site", "cross-site"), ("origin", "http://evil.example")],
            403,
        ),
        (&[("sec-fetch-site", "same-site")], 403),
        (&[("origin", "http://evil.example")], 403),
        (
            &[("sec-fetch-site", "same-origin"), ("origin", same_origin.as_str())],
            200,
        ),
        (&[("origin", same_origin.as_str())], 200),
    ];
    for (headers, expected) in cases {
        let mut request = client().post(gateway.url("/login")).form(&ADA);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let before = app.received().await;
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{headers:?}");
        if expected == 403 {
            assert_eq!(app.received().await, before, "the app never saw it");
            assert!(response.text().await.unwrap().contains("403 Forbidden"));
        }
    }
    gateway.process.stdout.wait_for("\"kind\":\"csrf\"");
}

#[tokio::test]
async fn bypass_paths_and_trusted_origins_per_route() {
    let config = "[[route]]\npath = \"/login\"\n[route.csrf]\ntrusted_origins = [\"https://sso.example\"]\n";
    let (_app, gateway) = protected(config);
    let trusted = client()
        .post(gateway.url("/login"))
        .header("origin", "https://sso.example")
        .form(&ADA)
        .send()
        .await
        .unwrap();
    assert_eq!(trusted.status(), 200);
    let other = client()
        .post(gateway.url("/form"))
        .header("origin", "https://sso.example")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403, "trusted only on its route");
}

const TOKEN_MODE: &str = "[csrf.token]\nenabled = true\nkeys = [\"a signing key of at least thirty-two bytes\"]\n";

#[tokio::test]
async fn token_mode_issues_a_readable_token_bound_to_the_session() {
    let (_app, gateway) = protected(TOKEN_MODE);
    // A first visit gets a token cookie that scripts can read.
    let page = client().get(gateway.url("/")).send().await.unwrap();
    let cookies = set_cookies(&page);
    let token_cookie = cookies
        .iter()
        .find(|c| c.starts_with("csrf-token="))
        .expect("a token cookie");
    assert!(
        !token_cookie.contains("HttpOnly"),
        "front-end code must read it: {token_cookie}"
    );
    let token = token_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("csrf-token=")
        .to_owned();

    // Without the header (an old browser on a forging page sends no Origin either): refused.
    let forged = client()
        .post(gateway.url("/login"))
        .header("cookie", format!("csrf-token={token}"))
        .form(&ADA)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // With it: login works, and the new session gets a new token.
    let login = client()
        .post(gateway.url("/login"))
        .header("cookie", format!("csrf-token={token}"))
        .header("x-csrf-token", &token)
        .form(&ADA)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let after = set_cookies(&login);
    let session = after
        .iter()
        .find(|c| c.starts_with("id-1="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let fresh = after
        .iter()
        .find(|c| c.starts_with("csrf-token="))
        .expect("a token for the new session");
    let fresh = fresh
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("csrf-token=")
        .to_owned();
    assert_ne!(fresh, token);

    // The pre-login token no longer works for the logged-in session; the fresh one does.
    let post = |token: String| {
        client()
            .post(gateway.url("/form"))
            .header("cookie", format!("{session}; csrf-token={token}"))
            .header("x-csrf-token", token)
            .form(&[("name", "Ada")])
            .send()
    };
    assert_eq!(post(token).await.unwrap().status(), 403);
    assert_eq!(post(fresh).await.unwrap().status(), 200);
}

#[tokio::test]
async fn token_mode_accepts_the_token_from_a_form_field() {
    let (_app, gateway) = protected(TOKEN_MODE);
    let page = client().get(gateway.url("/form")).send().await.unwrap();
    let cookie = set_cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("csrf-token="))
        .unwrap();
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("csrf-token=")
        .to_owned();
    let post = |field: &str| {
        client()
            .post(gateway.url("/form"))
            .header("cookie", format!("csrf-token={token}"))
            .form(&[("name", "Ada"), ("_csrf", field), ("message", "hello")])
            .send()
    };
    let accepted = post(&token).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(
        accepted.text().await.unwrap().contains("Thanks, Ada."),
        "the app received the whole form"
    );
    assert_eq!(post("forged.00").await.unwrap().status(), 403);
}
