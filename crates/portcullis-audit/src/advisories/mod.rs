//! Advisory records in the OSV format (osv.dev's schema, which the GitHub
//! Advisory Database publishes), loaded from a directory of JSON files, and
//! the question every audit asks of them: which advisories affect this
//! package at this version?

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::report::Severity;
use crate::versions::{version, Version};

/// Where the advisories are read from when no `--advisories` is given:
/// `$PORTCULLIS_ADVISORIES`, else `$XDG_DATA_HOME/portcullis/advisories`,
/// else `~/.local/share/portcullis/advisories`.
pub fn default_location() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_ADVISORIES") {
        return Some(dir.into());
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))?;
    Some(data.join("portcullis/advisories"))
}

/// The advisories an audit checks packages against.
#[derive(Debug, Clone, Default)]
pub enum Advisories {
    Loaded(Database),
    /// None were found at this default location.
    Missing(PathBuf),
    #[default]
    Off,
}

/// Where OSV publishes every npm advisory, as one zip.
pub const OSV_NPM_ZIP: &str = "https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip";

/// Larger than this is not an advisory zip (OSV's npm one is tens of MiB).
const MAX_ZIP_BYTES: u64 = 2 << 30;

/// Downloads the advisory zip at `url` into `dir` as `npm-all.zip`,
/// replacing the old one only once the new one has loaded; how many
/// records it holds.
pub async fn update(url: &str, dir: &Path) -> Result<(PathBuf, usize), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(600))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("{url}: {e}"))?;
    let partial = dir.join("npm-all.zip.partial");
    let mut file = std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut written: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        written += chunk.len() as u64;
        if written > MAX_ZIP_BYTES {
            return Err(format!("{url}: over {MAX_ZIP_BYTES} bytes, not an advisory zip"));
        }
        std::io::Write::write_all(&mut file, &chunk).map_err(|e| format!("{}: {e}", partial.display()))?;
    }
    drop(file);
    let loaded = Database::load(&partial).map_err(|e| {
        // Half a download is not left behind.
        let _ = std::fs::remove_file(&partial);
        e.to_string()
    })?;
    let target = dir.join("npm-all.zip");
    std::fs::rename(&partial, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    Ok((target, loaded.len()))
}

/// One advisory, as much of it as the audits use.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Severity,
    affected: Vec<Affected>,
}

#[derive(Debug, Clone)]
struct Affected {
    ecosystem: String,
    name: String,
    ranges: Vec<Vec<Event>>,
    versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Introduced(Version),
    Fixed(Version),
    LastAffected(Version),
    Limit(Version),
}

impl Event {
    fn version(&self) -> &Version {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// Every advisory read.
#[derive(Debug, Clone, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    /// Indices into `advisories` by (ecosystem, package name), so a
    /// lockfile of thousands of packages costs a lookup each.
    by_package: HashMap<(String, String), Vec<usize>>,
}

/// A file that is not an OSV record.
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for LoadError {}

impl Database {
    /// Reads every `*.json` under `path`: a directory (subdirectories
    /// included) or a zip of them, such as OSV's per-ecosystem `all.zip`;
    /// a directory's `*.zip` files are read too.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        if path.is_file() {
            return Ok(Self::from_advisories(read_zip(path)?));
        }
        Self::load_dir(path)
    }

    fn load_dir(dir: &Path) -> Result<Self, LoadError> {
        let mut advisories = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| LoadError {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "zip") {
                    advisories.extend(read_zip(&path)?);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).map_err(|e| LoadError {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                    let advisory = parse(&text).map_err(|reason| LoadError { path, reason })?;
                    advisories.push(advisory);
                }
            }
        }
        Ok(Self::from_advisories(advisories))
    }

    fn from_advisories(mut advisories: Vec<Advisory>) -> Self {
        advisories.sort_by(|a, b| a.id.cmp(&b.id));
        let mut by_package: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (index, advisory) in advisories.iter().enumerate() {
            for affected in &advisory.affected {
                let entry = by_package
                    .entry((affected.ecosystem.clone(), affected.name.clone()))
                    .or_default();
                if entry.last() != Some(&index) {
                    entry.push(index);
                }
            }
        }
        Self { advisories, by_package }
    }

    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The advisories that affect `name` at `version` in `ecosystem`.
    pub fn affecting(&self, ecosystem: &str, name: &str, version: &Version) -> Vec<&Advisory> {
        self.for_package(ecosystem, name)
            .into_iter()
            .filter(|a| a.affects(ecosystem, name, version))
            .collect()
    }

    /// Every advisory about `name` in `ecosystem`, whatever the version.
    pub fn for_package(&self, ecosystem: &str, name: &str) -> Vec<&Advisory> {
        self.by_package
            .get(&(ecosystem.to_owned(), name.to_owned()))
            .map(|indices| indices.iter().map(|&i| &self.advisories[i]).collect())
            .unwrap_or_default()
    }

    /// The lowest version that one of `advisory`'s ranges for `name` says
    /// fixes it and that is above `version`.
    pub fn fixed_after(advisory: &Advisory, name: &str, version: &Version) -> Option<Version> {
        advisory
            .affected
            .iter()
            .filter(|x| x.name == name)
            .flat_map(|x| x.ranges.iter().flatten())
            .filter_map(|e| match e {
                Event::Fixed(v) if v > version => Some(v.clone()),
                _ => None,
            })
            .min()
    }
}

