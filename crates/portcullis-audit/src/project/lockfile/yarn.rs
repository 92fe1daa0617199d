//! `yarn.lock`, in both of yarn's formats: yarn 1's own (an indented list
//! of entries, each keyed by every `name@range` that resolved to it; read
//! by hand: no maintained crate reads it, and the format is a few rules)
//! and yarn 2+'s YAML ("berry": entries keyed by `name@npm:range`
//! descriptors, workspaces among them). Dependencies resolve by those
//! keys, as yarn resolves them; a package is development-only when no
//! production dependency reaches it.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{Graph, Package};
use crate::project::FileError;

struct Entry {
    keys: Vec<String>,
    version: String,
    line: u32,
    wants: Vec<(String, String)>,
}

/// `name@range` split at the `@` that starts the range (a scope's `@`
/// comes first).
fn split_key(key: &str) -> Option<(&str, &str)> {
    let at = key.get(1..)?.find('@')? + 1;
    Some((&key[..at], &key[at + 1..]))
}

fn unquote(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

fn entries(path: &Path, text: &str) -> Result<Vec<Entry>, FileError> {
    let fail = |line: usize, reason: &str| FileError::new(path, Some(line), reason.into());
    let mut entries: Vec<Entry> = Vec::new();
    let mut section: Option<&str> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        match indent {
            0 => {
                let keys = content
                    .strip_suffix(':')
                    .ok_or_else(|| fail(number, "an entry's keys must end with `:`"))?;
                entries.push(Entry {
                    keys: keys.split(", ").map(|k| unquote(k).to_owned()).collect(),
                    version: String::new(),
                    line: number as u32,
                    wants: Vec::new(),
                });
                section = None;
            }
            2 => {
                let entry = entries
                    .last_mut()
                    .ok_or_else(|| fail(number, "a field before any entry"))?;
                if let Some(name) = content.strip_suffix(':') {
                    section = Some(if name == "dependencies" || name == "optionalDependencies" {
                        "dependencies"
                    } else {
                        "other"
                    });
                } else {
                    section = None;
                    if let Some(version) = content.strip_prefix("version ") {
                        entry.version = unquote(version).to_owned();
                    }
                }
            }
            _ => {
                let entry = entries
                    .last_mut()
                    .ok_or_else(|| fail(number, "a field before any entry"))?;
                if section == Some("dependencies") {
                    let (name, range) = match content.strip_prefix('"') {
                        Some(rest) => {
                            let (name, range) =
                                rest.split_once('"').ok_or_else(|| fail(number, "an unclosed quote"))?;
                            (name, range)
                        }
                        None => content
                            .split_once(' ')
                            .ok_or_else(|| fail(number, "a dependency without its range"))?,
                    };
                    entry.wants.push((name.to_owned(), unquote(range).to_owned()));
                }
            }
        }
    }
    Ok(entries)
}

/// yarn 2+'s lockfile: YAML, one entry per resolution, keyed by the
/// descriptors (`name@npm:^1.2`) that resolved to it. Dependency values
/// name their protocol (`npm:^1.2`), or leave out `npm:` in older files.
fn berry_entries(path: &Path, text: &str) -> Result<Vec<Entry>, FileError> {
    use yaml_rust2::{Yaml, YamlLoader};
    let fail = |line: Option<usize>, reason: String| FileError::new(path, line, reason);
    let documents =
        YamlLoader::load_from_str(text).map_err(|e| fail(Some(e.marker().line()), format!("not YAML: {e}")))?;
    let Some(Yaml::Hash(map)) = documents.first() else {
        return Err(fail(None, "no entries".into()));
    };
    let lines: std::collections::HashMap<&str, u32> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with(' ') && l.ends_with(':'))
        .map(|(n, l)| (l.trim_end_matches(':').trim_matches('"'), n as u32 + 1))
        .collect();
    let mut entries = Vec::new();
    for (key, entry) in map {
        let Some(key) = key.as_str().filter(|k| *k != "__metadata") else {
            continue;
        };
        let mut wants = Vec::new();
        for field in ["dependencies", "optionalDependencies"] {
            if let Yaml::Hash(deps) = &entry[field] {
                for (name, value) in deps {
                    if let (Some(name), Some(value)) = (name.as_str(), value.as_str()) {
                        let value = if value.contains(':') {
                            value.to_owned()
                        } else {
                            format!("npm:{value}")
                        };
                        wants.push((name.to_owned(), value));
                    }
                }
            }
        }
        entries.push(Entry {
            keys: key.split(", ").map(str::to_owned).collect(),
            version: entry["version"].as_str().map(str::to_owned).unwrap_or_else(|| {
                // A version YAML reads as a number (`version: 1.0`).
                match &entry["version"] {
                    Yaml::Real(r) => r.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    _ => String::new(),
                }
            }),
            line: lines.get(key).copied().unwrap_or(0),
            wants,
        });
    }
    Ok(entries)
}

