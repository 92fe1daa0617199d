//! C6: every `Set-Cookie` the audit was sent.

use super::{Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

/// Names the usual session middlewares give their cookie.
const DEFAULT_SESSION_NAMES: [&str; 5] = ["connect.sid", "session", "PHPSESSID", "JSESSIONID", "sid"];

pub fn check(client: &Client, answers: &[Answer]) -> Vec<Finding> {
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
    let session_like = ["sid", "sess", "token", "auth", "jwt"]
        .iter()
        .any(|s| name.to_ascii_lowercase().contains(s));
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
            ["cookies.secure", "cookies.samesite", "cookies.default-name"]
        );
        assert_eq!(
            rules("token=abc; Path=/", false),
            ["cookies.httponly", "cookies.samesite"]
        );
    }

    #[test]
    fn a_hardened_cookie_passes() {
        assert!(rules("__Host-id=abc; Path=/; Secure; HttpOnly; SameSite=Lax", true).is_empty());
        assert!(rules("theme=dark; Path=/; Secure; SameSite=Lax", true).is_empty());
    }
}
