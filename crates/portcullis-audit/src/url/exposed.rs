//! C13: files and pages that should never be served: secrets, the
//! repository, the project's manifest, server status pages. A path counts
//! only if it answers 200 with that file's own content (a single-page app
//! answers every path with its index).

use url::Url;

use super::{crawl, Answer, Client};
use crate::report::{Evidence, Finding, Item, Severity};

struct Exposure {
    path: &'static str,
    severity: Severity,
    title: &'static str,
    /// The file's own content, not a catch-all page.
    looks_like: fn(&str) -> bool,
}

const EXPOSURES: [Exposure; 8] = [
    Exposure {
        path: "/.env",
        severity: Severity::Critical,
        title: "`/.env` (the app's secrets) is served",
        looks_like: env_file,
    },
    Exposure {
        path: "/.git/config",
        severity: Severity::Critical,
        title: "`/.git/config` is served: the repository can be downloaded",
        looks_like: |body| body.contains("[core]"),
    },
    Exposure {
        path: "/.git/HEAD",
        severity: Severity::Critical,
        title: "`/.git/HEAD` is served: the repository can be downloaded",
        looks_like: |body| body.starts_with("ref: refs/"),
    },
    Exposure {
        path: "/.npmrc",
        severity: Severity::Critical,
        title: "`/.npmrc` (registry credentials) is served",
        looks_like: |body| body.contains("_authToken") || body.contains("registry="),
    },
    Exposure {
        path: "/package.json",
        severity: Severity::Medium,
        title: "`/package.json` is served: every dependency and its version",
        looks_like: |body| body.trim_start().starts_with('{') && body.contains("\"dependencies\""),
    },
    Exposure {
        path: "/node_modules/",
        severity: Severity::Medium,
        title: "`/node_modules/` is listed",
        looks_like: |body| body.contains("Index of") || body.contains("express/"),
    },
    Exposure {
        path: "/admin",
        severity: Severity::Medium,
        title: "`/admin` answers without asking for credentials",
        // A login page is what it should answer.
        looks_like: |body| !body.to_ascii_lowercase().contains("type=\"password\"") && !body.trim().is_empty(),
    },
    Exposure {
        path: "/server-status",
        severity: Severity::Medium,
        title: "`/server-status` is public",
        looks_like: |body| body.contains("Server Status") || body.contains("Server uptime"),
    },
];

pub async fn check(client: &Client) -> Vec<Finding> {
    let mut findings = source_maps(client).await;
    for exposure in &EXPOSURES {
        let Ok(answer) = client.get(exposure.path).await else {
            continue;
        };
        if answer.status == reqwest::StatusCode::OK && (exposure.looks_like)(&answer.body) {
            findings.push(Finding {
                rule: "exposed.path",
                item: Item::C13,
                severity: exposure.severity,
                title: exposure.title.into(),
                evidence: Evidence::at(&answer.url, first_lines(&answer)),
                fix: format!(
                    "serve only a public directory (express.static('public')), never the project root; or deny `{}` in portcullis with [[access]]",
                    exposure.path
                ),
            });
        }
    }
    findings
}

/// The source maps of the scripts the crawl saw: the original source, with
/// its comments and file names.
async fn source_maps(client: &Client) -> Vec<Finding> {
    let scripts = crawl::on_pages(client, &client.answers(), crawl::scripts, |script: &Url| script);
    let mut findings = Vec::new();
    for script in scripts.into_iter().take(MAX_SOURCE_MAPS) {
        let Ok(answer) = client.get(&format!("{}.map", script.path())).await else {
            continue;
        };
        if answer.status == reqwest::StatusCode::OK && answer.body.contains("\"mappings\"") {
            findings.push(Finding {
                rule: "exposed.source-map",
                item: Item::C13,
                severity: Severity::Low,
                title: format!("`{}.map` gives away the script's original source", script.path()),
                evidence: Evidence::at(&answer.url, answer.body.chars().take(120).collect::<String>()),
                fix: "build without public source maps (devtool: 'hidden-source-map' in webpack, build.sourcemap = 'hidden' in Vite), or deny `*.map` in portcullis with [[access]]".into(),
            });
        }
    }
    findings
}

/// Scripts whose maps are asked for, at most.
const MAX_SOURCE_MAPS: usize = 10;

/// `NAME=value` lines, the format dotenv reads.
fn env_file(body: &str) -> bool {
    body.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .all(|line| {
            line.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
        })
        && body.contains('=')
}

/// The first lines of the body, with secrets' values cut, as evidence.
fn first_lines(answer: &Answer) -> String {
    answer
        .body
        .lines()
        .take(3)
        .map(|line| match line.split_once('=') {
            Some((name, _)) if answer.url.ends_with("/.env") => format!("{name}=…"),
            _ => line.chars().take(120).collect(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_told_from_pages() {
        assert!(env_file("DB_PASSWORD=hunter2\n# comment\nAPI_KEY=abc\n"));
        assert!(!env_file("<!doctype html><html>"));
        assert!(!env_file(""));
    }
}
