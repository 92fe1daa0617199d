//! `pnpm-lock.yaml`, lockfile versions 6 to 9: the importers (the project
//! and its workspace packages) with what they depend on, and each
//! installed `name@version(peers)` with its own dependencies (`packages`
//! in v6, `snapshots` from v9). A package is development-only when no
//! production dependency reaches it.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::{Graph, Package};
use crate::project::FileError;

/// `name@version`, without the peer suffix (`(react@18.2.0)`), split.
fn split(key: &str) -> Option<(&str, &str)> {
    let key = key.split('(').next()?;
    let at = key.get(1..)?.find('@')? + 1;
    Some((&key[..at], &key[at + 1..]))
}

fn string(yaml: &Yaml) -> Option<String> {
    match yaml {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A dependency's value as the key of what it resolves to: a version
/// (`1.2.3(peer@1.0.0)`) names `name@` it, an alias names itself; links
/// to workspace folders resolve to nothing installed.
fn target(name: &str, value: &str, v6: bool) -> Option<String> {
    if value.starts_with("link:") || value.starts_with("file:") {
        return None;
    }
    let value = value.strip_prefix('/').unwrap_or(value);
    let key = if value.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{name}@{value}")
    } else {
        value.to_owned()
    };
    Some(if v6 { format!("/{key}") } else { key })
}

/// The `name: value` pairs under each of `fields` of `node` (an importer's
/// values are `{ specifier, version }`).
fn dependencies(node: &Yaml, fields: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for field in fields {
        if let Yaml::Hash(deps) = &node[*field] {
            for (name, value) in deps {
                let value = match value {
                    Yaml::Hash(_) => string(&value["version"]),
                    other => string(other),
                };
                if let (Some(name), Some(value)) = (string(name), value) {
                    found.push((name, value));
                }
            }
        }
    }
    found
}

/// The line of each top-level key of a section (`  'name@1.0.0':`).
fn entry_lines(text: &str) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("  ") && !line.starts_with("   ") {
            let key = line.trim().trim_end_matches(" {}").trim_end_matches(':');
            let key = key.trim_matches('\'').trim_matches('"');
            lines.entry(key.to_owned()).or_insert(number as u32 + 1);
        }
    }
    lines
}

