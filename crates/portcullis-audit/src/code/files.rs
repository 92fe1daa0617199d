//! The project's own source files (and server-side templates): what git
//! would track (`.gitignore` honoured, as ripgrep walks a tree), never
//! following a symlink out of the tree or round in a loop; `node_modules`
//! only when asked for (then all of it, though git ignores it).

use std::path::{Path, PathBuf};

use crate::report::Finding;

const EXTENSIONS: [&str; 8] = ["js", "cjs", "mjs", "jsx", "ts", "cts", "mts", "tsx"];

/// The files to read, sorted, and the problems met on the way.
pub fn project_files(dir: &Path, include_deps: bool) -> (Vec<PathBuf>, Vec<Finding>) {
    let mut files = source_files(dir, true);
    let dependencies = dir.join("node_modules");
    if include_deps && dependencies.is_dir() {
        files.extend(source_files(&dependencies, false));
    }
    files.sort();
    (files, Vec::new())
}

fn source_files(dir: &Path, git_ignore: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(true)
        .git_ignore(git_ignore)
        .ignore(git_ignore)
        .require_git(false)
        .follow_links(false)
        // Installed and vendored code is not the project's own.
        .filter_entry(move |entry| {
            entry.depth() == 0
                || !git_ignore
                || !matches!(
                    entry.file_name().to_str(),
                    Some("node_modules" | "vendor" | "bower_components")
                )
        })
        .build();
    for entry in walker.flatten() {
        let path = entry.path();
        let is_source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e) || super::templates::is_template(e))
            && !path.to_string_lossy().ends_with(".d.ts")
            // A minified file is a vendored library, not code the project writes
            // (the URL audit checks libraries against advisories).
            && !path.to_string_lossy().ends_with(".min.js");
        if is_source && entry.file_type().is_some_and(|t| t.is_file()) {
            files.push(path.to_path_buf());
        }
    }
    files
}
