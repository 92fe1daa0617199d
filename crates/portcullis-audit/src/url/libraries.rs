//! C16 for the browser side: the JavaScript libraries the pages load (what
//! retire.js looks for), told by their URLs (`jquery-1.8.3.min.js`,
//! `/ajax/libs/jquery/1.8.3/`, `jquery@1.8.3`) and, for the site's own
//! scripts, by the banner inside; each checked against the advisory
//! database the dependency audit reads.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use url::Url;

use super::{crawl, Answer, Client};
use crate::advisories::{Advisories, Database};
use crate::report::{Evidence, Finding, Item, Severity};

/// A library: its npm name, how people call it, and where its version shows.
struct Library {
    package: &'static str,
    title: &'static str,
    url: Regex,
    content: Option<Regex>,
    /// Needed in the content too, when the pattern is a generic one.
    content_also: Option<&'static str>,
}

/// `name` in a path, then its version: `name-1.2.3`, `name/1.2.3/`,
/// `name@1.2.3`, `name.js/1.2.3/` (cdnjs).
fn url_pattern(names: &str) -> Regex {
    Regex::new(&format!(
        r"(?i)(?:^|[/@_.-])(?:{names})(?:\.js)?(?:[-.@/]|/v)v?(\d+\.\d+\.\d+(?:-[0-9a-z.]+)?)"
    ))
    .unwrap_or_else(|_| unreachable!())
}

fn content_pattern(pattern: &str) -> Option<Regex> {
    Some(Regex::new(pattern).unwrap_or_else(|_| unreachable!()))
}

