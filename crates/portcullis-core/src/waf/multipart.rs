//! `multipart/form-data` bodies: field names, file names and text fields
//! (file contents only when asked), read from a bounded prefix in memory.
//!
//! Written here rather than taken from `multer`: that crate parses a whole
//! stream into owned fields, while the WAF reads a prefix it already holds,
//! must survive a part cut off at the prefix's end, and wants borrowed
//! slices. The format is small (RFC 7578): delimiter lines, a header block,
//! the content up to the next delimiter.

use super::decode::Origin;
use super::walk::{Item, Raw, Role, Source};

/// Walks the parts of `body`. A part the prefix cut off is walked as far as
/// it goes.
pub fn walk(body: &[u8], boundary: &str, files: bool, visit: &mut dyn FnMut(Item<'_>)) {
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let next_delimiter = format!("\r\n--{boundary}");
    let next_finder = memchr::memmem::Finder::new(next_delimiter.as_bytes());
    let Some(first) = finder.find(body) else {
        return;
    };
    let mut rest = &body[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return;
        }
        let Some(headers_end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
            return;
        };
        let headers = &rest[..headers_end];
        let content_start = headers_end + 4;
        let content_end = next_finder
            .find(&rest[content_start..])
            .map_or(rest.len(), |end| content_start + end);
        let content = &rest[content_start..content_end];
        part(headers, content, files, visit);
        if content_end >= rest.len() {
            return;
        }
        rest = &rest[content_end + next_delimiter.len()..];
    }
}

fn part(headers: &[u8], content: &[u8], files: bool, visit: &mut dyn FnMut(Item<'_>)) {
    let text = String::from_utf8_lossy(headers);
    let Some(disposition) = text.split("\r\n").find(|line| {
        line.as_bytes()
            .get(..20)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"content-disposition:"))
    }) else {
        return;
    };
    let name = parameter(disposition, "name").unwrap_or_default();
    let filename = parameter(disposition, "filename");
    fn item<'a>(field: &'a str, raw: &'a [u8], role: Role) -> Item<'a> {
        Item {
            source: Source::Multipart,
            name: field,
            raw: Raw::Bytes(raw),
            role,
            origin: Origin::Plain,
        }
    }
    visit(item(&name, name.as_bytes(), Role::Key));
    match filename {
        Some(filename) => {
            let field = format!("{name}.filename");
            visit(item(&field, filename.as_bytes(), Role::Value));
            if files {
                visit(item(&name, content, Role::Value));
            }
        }
        None => visit(item(&name, content, Role::Value)),
    }
}

/// `name="x"` or `name=x` in a `Content-Disposition` line.
fn parameter(line: &str, key: &str) -> Option<String> {
    line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .replace("\\\"", "\""),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(body: &str, files: bool) -> Vec<String> {
        let mut seen = Vec::new();
        walk(body.as_bytes(), "XyZ", files, &mut |item| {
            seen.push(format!(
                "{}={}:{:?}",
                item.name,
                String::from_utf8_lossy(item.raw.bytes()),
                item.role
            ))
        });
        seen
    }

    const BODY: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n";

    #[test]
    fn names_filenames_and_text_fields() {
        assert_eq!(
            items(BODY, false),
            [
                "comment=comment:Key",
                "comment=hello:Value",
                "file=file:Key",
                "file.filename=../a.txt:Value"
            ]
        );
        assert!(items(BODY, true).contains(&"file=file body:Value".to_owned()));
    }

    #[test]
    fn a_part_cut_off_is_walked_as_far_as_it_goes() {
        assert_eq!(items(&BODY[..60], false), ["comment=comment:Key", "comment=hel:Value"]);
    }

    #[test]
    fn a_header_line_with_multibyte_text_is_no_disposition() {
        let body = "--XyZ\r\nContent-Dispositioné: x\r\n\r\nv\r\n--XyZ--\r\n";
        assert!(items(body, false).is_empty());
    }

    proptest! {
        #[test]
        fn any_bytes_walk_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            walk(&bytes, "XyZ", true, &mut |_| {});
        }

        #[test]
        fn multipart_like_text_walks_without_panic(text in "(--XyZ|\r\n|Content-Disposition: form-data; name=\"a\"; filename=|[a-z\"=;]){0,40}") {
            walk(text.as_bytes(), "XyZ", true, &mut |_| {});
        }
    }
}
