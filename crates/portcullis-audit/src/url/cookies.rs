//! C6: every `Set-Cookie` the audit was sent.

use std::sync::Arc;

use super::{Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

/// Names the usual session middlewares give their cookie.
const DEFAULT_SESSION_NAMES: [&str; 5] = ["connect.sid", "session", "PHPSESSID", "JSESSIONID", "sid"];

pub fn check(client: &Client, answers: &[Arc<Answer>]) -> Vec<Finding> {
    let https = client.base().scheme() == "https";
    let mut findings: Vec<Finding> = Vec::new();
    for answer in answers {
        for value in answer.headers.get_all("set-cookie") {
            let line = String::from_utf8_lossy(value.as_bytes()).into_owned();
            for (rule, severity, title, fix) in problems(&line, https) {
                let name = cookie_name(&line);
                if findings
                    .iter()
                    .any(|f| f.rule == rule && f.title.contains(&format!("`{name}`")))
                {
                    continue;
                }
                findings.push(Finding {
                    rule,
                    item: Item::C6,
                    severity,
                    title: title.replace("{name}", name),
                    evidence: Evidence::at(&answer.url, format!("Set-Cookie: {line}")),
                    fix: fix.into(),
                });
            }
        }
    }
    findings
}

/// A session that lasts longer than this is a stolen cookie's gift.
const MAX_SESSION_SECS: i64 = 30 * 86_400;

/// Seconds the cookie lives: `Max-Age` wins over `Expires`, as in
/// browsers; `None` for a cookie that ends with the browser session.
fn lifetime_secs(max_age: Option<String>, expires: Option<String>) -> Option<i64> {
    if let Some(seconds) = max_age.and_then(|m| m.parse::<i64>().ok()) {
        return Some(seconds);
    }
    let expires = httpdate::parse_http_date(&expires?).ok()?;
    let now = std::time::SystemTime::now();
    Some(expires.duration_since(now).map_or(0, |d| d.as_secs() as i64))
}

fn cookie_name(line: &str) -> &str {
    line.split(['=', ';']).next().unwrap_or("").trim()
}

/// What is wrong with one `Set-Cookie` line: (rule, severity, title, fix).
fn problems(line: &str, https: bool) -> Vec<(&'static str, Severity, &'static str, &'static str)> {
    let name = cookie_name(line);
    let attributes: Vec<String> = line.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
    let has = |attribute: &str| {
        attributes
            .iter()
            .any(|a| a == attribute || a.starts_with(&format!("{attribute}=")))
    };
    let lower = name.to_ascii_lowercase();
    // CSRF tokens are meant to be read by the page's script.
    let session_like = ["sid", "sess", "token", "auth", "jwt"]
        .iter()
        .any(|s| lower.contains(s))
        && !lower.contains("csrf")
        && !lower.contains("xsrf");
    let value_of = |attribute: &str| {
        line.split(';')
            .skip(1)
            .filter_map(|a| a.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(attribute))
            .map(|(_, value)| value.trim().to_owned())
    };
    let mut found = Vec::new();
    if https && !has("secure") {
        found.push((
            "cookies.secure",
            Severity::Medium,
            "Cookie `{name}` lacks `Secure`",
            "cookie: { secure: true } in express-session, or portcullis in front: [cookies] adds Secure by default",
        ));
    }
    if session_like && !has("httponly") {
        found.push((
            "cookies.httponly",
            Severity::High,
            "Session cookie `{name}` lacks `HttpOnly`: script can read it",
            "cookie: { httpOnly: true }, or portcullis in front: [cookies] adds HttpOnly to session cookies by default",
        ));
    }
    if !has("samesite") {
        found.push((
            "cookies.samesite",
            Severity::Low,
            "Cookie `{name}` has no `SameSite`",
            "cookie: { sameSite: 'lax' }, or portcullis in front: [cookies] sets SameSite=Lax by default",
        ));
    }
    if DEFAULT_SESSION_NAMES.contains(&name) {
        found.push((
            "cookies.default-name",
            Severity::Low,
            "Cookie `{name}` keeps its framework's default name",
            "session({ name: 'id' }) or any name of your own, or portcullis in front: [cookies] renames default session cookies on the wire",
        ));
    }
    if session_like && has("domain") {
        found.push((
            "cookies.domain",
            Severity::Low,
            "Session cookie `{name}` is sent to every subdomain (`Domain` is set)",
            "leave the cookie host-only (no domain option), or portcullis in front: [cookies] renames session cookies to __Host- ones, which cannot have a Domain",
        ));
    }
    if https && session_like && !name.starts_with("__Host-") && !has("domain") {
        found.push((
            "cookies.host-prefix",
            Severity::Info,
            "Session cookie `{name}` could carry the `__Host-` prefix",
            "name it __Host-… with secure: true and path: '/': browsers then refuse it from subdomains and over plain HTTP; portcullis's [cookies] rename does this on the wire",
        ));
    }
    if session_like && lifetime_secs(value_of("max-age"), value_of("expires")).is_some_and(|s| s > MAX_SESSION_SECS) {
        found.push((
            "cookies.lifetime",
            Severity::Low,
            "Session cookie `{name}` outlives a month",
            "end sessions sooner (cookie: { maxAge } of hours, with an idle timeout on the server), or portcullis in front: cookies.max_age_secs caps it",
        ));
    }
    if line.len() > 4093 {
        found.push((
            "cookies.size",
            Severity::Medium,
            "Cookie `{name}` is over 4093 bytes: browsers drop it",
            "keep session data server-side (a store), not in the cookie",
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(line: &str, https: bool) -> Vec<&'static str> {
        problems(line, https).into_iter().map(|p| p.0).collect()
    }

    #[test]
    fn express_session_defaults_are_reported() {
        assert_eq!(
            rules("connect.sid=s%3Aabc.def; Path=/; HttpOnly", true),
            [
                "cookies.secure",
                "cookies.samesite",
                "cookies.default-name",
                "cookies.host-prefix"
            ]
        );
        assert_eq!(
            rules("token=abc; Path=/", false),
            ["cookies.httponly", "cookies.samesite"]
        );
    }

    #[test]
    fn session_scope_and_lifetime_are_reported() {
        assert_eq!(
            rules(
                "sid2=abc; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax",
                true
            ),
            ["cookies.domain"]
        );
        assert_eq!(
            rules(
                "auth=abc; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=31536000",
                true
            ),
            ["cookies.host-prefix", "cookies.lifetime"]
        );
        assert!(rules(
            "auth=abc; Path=/; HttpOnly; SameSite=Lax; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
            false
        )
        .contains(&"cookies.lifetime"));
        // Readable CSRF tokens are the point of the double-submit pattern.
        assert!(rules("csrf-token=abc; Path=/; Secure; SameSite=Strict", true).is_empty());
    }

    #[test]
    fn a_hardened_cookie_passes() {
        assert!(rules("__Host-id=abc; Path=/; Secure; HttpOnly; SameSite=Lax", true).is_empty());
        assert!(rules("theme=dark; Path=/; Secure; SameSite=Lax", true).is_empty());
    }
}
