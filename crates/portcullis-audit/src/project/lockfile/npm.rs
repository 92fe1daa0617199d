//! `package-lock.json` and `npm-shrinkwrap.json`: lockfile versions 2 and
//! 3 (a flat `packages` map keyed by install location) and version 1 (a
//! nested `dependencies` tree), dependencies resolved as Node.js resolves
//! `require()`: the nearest `node_modules` up the tree.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Graph, Package};
use crate::project::FileError;

pub fn parse(path: &Path, text: &str, manifest: Option<&str>) -> Result<Graph, FileError> {
    let fail = |line: Option<usize>, reason: String| FileError::new(path, line, reason);
    let not_json = |e: serde_json::Error| fail(Some(e.line()), format!("not JSON: {e}"));
    // Versions 2 and 3 carry version 1's tree too, for old npms: read
    // past, not built (it is most of the file).
    let head: Head = serde_json::from_str(text).map_err(not_json)?;
    let version = head.lockfile_version.as_ref().and_then(Value::as_u64);
    let lines = entry_lines(text);
    let mut entries = match (version, &head.packages) {
        (Some(2 | 3), Some(Value::Object(packages))) => flat(packages, &lines),
        (Some(1) | None, _) => {
            let document: Value = serde_json::from_str(text).map_err(not_json)?;
            let tree = document.get("dependencies").and_then(Value::as_object);
            nested(&document, tree, manifest, &lines)
        }
        (Some(2 | 3), _) => return Err(fail(None, "lockfileVersion 2 or 3 without a `packages` map".into())),
        (Some(other), _) => {
            return Err(fail(
                None,
                format!("lockfileVersion {other} is not one npm has written (1, 2 or 3)"),
            ))
        }
    };
    if entries.is_empty() {
        return Err(fail(None, "no project entry".into()));
    }
    resolve(&mut entries);
    Ok(Graph {
        lockfile: path.to_path_buf(),
        format: format!(
            "{} v{}",
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            version.unwrap_or(1)
        ),
        packages: entries.into_iter().map(|e| e.package).collect(),
    })
}

/// The parts of a lockfile that say how to read it.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "lockfileVersion", default)]
    lockfile_version: Option<Value>,
    #[serde(default)]
    packages: Option<Value>,
}

/// A package and what it asks for, before it is resolved.
struct Entry {
    package: Package,
    wants: Vec<Want>,
}

enum Want {
    /// A dependency, found as Node.js finds it.
    Name(String),
    /// An install location itself (a workspace, or a link's target).
    Location(String),
}

/// The line of each `"key": {` in the text, by key, first one kept.
fn entry_lines(text: &str) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(key) = line.strip_prefix('"').and_then(|l| l.strip_suffix("\": {")) {
            lines.entry(key.to_owned()).or_insert(number as u32 + 1);
        }
    }
    lines
}

fn names(entry: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .filter_map(|field| entry.get(*field).and_then(Value::as_object))
        .flat_map(|deps| deps.keys().cloned())
        .collect()
}