/// The table. Every pattern is a constant checked by the tests below, so
/// the `unreachable!` in the builders cannot be reached.
static LIBRARIES: LazyLock<Vec<Library>> = LazyLock::new(|| {
    vec![
        Library {
            package: "jquery-ui",
            title: "jQuery UI",
            url: url_pattern("jquery-ui|jqueryui"),
            content: content_pattern(r"jQuery UI - v(\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "jquery",
            title: "jQuery",
            url: url_pattern("jquery"),
            content: content_pattern(r"jQuery (?:JavaScript Library )?v(\d+\.\d+\.\d+(?:-[0-9a-z.]+)?)"),
            content_also: None,
        },
        Library {
            package: "angular",
            title: "AngularJS",
            url: url_pattern("angularjs|angular"),
            content: content_pattern(r"@license AngularJS v(\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "bootstrap",
            title: "Bootstrap",
            url: url_pattern("bootstrap|twitter-bootstrap"),
            content: content_pattern(r"Bootstrap v(\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "lodash",
            title: "Lodash",
            url: url_pattern("lodash"),
            content: content_pattern(r#"VERSION\s*=\s*["'](\d+\.\d+\.\d+)["']"#),
            content_also: Some("lodash.com/license"),
        },
        Library {
            package: "underscore",
            title: "Underscore.js",
            url: url_pattern("underscore"),
            content: content_pattern(r"Underscore\.js (\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "moment",
            title: "Moment.js",
            url: url_pattern("moment"),
            content: content_pattern(r"//! version : (\d+\.\d+\.\d+)"),
            content_also: Some("moment"),
        },
        Library {
            package: "handlebars",
            title: "Handlebars",
            url: url_pattern("handlebars"),
            content: content_pattern(r"(?i)handlebars v(\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "vue",
            title: "Vue.js",
            url: url_pattern("vue"),
            content: content_pattern(r"Vue\.js v(\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "dompurify",
            title: "DOMPurify",
            url: url_pattern("dompurify"),
            content: content_pattern(r"@license DOMPurify (\d+\.\d+\.\d+)"),
            content_also: None,
        },
        Library {
            package: "react-dom",
            title: "React DOM",
            url: url_pattern("react-dom"),
            content: None,
            content_also: None,
        },
    ]
});

/// A library found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub package: &'static str,
    pub title: &'static str,
    pub version: String,
    pub script: String,
    /// The text it was told by: the URL, or the banner line.
    pub clue: String,
}

/// What `url` names, from its path alone.
pub fn by_url(url: &Url) -> Option<Found> {
    let path = url.path();
    LIBRARIES.iter().find_map(|library| {
        let version = library.url.captures(path)?.get(1)?.as_str();
        Some(Found {
            package: library.package,
            title: library.title,
            version: version.to_owned(),
            script: url.to_string(),
            clue: path.to_owned(),
        })
    })
}

/// What a script's text says it is.
pub fn by_content(url: &Url, text: &str) -> Option<Found> {
    LIBRARIES.iter().find_map(|library| {
        if library.content_also.is_some_and(|needle| !text.contains(needle)) {
            return None;
        }
        let captures = library.content.as_ref()?.captures(text)?;
        let whole = captures.get(0)?;
        Some(Found {
            package: library.package,
            title: library.title,
            version: captures.get(1)?.as_str().to_owned(),
            script: url.to_string(),
            clue: whole.as_str().chars().take(120).collect(),
        })
    })
}

/// Every library the crawled pages load: other sites' scripts by URL, the
/// site's own by URL or, failing that, by content.
pub async fn find(client: &Client, answers: &[Arc<Answer>]) -> Vec<Found> {
    let mut scripts: Vec<Url> = Vec::new();
    for answer in answers.iter().filter(|a| crawl::is_html(a)) {
        let Ok(page) = Url::parse(&answer.url) else {
            continue;
        };
        for script in crawl::scripts(&page, &answer.body) {
            if !scripts.contains(&script) {
                scripts.push(script);
            }
        }
    }
    let mut found = Vec::new();
    for script in scripts {
        if let Some(library) = by_url(&script) {
            found.push(library);
        } else if script.origin() == client.base().origin() {
            if let Ok(answer) = client.get(script.as_str()).await {
                found.extend(by_content(&script, &answer.body));
            }
        }
    }
    found
}

pub fn check(found: &[Found], advisories: &Advisories) -> Vec<Finding> {
    match advisories {
        Advisories::Loaded(database) => found.iter().filter_map(|f| vulnerable(f, database)).collect(),
        Advisories::Missing(location) if !found.is_empty() => vec![unchecked(found, location)],
        _ => Vec::new(),
    }
}

fn vulnerable(found: &Found, database: &Database) -> Option<Finding> {
    let version = crate::versions::version(&found.version)?;
    let advisories = database.affecting("npm", found.package, &version);
    let worst = advisories.iter().map(|a| a.severity).max()?;
    // The lowest version past every advisory's own fix.
    let upgrade = advisories
        .iter()
        .filter_map(|a| Database::fixed_after(a, found.package, &version))
        .max();
    let ids: Vec<String> = advisories
        .iter()
        .map(|a| match a.aliases.first() {
            Some(alias) => format!("{} ({alias}): {}", a.id, a.summary),
            None => format!("{}: {}", a.id, a.summary),
        })
        .collect();
    Some(Finding {
        rule: "libraries.vulnerable",
        item: Item::C16,
        severity: worst,
        title: format!(
            "{} {} is loaded, with {} known {}",
            found.title,
            found.version,
            advisories.len(),
            if advisories.len() == 1 {
                "vulnerability"
            } else {
                "vulnerabilities"
            }
        ),
        evidence: Evidence::at(&found.script, format!("{}\n{}", found.clue, ids.join("\n"))),
        fix: match upgrade {
            Some(version) => format!(
                "upgrade {} to {version} or later (npm install {}@^{version}, or the CDN URL's version)",
                found.package, found.package
            ),
            None => format!("replace {}: no fixed version is known", found.package),
        },
    })
}

fn unchecked(found: &[Found], location: &std::path::Path) -> Finding {
    let mut libraries: BTreeMap<String, &str> = BTreeMap::new();
    for f in found {
        libraries.insert(format!("{} {}", f.title, f.version), &f.script);
    }
    Finding {
        rule: "libraries.not-checked",
        item: Item::C16,
        severity: Severity::Info,
        title: format!(
            "{} front-end libraries found, not checked: no advisory database",
            libraries.len()
        ),
        evidence: Evidence::at(
            location.display().to_string(),
            libraries
                .iter()
                .map(|(l, s)| format!("{l} ({s})"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        fix:
            "give --advisories DIR (OSV records, such as the GitHub Advisory Database's), or put them at this location"
                .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    fn named(u: &str) -> Option<(&'static str, String)> {
        by_url(&url(u)).map(|f| (f.package, f.version))
    }

    #[test]
    fn the_table_compiles() {
        assert_eq!(LIBRARIES.len(), 11);
    }

    #[test]
    fn libraries_are_told_by_their_urls() {
        let cases = [
            ("https://code.jquery.com/jquery-1.8.3.min.js", Some(("jquery", "1.8.3"))),
            (
                "https://cdnjs.cloudflare.com/ajax/libs/jquery/3.4.1/jquery.min.js",
                Some(("jquery", "3.4.1")),
            ),
            (
                "https://cdn.jsdelivr.net/npm/jquery@3.5.0/dist/jquery.min.js",
                Some(("jquery", "3.5.0")),
            ),
            ("https://code.jquery.com/ui/1.12.1/jquery-ui.min.js", None),
            (
                "https://cdnjs.cloudflare.com/ajax/libs/jqueryui/1.12.1/jquery-ui.min.js",
                Some(("jquery-ui", "1.12.1")),
            ),
            (
                "https://ajax.googleapis.com/ajax/libs/angularjs/1.5.0/angular.min.js",
                Some(("angular", "1.5.0")),
            ),
            (
                "https://cdnjs.cloudflare.com/ajax/libs/angular.js/1.5.0/angular.min.js",
                Some(("angular", "1.5.0")),
            ),
            (
                "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
                Some(("bootstrap", "4.3.1")),
            ),
            (
                "https://unpkg.com/lodash@4.17.15/lodash.min.js",
                Some(("lodash", "4.17.15")),
            ),
            (
                "https://unpkg.com/react-dom@16.14.0/umd/react-dom.production.min.js",
                Some(("react-dom", "16.14.0")),
            ),
            ("http://127.0.0.1:3000/js/app-1.2.3.js", None),
            ("http://127.0.0.1:3000/vendor/jquery.min.js", None),
        ];
        for (u, expected) in cases {
            assert_eq!(named(u), expected.map(|(p, v)| (p, v.to_owned())), "{u}");
        }
    }

    #[test]
    fn libraries_are_told_by_their_banners() {
        let at = url("http://127.0.0.1:3000/vendor/jquery.min.js");
        let jquery = "/*! jQuery v1.8.3 jquery.com | jquery.org/license */\n(function(e,t){...";
        let found = by_content(&at, jquery).unwrap();
        assert_eq!((found.package, found.version.as_str()), ("jquery", "1.8.3"));
        let ui = "/*! jQuery UI - v1.12.1 - 2016-09-14\n* http://jqueryui.com";
        assert_eq!(by_content(&at, ui).unwrap().package, "jquery-ui");
        let lodash = "/** @license Lodash lodash.com/license | Underscore.js 1.8.3 */\n;(function(){var n,t=\"4.17.15\";var VERSION=\"4.17.15\"";
        assert_eq!(by_content(&at, lodash).unwrap().version, "4.17.15");
        assert_eq!(by_content(&at, "var VERSION = '1.0.0';"), None);
    }

    #[test]
    fn vulnerable_versions_are_reported_with_the_upgrade_that_fixes_them() {
        let database = crate::advisories::tests::fixtures();
        let found = by_content(
            &url("http://127.0.0.1:3000/vendor/jquery.min.js"),
            "/*! jQuery v1.8.3 */",
        )
        .unwrap();
        let findings = check(std::slice::from_ref(&found), &Advisories::Loaded(database.clone()));
        assert_eq!(findings.len(), 1);
        let finding = &findings[0];
        assert_eq!(finding.severity, Severity::Medium);
        assert!(finding.evidence.excerpt.contains("CVE-2020-11022"), "{finding:?}");
        assert!(finding.fix.starts_with("upgrade jquery to 3.5.0"), "{}", finding.fix);
        let fixed = Found {
            version: "3.5.0".into(),
            ..found
        };
        assert!(check(&[fixed], &Advisories::Loaded(database)).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_script_text_or_path_is_read_without_panicking(text in "[ -~é]{0,200}") {
            let at = url("http://127.0.0.1/x.js");
            let _ = by_content(&at, &text);
            if let Ok(script) = at.join(&text) {
                let _ = by_url(&script);
            }
        }
    }
}
