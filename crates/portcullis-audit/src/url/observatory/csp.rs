//! The Content-Security-Policy test, and the Observatory's policy parser.
//!
//! The parser is ported with its quirks, since the grade depends on them:
//! a directive given twice makes the policy invalid (`report-uri` and
//! `report-to` excepted, the later one replacing the earlier); with several
//! policies (repeated headers, `<meta>` tags), a source counts only when
//! the policies share it, matched over neighbours in the order
//! `Intl.Collator("en")` sorts them, so that order is reproduced too.

use std::collections::{HashMap, HashSet};

use super::{header, js_trim, Expectation, Retrieval};

type Policy = HashMap<String, HashSet<String>>;

/// Not a policy the Observatory can read.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

/// A source while policies are combined: which policy it came from and
/// whether it survives.
#[derive(Debug, Clone)]
struct Source {
    text: String,
    policy: usize,
    keep: bool,
}

const ALLOWED_DUPLICATES: [&str; 2] = ["report-uri", "report-to"];
/// Shorter than `img-src`, minus one, is no policy.
const SHORTEST_POLICY: usize = 6;

/// The combined policy of `policies`, and whether a `report-uri` or
/// `report-to` was repeated.
fn parse(policies: &[String]) -> Result<(Policy, bool), Invalid> {
    let policies: Vec<String> = policies
        .iter()
        .map(|p| js_trim(&p.replace(['\r', '\n'], "")).to_owned())
        .collect();
    if policies.iter().any(|p| p.chars().count() < SHORTEST_POLICY) {
        return Err(Invalid);
    }
    let mut combined: HashMap<String, Vec<Source>> = HashMap::new();
    let mut duplicates = false;
    for (index, policy) in policies.iter().enumerate() {
        let mut seen = HashSet::new();
        for entry in policy.split(';') {
            let mut words = js_trim(entry).split(super::is_js_space).filter(|w| !w.is_empty());
            let Some(directive) = words.next().map(str::to_lowercase) else {
                continue;
            };
            if !seen.insert(directive.clone()) {
                if !ALLOWED_DUPLICATES.contains(&directive.as_str()) {
                    return Err(Invalid);
                }
                duplicates = true;
            }
            let keep = index == 0;
            let mut sources: Vec<Source> = words
                .map(|w| Source {
                    text: w.to_lowercase(),
                    policy: index,
                    keep,
                })
                .collect();
            if sources.is_empty() && directive.ends_with("-src") {
                sources.push(Source {
                    text: "'none'".into(),
                    policy: index,
                    keep,
                });
            }
            if index > 0 {
                let mut earlier = combined.get(&directive).cloned().unwrap_or_default();
                earlier.append(&mut sources);
                sources = earlier;
            }
            sources.sort_by(|a, b| collate(&a.text, &b.text));
            for i in 1..sources.len() {
                let (before, after) = sources.split_at_mut(i);
                let (previous, source) = (&before[i - 1], &mut after[0]);
                // A longer source after its own prefix adds nothing.
                if source.policy == previous.policy && source.text.starts_with(&previous.text) {
                    source.keep = false;
                }
                if source.policy != previous.policy && path_part_match(&previous.text, &source.text)? {
                    source.keep = true;
                }
            }
            sources.retain(|s| s.keep);
            // Later policies must name a source again for it to stay.
            if index == 0 && policies.len() > 1 {
                sources.iter_mut().for_each(|s| s.keep = false);
            }
            combined.insert(directive, sources);
        }
    }
    let policy = combined
        .into_iter()
        .map(|(directive, sources)| {
            let mut texts: HashSet<String> = sources.into_iter().map(|s| s.text).collect();
            if texts.is_empty() {
                texts.insert("'none'".into());
            }
            (directive, texts)
        })
        .collect();
    Ok((policy, duplicates))
}

/// A policy from `<meta>`, where these directives do not apply.
fn parse_meta(policies: &[String]) -> Result<Policy, Invalid> {
    let (mut policy, _) = parse(policies)?;
    for directive in ["frame-ancestors", "report-uri", "sandbox"] {
        policy.remove(directive);
    }
    Ok(policy)
}

fn path_part_match(a: &str, b: &str) -> Result<bool, Invalid> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut parts_a: Vec<&str> = a.split('/').collect();
    let parts_b: Vec<&str> = b.split('/').collect();
    if parts_a.len() > parts_b.len() || (exact && parts_a.len() != parts_b.len()) {
        return Ok(false);
    }
    if !exact {
        parts_a.pop();
    }
    for (x, y) in parts_a.iter().zip(&parts_b) {
        if decode_uri_component(x)? != decode_uri_component(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// JavaScript's `decodeURIComponent`, which throws on a bad escape (and
/// makes the whole policy invalid).
fn decode_uri_component(text: &str) -> Result<String, Invalid> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16)).ok_or(Invalid);
            // Both digits are below 16, so the byte cannot overflow.
            decoded.push((digit(i + 1)? * 16 + digit(i + 2)?) as u8);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| Invalid)
}