fn text(entry: &Value, field: &str) -> String {
    entry.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn flag(entry: &Value, field: &str) -> bool {
    entry.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// The name a location installs (`node_modules/@scope/name` is `@scope/name`).
fn name_at(location: &str) -> &str {
    location.rsplit_once("node_modules/").map_or(location, |(_, name)| name)
}

fn flat(packages: &Map<String, Value>, lines: &HashMap<String, u32>) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(packages.len());
    // A workspace (a folder of the project, not under node_modules) is the
    // project's own code, and what it depends on is the project's too.
    let own_code = |location: &str| !location.starts_with("node_modules/") && !location.contains("/node_modules/");
    // The project first, then in the lockfile's order.
    let root = packages.get("").cloned().unwrap_or(Value::Null);
    let rest = packages.iter().filter(|(k, _)| !k.is_empty());
    // A workspace entry may carry no name: the link to it has one.
    let linked: HashMap<String, &str> = packages
        .iter()
        .filter(|(_, e)| e.get("link").and_then(Value::as_bool) == Some(true))
        .map(|(k, e)| (text(e, "resolved"), name_at(k)))
        .collect();
    for (location, entry) in std::iter::once((&String::new(), &root)).chain(rest) {
        let name = match text(entry, "name") {
            name if !name.is_empty() => name,
            _ => linked
                .get(location.as_str())
                .copied()
                .unwrap_or_else(|| name_at(location))
                .to_owned(),
        };
        let link = entry.get("link").and_then(Value::as_bool) == Some(true);
        let fields: &[&str] = if own_code(location) {
            &[
                "dependencies",
                "devDependencies",
                "optionalDependencies",
                "peerDependencies",
            ]
        } else {
            &["dependencies", "optionalDependencies", "peerDependencies"]
        };
        let mut wants: Vec<Want> = if link {
            // A link installs the folder it points at.
            vec![Want::Location(text(entry, "resolved"))]
        } else {
            names(entry, fields).into_iter().map(Want::Name).collect()
        };
        if location.is_empty() {
            let workspaces = packages.keys().filter(|k| !k.is_empty() && own_code(k));
            wants.extend(workspaces.map(|k| Want::Location(k.clone())));
        }
        entries.push(Entry {
            package: Package {
                name,
                version: if own_code(location) || link {
                    String::new()
                } else {
                    text(entry, "version")
                },
                location: location.clone(),
                dev: flag(entry, "dev"),
                install_script: flag(entry, "hasInstallScript"),
                own: own_code(location) || link,
                dependencies: Vec::new(),
                line: lines.get(location.as_str()).copied(),
            },
            wants,
        });
    }
    entries
}

/// Version 1: the tree under `dependencies`; the project's own wants come
/// from `package.json` when there is one, else from the top level.
fn nested(
    document: &Value,
    tree: Option<&Map<String, Value>>,
    manifest: Option<&str>,
    lines: &HashMap<String, u32>,
) -> Vec<Entry> {
    let manifest: Value = manifest
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    let mut root_wants = names(&manifest, &["dependencies", "devDependencies", "optionalDependencies"]);
    if root_wants.is_empty() {
        root_wants = tree.map(|t| t.keys().cloned().collect()).unwrap_or_default();
    }
    let mut entries = vec![Entry {
        package: Package {
            name: text(document, "name"),
            version: text(document, "version"),
            location: String::new(),
            dev: false,
            install_script: false,
            own: true,
            dependencies: Vec::new(),
            line: Some(1),
        },
        wants: root_wants.into_iter().map(Want::Name).collect(),
    }];
    let mut pending: Vec<(String, &Map<String, Value>)> = tree.map(|t| vec![(String::new(), t)]).unwrap_or_default();
    while let Some((parent, children)) = pending.pop() {
        for (name, entry) in children {
            let location = if parent.is_empty() {
                format!("node_modules/{name}")
            } else {
                format!("{parent}/node_modules/{name}")
            };
            let mut wants: Vec<String> = entry
                .get("requires")
                .and_then(Value::as_object)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            wants.sort();
            entries.push(Entry {
                package: Package {
                    name: name.clone(),
                    version: text(entry, "version"),
                    location: location.clone(),
                    dev: flag(entry, "dev"),
                    install_script: false,
                    own: false,
                    dependencies: Vec::new(),
                    line: lines.get(name.as_str()).copied(),
                },
                wants: wants.into_iter().map(Want::Name).collect(),
            });
            if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
                pending.push((location, nested));
            }
        }
    }
    entries
}

