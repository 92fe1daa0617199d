//! The project's own risks, beyond advisories: a Node.js or Express that
//! no longer gets security fixes, packages abandoned or deprecated for
//! security reasons, and dependencies that run code when installed.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::lockfile::Graph;
use crate::report::{Evidence, Finding, Item, Severity};
use crate::versions::{Range, Version};

/// Node.js majors and the day their security fixes end (the Node.js
/// release schedule; odd majors get eight months).
const NODE_END_OF_LIFE: [(u64, (i64, u32, u32)); 13] = [
    (14, (2023, 4, 30)),
    (15, (2021, 6, 1)),
    (16, (2023, 9, 11)),
    (17, (2022, 6, 1)),
    (18, (2025, 4, 30)),
    (19, (2023, 6, 1)),
    (20, (2026, 4, 30)),
    (21, (2024, 6, 1)),
    (22, (2027, 4, 30)),
    (23, (2025, 6, 1)),
    (24, (2028, 4, 30)),
    (25, (2026, 6, 1)),
    (26, (2029, 4, 30)),
];

/// Packages to replace, and why: (name, reason, what instead).
const DEPRECATED: [(&str, &str, &str); 8] = [
    (
        "csurf",
        "deprecated by the Express team in 2022, no longer maintained",
        "portcullis [csrf], or a maintained double-submit or Origin check",
    ),
    (
        "request",
        "deprecated since 2020: no security fixes",
        "fetch (built into Node.js 18+), undici or got",
    ),
    (
        "node-serialize",
        "its unserialize() runs code found in the data (remote code execution)",
        "JSON.parse",
    ),
    ("bcrypt-nodejs", "abandoned since 2013", "argon2 or bcrypt"),
    (
        "crypto",
        "a placeholder for Node.js's built-in module, not the module itself",
        "require('node:crypto')",
    ),
    (
        "jade",
        "renamed to pug in 2016; old versions have code-injection advisories",
        "pug",
    ),
    (
        "node-uuid",
        "renamed to uuid, no longer updated",
        "uuid, or crypto.randomUUID()",
    ),
    (
        "x-xss-protection",
        "turns on the browsers' old XSS filter, which attackers used to remove scripts",
        "send X-XSS-Protection: 0 (helmet's default)",
    ),
];

pub fn check(dir: &Path, manifest: &serde_json::Value, graph: Option<&Graph>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let package_json = dir.join("package.json").display().to_string();
    if let Some(engines) = manifest.pointer("/engines/node").and_then(|v| v.as_str()) {
        findings.extend(node_end_of_life(
            &package_json,
            &format!("\"engines\": {{ \"node\": \"{engines}\" }}"),
            engines,
        ));
    }
    if let Ok(nvmrc) = std::fs::read_to_string(dir.join(".nvmrc")) {
        let wanted = nvmrc.trim().trim_start_matches('v');
        findings.extend(node_end_of_life(
            &dir.join(".nvmrc").display().to_string(),
            nvmrc.trim(),
            wanted,
        ));
    }
    if let Some(graph) = graph {
        findings.extend(out_of_date(&package_json, manifest, graph));
        findings.extend(express_end_of_life(graph));
        findings.extend(deprecated(graph));
        findings.extend(install_scripts(graph));
    }
    findings
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The Node.js majors out of support today that `range` admits.
fn unsupported_majors(range: &Range) -> Vec<u64> {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 86_400);
    let ended = |major: u64| {
        major < 14
            || NODE_END_OF_LIFE
                .iter()
                .any(|(m, (y, mo, d))| *m == major && days_from_civil(*y, *mo, *d) <= today)
    };
    (0..=30u64)
        .filter(|&major| ended(major))
        .filter(|&major| {
            [0, 1, 5, 10, 12, 15, 17, 18, 20, 99, 999_999]
                .iter()
                .flat_map(|&minor| [0, 999_999].map(move |patch| format!("{major}.{minor}.{patch}")))
                .filter_map(|v| Version::parse(&v))
                .any(|v| range.satisfied_by(&v))
        })
        .collect()
}

fn node_end_of_life(location: &str, excerpt: &str, wanted: &str) -> Option<Finding> {
    let range = Range::parse(wanted)?;
    let majors = unsupported_majors(&range);
    let newest = majors.iter().max()?;
    Some(Finding {
        rule: "project.node-end-of-life",
        item: Item::C16,
        severity: Severity::Medium,
        title: format!("The project allows Node.js {newest} or older, which no longer gets security fixes"),
        evidence: Evidence::at(location, excerpt),
        fix: "require a supported Node.js (an even major still in its LTS window: 22 or 24 today), e.g. \"engines\": { \"node\": \">=22\" } and the same in .nvmrc".into(),
    })
}

