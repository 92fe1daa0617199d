//! C3: what tells an attacker which framework and versions to aim at: its
//! headers, and its default 404 and error pages.

use super::{Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

pub async fn check(client: &Client, home: &Answer) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(line) = home.header_line("X-Powered-By") {
        findings.push(Finding {
            rule: "fingerprint.x-powered-by",
            item: Item::C3,
            severity: Severity::Low,
            title: "`X-Powered-By` names the framework".into(),
            evidence: Evidence::at(&home.url, line),
            fix: "app.disable('x-powered-by') (helmet does it), or put portcullis in front: [fingerprint] removes it by default".into(),
        });
    }
    if let Some(server) = home.header("server").filter(|s| s.bytes().any(|b| b.is_ascii_digit())) {
        findings.push(Finding {
            rule: "fingerprint.server-version",
            item: Item::C3,
            severity: Severity::Low,
            title: "`Server` gives a version".into(),
            evidence: Evidence::at(&home.url, format!("Server: {server}")),
            fix: "server_tokens off (nginx) or the equivalent, or portcullis in front: [fingerprint] removes `Server` by default".into(),
        });
    }
    // A path no app has: its answer is the framework's own 404 page or not.
    let path = format!("/portcullis-audit-{}", uuid::Uuid::new_v4().simple());
    if let Ok(missing) = client.get(&path).await {
        if let Some(line) = missing.body.lines().find(|l| l.contains("Cannot GET /")) {
            findings.push(Finding {
                rule: "fingerprint.default-404",
                item: Item::C3,
                severity: Severity::Medium,
                title: "Express's default 404 page answers unknown paths".into(),
                evidence: Evidence::at(&missing.url, line.trim()),
                fix: "end the app with app.use((req, res) => res.status(404).send(...)), or put portcullis in front: [errors] replaces framework pages by default".into(),
            });
        }
    }
    // Express's default error handler (finalhandler) answers every error
    // with the same page: `<title>Error</title>`, then the message in `<pre>`.
    let error_page = client
        .answers()
        .into_iter()
        .find(|a| a.status.is_server_error() && a.body.contains("<title>Error</title>") && a.body.contains("<pre>"));
    if let Some(answer) = error_page {
        let line = answer.body.lines().find(|l| l.contains("<pre>")).unwrap_or_default();
        findings.push(Finding {
            rule: "fingerprint.default-error-page",
            item: Item::C3,
            severity: Severity::Low,
            title: "Express's default error page answers server errors".into(),
            evidence: Evidence::at(&answer.url, line.chars().take(120).collect::<String>()),
            fix: "end the app with an error handler of your own (app.use((err, req, res, next) => res.status(500).send(...))), or put portcullis in front: [errors] replaces framework pages by default".into(),
        });
    }
    findings
}
