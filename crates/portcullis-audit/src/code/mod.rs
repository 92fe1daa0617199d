//! `portcullis audit PATH`, the code: the project's own JavaScript and
//! TypeScript (as git sees them: `.gitignore` honoured, `node_modules`
//! skipped), parsed with oxc, across the machine's cores, and read by the
//! rules in [`rules`]. A file that does not parse is reported and the rest
//! goes on. Then a second pass follows request data that one file passes
//! to a function another file defines (see [`taint`]).

mod files;
pub mod redos;
mod rules;
mod taint;
mod templates;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oxc_allocator::Allocator;
use oxc_parser::{Parser, ParserReturn};
use oxc_span::SourceType;

use crate::report::{Evidence, Finding, Item, Severity};

/// What the code audit read, and what it found.
pub struct CodeAudit {
    pub files: usize,
    pub findings: Vec<Finding>,
}

/// Audits the code under `dir`; with `include_deps`, its `node_modules`
/// too.
pub fn audit(dir: &Path, include_deps: bool) -> CodeAudit {
    let (files, mut findings) = files::project_files(dir, include_deps);
    let read = in_parallel(&files, |file| vec![check_file(dir, file)]);
    // Each name a file calls with request data, where exactly one other
    // file defines it.
    let mut definers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, file) in read.iter().enumerate() {
        for name in &file.defines {
            definers.entry(name.clone()).or_default().push(i);
        }
    }
    let mut seeds: HashMap<usize, Vec<taint::Call>> = HashMap::new();
    let mut found: HashSet<(&'static str, String, Option<u32>)> = HashSet::new();
    for (i, file) in read.into_iter().enumerate() {
        for call in file.calls {
            if let Some(&[j]) = definers.get(call.name.as_str()).map(Vec::as_slice) {
                if j != i {
                    seeds.entry(j).or_default().push(call);
                }
            }
        }
        for finding in file.findings {
            found.insert((finding.rule, finding.evidence.location.clone(), finding.evidence.line));
            findings.push(finding);
        }
    }
    let seeded: Vec<(&PathBuf, Vec<taint::Call>)> = seeds.into_iter().map(|(i, calls)| (&files[i], calls)).collect();
    let followed = in_parallel(&seeded, |(file, calls)| follow_into(dir, file, calls));
    findings.extend(
        followed
            .into_iter()
            .filter(|f| found.insert((f.rule, f.evidence.location.clone(), f.evidence.line))),
    );
    CodeAudit {
        files: files.len(),
        findings,
    }
}

/// What reading one file gave: its findings, the names it defines, and
/// its calls with request data to names it does not.
#[derive(Default)]
struct FileRead {
    findings: Vec<Finding>,
    defines: Vec<String>,
    calls: Vec<taint::Call>,
}

/// The second pass: `calls` from other files followed into `path`'s
/// functions.
fn follow_into(dir: &Path, path: &Path, calls: &[taint::Call]) -> Vec<Finding> {
    let Ok(text) = read_source(path) else { return Vec::new() };
    parsed(path, &text, |parsed, lines, _| {
        rules::follow(&shown(dir, path), &text, lines, &parsed.program, calls.to_vec())
    })
}

/// `path` as findings show it: relative to the audited directory.
fn shown(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// `work` on `text`, the contents of `path`, parsed with oxc as its
/// extension says, with its line index.
fn parsed<R>(path: &Path, text: &str, work: impl FnOnce(&ParserReturn, &rules::Lines, SourceType) -> R) -> R {
    let source_type = SourceType::from_path(path).unwrap_or_default();
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, text, source_type).parse();
    work(&parsed, &rules::Lines::new(text), source_type)
}

/// A regular expression with a literal pattern, where the code has it.
pub struct FoundRegex {
    pub file: String,
    pub line: u32,
    pub source: String,
    pub flags: String,
}

/// Every regular expression with a literal pattern in the code under
/// `dir` (and its `node_modules` with `include_deps`), in file order.
pub fn regexes(dir: &Path, include_deps: bool) -> Vec<FoundRegex> {
    let (files, _) = files::project_files(dir, include_deps);
    in_parallel(&files, |path| {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let Ok(text) = read_source(path) else { return Vec::new() };
        if templates::is_template(extension) {
            return Vec::new();
        }
        let file = shown(dir, path);
        parsed(path, &text, |parsed, lines, _| {
            redos::sites(&text, &parsed.program)
                .into_iter()
                .map(|site| FoundRegex {
                    file: file.clone(),
                    line: lines.position(site.span.start).0,
                    source: site.source,
                    flags: site.flags,
                })
                .collect()
        })
    })
}

/// `work` on every file, the files shared out across the machine's cores;
/// the results in file order.
fn in_parallel<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> Vec<T> + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunks: Vec<&[I]> = items.chunks(items.len().div_ceil(threads).max(1)).collect();
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .iter()
            .map(|chunk| scope.spawn(move || chunk.iter().flat_map(work).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// A file's text, or why it is not read as code.
fn read_source(path: &Path) -> Result<String, String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => return Err(format!("{} bytes, over {MAX_FILE_BYTES}", meta.len())),
        Err(error) => return Err(error.to_string()),
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|_| "unreadable".to_owned())?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    if text.contains('\0') {
        return Err("a binary file".into());
    }
    Ok(text)
}

/// Larger than this is not the project's own code (a bundle, a minified
/// vendor file): skipped, and said so.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

fn check_file(dir: &Path, path: &Path) -> FileRead {
    let findings = |findings| FileRead {
        findings,
        ..FileRead::default()
    };
    let shown = shown(dir, path);
    let skip = |why: String| {
        vec![Finding {
            rule: "code.skipped",
            item: Item::C17,
            severity: Severity::Info,
            title: format!("Not read: {why}"),
            evidence: Evidence::at(&shown, why.clone()),
            fix: "nothing to do if it is not the project's own code; else make it readable JavaScript or TypeScript"
                .into(),
        }]
    };
    let text = match read_source(path) {
        Ok(text) => text,
        Err(why) => return findings(skip(why)),
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if templates::is_template(extension) {
        return findings(templates::check(&shown, extension, &text));
    }
    parsed(path, &text, |parsed, lines, source_type| {
        if !parsed.panicked && parsed.diagnostics.is_empty() {
            return rules::check(&shown, &text, lines, &parsed.program, source_type);
        }
        let (position, message) = parsed
            .diagnostics
            .first()
            .map(|d| {
                let at = d.labels.first().map_or(0, |l| l.offset());
                (lines.position(at), d.message.to_string())
            })
            .unwrap_or(((1, 1), "unparsable".into()));
        findings(vec![Finding {
            rule: "code.parse-error",
            item: Item::C17,
            severity: Severity::Info,
            title: format!("Does not parse, so it was not checked: {message}"),
            evidence: Evidence::in_file_at(&shown, position, message),
            fix: "fix the syntax error (or, for a template or generated file, ignore it in .gitignore)".into(),
        }])
    })
}
