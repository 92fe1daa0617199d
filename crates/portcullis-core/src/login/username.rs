//! Finding the username in the first bytes of a login request's body.
//!
//! Only a bounded prefix is read; anything that does not give exactly one
//! username (another body type, a field sent twice, a value cut off by the
//! bound, bytes that are not UTF-8) gives `None`, and the attempt counts
//! against the client's address alone.

/// The username sent in `prefix`, if one can be told for sure. `complete`:
/// the prefix is the whole body.
pub fn find(content_type: Option<&[u8]>, prefix: &[u8], complete: bool, field: &str) -> Option<String> {
    let content_type = content_type?;
    let media_type = content_type.split(|&b| b == b';').next()?.trim_ascii();
    let found = if media_type.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        // A value may run to the end of the body, so only a whole body is read.
        complete.then(|| in_form(prefix, field)).flatten()
    } else if is_json(media_type) {
        complete.then(|| in_json(prefix, field)).flatten()
    } else if media_type.eq_ignore_ascii_case(b"multipart/form-data") {
        in_multipart(&boundary(content_type)?, prefix, field)
    } else {
        None
    };
    found
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty())
}

fn is_json(media_type: &[u8]) -> bool {
    media_type.eq_ignore_ascii_case(b"application/json")
        || (media_type.len() > 5 && media_type[media_type.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Exactly one value, or `None`.
fn single<T>(mut values: impl Iterator<Item = T>) -> Option<T> {
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn in_form(body: &[u8], field: &str) -> Option<String> {
    single(
        form_urlencoded::parse(body)
            .filter(|(name, _)| name == field)
            .map(|(_, value)| value.into_owned()),
    )
}

fn in_json(body: &[u8], field: &str) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    object.get(field)?.as_str().map(str::to_owned)
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    content_type.split(|&b| b == b';').skip(1).find_map(|parameter| {
        let (name, value) = split_once(parameter, b'=')?;
        if !name.trim_ascii().eq_ignore_ascii_case(b"boundary") {
            return None;
        }
        let value = value.trim_ascii();
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 70).then(|| value.to_vec())
    })
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The value of the one part named `field`. Parts are read only up to the
/// end of the prefix: a part whose closing delimiter is not in it is ignored.
fn in_multipart(boundary: &[u8], body: &[u8], field: &str) -> Option<String> {
    let delimiter = [&b"\r\n--"[..], boundary].concat();
    // The first delimiter may open the body without the leading CRLF.
    let mut rest = body.strip_prefix(&delimiter[2..]).or_else(|| {
        let at = find_bytes(body, &delimiter)?;
        Some(&body[at + delimiter.len()..])
    })?;
    let mut values = Vec::new();
    // After a delimiter comes a line break and a part, or `--` at the end of
    // the body; a part cut off by the end of the prefix ends the search.
    while let Some(part_start) = rest.strip_prefix(b"\r\n") {
        let Some(end) = find_bytes(part_start, &delimiter) else {
            break;
        };
        let (part, after) = (&part_start[..end], &part_start[end + delimiter.len()..]);
        let head_end = find_bytes(part, b"\r\n\r\n")?;
        if part_name(&part[..head_end]).is_some_and(|name| name == field.as_bytes()) {
            values.push(String::from_utf8(part[head_end + 4..].to_vec()).ok()?);
        }
        rest = after;
    }
    single(values.into_iter())
}

/// The `name` of a part, from its `Content-Disposition: form-data; name="..."` header.
fn part_name(head: &[u8]) -> Option<&[u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let (header, value) = split_once(line, b':')?;
        if !header.trim_ascii().eq_ignore_ascii_case(b"content-disposition") {
            return None;
        }
        value.split(|&b| b == b';').skip(1).find_map(|parameter| {
            let (name, value) = split_once(parameter, b'=')?;
            let value = value.trim_ascii();
            (name.trim_ascii() == b"name").then(|| {
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value)
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FORM: &[u8] = b"application/x-www-form-urlencoded";

    #[test]
    fn forms_json_and_multipart() {
        assert_eq!(
            find(Some(FORM), b"username=Ada%20&password=x", true, "username").as_deref(),
            Some("ada"),
            "decoded, trimmed, lowercased"
        );
        assert_eq!(
            find(
                Some(b"application/json; charset=utf-8"),
                br#"{"username":"ada","password":"x"}"#,
                true,
                "username"
            )
            .as_deref(),
            Some("ada")
        );
        let multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nAda\r\n--XyZ--\r\n";
        assert_eq!(
            find(Some(b"multipart/form-data; boundary=XyZ"), multipart, true, "username").as_deref(),
            Some("ada")
        );
        assert_eq!(
            find(
                Some(b"multipart/form-data; boundary=\"XyZ\""),
                &multipart[..70],
                false,
                "password"
            )
            .as_deref(),
            Some("x"),
            "a part complete within the prefix counts"
        );
    }

    #[test]
    fn anything_ambiguous_gives_no_username() {
        let none =
            |content_type: &[u8], body: &[u8], complete: bool| find(Some(content_type), body, complete, "username");
        assert_eq!(none(FORM, b"username=a&username=b", true), None, "sent twice");
        assert_eq!(none(FORM, b"username=ad", false), None, "maybe cut off");
        assert_eq!(none(FORM, b"user=ada", true), None, "absent");
        assert_eq!(none(FORM, b"username=%20", true), None, "blank");
        assert_eq!(
            none(b"application/json", br#"{"username":["a"]}"#, true),
            None,
            "not a string"
        );
        assert_eq!(none(b"application/json", b"username=ada", true), None, "not JSON");
        assert_eq!(none(b"text/plain", b"username=ada", true), None, "another type");
        assert_eq!(none(b"multipart/form-data", b"--x\r\n", true), None, "no boundary");
        assert_eq!(find(None, b"username=ada", true, "username"), None);
    }

    proptest! {
        // Arbitrary bodies and content types: a decision, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(
            kind in 0usize..4,
            boundary in "[a-zA-Z0-9]{0,8}",
            body in proptest::collection::vec(any::<u8>(), 0..512),
            complete in any::<bool>(),
        ) {
            let content_type = match kind {
                0 => FORM.to_vec(),
                1 => b"application/json".to_vec(),
                2 => format!("multipart/form-data; boundary={boundary}").into_bytes(),
                _ => b"application/x-anything".to_vec(),
            };
            let _ = find(Some(&content_type), &body, complete, "username");
        }

        #[test]
        fn multipart_fragments_never_panic(parts in proptest::collection::vec("(--b|\r\n|Content-Disposition: form-data; name=\"username\"|ada|\r\n\r\n|--)", 0..24)) {
            let body = parts.concat();
            let _ = find(Some(b"multipart/form-data; boundary=b"), body.as_bytes(), true, "username");
        }
    }
}
