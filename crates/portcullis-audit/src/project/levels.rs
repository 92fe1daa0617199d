//! `.portcullis-audit.toml` at the project's root: rule levels, as ESLint
//! users set them. A rule (or every rule of a prefix, `"taint.*"`) is
//! turned off or given another severity:
//!
//! ```toml
//! [rules]
//! "code.no-use-strict" = "off"
//! "code.weak-random" = "high"
//! "taint.*" = "critical"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::FileError;
use crate::report::{Finding, Severity};

pub const FILE: &str = ".portcullis-audit.toml";

/// A rule's level: off, or a severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Off,
    Severity(Severity),
}

#[derive(Debug, Default)]
pub struct Levels {
    rules: Vec<(String, Level)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: BTreeMap<String, String>,
}

impl Levels {
    /// The project's levels; none when it has no config file.
    pub fn load(dir: &Path) -> Result<Self, FileError> {
        let path = dir.join(FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Self::default());
        };
        Self::parse(&path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let file: File = toml::from_str(text)
            .map_err(|e| FileError::new(path, e.span().map(|s| line_of(s.start)), e.message().to_owned()))?;
        let mut rules = Vec::new();
        for (rule, level) in file.rules {
            let parsed = if level.eq_ignore_ascii_case("off") {
                Level::Off
            } else {
                match level.parse::<Severity>() {
                    Ok(severity) => Level::Severity(severity),
                    Err(_) => {
                        let line = text.find(&format!("\"{rule}\"")).map(line_of);
                        let reason = format!("key `rules.\"{rule}\"`: `{level}` is not a level (allowed: off, info, low, medium, high, critical)");
                        return Err(FileError::new(path, line, reason));
                    }
                }
            };
            rules.push((rule, parsed));
        }
        // Exact names before prefixes, longer prefixes before shorter.
        rules.sort_by_key(|(rule, _)| (rule.ends_with('*'), std::cmp::Reverse(rule.len())));
        Ok(Self { rules })
    }

    /// `findings` with the levels applied: some dropped, some re-rated.
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        findings
            .into_iter()
            .filter_map(|mut finding| {
                let level = self.rules.iter().find(|(rule, _)| match rule.strip_suffix('*') {
                    Some(prefix) => finding.rule.starts_with(prefix),
                    None => finding.rule == rule,
                });
                match level {
                    Some((_, Level::Off)) => None,
                    Some((_, Level::Severity(severity))) => {
                        finding.severity = *severity;
                        Some(finding)
                    }
                    None => Some(finding),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Evidence, Item};

    fn finding(rule: &'static str) -> Finding {
        Finding {
            rule,
            item: Item::C17,
            severity: Severity::Medium,
            title: String::new(),
            evidence: Evidence::at("app.js", ""),
            fix: String::new(),
        }
    }

    #[test]
    fn levels_turn_rules_off_and_rerate_them() {
        let levels = Levels::parse(
            Path::new(FILE),
            "[rules]\n\"code.no-use-strict\" = \"off\"\n\"taint.*\" = \"critical\"\n\"taint.open-redirect\" = \"low\"\n",
        )
        .unwrap();
        let out = levels.apply(vec![
            finding("code.no-use-strict"),
            finding("taint.xss"),
            finding("taint.open-redirect"),
            finding("code.eval"),
        ]);
        let rated: Vec<(&str, Severity)> = out.iter().map(|f| (f.rule, f.severity)).collect();
        assert_eq!(
            rated,
            [
                ("taint.xss", Severity::Critical),
                ("taint.open-redirect", Severity::Low),
                ("code.eval", Severity::Medium)
            ]
        );
    }

    #[test]
    fn bad_levels_name_the_line_key_and_allowed_values() {
        let error = Levels::parse(Path::new(FILE), "[rules]\n\"code.eval\" = \"loud\"\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(
            error
                .to_string()
                .contains("allowed: off, info, low, medium, high, critical"),
            "{error}"
        );
        let error = Levels::parse(Path::new(FILE), "[rulez]\nx = 1\n").unwrap_err();
        assert_eq!(error.line, Some(1));
    }
}