/// The order of `Intl.Collator("en").compare` on lower-case sources: the
/// root collation's primary order for ASCII (punctuation, then digits, then
/// letters), code points after that.
fn collate(a: &str, b: &str) -> std::cmp::Ordering {
    const ORDER: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
    let weight = |c: char| ORDER.find(c).map_or(u32::from(c) + 128, |i| i as u32);
    a.chars().map(weight).cmp(b.chars().map(weight))
}

const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const NONCES_AND_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

fn broad(source: &str) -> bool {
    DANGEROUSLY_BROAD.contains(&source)
}

fn broad_or_inline(source: &str) -> bool {
    broad(source) || UNSAFE_INLINE.contains(&source)
}

fn insecure_scheme(source: &str) -> bool {
    source.starts_with("http:") || source.starts_with("ftp:")
}

/// The test's result and the policy it read (which the X-Frame-Options
/// test looks into for `frame-ancestors`).
pub struct Verdict {
    pub result: Expectation,
    pub pass: bool,
    pub policy: Option<Policy>,
}

impl Verdict {
    pub fn verdict(&self) -> (Expectation, bool) {
        (self.result, self.pass)
    }

    fn early(result: Expectation) -> Self {
        Self {
            result,
            pass: false,
            policy: None,
        }
    }
}

/// Where a directive falls back to: its own list, `default-src`'s, or
/// "anything".
fn effective<'a>(policy: &Policy, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|name| policy.contains_key(*name))
}

