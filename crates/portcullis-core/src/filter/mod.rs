//! Response data filtering (checklist C14): sensitive JSON fields never reach
//! the browser.
//!
//! An `application/json` answer (or any `+json` type) of at most `max_bytes`
//! is read whole, and every member whose name is on the list is removed at
//! any depth; the rest of the document is kept byte for byte and
//! `Content-Length` is fixed. Names compare without regard to case, `_` or
//! `-`, after JSON escapes are decoded: `passwordHash`, `password_hash` and
//! `"password\u0048ash"` are one name. gzip and deflate answers are
//! decompressed (within the same bound), filtered and compressed again.
//!
//! What cannot be filtered passes unchanged, each time with a security
//! event: a longer answer (never buffered past the bound), another
//! compression, a body that is not JSON. `mode = "detect"` reports the
//! fields and changes nothing. Events name the route and the fields, never
//! their values.

mod scan;

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use flate2::{read::GzDecoder, read::ZlibDecoder, write::GzEncoder, write::ZlibEncoder, Compression};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::{failed, full, read_bounded, Body, Bounded};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPage;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::InvalidConfig;

pub use scan::{apply, find, Found, Unreadable, MAX_DEPTH};

/// Field names removed by default: secrets an app stores beside a user and
/// serialises with it by accident (a whole Mongoose or Sequelize document
/// sent as JSON).
pub const DEFAULT_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "passwordHash",
    "hashedPassword",
    "encryptedPassword",
    "passwordDigest",
    "passwordSalt",
    "salt",
    "resetToken",
    "resetPasswordToken",
    "passwordResetToken",
    "resetPasswordExpires",
    "otpSecret",
    "totpSecret",
    "twoFactorSecret",
    "mfaSecret",
    "refreshToken",
    "privateKey",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    /// Remove the fields, one event per answer.
    #[default]
    Remove,
    /// Only report them.
    Detect,
    Off,
}

/// The `[filter]` section (and `[route.filter]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    pub mode: FilterMode,
    /// The names to remove; replaces the default list.
    pub fields: Vec<String>,
    /// Names removed besides `fields`.
    pub extra_fields: Vec<String>,
    /// Longest answer read to filter it (decompressed); longer ones pass.
    pub max_bytes: usize,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            mode: FilterMode::Remove,
            fields: DEFAULT_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            extra_fields: Vec::new(),
            max_bytes: 1024 * 1024,
        }
    }
}

impl FilterConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive(&[("max_bytes", self.max_bytes as u64)])?;
        let lists = [("fields", &self.fields), ("extra_fields", &self.extra_fields)];
        for (key, names) in lists {
            if let Some(i) = names.iter().position(|name| fold(name).is_empty()) {
                return Err(InvalidConfig::new(
                    format!("{key}[{i}]"),
                    "a field name, e.g. \"passwordHash\" (case, `_` and `-` are ignored)",
                ));
            }
        }
        Ok(())
    }
}

/// A name as compared: lowercase, without `_` and `-`.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The compiled filter of one route.
pub struct ResponseFilter {
    mode: FilterMode,
    /// Folded names, sorted for a binary search.
    names: Vec<String>,
    max_bytes: usize,
    /// The route it serves, for its events (`default`, `route[0] /api`).
    route: String,
    events: Events,
}

pub type ResponseFilterLayer = PolicyLayer<ResponseFilter>;

impl ResponseFilter {
    pub fn new(config: &FilterConfig, route: impl Into<String>, events: Events) -> Self {
        let mut names: Vec<String> = config
            .fields
            .iter()
            .chain(&config.extra_fields)
            .map(|n| fold(n))
            .collect();
        names.sort_unstable();
        names.dedup();
        Self {
            mode: config.mode,
            names,
            max_bytes: config.max_bytes,
            route: route.into(),
            events,
        }
    }

    /// Whether `name` (decoded) is one to remove.
    pub fn is_sensitive(&self, name: &str) -> bool {
        // Most names are not: compare without allocating when they are short.
        let mut folded = [0u8; 64];
        let mut len = 0;
        for byte in name.bytes() {
            if matches!(byte, b'_' | b'-') {
                continue;
            }
            if !byte.is_ascii() || len == folded.len() {
                return self.names.binary_search(&fold(name)).is_ok();
            }
            folded[len] = byte.to_ascii_lowercase();
            len += 1;
        }
        let folded = &folded[..len];
        self.names.binary_search_by(|n| n.as_bytes().cmp(folded)).is_ok()
    }

    /// The JSON document without its sensitive members, or what was found
    /// when it cannot be changed.
    pub fn filter(&self, json: &[u8]) -> Result<(Option<Vec<u8>>, Vec<String>), Unreadable> {
        let found = find(json, &|name| self.is_sensitive(name))?;
        if found.fields.is_empty() {
            return Ok((None, found.fields));
        }
        let filtered = (self.mode == FilterMode::Remove).then(|| apply(json, &found.cuts));
        Ok((filtered, found.fields))
    }

    fn report(&self, request: &RequestFacts, rule: &'static str, action: &'static str, detail: String) {
        if let Some(context) = &request.context {
            let mut event = context.event("filter", rule, action);
            event.detail = Some(format!(
                "{} ({} {}): {detail}",
                self.route,
                request.method,
                request.uri.path()
            ));
            self.events.emit(event);
        }
    }
}

pub struct RequestFacts {
    context: Option<RequestContext>,
    method: Method,
    /// For the events; a clone shares the request's bytes.
    uri: http::Uri,
}