/// Every `*.json` record in the zip at `path`.
fn read_zip(path: &Path) -> Result<Vec<Advisory>, LoadError> {
    let fail = |reason: String| LoadError {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| fail(format!("not a zip: {e}")))?;
    let mut advisories = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| fail(e.to_string()))?;
        if !entry.name().ends_with(".json") {
            continue;
        }
        let name = entry.name().to_owned();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).map_err(|e| fail(format!("{name}: {e}")))?;
        advisories.push(parse(&text).map_err(|reason| fail(format!("{name}: {reason}")))?);
    }
    Ok(advisories)
}

impl Advisory {
    pub fn affects(&self, ecosystem: &str, name: &str, version: &Version) -> bool {
        self.affected
            .iter()
            .any(|x| x.ecosystem == ecosystem && x.name == name && x.affects(version))
    }

    /// The versions its ranges for `name` start, end or list at.
    pub fn event_versions(&self, name: &str) -> Vec<Version> {
        self.affected
            .iter()
            .filter(|a| a.name == name)
            .flat_map(|a| {
                a.ranges
                    .iter()
                    .flatten()
                    .map(|e| e.version().clone())
                    .chain(a.versions.iter().filter_map(|v| version(v)))
            })
            .collect()
    }

    /// What it affects of `name`, in npm's range syntax (`>=6.5.0 <6.5.3`),
    /// one entry per range or listed version.
    pub fn affected_ranges(&self, name: &str) -> Vec<String> {
        let mut ranges = Vec::new();
        for affected in self.affected.iter().filter(|a| a.name == name) {
            for events in &affected.ranges {
                let mut sorted: Vec<&Event> = events.iter().collect();
                sorted.sort_by(|a, b| a.version().cmp(b.version()));
                let mut from: Option<&Version> = None;
                for event in sorted {
                    match event {
                        Event::Introduced(v) => from = Some(v),
                        Event::Fixed(v) | Event::Limit(v) => ranges.push(bounded(from.take(), format!("<{v}"))),
                        Event::LastAffected(v) => ranges.push(bounded(from.take(), format!("<={v}"))),
                    }
                }
                if let Some(from) = from {
                    ranges.push(format!(">={from}"));
                }
            }
            ranges.extend(affected.versions.iter().cloned());
        }
        ranges
    }
}

/// `>=from to`, or `to` alone when the range opens at the very start.
fn bounded(from: Option<&Version>, to: String) -> String {
    match from {
        Some(v) if (v.major, v.minor, v.patch) != (0, 0, 0) || v.is_prerelease() => format!(">={v} {to}"),
        _ => to,
    }
}

impl Affected {
    /// OSV's evaluation: within a range, walk the events in version order;
    /// `introduced` opens, `fixed` closes at, `last_affected` closes after.
    fn affects(&self, version: &Version) -> bool {
        if self
            .versions
            .iter()
            .any(|v| crate::versions::version(v).as_ref() == Some(version))
        {
            return true;
        }
        self.ranges.iter().any(|events| {
            let mut sorted: Vec<&Event> = events.iter().collect();
            sorted.sort_by(|a, b| a.version().cmp(b.version()));
            if sorted
                .iter()
                .any(|e| matches!(e, Event::Limit(limit) if version >= limit))
            {
                return false;
            }
            let mut affected = false;
            for event in sorted {
                match event {
                    Event::Introduced(v) if version >= v => affected = true,
                    Event::Fixed(v) if version >= v => affected = false,
                    Event::LastAffected(v) if version > v => affected = false,
                    _ => {}
                }
            }
            affected
        })
    }
}

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    severity: Vec<RecordSeverity>,
    #[serde(default)]
    affected: Vec<RecordAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RecordSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RecordAffected {
    package: Option<RecordPackage>,
    #[serde(default)]
    ranges: Vec<RecordRange>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct RecordPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RecordRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<std::collections::BTreeMap<String, String>>,
}

