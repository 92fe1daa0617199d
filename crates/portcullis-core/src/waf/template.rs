//! Server-side template injection: template syntax that evaluates code, in
//! the template languages Node.js apps render (EJS `<%= %>`, Pug `#{}`,
//! Handlebars, Nunjucks and Mustache `{{ }}`, JavaScript template literals
//! `${}`) and those payload lists probe for (Jinja, Twig, Freemarker,
//! Spring EL).
//!
//! A delimiter alone is not an attack (`{{name}}` in a help text); its
//! contents must be code: arithmetic on numbers (`7*7`, the probe), a call,
//! or a reach for the runtime (`constructor`, `process`, `require`, `global`,
//! `__class__`).

use super::{find, Hit};

pub fn inspect(value: &str) -> Option<Hit> {
    if !value.contains(['{', '%', '[', '(', '#', '<']) {
        return None;
    }
    let mut best: Option<Hit> = None;
    for (open, close) in [
        ("<%", "%>"),
        ("{{", "}}"),
        ("#{", "}"),
        ("${", "}"),
        ("{%", "%}"),
        ("*{", "}"),
        ("<#", ">"),
    ] {
        let mut rest = value;
        let mut offset = 0;
        while let Some(start) = find(rest, open) {
            let body_start = start + open.len();
            let body = &rest[body_start..];
            // No close after this open means none after any later one either;
            // the search goes on after the close, so the scan stays linear.
            let Some(end) = find(body, close) else {
                break;
            };
            let score = code_score(&body[..end], open);
            if score > best.as_ref().map_or(0, |b| b.score) {
                best = Some(Hit {
                    score,
                    context: "template expression",
                    at: offset + start,
                });
            }
            let next = body_start + end + close.len();
            offset += next;
            rest = &rest[next..];
        }
    }
    best
}

/// 5 for code that reaches the runtime or computes, 3 for a call, else 0.
fn code_score(body: &str, open: &str) -> u8 {
    // EJS's `<%=`, `<%-` and `<%_` mark how the code's output is printed.
    let body = if open == "<%" {
        body.trim_start_matches(['=', '-', '_'])
    } else {
        body
    };
    let lower = body.to_ascii_lowercase();
    let runtime = RUNTIME.iter().any(|name| lower.contains(name));
    if runtime {
        return 5;
    }
    if arithmetic(&lower) {
        return 5;
    }
    // `<#assign`, `{% import %}`: directives that define or load code.
    if (matches!(open, "<#" | "[#") && lower.starts_with("assign"))
        || (open == "{%" && (lower.contains("import") || lower.contains("include")))
    {
        return 4;
    }
    // `<% code %>` is code in EJS (beyond `<%= name %>`, which only prints a
    // variable); elsewhere a call is.
    let ejs = body.trim();
    if open == "<%" && !ejs.is_empty() && ejs.contains(['(', '.', '=', ';']) {
        return 5;
    }
    // A method called on an object chain, or a filter given arguments:
    // `a.b.c(...)`, `x|filter('system')`, `''.class.mro()`.
    let method = lower.match_indices('(').any(|(at, _)| {
        let name = lower[..at]
            .trim_end()
            .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        name.ends_with('.') || name.ends_with('|')
    });
    if method {
        return 5;
    }
    // `{{self}}`, `{{config}}`, `{{request}}`: the objects SSTI probes start from.
    if is_probe(lower.trim().as_bytes()) {
        return 4;
    }
    if body.contains('(') && body.contains(')') {
        return 3;
    }
    0
}

fn is_probe(word: &[u8]) -> bool {
    matches!(
        word,
        b"self"
            | b"config"
            | b"request"
            | b"app"
            | b"settings"
            | b"this"
            | b"_self"
            | b"$smarty.version"
            | b"dump(app)"
    )
}

/// `7*7`, `7 * '7'`: the probe every scanner sends.
fn arithmetic(body: &str) -> bool {
    let compact: Vec<u8> = body
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'\'' && *b != b'"')
        .collect();
    compact
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && matches!(w[1], b'*' | b'+' | b'/' | b'-' | b'%') && w[2].is_ascii_digit())
        && compact.iter().all(|b| b.is_ascii_digit() || b"*+/-%().".contains(b))
}

/// Names that lead from a template to the process.
const RUNTIME: &[&str] = &[
    "constructor",
    "__proto__",
    "process.",
    "process[",
    "require(",
    "global.",
    "globalthis",
    "mainmodule",
    "child_process",
    "execsync",
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "getruntime",
    "t(java",
    "freemarker.template",
    "lipsum",
    "cycler",
    "self._",
    "config.items",
    "request.application",
    "#with",
    "lookup ",
    "range.constructor",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn score(value: &str) -> u8 {
        inspect(value).map_or(0, |hit| hit.score)
    }

    #[test]
    fn template_code_is_found() {
        for attack in [
            "{{7*7}}",
            "${7*7}",
            "#{7*7}",
            "<%= 7*7 %>",
            "{{constructor.constructor('return process')()}}",
            "<%= global.process.mainModule.require('child_process').execSync('id') %>",
            "#{global.process.mainModule.require('child_process').execSync('id')}",
            "{{''.__class__.__mro__[1].__subclasses__()}}",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
            "{{#with \"s\" as |string|}}",
        ] {
            assert_eq!(score(attack), 5, "{attack}");
        }
    }

    #[test]
    fn braces_in_text_pass() {
        for benign in [
            "Hello {{name}}",
            "${price} total",
            "#{tag}",
            "{ \"a\": 1 }",
            "50% {off}",
            "1-2 {days}",
            "2024-01-05",
            "EJS prints <%= title %>, raw <%- body %>",
        ] {
            assert!(score(benign) < 5, "{benign}");
        }
    }
}
