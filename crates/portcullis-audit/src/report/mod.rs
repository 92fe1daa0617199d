//! One finding model for every audit, and the reports made of them.
//!
//! A finding names the checklist item it fails, how bad it is, what was
//! seen (the evidence: where, and the exact line or excerpt) and how to fix
//! it. The writers ([`text`], [`json`], [`sarif`], [`html`]) only lay
//! findings out.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub mod html;
pub mod json;
pub mod sarif;
pub mod text;

/// The production checklist's items, C1 to C19.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Item {
    C1,
    C2,
    C3,
    C4,
    C5,
    C6,
    C7,
    C8,
    C9,
    C10,
    C11,
    C12,
    C13,
    C14,
    C15,
    C16,
    C17,
    C18,
    C19,
}

impl Item {
    /// What the item asks for, in a few words.
    pub fn title(self) -> &'static str {
        match self {
            Item::C1 => "Transport encrypted with TLS",
            Item::C2 => "Security headers",
            Item::C3 => "No fingerprinting",
            Item::C4 => "No stack traces or internal details",
            Item::C5 => "Crashes that leak nothing",
            Item::C6 => "Hardened session cookies",
            Item::C7 => "Session management",
            Item::C8 => "Brute-force protection",
            Item::C9 => "Rate limits and DoS resistance",
            Item::C10 => "CSRF protection",
            Item::C11 => "All input treated as hostile",
            Item::C12 => "Strong authentication",
            Item::C13 => "Access control",
            Item::C14 => "No data leaks",
            Item::C15 => "Not running as root",
            Item::C16 => "Dependencies without known vulnerabilities",
            Item::C17 => "Secure coding",
            Item::C18 => "Regular expressions safe from ReDoS",
            Item::C19 => "Tested like an attacker",
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How bad a finding is. Ordered: `Info < Low < ... < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A severity name that is not one of [`Severity::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSeverity(pub String);

impl fmt::Display for UnknownSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.name()).collect();
        write!(f, "unknown severity `{}` (allowed: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownSeverity {}

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownSeverity(name.to_owned()))
    }
}

/// What was seen: where (a URL, or a file and line) and the exact excerpt
/// (a header line, a cookie, a few lines of a body or of code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub location: String,
    /// 1-based line in `location`, for findings in files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column of that line (in characters), where the code audit
    /// knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub excerpt: String,
}

impl Evidence {
    pub fn at(location: impl Into<String>, excerpt: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            line: None,
            column: None,
            excerpt: excerpt.into(),
        }
    }

    /// `location`, or `path:line` (`path:line:column`) for a finding in a file.
    pub fn place(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.location),
            (Some(line), None) => format!("{}:{line}", self.location),
            _ => self.location.clone(),
        }
    }

    pub fn in_file(path: impl Into<String>, line: u32, excerpt: impl Into<String>) -> Self {
        Self {
            location: path.into(),
            line: Some(line),
            column: None,
            excerpt: excerpt.into(),
        }
    }

    /// In a file at a `(line, column)`, as `Lines::position` gives them.
    pub fn in_file_at(path: impl Into<String>, (line, column): (u32, u32), excerpt: impl Into<String>) -> Self {
        Self {
            column: Some(column),
            ..Self::in_file(path, line, excerpt)
        }
    }
}

/// One failed (or noted) check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable identifier of the check (`headers.csp.missing`), for
    /// suppressions and for SARIF's rule ids.
    pub rule: &'static str,
    pub item: Item,
    pub severity: Severity,
    pub title: String,
    pub evidence: Evidence,
    /// What to change: the helmet option, the Express line, or the
    /// portcullis config key.
    pub fix: String,
}

/// What was audited and what was found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The URL or the project directory.
    pub target: String,
    /// What the audit covered (`24 requests, 7 pages crawled`), so a reader
    /// knows what "no findings" means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The grade and score, for audits that give one (the live-site
    /// audit, graded like the MDN HTTP Observatory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    pub findings: Vec<Finding>,
}

/// A letter grade and the score it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grade {
    pub grade: String,
    pub score: i32,
    /// The graded tests, the Observatory's names for them and their results.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<GradedTest>,
}

/// One graded test's result and the points it gave or took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradedTest {
    pub test: &'static str,
    pub result: &'static str,
    pub pass: bool,
    pub modifier: i32,
}

impl Report {
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            ..Self::default()
        }
    }

    pub fn add(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Findings in reading order: by checklist item, the worst first
    /// within each, then by rule and location so output is stable.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (
                a.item,
                std::cmp::Reverse(a.severity),
                a.rule,
                &a.evidence.location,
                a.evidence.line,
            )
                .cmp(&(
                    b.item,
                    std::cmp::Reverse(b.severity),
                    b.rule,
                    &b.evidence.location,
                    b.evidence.line,
                ))
        });
    }

    /// How many findings of each severity, worst first.
    pub fn counts(&self) -> Vec<(Severity, usize)> {
        Severity::ALL
            .into_iter()
            .rev()
            .map(|s| (s, self.findings.iter().filter(|f| f.severity == s).count()))
            .collect()
    }

    /// The process's exit code: 1 when a finding reaches `fail_on`, else 0.
    /// (2, for usage and network errors, is the caller's.)
    pub fn exit_code(&self, fail_on: Severity) -> u8 {
        u8::from(self.findings.iter().any(|f| f.severity >= fail_on))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Report {
        let mut report = Report::new("http://127.0.0.1:3000/");
        report.add(Finding {
            rule: "fingerprint.x-powered-by",
            item: Item::C3,
            severity: Severity::Low,
            title: "`X-Powered-By` names the framework".into(),
            evidence: Evidence::at("http://127.0.0.1:3000/", "X-Powered-By: Express"),
            fix: "app.disable('x-powered-by'), or put portcullis in front ([fingerprint] is on by default)".into(),
        });
        report.add(Finding {
            rule: "headers.hsts.missing",
            item: Item::C2,
            severity: Severity::High,
            title: "No `Strict-Transport-Security`".into(),
            evidence: Evidence::at("https://127.0.0.1:8443/", "(no Strict-Transport-Security header)"),
            fix: "helmet.hsts({ maxAge: 31536000, includeSubDomains: true })".into(),
        });
        report.sort();
        report
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        let error = "severe".parse::<Severity>().unwrap_err().to_string();
        assert!(error.contains("info, low, medium, high, critical"), "{error}");
    }

    #[test]
    fn findings_sort_by_item_then_worst_first() {
        let report = sample();
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["headers.hsts.missing", "fingerprint.x-powered-by"]);
    }

    #[test]
    fn exit_code_follows_fail_on() {
        let report = sample();
        assert_eq!(report.exit_code(Severity::High), 1);
        assert_eq!(report.exit_code(Severity::Critical), 0);
        assert_eq!(Report::new("x").exit_code(Severity::Info), 0);
    }
}
