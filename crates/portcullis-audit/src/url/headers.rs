//! C2, beyond the Observatory's tests: headers that do harm where they are
//! sent. HSTS over plain HTTP (browsers ignore it there, so it protects
//! nothing and suggests it does), an `X-XSS-Protection` that turns the old
//! filter on (it let attackers remove scripts from pages; `0` is today's
//! advice), and HPKP (a wrong pin locks users out for its max-age).

use super::Answer;
use crate::report::{Evidence, Finding, Item, Severity};

pub fn check(home: &Answer) -> Vec<Finding> {
    let mut findings = Vec::new();
    let header = |name: &str| home.header_line(name);
    if home.url.starts_with("http://") {
        if let Some(line) = header("Strict-Transport-Security") {
            findings.push(finding(
                home,
                "headers.hsts-over-http",
                Severity::Low,
                "`Strict-Transport-Security` is sent over plain HTTP, where browsers ignore it",
                line,
                "send HSTS only on HTTPS answers (helmet does when behind TLS), or put portcullis in front: it sends HSTS only over HTTPS",
            ));
        }
    }
    if let Some(line) = header("X-XSS-Protection").filter(|l| l.rsplit(':').next().is_some_and(|v| v.trim() != "0")) {
        findings.push(finding(
            home,
            "headers.x-xss-protection",
            Severity::Low,
            "`X-XSS-Protection` turns on the old XSS filter, which attackers used to remove a page's scripts",
            line,
            "send `X-XSS-Protection: 0` (helmet's default) and rely on a Content-Security-Policy, or put portcullis in front: [headers] sends 0",
        ));
    }
    for name in ["Public-Key-Pins", "Public-Key-Pins-Report-Only"] {
        if let Some(line) = header(name) {
            findings.push(finding(
                home,
                "headers.hpkp",
                Severity::Medium,
                "HPKP is sent: a wrong or lost pin locks users out for its max-age, and browsers dropped it",
                line,
                "remove `Public-Key-Pins`; rely on Certificate Transparency and CAA records instead",
            ));
        }
    }
    findings
}

fn finding(home: &Answer, rule: &'static str, severity: Severity, title: &str, line: String, fix: &str) -> Finding {
    Finding {
        rule,
        item: Item::C2,
        severity,
        title: title.into(),
        evidence: Evidence::at(&home.url, line),
        fix: fix.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(url: &str, headers: &[(&'static str, &'static str)]) -> Answer {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, reqwest::header::HeaderValue::from_static(value));
        }
        Answer {
            url: url.into(),
            status: reqwest::StatusCode::OK,
            headers: map,
            body: String::new(),
        }
    }

    fn rules(answer: &Answer) -> Vec<&'static str> {
        check(answer).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn harmful_headers_are_reported() {
        let sent = [
            ("strict-transport-security", "max-age=31536000"),
            ("x-xss-protection", "1; mode=block"),
            ("public-key-pins", "pin-sha256=\"x\"; max-age=5184000"),
        ];
        assert_eq!(
            rules(&home("http://127.0.0.1/", &sent)),
            ["headers.hsts-over-http", "headers.x-xss-protection", "headers.hpkp"]
        );
        // Over HTTPS, HSTS is where it belongs.
        assert_eq!(
            rules(&home("https://127.0.0.1/", &sent)),
            ["headers.x-xss-protection", "headers.hpkp"]
        );
    }

    #[test]
    fn helmets_defaults_pass() {
        let sent = [("x-xss-protection", "0"), ("x-content-type-options", "nosniff")];
        assert!(rules(&home("http://127.0.0.1/", &sent)).is_empty());
    }
}
