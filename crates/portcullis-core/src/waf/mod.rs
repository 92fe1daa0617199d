//! Input inspection (checklist C11): a WAF that reads requests the way the
//! app's parsers, its database, its shell and the browser would.
//!
//! [`walk`] finds every input (path, query, cookies, headers, form, JSON and
//! multipart bodies), [`decode`] gives each value its distinct spellings,
//! and each detector decides, on syntax rather than keyword lists, whether a
//! spelling is an attack in some place the app might put it: [`sqli`],
//! [`xss`], [`command`], [`traversal`], [`prototype`] pollution, [`nosql`]
//! operators, [`template`], [`ssrf`], and [`scanner`] as a weak signal. Findings add up to a request's anomaly score; at the level's
//! threshold the request is blocked (or, in detect mode, logged).
//!
//! ```
//! use portcullis_core::waf::{Waf, WafConfig};
//! let waf = Waf::compile(WafConfig::default()).unwrap();
//! let findings = waf.inspect_values(&[("q", "1' OR '1'='1")]);
//! assert_eq!(findings[0].detector.name(), "sqli");
//! assert!(waf.inspect_values(&[("q", "O'Brien")]).is_empty());
//! ```

pub mod command;
pub mod decode;
pub mod json;
mod memo;
pub mod multipart;
pub mod nosql;
pub mod prototype;
pub mod scanner;
pub mod sqli;
pub mod ssrf;
pub mod template;
pub mod traversal;
pub mod walk;
pub mod xss;

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use globset::{Glob, GlobMatcher};
use http::{header, HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::{read_prefix, Body};
use crate::context::RequestContext;
use crate::events::Events;
use crate::pages::NeutralPages;
use crate::path::{normalize, PathPattern};
use crate::policy::{Policy, PolicyLayer, Verdict};
use crate::InvalidConfig;
use decode::{Spelling, Step, Steps};
use walk::{BodyKind, Item, Raw, Role, Source};

/// What a detector found in one spelling of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1 (a weak sign) to 5 (an attack on its own).
    pub score: u8,
    /// Where the value was assumed to land, e.g. "single-quoted SQL string".
    pub context: &'static str,
    /// Byte offset in the spelling where the attack starts.
    pub at: usize,
}

/// The detectors, by the names the config and the events use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    Sqli,
    Xss,
    CommandInjection,
    PathTraversal,
    PrototypePollution,
    NosqlInjection,
    TemplateInjection,
    Ssrf,
    Scanner,
    /// Input past the walker's limits (nesting, parameter count, a body too
    /// long to inspect when `past_limit = "block"`).
    InputLimits,
    /// Encodings only an evasion produces: overlong UTF-8, NUL bytes.
    EncodingEvasion,
}

impl Detector {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqli => "sqli",
            Self::Xss => "xss",
            Self::CommandInjection => "command_injection",
            Self::PathTraversal => "path_traversal",
            Self::PrototypePollution => "prototype_pollution",
            Self::NosqlInjection => "nosql_injection",
            Self::TemplateInjection => "template_injection",
            Self::Ssrf => "ssrf",
            Self::Scanner => "scanner",
            Self::InputLimits => "input_limits",
            Self::EncodingEvasion => "encoding_evasion",
        }
    }
}

/// What the WAF does with a request that reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A neutral 403; the app never sees the request.
    Block,
    /// Forwarded, with a security event.
    Detect,
    Off,
}

/// What happens to a body longer than `inspect_body_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastLimit {
    /// The prefix is inspected; the rest is forwarded unread.
    InspectPrefix,
    /// Refused as `input_limits`.
    Block,
}

/// The `[waf]` section (per route).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WafConfig {
    pub mode: Mode,
    /// 1 (fewest false positives) to 3 (most findings count).
    pub level: u8,
    /// How much of a request body is read and inspected.
    pub inspect_body_bytes: usize,
    pub past_limit: PastLimit,
    /// Inspect the contents of uploaded files too (multipart).
    pub inspect_files: bool,
    /// JSON nested deeper than this is refused as `input_limits`.
    pub max_json_depth: usize,
    /// Parameters (names and values, all sources together) past this are
    /// refused as `input_limits`.
    pub max_parameters: usize,
    pub exclude: Vec<ExclusionConfig>,
}

