//! C10: does a form accept a POST from another site? For each urlencoded
//! form the crawl found, its own fields (less any CSRF token, which another
//! site cannot know) are posted as a browser would from elsewhere: `Origin`
//! and `Referer` of another site, `Sec-Fetch-Site: cross-site`, no cookies.

use std::sync::Arc;

use html5gum::{Token, Tokenizer};
use url::Url;

use super::{crawl, Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

/// Another site, which no name resolves to.
const ELSEWHERE: &str = "https://portcullis-audit.invalid";

/// Forms probed, at most.
const MAX_FORMS: usize = 10;

pub async fn check(client: &Client, answers: &[Arc<Answer>]) -> Vec<Finding> {
    let forms = crawl::on_pages(client, answers, forms_in, |form: &Form| &form.action);
    let mut findings = Vec::new();
    for form in forms.into_iter().take(MAX_FORMS) {
        let fields: Vec<(&str, &str)> = form.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let headers = [
            ("origin", ELSEWHERE),
            ("referer", "https://portcullis-audit.invalid/"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ];
        let Ok(answer) = client.post_form(form.action.as_str(), &headers, &fields).await else {
            continue;
        };
        // 2xx and 3xx: accepted. 403 and friends: refused. A 400 or 422 says
        // the fields were wrong, not whether the origin was checked.
        if answer.status.is_success() || answer.status.is_redirection() {
            findings.push(Finding {
                rule: "csrf.cross-site-post-accepted",
                item: Item::C10,
                severity: Severity::High,
                title: format!("`{}` accepts a form POST from another site", form.action.path()),
                evidence: Evidence::at(
                    &answer.url,
                    format!(
                        "POST {} with Origin: {ELSEWHERE}, Sec-Fetch-Site: cross-site -> {}",
                        form.action.path(),
                        answer.status.as_u16()
                    ),
                ),
                fix: "refuse cross-site state-changing requests (check Origin or Sec-Fetch-Site, or a CSRF token: csurf is deprecated), or put portcullis in front: [csrf] refuses them by default".into(),
            });
        }
    }
    findings
}

/// A POST form that a browser would send urlencoded.
#[derive(Debug, PartialEq)]
struct Form {
    action: Url,
    fields: Vec<(String, String)>,
}

/// The urlencoded POST forms of a page, with their fields' default values.
fn forms_in(page: &Url, html: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut current: Option<Form> = None;
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) if &tag.name[..] == b"form" => {
                let attribute = |name: &[u8]| {
                    tag.attributes
                        .get(name)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                let post = attribute(b"method").is_some_and(|m| m.eq_ignore_ascii_case("post"));
                let urlencoded =
                    attribute(b"enctype").is_none_or(|e| e.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
                let action = page.join(&attribute(b"action").unwrap_or_default()).ok();
                current = match (post && urlencoded, action) {
                    (true, Some(action)) => Some(Form {
                        action,
                        fields: Vec::new(),
                    }),
                    _ => None,
                };
            }
            Token::StartTag(tag) if matches!(&tag.name[..], b"input" | b"textarea" | b"select") => {
                let Some(form) = current.as_mut() else {
                    continue;
                };
                let attribute = |name: &[u8]| {
                    tag.attributes
                        .get(name)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                let kind = attribute(b"type").unwrap_or_default().to_ascii_lowercase();
                let Some(name) = attribute(b"name").filter(|n| !n.is_empty()) else {
                    continue;
                };
                if matches!(kind.as_str(), "submit" | "button" | "reset" | "file" | "image") || csrf_token(&name) {
                    continue;
                }
                form.fields.push((name, attribute(b"value").unwrap_or_default()));
            }
            Token::EndTag(tag) if &tag.name[..] == b"form" => forms.extend(current.take()),
            _ => {}
        }
    }
    forms.extend(current);
    forms
}

/// The names frameworks give the token another site cannot know.
fn csrf_token(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("csrf")
        || lower.contains("xsrf")
        || lower == "authenticity_token"
        || lower.contains("requestverificationtoken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_forms_and_their_fields_are_read_without_tokens_or_files() {
        let page = Url::parse("http://127.0.0.1:3000/contact").unwrap();
        let html = r#"<form method="post" action="/send"><input name="_csrf" type="hidden" value="t">
            <input name="name" value="Ada"><textarea name="message"></textarea><button type=submit>Go</button></form>
            <form method="post" action="/upload" enctype="multipart/form-data"><input type=file name=f></form>
            <form action="/search"><input name=q></form>"#;
        assert_eq!(
            forms_in(&page, html),
            [Form {
                action: Url::parse("http://127.0.0.1:3000/send").unwrap(),
                fields: vec![("name".into(), "Ada".into()), ("message".into(), String::new())],
            }]
        );
    }
}
