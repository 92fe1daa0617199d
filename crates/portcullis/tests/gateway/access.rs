//! Access rules and the login portal in front of the example app's admin
//! pages, with real browsers, a real Redis and the gateway's own CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{client, client_without_redirects, get_with_cookie, ExpressApp, Gateway, RedisServer, TempDir};
use crate::tls::{give_to_nobody, TestCertificates};

pub const PASSWORD: &str = "correct horse battery staple";

/// `portcullis user add ARGS --users USERS`, given `password` on standard input.
pub fn user_add(users: &Path, args: &[&str], password: &str) -> std::process::Output {
    use std::io::Write;
    let mut add = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["user", "add", "--password-stdin", "--users"])
        .arg(users)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{password}").unwrap();
    add.wait_with_output().unwrap()
}

/// The first `name=value` a response's `Set-Cookie` sets.
pub fn set_cookie(response: &reqwest::Response) -> String {
    let header = response.headers()["set-cookie"].to_str().unwrap();
    header.split(';').next().unwrap().to_owned()
}

/// A users file with `ada` (group admin, password [`PASSWORD`]) and her
/// TOTP secret, written by `portcullis user add` and `user totp`.
pub fn users_file(dir: &Path) -> (PathBuf, String) {
    let users = dir.join("users.toml");
    let added = user_add(&users, &["ada", "--groups", "admin"], PASSWORD);
    assert!(added.status.success(), "{added:?}");
    let totp = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["user", "totp", "ada", "--users"])
        .arg(&users)
        .output()
        .unwrap();
    assert!(totp.status.success(), "{}", String::from_utf8_lossy(&totp.stderr));
    let stdout = String::from_utf8(totp.stdout).unwrap();
    let uri = stdout.lines().find(|l| l.starts_with("otpauth://")).unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    assert!(stdout.contains('█'), "a QR code for the terminal: {stdout}");
    give_to_nobody(dir);
    (users, secret)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn the_portal_in_headless_chromium_across_two_gateways_sharing_redis() {
    crate::harness::npm_ci_once(&browser_dir());
    let dir = TempDir::new();
    let (users, secret) = users_file(&dir.0);
    let redis = RedisServer::start();
    let app = ExpressApp::start();
    let certificates = TestCertificates::new();
    let config = certificates.config(&format!(
        "[portal]\nusers = \"{}\"\n[store]\nredis = \"{}\"\n[[access]]\npath = \"/admin\"\ngroups = [\"admin\"]\n",
        users.display(),
        redis.url()
    ));
    let first = Gateway::start(&app.url(), &config);
    let second = Gateway::start(&app.url(), &config);
    let output = Command::new("node")
        .arg("portal.mjs")
        .current_dir(browser_dir())
        .env("GATEWAY", format!("https://localhost:{}", first.addr.port()))
        .env("SECOND_GATEWAY", format!("https://localhost:{}", second.addr.port()))
        .env("TOTP_SECRET", &secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "portal.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(results["redirectedTo"], "/.portcullis/login?rd=%2Fadmin", "{results}");
    assert_eq!(results["wrongPasswordStatus"], 401, "{results}");
    assert_eq!(
        results["wrongPasswordMessage"], "Wrong user name or password.",
        "{results}"
    );
    assert_eq!(results["afterPassword"], "/.portcullis/totp", "{results}");
    assert_eq!(results["afterCode"], "/admin", "{results}");
    assert_eq!(
        (&results["adminUser"], &results["adminGroups"]),
        (&"ada".into(), &"admin".into()),
        "{results}"
    );
    let cookie = &results["sessionCookie"];
    assert_eq!(cookie["httpOnly"], true, "{results}");
    assert_eq!(cookie["secure"], true, "{results}");
    assert_eq!(cookie["sameSite"], "Lax", "{results}");
    assert_eq!(
        cookie["rotated"], true,
        "a new id once the second factor is checked: {results}"
    );
    assert_eq!(results["documentCookie"], "", "{results}");
    assert_eq!(results["identity"]["user"], "ada", "{results}");
    let app_cookies = results["identity"]["cookie"].as_str().unwrap_or("");
    assert!(
        !app_cookies.contains("portcullis"),
        "the app never holds the portal's cookies: {results}"
    );
    let users_body = results["usersBody"].as_str().unwrap();
    assert!(
        users_body.contains("grace") && !users_body.contains("passwordHash"),
        "{results}"
    );
    assert_eq!(
        results["secondGatewayUser"], "ada",
        "the session is shared through Redis: {results}"
    );
    assert_eq!(results["logoutMessage"], "You are logged out.", "{results}");
    assert_eq!(results["afterLogout"], "/.portcullis/login", "{results}");
    assert_eq!(
        results["oldCookiePath"], "/.portcullis/login",
        "logout ended it server-side: {results}"
    );
    assert_eq!(results["cspViolations"], serde_json::json!([]), "{results}");
    first.process.stdout.wait_for("\"rule\":\"login_failed\"");
    first.process.stdout.wait_for("\"rule\":\"logout\"");
}

#[tokio::test]
async fn address_rules_refuse_before_the_app_and_identity_headers_cannot_be_forged() {
    let app = ExpressApp::start();
    let gateway = Gateway::start(
        &app.url(),
        "[[access]]\npath = \"/admin/identity\"\nallow = [\"127.0.0.1\"]\n\
         [[access]]\npath = \"/admin\"\nallow = [\"10.0.0.0/8\"]\n\
         [[access]]\npath = \"/download\"\ndeny = [\"127.0.0.0/8\"]\n",
    );
    let before = app.received().await;
    for path in ["/admin", "/%61dmin/", "//ADMIN", "/download"] {
        let response = client().get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    assert_eq!(app.received().await, before, "the app never saw them");
    gateway.process.stdout.wait_for("\"rule\":\"address_not_allowed\"");
    gateway.process.stdout.wait_for("\"rule\":\"denied_address\"");

    let identity: serde_json::Value = client()
        .get(gateway.url("/admin/identity"))
        .header("x-portcullis-user", "root")
        .header("x-portcullis-groups", "admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(identity["user"], serde_json::Value::Null, "{identity}");
    assert_eq!(identity["groups"], serde_json::Value::Null, "{identity}");
}

#[tokio::test]
async fn portal_answers_bad_input_with_a_clear_status() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    let app = ExpressApp::start();
    let gateway = Gateway::start(
        &app.url(),
        &format!(
            "[portal]\nusers = \"{}\"\n[[access]]\npath = \"/admin\"\nlogin = true\n",
            users.display()
        ),
    );
    let before = app.received().await;
    // No CSRF cookie: refused.
    let response = client()
        .post(gateway.url("/.portcullis/login"))
        .form(&[("username", "ada"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A huge form.
    let response = client()
        .post(gateway.url("/.portcullis/login"))
        .form(&[("username", "ada"), ("password", &"x".repeat(100_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // A forged session cookie, and an API client without one.
    for cookie in [
        "portcullis-session=".to_owned() + &"ab".repeat(32),
        "portcullis-session=../../x".into(),
    ] {
        let response = client()
            .get(gateway.url("/admin"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = client().get(gateway.url("/.PORTCULLIS/nothing")).send().await.unwrap();
    assert_eq!(
        response.status(),
        404,
        "another spelling of the prefix is still the portal's"
    );
    assert_eq!(app.received().await, before, "the app saw none of it");
}

/// A login form's CSRF cookie and token, as a browser would get them.
pub async fn login_form(gateway: &Gateway) -> (String, String) {
    let login = client().get(gateway.url("/.portcullis/login")).send().await.unwrap();
    let cookie = set_cookie(&login);
    let token = cookie.split('=').nth(1).unwrap().to_owned();
    (cookie, token)
}

/// Posts the portal's login form with `fields` (username, password, rd...)
/// and `form`'s CSRF cookie and token; redirects are not followed.
pub async fn post_login(
    gateway: &Gateway,
    (cookie, token): &(String, String),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    let request = client_without_redirects().post(gateway.url("/.portcullis/login"));
    request.header("cookie", cookie).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn with_redis_down_logins_fail_closed_unless_the_gateway_may_decide_alone() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    let mut redis = RedisServer::start();
    let app = ExpressApp::start();
    let config = |on_error: &str| {
        format!(
            "[portal]\nusers = \"{}\"\nsecond_factor = \"optional\"\n[store]\nredis = \"{}\"\non_error = \"{on_error}\"\n\
             [[access]]\npath = \"/admin\"\nlogin = true\n",
            users.display(),
            redis.url()
        )
    };
    let closed = Gateway::start(&app.url(), &config("fail_open"));
    let local = Gateway::start(&app.url(), &config("local"));
    let forms = [login_form(&closed).await, login_form(&local).await];
    redis.kill();
    let mut statuses = Vec::new();
    for (gateway, form) in [&closed, &local].into_iter().zip(&forms) {
        // The user has a TOTP secret, so the password step leads to the code.
        let response = post_login(gateway, form, &[("username", "ada"), ("password", PASSWORD)]).await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        [503, 303],
        "fail_open never opens a login; local decides alone"
    );
    closed.process.stdout.wait_for("\"rule\":\"store_unavailable\"");
}

#[tokio::test]
async fn a_user_without_a_second_factor_enrols_one_from_the_portal() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    // Bob has a password only; the portal requires a second factor.
    assert!(user_add(&users, &["bob"], PASSWORD).status.success());
    give_to_nobody(&dir.0);
    let app = ExpressApp::start();
    let gateway = Gateway::start(
        &app.url(),
        &format!(
            "[portal]\nusers = \"{}\"\n[[access]]\npath = \"/admin\"\nlogin = true\n",
            users.display()
        ),
    );
    let browser = crate::harness::client_without_redirects();
    let form = login_form(&gateway).await;
    let (csrf_cookie, token) = &form;
    let bob = [("username", "bob"), ("password", PASSWORD)];
    let response = post_login(&gateway, &form, &[bob[0], bob[1], ("rd", "/admin")]).await;
    assert_eq!(response.headers()["location"], "/.portcullis/enrol?rd=%2Fadmin");
    let session = set_cookie(&response);
    let cookies = format!("{csrf_cookie}; {session}");
    let half = get_with_cookie(&gateway.url("/admin"), &cookies).await;
    assert_eq!(half.status(), 401, "the password alone is not a login");

    let page = get_with_cookie(&gateway.url("/.portcullis/enrol?rd=/admin"), &cookies).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("<svg") && page.contains("QR code"), "{page}");
    let secret = page
        .split("Key: <code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap(),
        None,
        "bob".into(),
    )
    .unwrap();
    let wrong = browser
        .post(gateway.url("/.portcullis/enrol"))
        .header("cookie", &cookies)
        .form(&[("csrf", token.as_str()), ("code", "000000"), ("rd", "/admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // Kept: the same code is tried again below.
    let used = totp.generate_current().unwrap();
    let done = browser
        .post(gateway.url("/.portcullis/enrol"))
        .header("cookie", &cookies)
        .form(&[("csrf", token.as_str()), ("code", used.as_str()), ("rd", "/admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.headers()["location"], "/admin");
    let full = set_cookie(&done);
    assert_ne!(full, session, "a new session id once both factors are checked");
    let admin = get_with_cookie(&gateway.url("/admin"), &full).await;
    assert!(admin.text().await.unwrap().contains("<p id=\"user\">bob</p>"));
    let written = std::fs::read_to_string(&users).unwrap();
    assert!(written.contains(&format!("totp = \"{secret}\"")), "{written}");
    let old = get_with_cookie(&gateway.url("/admin"), &cookies).await;
    assert_eq!(old.status(), 401, "the half-way session ended with the rotation");

    // Bob now has a second factor: the code that turned it on is spent.
    let again = post_login(&gateway, &form, &bob).await;
    assert_eq!(again.headers()["location"], "/.portcullis/totp?rd=%2F");
    let session = set_cookie(&again);
    let replay = browser
        .post(gateway.url("/.portcullis/totp"))
        .header("cookie", format!("{csrf_cookie}; {session}"))
        .form(&[("csrf", token.as_str()), ("code", used.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("used already"));
    gateway.process.stdout.wait_for("\"rule\":\"code_replayed\"");
}

#[tokio::test]
async fn failed_portal_logins_are_generic_and_blocked_by_the_login_protection() {
    let dir = TempDir::new();
    let (users, _) = users_file(&dir.0);
    let app = ExpressApp::start();
    let gateway = Gateway::start(&app.url(), &format!("[portal]\nusers = \"{}\"\n", users.display()));
    let form = login_form(&gateway).await;
    let attempt = |user: &'static str, password: &'static str| {
        let (gateway, form) = (&gateway, &form);
        async move {
            let response = post_login(gateway, form, &[("username", user), ("password", password)]).await;
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (unknown_status, unknown_page) = attempt("nobody-here", "whatever").await;
    let (known_status, known_page) = attempt("ada", "whatever").await;
    assert_eq!((unknown_status, known_status), (401, 401));
    let message = |page: &str| {
        page.split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        message(&unknown_page),
        message(&known_page),
        "the same words whether the user exists or not"
    );
    for _ in 0..9 {
        assert_eq!(attempt("ada", "whatever").await.0, 401);
    }
    let (status, _) = attempt("ada", PASSWORD).await;
    assert_eq!(
        status, 429,
        "ten failures in a row block the user and address, the right password included"
    );
}

#[test]
fn weak_passwords_and_bad_users_files_are_refused_with_their_reason() {
    let dir = TempDir::new();
    let users = dir.0.join("users.toml");
    for (password, reason) in [("short", "at least 12"), ("1qaz2wsx3edc", "common")] {
        let output = user_add(&users, &["ada"], password);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains(reason), "{output:?}");
    }
    assert!(!users.exists(), "nothing written");
    std::fs::write(
        &users,
        "[ada]\npassword = \"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"\n",
    )
    .unwrap();
    let config = dir.0.join("portcullis.toml");
    std::fs::write(&config, "[upstream]\nurl = \"http://127.0.0.1:9\"\n[portal]\n").unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let error = String::from_utf8_lossy(&check.stderr);
    assert!(error.contains("users.toml:2: key `ada.password`"), "{error}");
}
