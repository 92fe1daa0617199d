//! C4 and C5: answers that show stack traces, file paths or database
//! errors. Three marked probes that commonly make an Express app fail (a
//! malformed JSON body, which its body parser turns into an error; a bad
//! percent-escape in a path, which its router cannot decode; a method no
//! one defines), then every answer seen is searched.

use std::sync::LazyLock;

use regex::Regex;
use reqwest::Method;

use super::{Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

/// A truncated UTF-8 sequence: `decodeURIComponent` throws on it.
const BAD_ESCAPE: &str = "%E0%A4%A";

pub async fn check(client: &Client) -> Vec<Finding> {
    let _ = client
        .send(
            Method::POST,
            "/",
            &[],
            Some(("application/json", "{\"portcullis-audit\":".into())),
        )
        .await;
    // Under a path the crawl met, where a route parameter may be decoded.
    let deepest = client
        .answers()
        .iter()
        .filter_map(|a| url::Url::parse(&a.url).ok())
        .filter(|u| u.origin() == client.base().origin())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .max_by_key(|p| p.matches('/').count())
        .unwrap_or_default();
    let _ = client.get(&format!("{deepest}/{BAD_ESCAPE}")).await;
    if let Ok(method) = Method::from_bytes(b"PORTCULLIS-AUDIT") {
        let _ = client.send(method, "/", &[], None).await;
    }
    let mut findings: Vec<Finding> = Vec::new();
    for answer in client.answers() {
        for (rule, title, excerpt) in leaks_in(&answer) {
            // A path alone says where to look; a trace or a query says how.
            let severity = if rule == "leaks.file-path" {
                Severity::Medium
            } else {
                Severity::High
            };
            if findings.iter().any(|f| f.rule == rule) {
                continue;
            }
            findings.push(Finding {
                rule,
                item: Item::C4,
                severity,
                title: title.into(),
                evidence: Evidence::at(&answer.url, excerpt),
                fix: "run with NODE_ENV=production and end the app with an error handler (app.use((err, req, res, next) => res.status(500).send('...'))), or put portcullis in front: [errors] replaces leaking answers by default".into(),
            });
        }
    }
    findings
}

/// What `answer` gives away: a stack trace, or database error text.
fn leaks_in(answer: &Answer) -> Vec<(&'static str, &'static str, String)> {
    let mut found = Vec::new();
    let body = &answer.body;
    // `    at parse (/app/node_modules/body-parser/lib/types/json.js:92:19)`,
    // one a line, or one a `<br>` in Express's HTML error page.
    let frames: Vec<&str> = body
        .lines()
        .flat_map(|line| line.split("<br>"))
        .map(without_indent)
        .filter(|l| l.starts_with("at ") && stack_location(l))
        .take(3)
        .collect();
    if !frames.is_empty() {
        found.push((
            "leaks.stack-trace",
            "Error answers show a stack trace",
            frames.join("\n"),
        ));
    }
    const DATABASE_ERRORS: [&str; 7] = [
        "You have an error in your SQL syntax",
        "ER_PARSE_ERROR",
        "SQLITE_ERROR",
        "syntax error at or near",
        "ORA-0",
        "SequelizeDatabaseError",
        "MongoServerError",
    ];
    if let Some(line) = body.lines().find(|l| DATABASE_ERRORS.iter().any(|e| l.contains(e))) {
        found.push((
            "leaks.database-error",
            "Answers show database error text",
            excerpt(line),
        ));
    }
    // A frame names its file already; without one, a path on its own in an
    // error answer (`ENOENT: no such file or directory, open
    // '/srv/app/views/x.ejs'`), not a page's own `src="/app/main.js"`.
    if frames.is_empty() && answer.status.as_u16() >= 400 {
        let in_attribute = |at: usize| body[..at].trim_end_matches(['"', '\'']).ends_with('=');
        if let Some(path) = FILE_PATH.find_iter(body).find(|m| !in_attribute(m.start())) {
            found.push((
                "leaks.file-path",
                "Answers show a file path on the server",
                excerpt(path.as_str()),
            ));
        }
    }
    found
}

/// An absolute path to a source, template or config file, Unix or Windows.
static FILE_PATH: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern, checked by the tests below.
    Regex::new(
        r"(?:/(?:home|srv|var|usr|opt|app|root|Users|tmp|workspace)/|[A-Za-z]:\\)[\w.@\-/\\]*\.(?:js|mjs|cjs|ts|jsx|tsx|json|ejs|pug|hbs|env)\b",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// Spaces and `&nbsp;`s before a line's text.
fn without_indent(line: &str) -> &str {
    let mut line = line.trim_start();
    while let Some(rest) = line.strip_prefix("&nbsp;") {
        line = rest.trim_start();
    }
    line
}

/// `(/srv/app/x.js:12:5)`, `file:///app/x.mjs:3:1`: a frame that names its
/// file, line and column.
fn stack_location(frame: &str) -> bool {
    // The last frame of Express's page ends in `</pre>`.
    let location = frame.trim_end().trim_end_matches("</pre>").trim_end_matches(')');
    let mut parts = location.rsplit(':');
    let number = |part: Option<&str>| part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next()) && number(parts.next())
}

fn excerpt(line: &str) -> String {
    line.trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Answer {
        Answer {
            url: "http://127.0.0.1/".into(),
            status: reqwest::StatusCode::BAD_REQUEST,
            headers: Default::default(),
            body: body.into(),
        }
    }

    #[test]
    fn stack_frames_and_database_errors_are_found() {
        let express = "<pre>SyntaxError: Unexpected end of JSON input<br> &nbsp; &nbsp;at JSON.parse (&lt;anonymous&gt;)<br> &nbsp; &nbsp;at parse (/app/node_modules/body-parser/lib/types/json.js:92:19)</pre>";
        let found = leaks_in(&answer(express));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].2.contains("json.js:92:19"));
        let sql = leaks_in(&answer("ER_PARSE_ERROR: You have an error in your SQL syntax near ''"));
        assert_eq!(sql[0].0, "leaks.database-error");
    }

    #[test]
    fn file_paths_outside_stack_traces_are_found() {
        let found = leaks_in(&answer(
            "Error: ENOENT: no such file or directory, open '/srv/shop/views/cart.ejs'",
        ));
        assert_eq!(
            found,
            [(
                "leaks.file-path",
                "Answers show a file path on the server",
                "/srv/shop/views/cart.ejs".to_owned()
            )]
        );
        let windows = leaks_in(&answer("Cannot find module 'C:\\inetpub\\app\\db.js'"));
        assert_eq!(windows[0].2, "C:\\inetpub\\app\\db.js");
        // A page's own URLs are not server paths.
        assert!(leaks_in(&answer("<p>Bad request</p><script src=\"/app/main.js\"></script>")).is_empty());
        let page = Answer {
            status: reqwest::StatusCode::OK,
            ..answer("<p>Files are kept in /srv/shop/data.json</p>")
        };
        assert!(leaks_in(&page).is_empty());
    }

    #[test]
    fn pages_that_talk_about_errors_pass() {
        assert!(leaks_in(&answer("<p>Look at the map. We are at 5:30 today.</p>")).is_empty());
        assert!(leaks_in(&answer("<h1>We will be back soon</h1>")).is_empty());
    }
}
