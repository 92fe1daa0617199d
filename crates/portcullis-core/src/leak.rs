//! Recognises error bodies that leak internals, and frameworks' default 404 pages.
//!
//! The patterns are regular expressions from the `regex` crate, which runs in
//! time linear in the input: an upstream body cannot make them backtrack.

use std::sync::LazyLock;

use regex::bytes::RegexSet;

/// What an error body gave away, by rule name (used in security events).
const LEAK_RULES: &[(&str, &str)] = &[
    // JavaScript, Java, C#: `at fn (/abs/app.js:12:3)`, `at /abs/app.js:12:3`, `at a.B.c(B.java:42)`.
    (
        "stack_trace",
        r"\bat (?:[\w.$<>\[\] ]+ \()?(?:/|[A-Za-z]:\\|file://|node:)[^\s()<>]*:\d+(?::\d+)?",
    ),
    ("stack_trace", r"\bat [\w.$]+\([\w$]+\.(?:java|kt|scala):\d+\)"),
    ("stack_trace", r" in [A-Za-z]:\\[^\s<>]+:line \d+"),
    // Python, PHP, Ruby.
    (
        "stack_trace",
        r#"Traceback \(most recent call last\)|File "[^"]+", line \d+"#,
    ),
    ("stack_trace", r"#\d+ (?:/|[A-Za-z]:\\)[^\s<>]+\(\d+\)|\.rb:\d+:in `"),
    (
        "exception",
        r"\b(?:TypeError|ReferenceError|SyntaxError|RangeError|EvalError|URIError|AssertionError|UnhandledPromiseRejection\w*): ",
    ),
    (
        "exception",
        r"\bjava\.[\w.]+(?:Exception|Error)\b|Exception in thread |Fatal error: Uncaught |System\.[\w.]*Exception\b",
    ),
    (
        "file_path",
        r#"(?:^|[\s"'(=:>])/(?:home|root|usr|var|opt|srv|app|work|tmp|etc|Users|mnt|data|proc)/[\w.\-]+/[\w.\-/]+"#,
    ),
    (
        "file_path",
        r"[A-Za-z]:\\(?:Users|inetpub|Windows|Program Files|www|app|src)\\|node_modules/",
    ),
    (
        "sql_error",
        r"(?i)you have an error in your sql syntax|syntax error at or near|unterminated quoted string|unclosed quotation mark",
    ),
    (
        "sql_error",
        r"\bER_[A-Z_]{3,}\b|SQLSTATE\[|\bORA-\d{5}\b|SQLITE_[A-Z]+|\bPG::\w+Error|SequelizeDatabaseError|QueryFailedError|PrismaClient\w*Error|MongoServerError|duplicate key value violates",
    ),
];

/// Default "not found" pages of web frameworks: they name the stack and echo the path.
const FRAMEWORK_404: &[&str] = &[
    r"Cannot (?:GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|CONNECT|TRACE|[A-Z]+) /", // Express, Connect
    r"<title>Page not found at /",                                               // Django (debug)
    r"No route matches \[",                                                      // Rails
    r"Whitelabel Error Page",                                                    // Spring Boot
    r"Server Error in '/' Application",                                          // ASP.NET
    r"<h1>Not Found</h1>\s*<p>The requested URL",                                // Flask, Apache
];

static LEAKS: LazyLock<RegexSet> = LazyLock::new(|| {
    // The patterns are constants checked by the tests below.
    RegexSet::new(LEAK_RULES.iter().map(|(_, pattern)| pattern)).expect("leak patterns compile")
});

static NOT_FOUND_PAGES: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(FRAMEWORK_404).expect("404 patterns compile"));

/// The first leak rule an error body matches, if any.
pub fn find_leak(body: &[u8]) -> Option<&'static str> {
    LEAKS.matches(body).iter().next().map(|index| LEAK_RULES[index].0)
}

/// True when a 404 body is a framework's default page.
pub fn is_framework_404(body: &[u8]) -> bool {
    NOT_FOUND_PAGES.is_match(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn express_stack_traces_are_leaks() {
        let express = b"<pre>TypeError: Cannot read properties of undefined<br> &nbsp; &nbsp;at /srv/shop/app.js:95:27<br> &nbsp; &nbsp;at Layer.handleRequest (/srv/shop/node_modules/router/lib/layer.js:169:33)</pre>";
        assert_eq!(find_leak(express), Some("stack_trace"));
        assert_eq!(find_leak(b"    at fn (/abs/path/app.js:12:3)"), Some("stack_trace"));
        assert_eq!(
            find_leak(b"at processTicksAndRejections (node:internal/process/task_queues:95:5)"),
            Some("stack_trace")
        );
    }

    #[test]
    fn other_stacks_paths_and_sql_are_leaks() {
        assert_eq!(
            find_leak(b"at com.shop.Orders.total(Orders.java:42)"),
            Some("stack_trace")
        );
        assert_eq!(
            find_leak(b"Traceback (most recent call last):\n  File \"/app/x.py\", line 3"),
            Some("stack_trace")
        );
        assert_eq!(
            find_leak(b"Error reading /home/deploy/shop/config.json"),
            Some("file_path")
        );
        assert_eq!(
            find_leak(b"ER_PARSE_ERROR: You have an error in your SQL syntax"),
            Some("sql_error")
        );
        assert_eq!(find_leak(b"ERROR: syntax error at or near \"FROM\""), Some("sql_error"));
        assert_eq!(find_leak(b"ReferenceError: user is not defined"), Some("exception"));
    }

    #[test]
    fn designed_error_pages_are_not_leaks() {
        for page in [
            &b"<h1>We will be back soon</h1><p>Our shop is under maintenance.</p>"[..],
            b"{\"error\":\"internal error\",\"request_id\":\"abc\"}",
            b"<p>Something went wrong. Please try again at 10:30.</p><a href=\"/help/contact\">Contact us</a>",
            b"<img src=\"/images/error.png\"> <a href=\"https://example.com/status\">status</a>",
        ] {
            assert_eq!(find_leak(page), None, "{}", String::from_utf8_lossy(page));
        }
    }

    #[test]
    fn framework_404_pages() {
        assert!(is_framework_404(b"<pre>Cannot GET /no-such-page</pre>"));
        assert!(is_framework_404(b"<pre>Cannot POST /api</pre>"));
        assert!(!is_framework_404(b"{\"error\":\"not found\"}"));
        assert!(!is_framework_404(b"<h1>Sorry, we cannot find that page</h1>"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = find_leak(&body);
            let _ = is_framework_404(&body);
        }

        // A stack frame stays a leak wherever it sits in a page.
        #[test]
        fn frames_are_found_anywhere(prefix in "[a-zA-Z <>/]{0,200}", line in 1u32..100000) {
            let body = format!("{prefix}\n    at handler (/var/app/server.js:{line}:7)\n");
            prop_assert_eq!(find_leak(body.as_bytes()), Some("stack_trace"));
        }
    }
}
