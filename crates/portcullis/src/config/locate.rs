//! Points a config error at the file line its key was written on.

use std::ops::Range;

use toml_edit::{Document, Item, TableLike};

/// The parsed file, kept for finding where keys were written.
pub struct Locator<'a> {
    source: &'a str,
    document: Option<Document<&'a str>>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a str) -> Self {
        Self {
            source,
            document: Document::parse(source).ok(),
        }
    }

    /// The 1-based line of the deepest part of `path` that the file contains.
    /// `path` is dotted, with `[i]` for entries of arrays of tables:
    /// `route[1].headers.x_frame_options`.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let document = self.document.as_ref()?;
        let mut table: &dyn TableLike = document.as_table();
        let mut found: Option<Range<usize>> = None;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let (name, index) = split_index(segment);
            let Some((key, item)) = table.get_key_value(name) else {
                break;
            };
            found = key.span().or_else(|| item.span()).or(found);
            let next: Option<&dyn TableLike> = match (item, index) {
                (Item::ArrayOfTables(array), Some(i)) => array.get(i).map(|t| {
                    found = t.span().or(found.clone());
                    t as &dyn TableLike
                }),
                (item, None) => item.as_table_like(),
                _ => None,
            };
            match next {
                Some(next) => table = next,
                None => break,
            }
        }
        found.map(|span| line_at(self.source, span.start))
    }
}

/// The 1-based line holding byte `offset`.
pub fn line_at(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
        Some((name, index)) => (name, index.parse().ok()),
        None => (segment, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "[server]\nlisten = \"127.0.0.1:1\"\n\n[headers]\nx_frame_options = \"NO\"\n\n[[route]]\npath = \"/a\"\n\n[[route]]\npath = \"/b\"\n[route.limits]\nmax_body_bytes = -1\n";

    #[test]
    fn finds_keys_tables_and_array_entries() {
        let locator = Locator::new(FILE);
        assert_eq!(locator.line_of("server.listen"), Some(2));
        assert_eq!(locator.line_of("headers.x_frame_options"), Some(5));
        assert_eq!(locator.line_of("route[1].limits.max_body_bytes"), Some(13));
        assert_eq!(locator.line_of("route[1].path"), Some(11));
        // Missing keys point at the nearest enclosing part that exists.
        assert_eq!(locator.line_of("headers.referrer_policy"), Some(4));
        assert_eq!(locator.line_of("nothing.here"), None);
    }
}