impl Default for WafConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Block,
            level: 1,
            inspect_body_bytes: 64 * 1024,
            past_limit: PastLimit::InspectPrefix,
            inspect_files: false,
            max_json_depth: 32,
            max_parameters: 10_000,
            exclude: Vec::new(),
        }
    }
}

/// `[[waf.exclude]]`: findings of `detectors` (all if empty) at `location`
/// (a glob over locations such as `query.q`, `json.user.*`) on `path` (a
/// prefix or a glob) do not count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionConfig {
    pub path: String,
    #[serde(default = "any_location")]
    pub location: String,
    #[serde(default)]
    pub detectors: Vec<Detector>,
}

fn any_location() -> String {
    "*".into()
}

impl WafConfig {
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.validate_settings()?;
        self.exclusions().map(drop)
    }

    /// Everything but the exclusions, which compiling them checks.
    fn validate_settings(&self) -> Result<(), InvalidConfig> {
        if !(1..=3).contains(&self.level) {
            return Err(InvalidConfig::new("level", "must be 1, 2 or 3"));
        }
        InvalidConfig::require_positive(&[
            ("inspect_body_bytes", self.inspect_body_bytes as u64),
            ("max_json_depth", self.max_json_depth as u64),
            ("max_parameters", self.max_parameters as u64),
        ])
    }

    /// The `[[waf.exclude]]` entries, compiled; errors name the entry's key.
    fn exclusions(&self) -> Result<Vec<Exclusion>, InvalidConfig> {
        self.exclude
            .iter()
            .enumerate()
            .map(|(index, exclusion)| {
                Exclusion::compile(exclusion)
                    .map_err(|(key, message)| InvalidConfig::new(format!("exclude[{index}].{key}"), message))
            })
            .collect()
    }

    /// The anomaly score at which a request is blocked.
    pub fn threshold(&self) -> u32 {
        match self.level {
            1 => 5,
            2 => 4,
            _ => 3,
        }
    }
}

struct Exclusion {
    path: PathPattern,
    location: GlobMatcher,
    detectors: Vec<Detector>,
}

impl Exclusion {
    fn compile(config: &ExclusionConfig) -> Result<Self, (&'static str, String)> {
        let path = PathPattern::parse(&config.path).map_err(|m| ("path", m))?;
        let location = Glob::new(&config.location)
            .map_err(|e| ("location", format!("`{}` is not a valid glob: {e}", config.location)))?
            .compile_matcher();
        Ok(Self {
            path,
            location,
            detectors: config.detectors.clone(),
        })
    }

    fn covers(&self, path: &str, location: &str, detector: Detector) -> bool {
        (self.detectors.is_empty() || self.detectors.contains(&detector))
            && self.path.matches(path)
            && self.location.is_match(location)
    }
}

/// One finding: what, where, and how the value had to be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detector: Detector,
    /// `query.id`, `json.user.address.street`, `cookie.session`, `path`.
    pub location: String,
    /// The attack's start in the decoded value, truncated.
    pub fragment: String,
    pub score: u8,
    pub context: &'static str,
    pub decoding: Steps,
}

/// The findings of one request, collected as the walker goes.
pub struct Inspection<'a> {
    rules: Arc<Rules>,
    /// The normalised path, which exclusions match.
    path: Cow<'a, str>,
    findings: Vec<Finding>,
    /// What the detectors found, excluded or not.
    hits: usize,
    parameters: usize,
}

impl<'a> Inspection<'a> {
    fn new(rules: Arc<Rules>, path: &'a str) -> Self {
        Self {
            rules,
            path: normalize(path),
            findings: Vec::new(),
            hits: 0,
            parameters: 0,
        }
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// The same, no longer borrowing the request's path.
    fn into_owned(self) -> Inspection<'static> {
        Inspection {
            path: Cow::Owned(self.path.into_owned()),
            rules: self.rules,
            findings: self.findings,
            hits: self.hits,
            parameters: self.parameters,
        }
    }

    /// The anomaly score: each detector's strongest finding per location, summed.
    pub fn score(&self) -> u32 {
        self.findings.iter().map(|f| u32::from(f.score)).sum()
    }