/// Each wanted name to the package Node.js would load: in the asking
/// package's own `node_modules`, else its parents', up to the project's.
fn resolve(entries: &mut [Entry]) {
    let at: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.package.location.clone(), i))
        .collect();
    let resolved: Vec<Vec<usize>> = entries
        .iter()
        .map(|entry| {
            let location = entry.package.location.as_str();
            entry
                .wants
                .iter()
                .filter_map(|want| {
                    let name = match want {
                        Want::Location(target) => return at.get(target).copied(),
                        Want::Name(name) => name,
                    };
                    let mut base = location;
                    loop {
                        let candidate = if base.is_empty() {
                            format!("node_modules/{name}")
                        } else {
                            format!("{base}/node_modules/{name}")
                        };
                        if let Some(&i) = at.get(&candidate) {
                            return Some(i);
                        }
                        if base.is_empty() {
                            return None;
                        }
                        base = base.rsplit_once("/node_modules/").map_or("", |(parent, _)| parent);
                    }
                })
                .collect()
        })
        .collect();
    for (entry, dependencies) in entries.iter_mut().zip(resolved) {
        entry.package.dependencies = dependencies;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: &str = r#"{
  "name": "shop",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "shop",
      "dependencies": { "express": "^4.16.0" },
      "devDependencies": { "mocha": "^10.0.0" }
    },
    "node_modules/express": {
      "version": "4.16.4",
      "dependencies": { "qs": "6.5.2" }
    },
    "node_modules/express/node_modules/qs": {
      "version": "6.5.2"
    },
    "node_modules/qs": {
      "version": "6.11.0"
    },
    "node_modules/mocha": {
      "version": "10.2.0",
      "dev": true,
      "hasInstallScript": true,
      "dependencies": { "qs": "^6" }
    }
  }
}"#;

    fn graph(text: &str) -> Graph {
        parse(Path::new("package-lock.json"), text, None).unwrap()
    }

    #[test]
    fn version_3_resolves_nested_installs_first() {
        let g = graph(V3);
        let find = |location: &str| g.packages.iter().position(|p| p.location == location).unwrap();
        let nested_qs = find("node_modules/express/node_modules/qs");
        let top_qs = find("node_modules/qs");
        assert_eq!(g.packages[find("node_modules/express")].dependencies, [nested_qs]);
        assert_eq!(g.packages[find("node_modules/mocha")].dependencies, [top_qs]);
        assert_eq!(
            g.describe(&g.paths(nested_qs, 3)[0]),
            "shop > express@4.16.4 > qs@6.5.2"
        );
        assert_eq!(g.packages[nested_qs].line, Some(16));
        assert!(g.packages[find("node_modules/mocha")].dev && g.packages[find("node_modules/mocha")].install_script);
        assert_eq!(g.format, "package-lock.json v3");
    }

    #[test]
    fn workspaces_are_the_projects_own_code_and_their_dependencies_its_own() {
        let lock = r#"{"name": "mono", "lockfileVersion": 3, "packages": {
            "": {"name": "mono", "workspaces": ["packages/*"]},
            "node_modules/api": {"resolved": "packages/api", "link": true},
            "node_modules/lodash": {"version": "4.17.15"},
            "packages/api": {"name": "api", "version": "1.0.0", "dependencies": {"lodash": "4.17.15"}}}}"#;
        let g = graph(lock);
        let lodash = g.packages.iter().position(|p| p.name == "lodash").unwrap();
        assert_eq!(g.describe(&g.paths(lodash, 1)[0]), "mono > api > lodash@4.17.15");
        assert!(g
            .packages
            .iter()
            .filter(|p| p.name == "api")
            .all(|p| p.version.is_empty()));
    }

    #[test]
    fn version_1_trees_are_read_too() {
        let v1 = r#"{"name": "old", "version": "1.0.0", "lockfileVersion": 1, "dependencies": {
            "express": {"version": "4.16.4", "requires": {"qs": "6.5.2"},
                        "dependencies": {"qs": {"version": "6.5.2"}}},
            "lodash": {"version": "4.17.15", "dev": true}}}"#;
        let g = parse(
            Path::new("package-lock.json"),
            v1,
            Some(r#"{"dependencies": {"express": "4"}}"#),
        )
        .unwrap();
        let qs = g
            .packages
            .iter()
            .position(|p| p.location == "node_modules/express/node_modules/qs")
            .unwrap();
        assert_eq!(g.describe(&g.paths(qs, 1)[0]), "old > express@4.16.4 > qs@6.5.2");
        // Not in package.json: nothing pulls it in.
        let lodash = g.packages.iter().position(|p| p.name == "lodash").unwrap();
        assert!(g.paths(lodash, 1).is_empty());
    }

    #[test]
    fn bad_lockfiles_say_where() {
        let error = parse(
            Path::new("package-lock.json"),
            "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n",
            None,
        )
        .unwrap_err();
        assert_eq!(error.line, Some(4));
        let error = parse(
            Path::new("package-lock.json"),
            r#"{"lockfileVersion": 9, "packages": {}}"#,
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("lockfileVersion 9"), "{error}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "[{}\\[\\]\":, a-z0-9/_-]{0,200}") {
            let _ = parse(Path::new("package-lock.json"), &text, Some(&text));
        }
    }
}