/// How an answer's body is encoded, among those the filter can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Result<Self, String> {
        let Some(value) = headers.get(header::CONTENT_ENCODING) else {
            return Ok(Self::Identity);
        };
        let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
        match text.as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "deflate" => Ok(Self::Deflate),
            _ => Err(text),
        }
    }

    /// The decoded bytes, if they fit in `limit`.
    fn decode(self, bytes: Bytes, limit: usize) -> Result<Option<Bytes>, std::io::Error> {
        let reader: Box<dyn Read> = match self {
            Self::Identity => return Ok((bytes.len() <= limit).then_some(bytes)),
            Self::Gzip => Box::new(GzDecoder::new(&bytes[..])),
            Self::Deflate => Box::new(ZlibDecoder::new(&bytes[..])),
        };
        let mut decoded = Vec::new();
        reader.take(limit as u64 + 1).read_to_end(&mut decoded)?;
        Ok((decoded.len() <= limit).then(|| decoded.into()))
    }

    fn encode(self, bytes: Vec<u8>) -> Result<Vec<u8>, std::io::Error> {
        match self {
            Self::Identity => Ok(bytes),
            Self::Gzip => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                encoder.write_all(&bytes)?;
                encoder.finish()
            }
            Self::Deflate => {
                let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
                encoder.write_all(&bytes)?;
                encoder.finish()
            }
        }
    }
}

/// `application/json`, or a `+json` type such as `application/problem+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().as_bytes();
    let starts = |prefix: &str| {
        essence
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let ends = |suffix: &str| {
        let from = essence.len().saturating_sub(suffix.len());
        essence.len() >= suffix.len() && essence[from..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    essence.eq_ignore_ascii_case(b"application/json") || (starts("application/") && ends("+json"))
}

impl Policy for ResponseFilter {
    type State = Option<RequestFacts>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Self::State> {
        if self.mode == FilterMode::Off || request.method() == Method::HEAD {
            return Verdict::Forward(None);
        }
        Verdict::Forward(Some(RequestFacts {
            context: request.extensions().get::<RequestContext>().cloned(),
            method: request.method().clone(),
            uri: request.uri().clone(),
        }))
    }

    fn on_response(self: &Arc<Self>, request: Self::State, response: Response<Body>) -> Responded {
        let Some(request) = request else {
            return Responded::Now(response);
        };
        let status = response.status();
        if !is_json(response.headers())
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || response.extensions().get::<NeutralPage>().is_some()
        {
            return Responded::Now(response);
        }
        let encoding = match Encoding::of(response.headers()) {
            Ok(encoding) => encoding,
            Err(other) => {
                self.report(&request, "unfilterable", "passed", format!("compressed with `{other}`"));
                return Responded::Now(response);
            }
        };
        let filter = self.clone();
        Responded::later(async move { filter.filter_response(request, encoding, response).await })
    }
}

impl ResponseFilter {
    /// A JSON answer read whole (within `max_bytes`), with its sensitive
    /// fields removed, or passed as it came where it cannot be read.
    async fn filter_response(
        &self,
        request: RequestFacts,
        encoding: Encoding,
        response: Response<Body>,
    ) -> Response<Body> {
        let (mut parts, body) = response.into_parts();
        let bytes = match read_bounded(body, self.max_bytes).await {
            Ok(Bounded::Whole(bytes)) => bytes,
            Ok(Bounded::Longer(body)) => {
                let detail = format!("longer than max_bytes ({})", self.max_bytes);
                self.report(&request, "too_large", "passed", detail);
                return Response::from_parts(parts, body);
            }
            // The upstream broke off: the client's answer breaks off too.
            Err(error) => return Response::from_parts(parts, failed(error)),
        };
        let decoded = match encoding.decode(bytes.clone(), self.max_bytes) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                let detail = format!("longer than max_bytes ({}) once decompressed", self.max_bytes);
                self.report(&request, "too_large", "passed", detail);
                return Response::from_parts(parts, full(bytes));
            }
            Err(error) => {
                self.report(
                    &request,
                    "unfilterable",
                    "passed",
                    format!("cannot decompress: {error}"),
                );
                return Response::from_parts(parts, full(bytes));
            }
        };
        let (filtered, fields) = match self.filter(&decoded) {
            Ok(outcome) => outcome,
            Err(unreadable) => {
                let detail = match unreadable {
                    Unreadable::NotJson => "the body is not JSON".to_owned(),
                    Unreadable::TooDeep => format!("nested deeper than {MAX_DEPTH}"),
                };
                self.report(&request, "unfilterable", "passed", detail);
                return Response::from_parts(parts, full(bytes));
            }
        };
        if fields.is_empty() {
            return Response::from_parts(parts, full(bytes));
        }
        let Some(filtered) = filtered else {
            self.report(&request, "sensitive_field", "detected", fields.join(", "));
            return Response::from_parts(parts, full(bytes));
        };
        let encoded = match encoding.encode(filtered) {
            Ok(encoded) => encoded,
            Err(error) => {
                // Unreachable in practice (compression into memory); the
                // sensitive answer is not sent either way.
                self.report(
                    &request,
                    "unfilterable",
                    "refused",
                    format!("cannot recompress: {error}"),
                );
                return Response::from_parts(parts, failed(error));
            }
        };
        self.report(&request, "sensitive_field", "removed", fields.join(", "));
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(encoded.len()));
        Response::from_parts(parts, full(encoded))
    }
}

#[cfg(test)]
mod tests;