/// `manifests` are the project's `package.json`s: its own first, then its
/// workspaces', whose dependencies are the project's too.
pub fn parse(path: &Path, text: &str, manifests: &[Value]) -> Result<Graph, FileError> {
    let berry = text.contains("__metadata:");
    let entries = if berry {
        berry_entries(path, text)?
    } else {
        entries(path, text)?
    };
    let manifest = manifests.first().unwrap_or(&Value::Null);
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        for key in &entry.keys {
            by_key.insert(key, index + 1);
        }
    }
    let declared = |field: &str| -> Vec<(String, String)> {
        manifests
            .iter()
            .filter_map(|m| m.get(field).and_then(Value::as_object))
            .flat_map(|deps| {
                deps.iter()
                    .map(|(name, range)| (name.clone(), range.as_str().unwrap_or("*").to_owned()))
            })
            .collect()
    };
    let resolve = |wants: &[(String, String)]| -> Vec<usize> {
        wants
            .iter()
            .filter_map(|(name, range)| {
                let range = if berry && !range.contains(':') {
                    format!("npm:{range}")
                } else {
                    range.clone()
                };
                by_key.get(format!("{name}@{range}").as_str()).copied()
            })
            .collect()
    };
    let production: Vec<(String, String)> = [declared("dependencies"), declared("optionalDependencies")].concat();
    let development = declared("devDependencies");
    let mut packages = vec![Package {
        name: manifest
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("project")
            .to_owned(),
        version: manifest
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        location: String::new(),
        dev: false,
        install_script: false,
        own: true,
        dependencies: resolve(&[production.clone(), development].concat()),
        line: None,
    }];
    for entry in &entries {
        let name = entry.keys.first().and_then(|k| split_key(k)).map_or("", |(n, _)| n);
        // A workspace is the project's own code, not an installed package.
        let own = entry.keys.iter().any(|k| k.contains("@workspace:"));
        let version = if own { String::new() } else { entry.version.clone() };
        packages.push(Package {
            name: name.to_owned(),
            version,
            location: entry.keys.join(", "),
            dev: true,
            install_script: false,
            own,
            dependencies: resolve(&entry.wants),
            line: Some(entry.line),
        });
    }
    super::reached_by_production(&mut packages, resolve(&production));
    Ok(Graph {
        lockfile: path.to_path_buf(),
        format: if berry {
            "yarn.lock (yarn 2+)".into()
        } else {
            "yarn.lock v1".into()
        },
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERRY: &str = r#"# This file is generated by running "yarn install" inside your project.

__metadata:
  version: 8
  cacheKey: 10c0

"express@npm:^4.16.0":
  version: 4.16.4
  resolution: "express@npm:4.16.4"
  dependencies:
    qs: "npm:6.5.2"
  languageName: node
  linkType: hard

"qs@npm:6.5.2":
  version: 6.5.2
  resolution: "qs@npm:6.5.2"
  languageName: node
  linkType: hard

"shop@workspace:.":
  version: 0.0.0-use.local
  resolution: "shop@workspace:."
  dependencies:
    express: "npm:^4.16.0"
  languageName: unknown
  linkType: soft
"#;

    #[test]
    fn berry_lockfiles_resolve_by_their_descriptors() {
        let manifest = r#"{"name": "shop", "dependencies": {"express": "^4.16.0"}}"#;
        let g = parse(
            Path::new("yarn.lock"),
            BERRY,
            &[serde_json::from_str(manifest).unwrap()],
        )
        .unwrap();
        let qs = g.packages.iter().position(|p| p.name == "qs").unwrap();
        assert_eq!(g.describe(&g.paths(qs, 1)[0]), "shop > express@4.16.4 > qs@6.5.2");
        assert!(!g.packages[qs].dev);
        assert_eq!(g.packages[qs].line, Some(15));
        assert_eq!(g.format, "yarn.lock (yarn 2+)");
    }

    const LOCK: &str = r#"# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@types/node@*", "@types/node@^20":
  version "20.1.0"
  resolved "https://registry.yarnpkg.com/@types/node/-/node-20.1.0.tgz"

express@^4.16.0:
  version "4.16.4"
  dependencies:
    qs "6.5.2"
    "@types/node" "*"

mocha@^10:
  version "10.2.0"
  dependencies:
    qs "^6.11.0"

qs@6.5.2:
  version "6.5.2"

qs@^6.11.0:
  version "6.11.0"
"#;

    #[test]
    fn entries_resolve_by_their_keys() {
        let manifest =
            r#"{"name": "shop", "dependencies": {"express": "^4.16.0"}, "devDependencies": {"mocha": "^10"}}"#;
        let g = parse(Path::new("yarn.lock"), LOCK, &[serde_json::from_str(manifest).unwrap()]).unwrap();
        let find = |name: &str, version: &str| g.find(name, version);
        let old_qs = find("qs", "6.5.2");
        assert_eq!(g.describe(&g.paths(old_qs, 1)[0]), "shop > express@4.16.4 > qs@6.5.2");
        assert!(!g.packages[old_qs].dev);
        assert!(
            g.packages[find("qs", "6.11.0")].dev,
            "only mocha, a dev dependency, pulls it"
        );
        assert_eq!(g.packages[find("@types/node", "20.1.0")].name, "@types/node");
        assert_eq!(g.packages[old_qs].line, Some(20));
    }

    #[test]
    fn workspaces_dependencies_are_the_projects() {
        let root: Value = serde_json::from_str(r#"{"name": "mono", "workspaces": ["packages/*"]}"#).unwrap();
        let api: Value = serde_json::from_str(r#"{"name": "api", "dependencies": {"express": "^4.16.0"}}"#).unwrap();
        let g = parse(Path::new("yarn.lock"), LOCK, &[root, api]).unwrap();
        let qs = g
            .packages
            .iter()
            .position(|p| p.name == "qs" && p.version == "6.5.2")
            .unwrap();
        assert_eq!(g.describe(&g.paths(qs, 1)[0]), "mono > express@4.16.4 > qs@6.5.2");
        assert!(!g.packages[qs].dev);
    }

    #[test]
    fn a_broken_lockfile_says_where() {
        let error = parse(Path::new("yarn.lock"), "express@^4:\n  version \"4\"\nqs 6\n", &[]).unwrap_err();
        assert_eq!(error.line, Some(3));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "[ \"@a-z0-9:,.^~\\n-]{0,200}") {
            let _ = parse(Path::new("yarn.lock"), &text, &[]);
        }
    }
}
