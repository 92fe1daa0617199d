//! Every installed package against the advisories: one finding per
//! vulnerable `name@version`, with the paths that pull it in, whether only
//! development needs it, and the upgrade that fixes it.

use std::collections::BTreeMap;
use std::path::Path;

use super::lockfile::Graph;
use crate::advisories::{Advisories, Advisory, Database};
use crate::report::{Evidence, Finding, Item, Severity};
use crate::versions::{self, Range, Version};

/// Paths shown per package; more are counted.
const PATHS_SHOWN: usize = 3;

pub fn check(graph: &Graph, advisories: &Advisories) -> Vec<Finding> {
    let Advisories::Loaded(database) = advisories else {
        return unchecked(advisories, graph.packages.len() - 1);
    };
    // Every install of one name@version is one finding.
    let mut installs: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (index, package) in graph.packages.iter().enumerate().skip(1) {
        installs
            .entry((&package.name, &package.version))
            .or_default()
            .push(index);
    }
    installs
        .into_iter()
        .filter_map(|((name, version), indices)| {
            let parsed = versions::version(version)?;
            let found = database.affecting("npm", name, &parsed);
            (!found.is_empty()).then(|| vulnerable(graph, name, &parsed, &indices, &found))
        })
        .collect()
}

fn vulnerable(graph: &Graph, name: &str, version: &Version, indices: &[usize], found: &[&Advisory]) -> Finding {
    let severity = found.iter().map(|a| a.severity).max().unwrap_or(Severity::Medium);
    let dev = indices.iter().all(|&i| graph.packages[i].dev);
    let direct = indices.iter().any(|&i| graph.is_direct(i));
    let mut lines: Vec<String> = Vec::new();
    let mut paths: Vec<Vec<usize>> = indices.iter().flat_map(|&i| graph.paths(i, PATHS_SHOWN)).collect();
    paths.sort_by_key(Vec::len);
    for path in paths.iter().take(PATHS_SHOWN) {
        lines.push(format!("pulled in by {}", graph.describe(path)));
    }
    if paths.is_empty() {
        lines.push("in the lockfile, pulled in by nothing the project declares".into());
    }
    for advisory in found {
        let alias = advisory.aliases.first().map(|a| format!(", {a}")).unwrap_or_default();
        // The ranges that hold this version, not every one the record has.
        let ranges: Vec<String> = advisory
            .affected_ranges(name)
            .into_iter()
            .filter(|r| Range::parse(r).is_some_and(|range| range.satisfied_by(version)))
            .collect();
        lines.push(format!(
            "{} ({}{alias}): {}; affected {}",
            advisory.id,
            advisory.severity,
            advisory.summary,
            ranges.join(" || ")
        ));
    }
    let upgrade = found
        .iter()
        .filter_map(|a| Database::fixed_after(a, name, version))
        .max();
    // The workspaces that declare it, for npm's `-w`.
    let workspaces: Vec<String> = graph
        .packages
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, p)| p.own && indices.iter().any(|i| p.dependencies.contains(i)))
        .map(|(_, p)| format!(" -w {}", p.name))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Each package manager's own command, and its field for a pin.
    let (install, pin): (&str, fn(&str, &Version) -> String) = if graph.format.starts_with("yarn") {
        ("yarn add", |name, v| {
            format!("\"resolutions\": {{ \"{name}\": \"{v}\" }}")
        })
    } else if graph.format.starts_with("pnpm") {
        ("pnpm add", |name, v| {
            format!("\"pnpm\": {{ \"overrides\": {{ \"{name}\": \"{v}\" }} }}")
        })
    } else {
        ("npm install", |name, v| {
            format!("\"overrides\": {{ \"{name}\": \"{v}\" }}")
        })
    };
    let workspaces = if install == "npm install" {
        workspaces.concat()
    } else {
        String::new()
    };
    let fix = match (&upgrade, direct) {
        (Some(fixed), true) => {
            format!("{install} {name}@{fixed}{workspaces} (the lowest version past every advisory above)")
        }
        (Some(fixed), false) => {
            // The first step of each path that is not the project's own code.
            let parents: Vec<String> = paths
                .iter()
                .filter_map(|p| p.iter().find(|&&i| !graph.packages[i].own))
                .map(|&i| graph.packages[i].name.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            format!(
                "upgrade {} to a version that no longer pulls {name} {version}, or pin it in package.json: {}",
                if parents.is_empty() {
                    "its parent".to_owned()
                } else {
                    parents.join(", ")
                },
                pin(name, fixed)
            )
        }
        (None, _) => format!("no fixed version is known: replace {name}, or remove what pulls it in"),
    };
    let first = indices[0];
    Finding {
        rule: "dependencies.vulnerable",
        item: Item::C16,
        severity,
        title: format!(
            "{name} {version}{}: {} known {}",
            if dev { " (development only)" } else { "" },
            found.len(),
            if found.len() == 1 {
                "vulnerability"
            } else {
                "vulnerabilities"
            }
        ),
        evidence: Evidence {
            location: graph.lockfile.display().to_string(),
            line: graph.packages[first].line,
            column: None,
            excerpt: lines.join("\n"),
        },
        fix,
    }
}

fn unchecked(advisories: &Advisories, packages: usize) -> Vec<Finding> {
    let Advisories::Missing(location) = advisories else {
        return Vec::new();
    };
    vec![Finding {
        rule: "dependencies.not-checked",
        item: Item::C16,
        severity: Severity::Info,
        title: format!("{packages} installed packages, not checked: no advisory database"),
        evidence: Evidence::at(location.display().to_string(), "no OSV records here"),
        fix:
            "give --advisories DIR (OSV records, such as the GitHub Advisory Database's), or put them at this location"
                .into(),
    }]
}

/// Without a lockfile: each declared range, flagged when some version it
/// admits is affected (the installed one is not known).
pub fn check_ranges(dir: &Path, manifest: &serde_json::Value, advisories: &Advisories) -> Vec<Finding> {
    let Advisories::Loaded(database) = advisories else {
        return unchecked(advisories, 0);
    };
    let mut findings = Vec::new();
    for field in ["dependencies", "devDependencies"] {
        let Some(declared) = manifest.get(field).and_then(|d| d.as_object()) else {
            continue;
        };
        for (name, range) in declared {
            let (Some(text), Some(range)) = (range.as_str(), range.as_str().and_then(Range::parse)) else {
                continue;
            };
            let admitted: Vec<&Advisory> = database
                .for_package("npm", name)
                .into_iter()
                .filter(|a| {
                    a.event_versions(name)
                        .iter()
                        .chain(&range.lower_bounds())
                        .any(|v| range.satisfied_by(v) && a.affects("npm", name, v))
                })
                .collect();
            if admitted.is_empty() {
                continue;
            }
            findings.push(Finding {
                rule: "dependencies.range-admits-vulnerable",
                item: Item::C16,
                severity: Severity::Low,
                title: format!("{name} {text} admits versions with known vulnerabilities (no lockfile: the installed one is not known)"),
                evidence: Evidence::at(
                    dir.join("package.json").display().to_string(),
                    admitted.iter().map(|a| format!("{}: {}", a.id, a.summary)).collect::<Vec<_>>().join("\n"),
                ),
                fix: "commit a lockfile (npm install writes package-lock.json), and raise the range past the fixed versions".into(),
            });
        }
    }
    findings
}