fn parse(text: &str) -> Result<Advisory, String> {
    let record: Record = serde_json::from_str(text).map_err(|e| format!("not an OSV record: {e}"))?;
    let severity = record
        .severity
        .iter()
        .filter(|s| s.kind.starts_with("CVSS_V3"))
        .find_map(|s| cvss::v3::Base::from_str(&s.score).ok())
        .map(|base| from_cvss(base.score().value()))
        .or_else(|| {
            let label = record.database_specific.as_ref()?.get("severity")?.as_str()?;
            Some(match label.to_ascii_uppercase().as_str() {
                "CRITICAL" => Severity::Critical,
                "HIGH" => Severity::High,
                "MODERATE" | "MEDIUM" => Severity::Medium,
                _ => Severity::Low,
            })
        })
        .unwrap_or(Severity::Medium);
    let affected = record
        .affected
        .into_iter()
        .filter_map(|a| {
            let package = a.package?;
            let ranges = a
                .ranges
                .into_iter()
                // Git ranges name commits, which no installed package has.
                .filter(|r| r.kind != "GIT")
                .map(|r| r.events.iter().flat_map(events).collect())
                .collect();
            Some(Affected {
                ecosystem: package.ecosystem,
                name: package.name,
                ranges,
                versions: a.versions,
            })
        })
        .collect();
    Ok(Advisory {
        id: record.id,
        aliases: record.aliases,
        summary: record.summary,
        severity,
        affected,
    })
}

fn events(event: &std::collections::BTreeMap<String, String>) -> Vec<Event> {
    event
        .iter()
        .filter_map(|(kind, text)| {
            let version = version(text)?;
            Some(match kind.as_str() {
                "introduced" => Event::Introduced(version),
                "fixed" => Event::Fixed(version),
                "last_affected" => Event::LastAffected(version),
                "limit" => Event::Limit(version),
                _ => return None,
            })
        })
        .collect()
}

/// CVSS v3's qualitative rating of a base score.
fn from_cvss(score: f64) -> Severity {
    match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::Info,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The real records in `fixtures/advisories`.
    pub fn fixtures() -> Database {
        Database::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/advisories")).unwrap()
    }

    fn v(text: &str) -> Version {
        version(text).unwrap()
    }

    #[test]
    fn the_fixture_records_load_with_their_severity() {
        let db = fixtures();
        assert_eq!(db.len(), 6);
        let hits = db.affecting("npm", "jquery", &v("1.8.3"));
        let ids: Vec<&str> = hits.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["GHSA-gxr4-xjj5-5px2", "GHSA-jpcq-cgw6-v4j6"]);
        // CVSS 3.1 AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:L/A:N is 6.9.
        assert_eq!(hits[0].severity, Severity::Medium);
        assert_eq!(Database::fixed_after(hits[0], "jquery", &v("1.8.3")), Some(v("3.5.0")));
    }

    #[test]
    fn ranges_open_at_introduced_and_close_at_fixed() {
        let db = fixtures();
        let count = |version: &str| db.affecting("npm", "jquery", &v(version)).len();
        assert_eq!(count("1.0.2"), 0);
        assert_eq!(count("1.0.3"), 1);
        assert_eq!(count("1.2.0"), 2);
        assert_eq!(count("3.4.1"), 2);
        assert_eq!(count("3.5.0"), 0);
        assert_eq!(count("3.5.0-rc.1"), 2, "a prerelease of the fix is before it");
        assert!(db.affecting("NuGet", "jquery", &v("1.8.3")).is_empty());
    }

    #[test]
    fn affected_ranges_are_written_as_npm_ranges() {
        let db = fixtures();
        let qs = db.affecting("npm", "qs", &v("6.5.2"));
        assert_eq!(qs[0].affected_ranges("qs")[5], ">=6.5.0 <6.5.3");
        assert_eq!(qs[0].affected_ranges("qs")[8], "<6.2.4");
    }

    #[test]
    fn last_affected_and_limit_close_ranges_too() {
        let record = r#"{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"p"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.4.0"}]},
                      {"type":"SEMVER","events":[{"introduced":"2.0.0"},{"limit":"2.1.0"}]}]}]}"#;
        let db = Database::from_advisories(vec![parse(record).unwrap()]);
        let affected = |version: &str| !db.affecting("npm", "p", &v(version)).is_empty();
        assert!(affected("1.4.0") && !affected("1.4.1"));
        assert!(affected("2.0.5") && !affected("2.1.0"));
        assert!(parse("{}").is_err());
    }
}