    fn visit(&mut self, item: Item<'_>) {
        if item.role != Role::Path {
            self.parameters += 1;
            if self.parameters == self.rules.config.max_parameters + 1 {
                self.limit(item.source.name(), "more parameters than max_parameters");
            }
            if self.parameters > self.rules.config.max_parameters {
                return;
            }
        }
        let raw = item.raw.bytes();
        if raw.is_empty() {
            return;
        }
        // The path, headers and cookies repeat from request to request (see `memo`).
        let repeats = matches!(item.source, Source::Path | Source::Header | Source::Cookie);
        if repeats && memo::seen_clean(item.role, item.origin, raw) {
            return;
        }
        let hits = self.hits;
        self.inspect_item(&item);
        if repeats && self.hits == hits {
            memo::remember_clean(item.role, item.origin, raw);
        }
    }

    /// Every detector that applies to `item`, on each of its spellings.
    fn inspect_item(&mut self, item: &Item<'_>) {
        let raw = item.raw.bytes();
        // Most keys are plain names (`user.address`, `items[0]`): nothing to
        // decode, only the prototype check can apply.
        const KEY: ByteSet = ByteSet::of(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.[]");
        if item.role == Role::Key && ByteSet::in_bytes(raw).within(&KEY) {
            if !prototype::may_pollute(raw) {
                return;
            }
            let key = match item.raw {
                Raw::Text(text) => text,
                // All ASCII, just checked.
                Raw::Bytes(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            };
            let hit = prototype::inspect(walk::segments(key));
            self.record(item, Detector::PrototypePollution, hit, key, &Steps::default());
            return;
        }
        let spellings = decode::spellings(item.raw, item.origin);
        if let Some(Spelling { text, steps, .. }) = spellings.iter().next() {
            // Browsers and HTTP libraries never send these; filter evasions do.
            let evasion = steps.iter().find_map(|step| match step {
                Step::Overlong => Some("overlong UTF-8"),
                Step::Nul => Some("NUL byte"),
                _ => None,
            });
            if let Some(context) = evasion {
                let hit = Some(Hit {
                    score: 5,
                    context,
                    at: 0,
                });
                self.record(item, Detector::EncodingEvasion, hit, text, steps);
            }
        }
        for spelling in spellings.iter() {
            let (text, steps) = (spelling.text.as_ref(), &spelling.steps);
            match item.role {
                Role::Key => {
                    let segments = || walk::segments(text);
                    self.record(
                        item,
                        Detector::PrototypePollution,
                        prototype::inspect(segments()),
                        text,
                        steps,
                    );
                    self.record(item, Detector::NosqlInjection, nosql::key(segments()), text, steps);
                    // JSON keys are paths the walker built; only a query's or
                    // a form's own names can carry other payloads.
                    if item.source != Source::Json {
                        self.values(item, spelling);
                    }
                }
                Role::Path => {
                    self.record(item, Detector::PathTraversal, traversal::inspect(text), text, steps);
                    for segment in text.split('/').filter(|s| !s.is_empty()) {
                        self.values_except_traversal(item, segment, steps);
                    }
                }
                Role::UserAgent => {
                    self.record(item, Detector::Scanner, scanner::inspect(text), text, steps);
                    self.values(item, spelling);
                }
                Role::Value => self.values(item, spelling),
            }
        }
    }

    fn values(&mut self, item: &Item<'_>, spelling: &Spelling<'_>) {
        let Spelling { text, steps, present } = spelling;
        // Each detector needs some syntax to work with; most values have
        // little, and skip most detectors.
        if present.within(&PLAIN) {
            return;
        }
        let hit = traversal::inspect_in(text, present);
        self.record(item, Detector::PathTraversal, hit, text, steps);
        self.detect(item, text, present, steps);
    }

    fn values_except_traversal(&mut self, item: &Item<'_>, text: &str, steps: &Steps) {
        let present = ByteSet::in_text(text);
        if !present.within(&PLAIN) {
            self.detect(item, text, &present, steps);
        }
    }

    /// Every value detector but traversal, given the bytes `text` holds.
    fn detect(&mut self, item: &Item<'_>, text: &str, present: &ByteSet, steps: &Steps) {
        const XSS: ByteSet = ByteSet::of(b"<>`=:()");
        const TEMPLATE: ByteSet = ByteSet::of(b"{}[]<>%#@()");
        const NOSQL: ByteSet = ByteSet::of(b"$'\"`;|&");
        const URL: ByteSet = ByteSet::of(b":/\\");
        self.record(item, Detector::Sqli, sqli::inspect_in(text, present), text, steps);
        if present.meets(&XSS) {
            self.record(item, Detector::Xss, xss::inspect(text), text, steps);
        }
        self.record(
            item,
            Detector::CommandInjection,
            command::inspect_in(text, present),
            text,
            steps,
        );
        if present.meets(&TEMPLATE) {
            self.record(item, Detector::TemplateInjection, template::inspect(text), text, steps);
        }
        if present.meets(&NOSQL) {
            self.record(
                item,
                Detector::NosqlInjection,
                nosql::value_in(text, present),
                text,
                steps,
            );
        }
        if present.meets(&URL) || text.starts_with(|c: char| c.is_ascii_digit()) {
            self.record(item, Detector::Ssrf, ssrf::inspect(text), text, steps);
        }
    }

    fn record(&mut self, item: &Item<'_>, detector: Detector, hit: Option<Hit>, text: &str, steps: &Steps) {
        let Some(mut hit) = hit else {
            return;
        };
        self.hits += 1;
        // Nobody double-encodes `../` or spells it in overlong UTF-8 by
        // accident: the disguise is the intent.
        if detector == Detector::PathTraversal && steps.iter().any(|s| matches!(s, Step::Percent(2..) | Step::Overlong))
        {
            hit.score = 5;
        }
        let location = match item.name {
            "" => item.source.name().to_owned(),
            name => format!("{}.{name}", item.source.name()),
        };
        let fragment = match item.role {
            // Keys' hits point at a segment; show the whole key.
            Role::Key => text.to_owned(),
            _ => fragment(text, hit.at),
        };
        self.add(Finding {
            detector,
            location,
            fragment,
            score: hit.score,
            context: hit.context,
            decoding: steps.clone(),
        });
    }

    fn limit(&mut self, location: &str, why: &'static str) {
        self.add(Finding {
            detector: Detector::InputLimits,
            location: location.to_owned(),
            fragment: String::new(),
            score: 5,
            context: why,
            decoding: Steps::default(),
        });
    }

    /// Keeps the strongest finding per detector and location, unless an
    /// exclusion covers it.
    fn add(&mut self, finding: Finding) {
        let excluded = self
            .rules
            .exclusions
            .iter()
            .any(|e| e.covers(&self.path, &finding.location, finding.detector));
        if excluded {
            return;
        }
        match self
            .findings
            .iter_mut()
            .find(|f| f.detector == finding.detector && f.location == finding.location)
        {
            Some(known) if known.score >= finding.score => {}
            Some(known) => *known = finding,
            None => self.findings.push(finding),
        }
    }

    fn body(&mut self, kind: &BodyKind, bytes: &[u8], complete: bool) {
        let rules = self.rules.clone();
        let config = &rules.config;
        if !complete && config.past_limit == PastLimit::Block {
            self.limit("body", "body longer than inspect_body_bytes");
        }
        match kind {
            BodyKind::Form => walk::pairs(Source::Form, bytes, &mut |item| self.visit(item)),
            BodyKind::Json => {
                let depth = config.max_json_depth;
                let stop = json::walk(bytes, depth, &mut |item| self.visit(item));
                if stop == Err(json::Stop::TooDeep) {
                    self.limit("json", "JSON nested deeper than max_json_depth");
                }
            }
            BodyKind::Multipart { boundary } => {
                let files = config.inspect_files;
                multipart::walk(bytes, boundary, files, &mut |item| self.visit(item));
            }
        }
    }
}

/// One word of letters, digits, `_`, `-` and `@`: no detector can find
/// anything in it (a space could make it SQL: `1 UNION SELECT pw FROM t`).
const PLAIN: ByteSet = ByteSet::of(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-@");

/// A set of bytes as a bitmap: the characters a detector works with, or
/// the characters a value holds (found once, in one pass), so that each
/// detector's first question ("any of mine here?") is a few word ANDs.
#[derive(Clone, Copy)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    /// The first byte of each word.
    pub(crate) const fn first_bytes(words: &[&str]) -> Self {
        let mut set = [0u64; 4];
        let mut i = 0;
        while i < words.len() {
            let byte = words[i].as_bytes()[0];
            set[(byte >> 6) as usize] |= 1 << (byte & 63);
            i += 1;
        }
        Self(set)
    }

    pub(crate) const fn of(bytes: &[u8]) -> Self {
        let mut set = [0u64; 4];
        let mut i = 0;
        while i < bytes.len() {
            set[(bytes[i] >> 6) as usize] |= 1 << (bytes[i] & 63);
            i += 1;
        }
        Self(set)
    }

    /// Every byte but these.
    pub(crate) const fn except(bytes: &[u8]) -> Self {
        let set = Self::of(bytes).0;
        Self([!set[0], !set[1], !set[2], !set[3]])
    }

    /// The bytes `text` holds.
    pub(crate) fn in_text(text: &str) -> Self {
        Self::in_bytes(text.as_bytes())
    }

    pub(crate) fn in_bytes(bytes: &[u8]) -> Self {
        if bytes.len() <= 256 {
            if let Some(set) = Self::in_short_ascii(bytes) {
                return set;
            }
        }
        // One store per byte into a table, folded once: no byte waits on
        // the last, as each would or'ing into a word picked by index.
        let mut seen = [false; 256];
        for &byte in bytes {
            seen[usize::from(byte)] = true;
        }
        let mut set = [0u64; 4];
        for (byte, _) in seen.iter().enumerate().filter(|(_, seen)| **seen) {
            set[byte >> 6] |= 1 << (byte & 63);
        }
        Self(set)
    }

    /// Most values: short and ASCII, or'ed into two words held in
    /// registers without a branch (a loop the compiler vectorises); `None`
    /// if a byte is not ASCII.
    fn in_short_ascii(bytes: &[u8]) -> Option<Self> {
        let mask = |yes: bool| 0u64.wrapping_sub(u64::from(yes));
        let (mut low, mut high, mut other) = (0u64, 0u64, false);
        for &byte in bytes {
            let bit = 1u64 << (byte & 63);
            low |= bit & mask(byte < 64);
            high |= bit & mask((64..128).contains(&byte));
            other |= byte >= 128;
        }
        (!other).then_some(Self([low, high, 0, 0]))
    }

    pub(crate) fn meets(&self, other: &Self) -> bool {
        (0..4).any(|i| self.0[i] & other.0[i] != 0)
    }

    pub(crate) fn has(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6) & 3] & (1 << (byte & 63)) != 0
    }