pub fn parse(path: &Path, text: &str) -> Result<Graph, FileError> {
    let fail = |line: Option<usize>, reason: String| FileError::new(path, line, reason);
    let documents =
        YamlLoader::load_from_str(text).map_err(|e| fail(Some(e.marker().line()), format!("not YAML: {e}")))?;
    let document = documents.first().ok_or_else(|| fail(None, "empty".into()))?;
    let version = string(&document["lockfileVersion"]).ok_or_else(|| fail(Some(1), "no lockfileVersion".into()))?;
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if !(6..=9).contains(&major) {
        return Err(fail(
            None,
            format!("lockfileVersion {version}: versions 6 to 9 are read"),
        ));
    }
    let v6 = major < 9;
    let installed = if v6 {
        &document["packages"]
    } else {
        &document["snapshots"]
    };
    let flags = &document["packages"];
    let lines = entry_lines(text);
    // The importers, the project's own first.
    let mut importers: Vec<&Yaml> = Vec::new();
    match &document["importers"] {
        Yaml::Hash(map) => {
            let mut keys: Vec<&Yaml> = map.keys().collect();
            keys.sort_by_key(|k| string(k).is_none_or(|k| k != "."));
            importers.extend(keys.into_iter().map(|k| &map[k]));
        }
        _ => importers.push(document),
    }
    let mut keys: Vec<String> = Vec::new();
    if let Yaml::Hash(map) = installed {
        keys.extend(map.keys().filter_map(string));
    }
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i + 1)).collect();
    let resolve = |wants: &[(String, String)]| -> Vec<usize> {
        wants
            .iter()
            .filter_map(|(name, value)| target(name, value, v6))
            .filter_map(|key| index.get(key.as_str()).copied())
            .collect()
    };
    let production: Vec<usize> = importers
        .iter()
        .flat_map(|i| resolve(&dependencies(i, &["dependencies", "optionalDependencies"])))
        .collect();
    let all: Vec<usize> = importers
        .iter()
        .flat_map(|i| {
            resolve(&dependencies(
                i,
                &["dependencies", "optionalDependencies", "devDependencies"],
            ))
        })
        .collect();
    let mut packages = vec![Package {
        name: "project".into(),
        version: String::new(),
        location: ".".into(),
        dev: false,
        install_script: false,
        own: true,
        dependencies: all,
        line: None,
    }];
    for key in &keys {
        let bare = key.strip_prefix('/').unwrap_or(key);
        let (name, version) = split(bare).unwrap_or((bare, ""));
        let node = &installed[key.as_str()];
        let flag_node = if v6 {
            node
        } else {
            &flags[bare.split('(').next().unwrap_or(bare)]
        };
        packages.push(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            location: key.clone(),
            dev: true,
            install_script: matches!(flag_node["requiresBuild"], Yaml::Boolean(true)),
            own: false,
            dependencies: resolve(&dependencies(node, &["dependencies", "optionalDependencies"])),
            line: lines.get(key.as_str()).copied(),
        });
    }
    super::reached_by_production(&mut packages, production);
    Ok(Graph {
        lockfile: path.to_path_buf(),
        format: format!("pnpm-lock.yaml v{version}"),
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V9: &str = "lockfileVersion: '9.0'

importers:

  .:
    dependencies:
      express:
        specifier: ^4.16.0
        version: 4.16.4
    devDependencies:
      mocha:
        specifier: ^10
        version: 10.2.0

packages:

  express@4.16.4:
    resolution: {integrity: sha512-x}

  mocha@10.2.0:
    resolution: {integrity: sha512-y}

  qs@6.5.2:
    resolution: {integrity: sha512-z}

  qs@6.11.0:
    resolution: {integrity: sha512-w}

snapshots:

  express@4.16.4:
    dependencies:
      qs: 6.5.2

  mocha@10.2.0:
    dependencies:
      qs: 6.11.0

  qs@6.5.2: {}

  qs@6.11.0: {}
";

    #[test]
    fn version_9_resolves_snapshots_and_tells_development_only() {
        let g = parse(Path::new("pnpm-lock.yaml"), V9).unwrap();
        let find = |name: &str, version: &str| g.find(name, version);
        let old = find("qs", "6.5.2");
        assert_eq!(g.describe(&g.paths(old, 1)[0]), "project > express@4.16.4 > qs@6.5.2");
        assert!(!g.packages[old].dev && g.packages[find("qs", "6.11.0")].dev);
        assert_eq!(g.packages[old].line, Some(23));
        assert_eq!(g.format, "pnpm-lock.yaml v9.0");
    }

    #[test]
    fn version_6_keys_and_peer_suffixes_are_read() {
        let v6 = "lockfileVersion: '6.0'\ndependencies:\n  a:\n    specifier: ^1\n    version: 1.0.0(b@2.0.0)\npackages:\n  /a@1.0.0(b@2.0.0):\n    dependencies:\n      b: 2.0.0\n    dev: false\n  /b@2.0.0:\n    dev: false\n";
        let g = parse(Path::new("pnpm-lock.yaml"), v6).unwrap();
        let b = g.packages.iter().position(|p| p.name == "b").unwrap();
        assert_eq!(g.describe(&g.paths(b, 1)[0]), "project > a@1.0.0 > b@2.0.0");
        assert!(parse(Path::new("pnpm-lock.yaml"), "lockfileVersion: 5.4\n").is_err());
        assert_eq!(parse(Path::new("pnpm-lock.yaml"), "a: [\n").unwrap_err().line, Some(2));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "[ '@a-z0-9:.(){}\\[\\]\\n-]{0,200}") {
            let _ = parse(Path::new("pnpm-lock.yaml"), &text);
        }
    }
}
