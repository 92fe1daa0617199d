//! Request paths as the app will read them.
//!
//! Policies that apply to some paths compare normalised paths, so that they
//! cannot be dodged with a spelling the app would still serve: Express
//! decodes percent-escapes, ignores case and treats `//` and `/./` like `/`.

use std::borrow::Cow;

use globset::{Glob, GlobMatcher};

/// Lowercases, percent-decodes, and resolves `//`, `.` and `..` segments.
pub fn normalize(path: &str) -> Cow<'_, str> {
    if already_normal(path) {
        Cow::Borrowed(path)
    } else {
        normalize_fully(path)
    }
}

fn normalize_fully(path: &str) -> Cow<'_, str> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let lowered = decoded.to_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in lowered.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let trailing = lowered.ends_with('/') && !segments.is_empty();
    let mut normalized = String::with_capacity(lowered.len() + 1);
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if trailing || normalized.is_empty() {
        normalized.push('/');
    }
    if normalized == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalized)
    }
}

/// Most paths need no work: lowercase ASCII without escapes, every segment
/// but the last a name, the last a name or empty (a trailing `/`).
fn already_normal(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let plain = |b: u8| !(b.is_ascii_uppercase() || b == b'%' || b == b'\\' || !b.is_ascii());
    let mut segments = rest.split('/').peekable();
    rest.bytes().all(plain)
        && std::iter::from_fn(|| segments.next().map(|s| (s, segments.peek().is_none())))
            .all(|(segment, last)| !matches!(segment, "." | "..") && (last || !segment.is_empty()))
}

/// A `path` in the config (routes, WAF exclusions): a prefix (`/api`) or, with `*`, `?`, `[` or `{`, a glob (`/files/*.pdf`).
#[derive(Debug, Clone)]
pub enum PathPattern {
    Prefix(String),
    Glob(GlobMatcher),
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if !pattern.starts_with('/') {
            return Err(format!("`{pattern}` must start with `/`"));
        }
        let lowered = pattern.to_ascii_lowercase();
        if pattern.contains(['*', '?', '[', '{']) {
            let glob = Glob::new(&lowered).map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))?;
            Ok(Self::Glob(glob.compile_matcher()))
        } else {
            Ok(Self::Prefix(normalize(&lowered).into_owned()))
        }
    }

    /// Whether every path `other` matches, this matches too (as far as can
    /// be told: a prefix that contains the other, or the same glob).
    pub fn covers(&self, other: &PathPattern) -> bool {
        match (self, other) {
            (Self::Prefix(_), Self::Prefix(inner)) => self.matches(inner),
            (Self::Glob(outer), Self::Glob(inner)) => outer.glob() == inner.glob(),
            (Self::Prefix(prefix), Self::Glob(_)) => prefix == "/",
            (Self::Glob(_), Self::Prefix(_)) => false,
        }
    }

    /// `path` must already be normalised.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            // `/api` covers `/api` and `/api/...`, not `/apiary`.
            Self::Prefix(prefix) => path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')),
            Self::Glob(glob) => glob.is_match(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalized_paths_are_canonical(path in "[/a-zA-Z%.\\\\0-9]{0,64}") {
            let once = normalize(&path).into_owned();
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once.contains("//") && !once.contains("/./") && !once.contains("/../"));
            prop_assert!(!once.bytes().any(|b| b.is_ascii_uppercase()));
        }

        #[test]
        fn paths_taken_as_normal_are_what_the_full_work_gives(
            path in prop_oneof!["/[a-z0-9./]{0,24}", "/[a-zA-Z0-9./%\\\\]{0,6}", "/([a-z/]|%[0-9a-f]{2}){0,4}"]
        ) {
            if already_normal(&path) {
                prop_assert_eq!(normalize_fully(&path), path.as_str());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(path in any::<String>()) {
            let _ = normalize(&path);
        }
    }
}