    /// Whether every byte of this set is in `other`.
    pub(crate) fn within(&self, other: &Self) -> bool {
        (0..4).all(|i| self.0[i] & !other.0[i] == 0)
    }
}

/// The identifier just before `at` (spaces between allowed), or empty.
pub(crate) fn preceding_word(bytes: &[u8], at: usize) -> &[u8] {
    let end = bytes[..at].iter().rposition(|b| *b != b' ').map_or(0, |e| e + 1);
    let start = bytes[..end]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .map_or(0, |s| s + 1);
    &bytes[start..end]
}

/// A short word lowercased into `buffer`, without allocating; `None` if it
/// does not fit.
pub(crate) fn lowercase_into<'b>(word: &[u8], buffer: &'b mut [u8]) -> Option<&'b [u8]> {
    let lower = buffer.get_mut(..word.len())?;
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// Where `needle` (a few bytes) first occurs in `text`: its first byte
/// found by memchr, the rest compared in place, which costs less on short
/// values than building a substring searcher.
pub(crate) fn find(text: &str, needle: &str) -> Option<usize> {
    let haystack = text.as_bytes();
    let (&first, rest) = needle.as_bytes().split_first()?;
    memchr::memchr_iter(first, haystack).find(|&at| haystack[at + 1..].starts_with(rest))
}