/// `package.json` asks for what the lockfile does not install: the
/// lockfile is stale, and the audit (like `npm ci`) reads what it says.
fn out_of_date(location: &str, manifest: &serde_json::Value, graph: &Graph) -> Option<Finding> {
    let mut problems = Vec::new();
    for field in ["dependencies", "devDependencies"] {
        let Some(declared) = manifest.get(field).and_then(|d| d.as_object()) else {
            continue;
        };
        for (name, wanted) in declared {
            let wanted = wanted.as_str().unwrap_or("*");
            let locked = graph.packages[0]
                .dependencies
                .iter()
                .map(|&i| &graph.packages[i])
                .find(|p| p.name == *name);
            match locked {
                None => problems.push(format!("{name}@{wanted}: not in the lockfile")),
                Some(package) => {
                    // Tags, URLs and aliases are not ranges to check.
                    let range = Range::parse(wanted);
                    let version = Version::parse(&package.version);
                    if let (Some(range), Some(version)) = (range, version) {
                        if !range.satisfied_by(&version) {
                            problems.push(format!("{name}@{wanted}: the lockfile has {}", package.version));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "project.lockfile-out-of-date",
        item: Item::C16,
        severity: Severity::Low,
        title: format!(
            "The lockfile disagrees with package.json on {} dependencies",
            problems.len()
        ),
        evidence: Evidence::at(location, problems.join("\n")),
        fix:
            "run npm install (or pnpm install, yarn install) and commit the lockfile; in CI, npm ci refuses a stale one"
                .into(),
    })
}

fn express_end_of_life(graph: &Graph) -> Option<Finding> {
    let (_, express) = graph
        .packages
        .iter()
        .enumerate()
        .find(|(i, p)| p.name == "express" && graph.is_direct(*i))?;
    let version = Version::parse(&express.version)?;
    if version.major > 3 {
        return None;
    }
    Some(Finding {
        rule: "project.express-end-of-life",
        item: Item::C16,
        severity: Severity::High,
        title: format!("Express {} is end of life: no security fixes", express.version),
        evidence: Evidence {
            location: graph.lockfile.display().to_string(),
            line: express.line,
            column: None,
            excerpt: format!("express@{}", express.version),
        },
        fix: "move to Express 5 (or at least 4), following the Express migration guides".into(),
    })
}

fn deprecated(graph: &Graph) -> Vec<Finding> {
    DEPRECATED
        .iter()
        .filter_map(|(name, reason, instead)| {
            let (index, package) = graph
                .packages
                .iter()
                .enumerate()
                .skip(1)
                .find(|(_, p)| p.name == *name)?;
            let path = graph
                .paths(index, 1)
                .first()
                .map(|p| graph.describe(p))
                .unwrap_or_default();
            Some(Finding {
                rule: "project.deprecated-package",
                item: Item::C16,
                severity: Severity::Medium,
                title: format!("{name} is installed: {reason}"),
                evidence: Evidence {
                    location: graph.lockfile.display().to_string(),
                    line: package.line,
                    column: None,
                    excerpt: if path.is_empty() {
                        format!("{name}@{}", package.version)
                    } else {
                        path
                    },
                },
                fix: format!("replace {name}: {instead}"),
            })
        })
        .collect()
}

fn install_scripts(graph: &Graph) -> Option<Finding> {
    let scripted: Vec<String> = graph
        .packages
        .iter()
        .skip(1)
        .filter(|p| p.install_script)
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    if scripted.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "project.install-scripts",
        item: Item::C16,
        severity: Severity::Info,
        title: format!("{} dependencies run a script when installed", scripted.len()),
        evidence: Evidence::at(graph.lockfile.display().to_string(), scripted.join("\n")),
        fix: "know why each needs one; install with npm ci --ignore-scripts where the build allows, and review new ones in lockfile diffs".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 12, 1), 20_788);
    }

    #[test]
    fn ranges_that_admit_an_ended_major_are_found() {
        let range = |r: &str| unsupported_majors(&Range::parse(r).unwrap());
        assert!(range(">=14").contains(&14));
        assert!(range("^18.17.0").contains(&18));
        assert!(range("12.x").contains(&12));
        // No version below 26 is admitted.
        assert!(range(">=26").is_empty());
    }
}