pub fn test(retrieval: &Retrieval) -> Verdict {
    use Expectation::*;
    let auto = retrieval.auto();
    let Some(page) = auto.page() else {
        return Verdict::early(CspNotImplemented);
    };
    let from_header: Vec<String> = header(page, "content-security-policy").into_iter().collect();
    let from_meta = &retrieval.meta_csp;
    let all: Vec<String> = from_header.iter().chain(from_meta).cloned().collect();
    let Ok((mut policy, duplicates)) = parse(&all) else {
        return Verdict::early(CspHeaderInvalid);
    };
    let header_only = parse(&from_header).map(|(p, _)| p).unwrap_or_default();
    let meta_only = parse_meta(from_meta).unwrap_or_default();
    if header_only.len() + meta_only.len() == 0 {
        return Verdict::early(
            if header(page, "content-security-policy-report-only").is_some_and(|v| !v.is_empty()) {
                CspNotImplementedButReportingEnabled
            } else {
                CspNotImplemented
            },
        );
    }

    // The Observatory's lists alias the policy's own sets: a change made
    // through `script-src` (falling back to `default-src`) is seen by
    // every reader of that directive, so they are named, not copied.
    let script = effective(&policy, &["script-src", "default-src"]);
    let style = effective(&policy, &["style-src", "default-src"]);
    let object = effective(&policy, &["object-src", "default-src"]);
    let anything: HashSet<String> = HashSet::from(["*".to_owned()]);
    let read = |policy: &Policy, name: Option<&str>| -> HashSet<String> {
        name.and_then(|n| policy.get(n))
            .cloned()
            .unwrap_or_else(|| anything.clone())
    };
    let has_nonce_or_hash = |sources: &HashSet<String>| {
        sources
            .iter()
            .any(|s| NONCES_AND_HASHES.iter().any(|prefix| s.starts_with(prefix)))
    };

    // Nonces or hashes make browsers ignore 'unsafe-inline'.
    for name in [script, style].into_iter().flatten() {
        let sources = read(&policy, Some(name));
        if has_nonce_or_hash(&sources) {
            if let Some(sources) = policy.get_mut(name) {
                sources.remove("'unsafe-inline'");
            }
        }
    }
    let mut result: Option<Expectation> = None;
    let script_sources = read(&policy, script);
    if has_nonce_or_hash(&script_sources) && script_sources.contains("'strict-dynamic'") {
        // 'strict-dynamic' makes browsers ignore host and scheme sources,
        // 'self' and 'unsafe-inline'.
        if let Some(sources) = script.and_then(|name| policy.get_mut(name)) {
            sources.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|b| s.starts_with(b)) || s == "'self'" || s == "'unsafe-inline'")
            });
        }
    } else if script_sources.contains("'strict-dynamic'") {
        result = Some(CspHeaderInvalid);
    }

    let script_sources = read(&policy, script);
    let style_sources = read(&policy, style);
    let object_sources = read(&policy, object);
    let https = auto.start.scheme() == "https";
    let passive = ["img-src", "media-src"];
    let active: Vec<&String> = policy
        .iter()
        .filter(|(directive, _)| !passive.contains(&directive.as_str()) && *directive != "script-src")
        .flat_map(|(_, sources)| sources)
        .chain(&script_sources)
        .collect();
    let passive_sources: Vec<&String> = passive
        .iter()
        .filter_map(|d| policy.get(*d).or_else(|| policy.get("default-src")))
        .flatten()
        .collect();

    let mut first = |expectation: Expectation, applies: bool| {
        if applies && result.is_none() {
            result = Some(expectation);
        }
    };
    first(
        CspImplementedWithUnsafeInline,
        script_sources.iter().any(|s| broad_or_inline(s)) || object_sources.iter().any(|s| broad(s)),
    );
    first(
        CspImplementedWithInsecureScheme,
        https && active.iter().any(|s| insecure_scheme(s)),
    );
    first(
        CspImplementedWithUnsafeEval,
        script_sources.contains("'unsafe-eval'") || style_sources.contains("'unsafe-eval'"),
    );
    first(
        CspImplementedWithInsecureSchemeInPassiveContentOnly,
        https && passive_sources.iter().any(|s| insecure_scheme(s)),
    );
    first(
        CspImplementedWithUnsafeInlineInStyleSrcOnly,
        style_sources.iter().any(|s| broad_or_inline(s)),
    );
    let default_none = policy
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"));
    first(CspImplementedWithNoUnsafeDefaultSrcNone, default_none);
    first(CspImplementedWithNoUnsafe, true);
    let mut result = result.unwrap_or(CspImplementedWithNoUnsafe);
    let pass = matches!(
        result,
        CspImplementedWithNoUnsafe
            | CspImplementedWithNoUnsafeDefaultSrcNone
            | CspImplementedWithUnsafeInlineInStyleSrcOnly
            | CspImplementedWithInsecureSchemeInPassiveContentOnly
    );
    if pass && duplicates {
        result = CspImplementedButDuplicateDirectives;
    }
    Verdict {
        result,
        pass,
        policy: Some(policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(policy: &str) -> Policy {
        parse(&[policy.to_owned()]).unwrap().0
    }

    fn sources(policy: &Policy, directive: &str) -> Vec<String> {
        let mut sources: Vec<String> = policy[directive].iter().cloned().collect();
        sources.sort();
        sources
    }

    #[test]
    fn directives_are_case_folded_and_empty_source_lists_are_none() {
        let policy = one("Default-Src 'SELF' https://CDN.example.com; img-src; upgrade-insecure-requests");
        assert_eq!(sources(&policy, "default-src"), ["'self'", "https://cdn.example.com"]);
        assert_eq!(sources(&policy, "img-src"), ["'none'"]);
        assert!(policy["upgrade-insecure-requests"].contains("'none'"));
    }

    #[test]
    fn repeated_directives_are_invalid_except_reporting() {
        assert_eq!(
            parse(&["script-src 'self'; script-src 'none'".into()]).unwrap_err(),
            Invalid
        );
        let (policy, duplicates) = parse(&["default-src 'self'; report-uri /a; report-uri /b".into()]).unwrap();
        assert!(duplicates);
        assert_eq!(sources(&policy, "report-uri"), ["/b"]);
        assert_eq!(parse(&["a".into()]).unwrap_err(), Invalid);
    }

    #[test]
    fn several_policies_keep_what_they_share() {
        let (policy, _) = parse(&[
            "default-src 'self' https://a.example https://b.example".into(),
            "default-src https://b.example; img-src 'self'".into(),
        ])
        .unwrap();
        assert_eq!(sources(&policy, "default-src"), ["https://b.example"]);
        // Named by the second policy only: nothing survives.
        assert_eq!(sources(&policy, "img-src"), ["'none'"]);
    }

    #[test]
    fn collation_puts_punctuation_before_digits_and_letters() {
        let mut words = vec!["b", "a1", "a", "a:", "'self'", "*", "a-b", "ab"];
        words.sort_by(|a, b| collate(a, b));
        assert_eq!(words, ["'self'", "*", "a", "a-b", "a:", "a1", "ab", "b"]);
    }

    #[test]
    fn bad_escapes_in_shared_sources_make_the_policy_invalid() {
        assert_eq!(decode_uri_component("a%2Fb").unwrap(), "a/b");
        assert!(decode_uri_component("%E0%A4%A").is_err());
        assert!(decode_uri_component("%C3").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_policies_parse_or_are_invalid_without_panicking(
            policies in proptest::collection::vec("[ -~\u{a0}\u{3000}é;%\r\n]{0,80}", 0..4)
        ) {
            let _ = parse(&policies);
            let _ = parse_meta(&policies);
        }
    }
}
