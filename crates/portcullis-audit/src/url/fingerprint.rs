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
        findings.extend(default_404(&missing));
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

/// Frameworks' and servers' own 404 pages, by a phrase only they write.
/// More specific first: NestJS's JSON also says `Cannot GET`.
const DEFAULT_404: [(&str, &str); 13] = [
    ("NestJS", "\"statusCode\":404,\"message\":\"Cannot GET"),
    ("Express", "Cannot GET /"),
    ("Fastify", "\"message\":\"Route GET:/"),
    (
        "hapi",
        "{\"statusCode\":404,\"error\":\"Not Found\",\"message\":\"Not Found\"}",
    ),
    ("Next.js", "This page could not be found"),
    (
        "Django (with DEBUG on, which also lists the app's URL patterns)",
        "Using the URLconf defined in",
    ),
    ("Ruby on Rails", "The page you were looking for doesn"),
    ("Spring Boot", "Whitelabel Error Page"),
    (
        "Flask (Werkzeug)",
        "The requested URL was not found on the server. If you entered the URL manually",
    ),
    ("Apache Tomcat", "Apache Tomcat/"),
    ("ASP.NET", "Server Error in '/' Application"),
    ("nginx", "<center>nginx"),
    ("Apache httpd", "The requested URL was not found on this server."),
];

fn default_404(missing: &Answer) -> Option<Finding> {
    let (framework, phrase) = DEFAULT_404.iter().find(|(_, phrase)| missing.body.contains(phrase))?;
    let line = missing.body.lines().find(|l| l.contains(phrase)).unwrap_or_default();
    Some(Finding {
        rule: "fingerprint.default-404",
        item: Item::C3,
        severity: Severity::Medium,
        title: format!("{framework}'s default 404 page answers unknown paths"),
        evidence: Evidence::at(&missing.url, line.trim().chars().take(160).collect::<String>()),
        fix: "answer unknown paths with a page of your own (in Express, end with app.use((req, res) => res.status(404).send(...))), or put portcullis in front: [errors] replaces framework pages by default".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(body: &str) -> Answer {
        Answer {
            url: "http://127.0.0.1/portcullis-audit-x".into(),
            status: reqwest::StatusCode::NOT_FOUND,
            headers: reqwest::header::HeaderMap::new(),
            body: body.into(),
        }
    }

    fn framework(body: &str) -> Option<String> {
        default_404(&missing(body)).map(|f| f.title)
    }

    #[test]
    fn default_404_pages_are_told_apart() {
        let express = "<!DOCTYPE html>\n<html lang=\"en\">\n<body>\n<pre>Cannot GET /portcullis-audit-x</pre>\n</body>";
        assert!(framework(express).unwrap().starts_with("Express's"));
        let nest = r#"{"statusCode":404,"message":"Cannot GET /portcullis-audit-x","error":"Not Found"}"#;
        assert!(framework(nest).unwrap().starts_with("NestJS's"));
        let fastify = r#"{"message":"Route GET:/portcullis-audit-x not found","error":"Not Found","statusCode":404}"#;
        assert!(framework(fastify).unwrap().starts_with("Fastify's"));
        let nginx = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.22.1</center>";
        assert!(framework(nginx).unwrap().starts_with("nginx's"));
        assert_eq!(framework("<h1>Sorry, nothing here</h1>"), None);
    }
}
