//! A project's installed packages, read from its lockfile: every package
//! with its version, whether only development needs it, and the edges
//! that pull it in, so that each one's dependency paths can be told.

mod npm;
mod pnpm;
mod yarn;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::FileError;

/// One installed package (index 0 of a [`Graph`] is the project itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Where it is installed (`node_modules/a/node_modules/b`).
    pub location: String,
    /// Only development dependencies pull it in.
    pub dev: bool,
    /// It runs a script when installed (`preinstall`, `install`, `postinstall`).
    pub install_script: bool,
    /// The project's own code: the project, a workspace, or a link to one.
    pub own: bool,
    /// The packages it depends on, as indices into the graph.
    pub dependencies: Vec<usize>,
    /// 1-based line of its entry in the lockfile.
    pub line: Option<u32>,
}

/// The installed packages and the lockfile they came from.
#[derive(Debug, Clone)]
pub struct Graph {
    pub lockfile: PathBuf,
    /// What format the lockfile is in, for the report (`package-lock.json v3`).
    pub format: String,
    pub packages: Vec<Package>,
}

/// The project's lockfile: npm's (in npm's order of preference), else
/// pnpm's, else yarn's; `Ok(None)` when there is none.
pub fn load(dir: &Path) -> Result<Option<Graph>, FileError> {
    for name in [
        "npm-shrinkwrap.json",
        "package-lock.json",
        "pnpm-lock.yaml",
        "yarn.lock",
    ] {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| FileError::new(&path, None, e.to_string()))?;
        return match name {
            "pnpm-lock.yaml" => pnpm::parse(&path, &text),
            "yarn.lock" => yarn::parse(&path, &text, &manifests(dir)),
            _ => {
                let manifest = std::fs::read_to_string(dir.join("package.json")).ok();
                npm::parse(&path, &text, manifest.as_deref())
            }
        }
        .map(Some);
    }
    Ok(None)
}

/// The project's `package.json` and its workspaces' (`"workspaces"`:
/// folders, or `folder/*` for every folder in one), the project's first.
fn manifests(dir: &Path) -> Vec<serde_json::Value> {
    let read = |dir: &Path| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join("package.json")).ok()?).ok()
    };
    let Some(root) = read(dir) else {
        return Vec::new();
    };
    let patterns: Vec<String> = match root.get("workspaces") {
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect(),
        Some(object) => object
            .get("packages")
            .and_then(|p| p.as_array())
            .map(|list| list.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut folders: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        match pattern.strip_suffix("/*") {
            Some(parent) => {
                if let Ok(entries) = std::fs::read_dir(dir.join(parent)) {
                    let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
                    found.sort();
                    folders.extend(found);
                }
            }
            None => folders.push(dir.join(pattern)),
        }
    }
    std::iter::once(root)
        .chain(folders.iter().filter_map(|f| read(f)))
        .collect()
}

/// Clears the development-only flag of `roots` and of everything they
/// reach: for lockfiles that do not say which packages only development
/// needs (pnpm's, yarn's), where every package starts flagged.
fn reached_by_production(packages: &mut [Package], roots: Vec<usize>) {
    let mut pending = roots;
    while let Some(index) = pending.pop() {
        if std::mem::replace(&mut packages[index].dev, false) {
            pending.extend(packages[index].dependencies.clone());
        }
    }
}

impl Graph {
    /// Up to `limit` shortest paths from the project to `target`, each a
    /// list of package indices starting at the project.
    pub fn paths(&self, target: usize, limit: usize) -> Vec<Vec<usize>> {
        let mut found = Vec::new();
        let mut queue: VecDeque<Vec<usize>> = VecDeque::from([vec![0]]);
        let mut visits = vec![0usize; self.packages.len()];
        while let Some(path) = queue.pop_front() {
            let Some(&last) = path.last() else { continue };
            if last == target {
                found.push(path);
                if found.len() >= limit {
                    break;
                }
                continue;
            }
            for &next in &self.packages[last].dependencies {
                // Each package is passed through a few times at most, so
                // the walk stays linear on graphs with many shared nodes.
                if path.contains(&next) || visits[next] >= limit {
                    continue;
                }
                visits[next] += 1;
                let mut longer = path.clone();
                longer.push(next);
                queue.push_back(longer);
            }
        }
        found
    }

    /// `app > express@4.16.4 > qs@6.5.2`.
    pub fn describe(&self, path: &[usize]) -> String {
        // A link and the workspace it points at are one step.
        let steps: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|&(i, &p)| {
                path.get(i + 1)
                    .is_none_or(|&next| self.packages[next].name != self.packages[p].name)
            })
            .map(|(_, &p)| p)
            .collect();
        steps
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let package = &self.packages[p];
                // The project and its workspaces have no installed version.
                if i == 0 || package.version.is_empty() {
                    package.name.clone()
                } else {
                    format!("{}@{}", package.name, package.version)
                }
            })
            .collect::<Vec<_>>()
            .join(" > ")
    }

    /// A dependency the project (or one of its workspaces) declares itself.
    pub fn is_direct(&self, index: usize) -> bool {
        self.packages.iter().any(|p| p.own && p.dependencies.contains(&index))
    }
}

#[cfg(test)]
impl Graph {
    /// The index of `name@version`, for the parsers' tests.
    pub fn find(&self, name: &str, version: &str) -> usize {
        self.packages
            .iter()
            .position(|p| p.name == name && p.version == version)
            .unwrap_or_else(|| panic!("no {name}@{version}"))
    }
}
