//! C8, with `--active --login PATH` only: do failed logins ever get a
//! client blocked? One random username, failed again and again, as a
//! password-guessing attack does it.

use reqwest::StatusCode;

use super::Client;
use crate::report::{Evidence, Finding, Item, Severity};

/// Where and how to log in.
#[derive(Debug, Clone)]
pub struct Login {
    pub path: String,
    pub username_field: String,
    pub password_field: String,
    /// Failed attempts made before concluding no block comes.
    pub attempts: usize,
}

pub async fn check(client: &Client, login: &Login) -> Option<Finding> {
    let username = format!("portcullis-audit-{}", uuid::Uuid::new_v4().simple());
    let mut statuses = Vec::new();
    for attempt in 0..login.attempts {
        let password = format!("wrong-{attempt}-{}", uuid::Uuid::new_v4().simple());
        let fields = [
            (login.username_field.as_str(), username.as_str()),
            (login.password_field.as_str(), password.as_str()),
        ];
        let answer = client.post_form(&login.path, &[], &fields).await.ok()?;
        let blocked = matches!(answer.status, StatusCode::TOO_MANY_REQUESTS | StatusCode::LOCKED)
            || answer.headers.contains_key("retry-after");
        if blocked {
            return None;
        }
        statuses.push(answer.status.as_u16());
    }
    statuses.dedup();
    Some(Finding {
        rule: "brute-force.no-block",
        item: Item::C8,
        severity: Severity::High,
        title: format!("{} failed logins in a row for one username are never blocked", login.attempts),
        evidence: Evidence::at(
            client.base().join(&login.path).map(String::from).unwrap_or_default(),
            format!(
                "POST {} with {}={username} and a wrong {} x{}: answered {}, never 429 or Retry-After",
                login.path,
                login.username_field,
                login.password_field,
                login.attempts,
                statuses.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
        fix: format!(
            "block a username and client after consecutive failures (rate-limiter-flexible's login example), or put portcullis in front: [[login]] path = \"{}\"",
            login.path
        ),
    })
}
