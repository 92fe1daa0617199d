//! C14: JSON answers that send the client more than it needs: password
//! hashes, salts, secrets, tokens, card and social security numbers.

use std::sync::Arc;

use serde_json::Value;

use super::Answer;
use crate::report::{Evidence, Finding, Item, Severity};

pub fn check(answers: &[Arc<Answer>]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    for answer in answers.iter().filter(|a| is_json(a)) {
        let Ok(document) = serde_json::from_str::<Value>(&answer.body) else {
            continue;
        };
        let mut fields = Vec::new();
        sensitive_fields(&document, "", &mut fields);
        for (path, severity) in fields {
            let name = path.rsplit(['.', ']']).next().unwrap_or(&path).to_owned();
            if findings.iter().any(|f| f.title.contains(&format!("`{name}`"))) {
                continue;
            }
            findings.push(Finding {
                rule: "data-leaks.sensitive-field",
                item: Item::C14,
                severity,
                title: format!("JSON answers carry `{name}`"),
                evidence: Evidence::at(&answer.url, format!("{path}: …")),
                fix: format!(
                    "send only the fields the client needs (pick them: res.json({{ id, name }})), or have portcullis drop `{name}` from responses"
                ),
            });
        }
    }
    findings
}

fn is_json(answer: &Answer) -> bool {
    answer.header("content-type").is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("application/json") || t.contains("+json")
    })
}

/// Every key of `value` (at most 10,000 visited) that names something only
/// the server should hold, with its path.
fn sensitive_fields(value: &Value, path: &str, out: &mut Vec<(String, Severity)>) {
    fn walk(value: &Value, path: &str, out: &mut Vec<(String, Severity)>, budget: &mut usize) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    if let Some(severity) = sensitivity(key) {
                        out.push((child_path.clone(), severity));
                    }
                    walk(child, &child_path, out, budget);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), out, budget);
                }
            }
            _ => {}
        }
    }
    walk(value, path, out, &mut 10_000);
}

/// How bad it is to send a field named `key`: credentials and what derives
/// them are high; tokens and keys, which may be the client's own, medium.
fn sensitivity(key: &str) -> Option<Severity> {
    let normalized: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // A form's CSRF token is meant for the client.
    if normalized.contains("csrf") || normalized.contains("xsrf") {
        return None;
    }
    const HIGH: [&str; 10] = [
        "password",
        "passwd",
        "passwordhash",
        "hashedpassword",
        "salt",
        "secret",
        "privatekey",
        "ssn",
        "creditcard",
        "cardnumber",
    ];
    const MEDIUM: [&str; 5] = ["apikey", "accesstoken", "refreshtoken", "token", "sessionid"];
    if HIGH.iter().any(|h| normalized == *h || normalized.ends_with(h)) || normalized == "cvv" {
        return Some(Severity::High);
    }
    MEDIUM
        .iter()
        .any(|m| normalized == *m || normalized.ends_with(m))
        .then_some(Severity::Medium)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_tokens_are_found_with_their_path() {
        let document: Value = serde_json::json!({
            "users": [{ "id": 1, "name": "Ada", "passwordHash": "$argon2id$...", "api_key": "k" }],
            "csrfToken": "meant for the form",
        });
        let mut fields = Vec::new();
        sensitive_fields(&document, "", &mut fields);
        assert_eq!(
            fields,
            [
                ("users[0].api_key".to_owned(), Severity::Medium),
                ("users[0].passwordHash".to_owned(), Severity::High),
            ]
        );
    }

    #[test]
    fn ordinary_fields_pass() {
        for key in [
            "id",
            "name",
            "price",
            "tokenizer_version",
            "password_policy_url",
            "csrf_token",
        ] {
            assert_eq!(sensitivity(key), None, "{key}");
        }
    }
}
