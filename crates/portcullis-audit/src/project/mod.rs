//! `portcullis audit PATH`: a Node.js project checked from its files:
//! every installed package against the advisories and the project-level
//! risks (C16: an end-of-life Node.js or Express, packages deprecated for
//! security reasons, install scripts), then its own code ([`crate::code`],
//! C17).

mod checks;
mod dependencies;
mod levels;
pub mod lockfile;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::advisories::Advisories;
use crate::report::Report;

/// Why a project audit could not run: the exit code 2 cases.
#[derive(Debug)]
pub enum ProjectError {
    /// Not a directory with a `package.json`, a lockfile or any code.
    NotAProject(PathBuf),
    /// A lockfile or `.portcullis-audit.toml` that does not read.
    File(FileError),
}

impl fmt::Display for ProjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectError::NotAProject(path) => {
                write!(f, "{}: no package.json, lockfile or source file here", path.display())
            }
            ProjectError::File(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ProjectError {}

/// A project file that does not read: where (the line, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl FileError {
    pub fn new(path: &Path, line: Option<usize>, reason: String) -> Self {
        Self {
            path: path.to_path_buf(),
            line,
            reason,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for FileError {}

/// Audits the project in `dir`; its `node_modules` code too with
/// `include_deps_code`.
pub fn audit(dir: &Path, advisories: &Advisories, include_deps_code: bool) -> Result<Report, ProjectError> {
    let levels = levels::Levels::load(dir).map_err(ProjectError::File)?;
    let manifest = std::fs::read_to_string(dir.join("package.json")).ok();
    let graph = lockfile::load(dir).map_err(ProjectError::File)?;
    let code = crate::code::audit(dir, include_deps_code);
    if manifest.is_none() && graph.is_none() && code.files == 0 {
        return Err(ProjectError::NotAProject(dir.to_path_buf()));
    }
    let manifest: serde_json::Value = manifest
        .and_then(|m| serde_json::from_str(&m).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut report = Report::new(dir.display().to_string());
    let mut findings = Vec::new();
    match &graph {
        Some(graph) => {
            report.scope = Some(format!(
                "{} installed packages, from {}",
                graph.packages.len() - 1,
                graph.format
            ));
            findings.extend(dependencies::check(graph, advisories));
        }
        None if manifest.is_null() => report.scope = Some("no package.json or lockfile: the code only".into()),
        None => {
            report.scope = Some("package.json only: no lockfile, so the installed versions are not known".into());
            findings.extend(dependencies::check_ranges(dir, &manifest, advisories));
        }
    }
    findings.extend(checks::check(dir, &manifest, graph.as_ref()));
    findings.extend(code.findings);
    report.scope = Some(format!(
        "{}; {} source files",
        report.scope.unwrap_or_default(),
        code.files
    ));
    for finding in levels.apply(findings) {
        report.add(finding);
    }
    report.sort();
    Ok(report)
}