/// Whether `word`, lowercased, is one of a list of lowercase words.
pub(crate) fn lowercase_is(list: fn(&[u8]) -> bool, word: &[u8]) -> bool {
    let mut buffer = [0; 24];
    lowercase_into(word, &mut buffer).is_some_and(list)
}

/// At most 80 characters of `text` from `at`.
fn fragment(text: &str, at: usize) -> String {
    let start = (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    text[start..].chars().take(80).collect()
}

/// The compiled `[waf]` of one route, shared by every event loop.
pub struct Rules {
    config: WafConfig,
    exclusions: Vec<Exclusion>,
}

/// The WAF as a [`Policy`]. Cheap to clone.
#[derive(Clone)]
pub struct Waf {
    rules: Arc<Rules>,
    pages: NeutralPages,
    events: Option<Events>,
}

pub type WafLayer = PolicyLayer<Waf>;

impl Waf {
    /// Validates and compiles `config`; without pages and events (for
    /// `waf explain` and tests, see [`Waf::with_reporting`]).
    pub fn compile(config: WafConfig) -> Result<Self, InvalidConfig> {
        config.validate_settings()?;
        let exclusions = config.exclusions()?;
        Ok(Self {
            rules: Arc::new(Rules { config, exclusions }),
            pages: NeutralPages::default(),
            events: None,
        })
    }

    pub fn with_reporting(mut self, pages: NeutralPages, events: Events) -> Self {
        self.pages = pages;
        self.events = Some(events);
        self
    }

    pub fn config(&self) -> &WafConfig {
        &self.rules.config
    }

    /// The findings in a request's head and (a prefix of) its body.
    pub fn inspect<'a>(
        &self,
        path: &'a str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Option<(&BodyKind, &[u8], bool)>,
    ) -> Inspection<'a> {
        let mut inspection = Inspection::new(self.rules.clone(), path);
        walk::head(path, query, headers, &mut |item| inspection.visit(item));
        if let Some((kind, bytes, complete)) = body {
            inspection.body(kind, bytes, complete);
        }
        inspection
    }

    /// The findings in named values, as if sent in a query string.
    pub fn inspect_values(&self, values: &[(&str, &str)]) -> Vec<Finding> {
        let mut inspection = Inspection::new(self.rules.clone(), "/");
        for (name, value) in values {
            for (raw, role) in [(*name, Role::Key), (*value, Role::Value)] {
                inspection.visit(Item {
                    source: Source::Query,
                    name,
                    raw: Raw::Text(raw),
                    role,
                    origin: decode::Origin::Plain,
                });
            }
        }
        inspection.into_findings()
    }

    /// Reports what `findings` add up to; the refusal, in block mode.
    fn decide(&self, findings: &[Finding], path: &str, context: Option<&RequestContext>) -> Option<Response<Body>> {
        let score: u32 = findings.iter().map(|f| u32::from(f.score)).sum();
        if score < self.rules.config.threshold() {
            return None;
        }
        let block = self.rules.config.mode == Mode::Block;
        if let (Some(events), Some(context)) = (&self.events, context) {
            let top = findings
                .iter()
                .max_by_key(|f| f.score)
                .map_or("waf", |f| f.detector.name());
            let mut event = context.event("waf", top, if block { "blocked" } else { "detected" });
            event.detail = Some(describe(findings, score));
            event.exclusion = Some(exclusions_for(findings, path));
            events.emit(event);
        }
        block.then(|| self.pages.render(StatusCode::FORBIDDEN, context))
    }
}

