//! The request walker: every place a request carries input, as items the
//! detectors can read.
//!
//! The path, the query (qs-style nested names included), cookies, the
//! `User-Agent`, `Referer` and `X-*` headers, and the bodies apps parse:
//! urlencoded forms, JSON ([`super::json`]) and multipart forms
//! ([`super::multipart`]). Values are handed over raw; decoding is the
//! inspector's ([`super::decode`]), once per value.

use http::{header, HeaderMap, HeaderValue};

use super::decode::Origin;

/// Where an item was found; the first part of its location (`query.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Path,
    Query,
    Form,
    Json,
    Multipart,
    Cookie,
    Header,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Form => "form",
            Self::Json => "json",
            Self::Multipart => "multipart",
            Self::Cookie => "cookie",
            Self::Header => "header",
        }
    }
}

/// What an item is to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A parameter's value.
    Value,
    /// A parameter's name (for JSON, the key path down to it).
    Key,
    /// The request path, read whole (traversal) and by segment.
    Path,
    /// The `User-Agent`: also a scanner's fingerprint.
    UserAgent,
}

/// One piece of input.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub source: Source,
    /// The parameter's name as the app sees it (`id`, `a[b][0]`,
    /// `user.address.street`, `user-agent`); empty for the path.
    pub name: &'a str,
    pub raw: Raw<'a>,
    pub role: Role,
    pub origin: Origin,
}

/// A value as the request carried it: bytes, or text its reader already
/// checked to be UTF-8 (JSON strings, the decoded path), which need not be
/// checked again.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

impl<'a> Raw<'a> {
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Raw::Bytes(bytes) => bytes,
            Raw::Text(text) => text.as_bytes(),
        }
    }
}

/// The path, the query, cookies and headers.
pub fn head(path: &str, query: Option<&str>, headers: &HeaderMap, visit: &mut dyn FnMut(Item<'_>)) {
    visit(Item {
        source: Source::Path,
        name: "",
        raw: Raw::Text(path),
        role: Role::Path,
        origin: Origin::Plain,
    });
    if let Some(query) = query {
        pairs(Source::Query, query.as_bytes(), visit);
    }
    for cookies in headers.get_all(header::COOKIE) {
        cookie_pairs(cookies, visit);
    }
    for (name, value) in headers {
        let (role, origin) = if name == header::USER_AGENT {
            (Role::UserAgent, Origin::Plain)
        } else if name == header::REFERER {
            // A URL: its query is form-encoded.
            (Role::Value, Origin::Form)
        } else if name.as_str().starts_with("x-") {
            (Role::Value, Origin::Plain)
        } else {
            continue;
        };
        visit(Item {
            source: Source::Header,
            name: name.as_str(),
            raw: Raw::Bytes(value.as_bytes()),
            role,
            origin,
        });
    }
}

/// `a=1&b[c]=2`: names and values, as a query string or urlencoded form.
pub fn pairs(source: Source, text: &[u8], visit: &mut dyn FnMut(Item<'_>)) {
    for pair in text.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let decoded = percent_encoding::percent_decode(name).decode_utf8_lossy();
        let decoded = if decoded.contains('+') {
            std::borrow::Cow::Owned(decoded.replace('+', " "))
        } else {
            decoded
        };
        visit(Item {
            source,
            name: &decoded,
            raw: Raw::Bytes(name),
            role: Role::Key,
            origin: Origin::Form,
        });
        visit(Item {
            source,
            name: &decoded,
            raw: Raw::Bytes(value),
            role: Role::Value,
            origin: Origin::Form,
        });
    }
}

fn cookie_pairs(header: &HeaderValue, visit: &mut dyn FnMut(Item<'_>)) {
    for pair in header.as_bytes().split(|b| *b == b';') {
        let pair = pair.trim_ascii();
        let Some(at) = memchr::memchr(b'=', pair) else {
            continue;
        };
        let name = String::from_utf8_lossy(pair[..at].trim_ascii());
        let value = pair[at + 1..].trim_ascii();
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        visit(Item {
            source: Source::Cookie,
            name: &name,
            raw: Raw::Bytes(value),
            role: Role::Value,
            origin: Origin::Plain,
        });
    }
}

/// The segments of a qs-style key: `user[$ne]`, `a[b][0]`, `a.b.c`.
pub fn segments(key: &str) -> impl Iterator<Item = &str> {
    key.split(['[', ']', '.']).filter(|s| !s.is_empty())
}

/// The bodies the walker reads, by `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
    Multipart { boundary: String },
}

impl BodyKind {
    /// What the app would parse this body as, if anything: `Express`'s
    /// parsers go by the media type alone.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let mut parts = value.split(';');
        let media = parts.next()?.trim().to_ascii_lowercase();
        match media.as_str() {
            "application/x-www-form-urlencoded" => Some(Self::Form),
            "application/json" => Some(Self::Json),
            m if m.starts_with("application/") && m.ends_with("+json") => Some(Self::Json),
            "multipart/form-data" => parts.find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("boundary")
                    .then(|| value.trim().trim_matches('"').to_owned())
                    .filter(|b| !b.is_empty() && b.len() <= 70)
                    .map(|boundary| Self::Multipart { boundary })
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &str, query: Option<&str>, headers: &HeaderMap) -> Vec<(Source, String, String, Role)> {
        let mut items = Vec::new();
        head(path, query, headers, &mut |item| {
            items.push((
                item.source,
                item.name.to_owned(),
                String::from_utf8_lossy(item.raw.bytes()).into_owned(),
                item.role,
            ))
        });
        items
    }

    #[test]
    fn the_head_is_walked_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("sid=abc; theme=\"dark\""));
        headers.insert(header::USER_AGENT, HeaderValue::from_static("curl/8"));
        headers.insert("x-note", HeaderValue::from_static("hi"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let items = collect("/a/b", Some("id=1&a%5Bb%5D=2&flag&q=x+y"), &headers);
        let names: Vec<_> = items
            .iter()
            .map(|(s, n, v, r)| format!("{}.{n}={v}:{r:?}", s.name()))
            .collect();
        assert_eq!(
            names,
            [
                "path.=/a/b:Path",
                "query.id=id:Key",
                "query.id=1:Value",
                "query.a[b]=a%5Bb%5D:Key",
                "query.a[b]=2:Value",
                "query.flag=flag:Key",
                "query.flag=:Value",
                "query.q=q:Key",
                "query.q=x+y:Value",
                "cookie.sid=abc:Value",
                "cookie.theme=dark:Value",
                "header.user-agent=curl/8:UserAgent",
                "header.x-note=hi:Value",
            ]
        );
    }

    #[test]
    fn body_kinds_follow_the_media_type() {
        let kind = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            BodyKind::of(&headers)
        };
        assert_eq!(kind("application/json; charset=utf-8"), Some(BodyKind::Json));
        assert_eq!(kind("application/vnd.api+json"), Some(BodyKind::Json));
        assert_eq!(kind("application/x-www-form-urlencoded"), Some(BodyKind::Form));
        assert_eq!(
            kind("multipart/form-data; boundary=\"abc\""),
            Some(BodyKind::Multipart { boundary: "abc".into() })
        );
        assert_eq!(kind("multipart/form-data"), None);
        assert_eq!(kind("image/png"), None);
    }
}