/// One line per finding, for the event's detail.
fn describe(findings: &[Finding], score: u32) -> String {
    let mut text = format!("score {score}");
    for f in findings {
        text.push_str(&format!(
            "; {} at {} ({}, {}; {}): {:?}",
            f.detector.name(),
            f.location,
            f.context,
            f.decoding,
            f.score,
            f.fragment
        ));
    }
    text
}

/// The `[[waf.exclude]]` entries that would let exactly these findings
/// through on this path: one per location, naming its detectors.
pub fn exclusions_for(findings: &[Finding], path: &str) -> String {
    let mut locations: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in findings {
        match locations.iter_mut().find(|(l, _)| *l == f.location) {
            Some((_, detectors)) if !detectors.contains(&f.detector.name()) => detectors.push(f.detector.name()),
            Some(_) => {}
            None => locations.push((&f.location, vec![f.detector.name()])),
        }
    }
    let path = normalize(path);
    locations
        .iter()
        .map(|(location, detectors)| {
            let detectors: Vec<String> = detectors.iter().map(|d| format!("\"{d}\"")).collect();
            format!(
                "[[waf.exclude]]\npath = {}\nlocation = {}\ndetectors = [{}]\n",
                toml_string(&path),
                toml_string(&glob_literal(location)),
                detectors.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A location as a glob that matches only itself.
fn glob_literal(location: &str) -> String {
    let mut glob = String::with_capacity(location.len());
    for c in location.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}') {
            glob.push('[');
            glob.push(c);
            glob.push(']');
        } else {
            glob.push(c);
        }
    }
    glob
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

impl Policy for Waf {
    type State = ();

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<()> {
        if self.rules.config.mode == Mode::Off {
            return Verdict::Forward(());
        }
        let body_kind = (!http_body::Body::is_end_stream(request.body()))
            .then(|| BodyKind::of(request.headers()))
            .flatten();
        let path = request.uri().path();
        let inspection = self.inspect(path, request.uri().query(), request.headers(), None);
        let context = request.extensions().get::<RequestContext>();
        let Some(kind) = body_kind else {
            return match self.decide(&inspection.findings, path, context) {
                None => Verdict::Forward(()),
                Some(answer) => Verdict::Answer(answer),
            };
        };
        // The body is read later, when the request is no longer borrowed.
        let (path, context) = (path.to_owned(), context.cloned());
        let mut inspection = inspection.into_owned();
        let encoding = request.headers().get(header::CONTENT_ENCODING).cloned();
        let body = std::mem::replace(request.body_mut(), crate::body::empty());
        let waf = self.clone();
        Verdict::Later(Box::pin(async move {
            let limit = waf.rules.config.inspect_body_bytes;
            let prefix = match read_prefix(body, limit).await {
                Ok(prefix) => prefix,
                // The client's body failed: the request cannot reach the app whole anyway.
                Err(_) => {
                    return (
                        crate::body::empty(),
                        Err(waf.pages.render(StatusCode::BAD_REQUEST, context.as_ref())),
                    )
                }
            };
            // Whole frames were read: inspect exactly the limit, no more.
            let held = prefix.bytes.len();
            let ended = held < limit || http_body::Body::size_hint(&prefix.body).exact() == Some(held as u64);
            let complete = held <= limit && ended;
            let inspected = prefix.bytes.slice(..held.min(limit));
            // The head's findings and parameter count go on into the body.
            match readable(&inspected, encoding.as_ref(), limit) {
                Some(bytes) => inspection.body(&kind, &bytes, complete),
                None => inspection.limit("body", "body in a Content-Encoding the WAF cannot read"),
            }
            let decision = waf.decide(&inspection.findings, &path, context.as_ref());
            (prefix.body, decision.map_or(Ok(()), Err))
        }))
    }
}

/// The body as the app's parser will read it: inflated when sent with
/// `Content-Encoding: gzip` or `deflate` (body-parser inflates both),
/// bounded by `limit`. `None` for an encoding the WAF cannot read.
fn readable(bytes: &Bytes, encoding: Option<&http::HeaderValue>, limit: usize) -> Option<Bytes> {
    let Some(encoding) = encoding.and_then(|e| e.to_str().ok()).map(str::trim) else {
        return Some(bytes.clone());
    };
    let mut out = Vec::new();
    let reader: Box<dyn Read + '_> = match encoding.to_ascii_lowercase().as_str() {
        "" | "identity" => return Some(bytes.clone()),
        "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(&bytes[..])),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(&bytes[..])),
        _ => return None,
    };
    // A prefix ends mid-stream: keep what inflated before the cut.
    let _ = reader.take(limit as u64).read_to_end(&mut out);
    Some(Bytes::from(out))
}

/// What the detectors' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::Hit;

    /// Fails naming every value `detect` scores on the wrong side of 5:
    /// under it for `attacks`, at or over it otherwise.
    pub fn assert_all(detect: fn(&str) -> Option<Hit>, values: &[&str], attacks: bool) {
        let wrong: Vec<String> = values
            .iter()
            .filter(|value| (detect(value).map_or(0, |hit| hit.score) >= 5) != attacks)
            .map(|value| format!("{value}: {:?}", detect(value)))
            .collect();
        let what = if attacks { "missed" } else { "blocked" };
        assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
    }
}

#[cfg(test)]
mod tests;
