//! C2 graded as the MDN HTTP Observatory grades a site, so that our grade
//! and score are the Observatory's for the same site.
//!
//! A port of the scanner of `@mdn/mdn-http-observatory` 1.4.8 (MPL-2.0;
//! algorithm version 4): the same retrieval ([`retrieve`]: the page over
//! HTTP and over HTTPS with their redirects, a CORS preflight), the same ten
//! tests, one module each, and the same scoring ([`scan`]: 100 points, each
//! result's modifier added, the bonuses only when the penalties leave 90 or
//! more, and the grade chart in steps of five). Where the Observatory reads
//! a site in a way that looks like a slip (the CORS test never sees the
//! Origin it sent), the port reads it the same way, so the grades agree,
//! and the audit reports the real problem as a finding of its own.
//!
//! Not ported: Chromium's HSTS preload list, which the Observatory
//! downloads when it is installed. No host counts as preloaded here, so a
//! preloaded site can score up to five points less than on the Observatory.

mod cookies;
mod corp;
mod cors;
mod csp;
mod findings;
mod hsts;
mod redirection;
mod referrer;
mod retrieve;
mod sri;
mod xcto;
mod xfo;

pub use findings::findings;
pub use retrieve::{retrieve, Retrieval, Session};

use super::Answer;
use crate::js::{is_space as is_js_space, trim as js_trim};

/// One result a test can give, with the Observatory's name and modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    CspImplementedWithNoUnsafeDefaultSrcNone,
    CspImplementedWithNoUnsafe,
    CspImplementedWithUnsafeInlineInStyleSrcOnly,
    CspImplementedWithInsecureSchemeInPassiveContentOnly,
    CspImplementedWithUnsafeEval,
    CspImplementedWithUnsafeInline,
    CspImplementedWithInsecureScheme,
    CspHeaderInvalid,
    CspNotImplemented,
    CspNotImplementedButReportingEnabled,
    CspImplementedButDuplicateDirectives,
    CookiesSecureWithHttponlySessionsAndSamesite,
    CookiesSecureWithHttponlySessions,
    CookiesNotFound,
    CookiesWithoutSecureFlagButProtectedByHsts,
    CookiesSessionWithoutSecureFlagButProtectedByHsts,
    CookiesWithoutSecureFlag,
    CookiesSamesiteFlagInvalid,
    CookiesAnticsrfWithoutSamesiteFlag,
    CookiesSessionWithoutHttponlyFlag,
    CookiesSessionWithoutSecureFlag,
    CorsNotImplemented,
    CorsImplementedWithPublicAccess,
    CorsImplementedWithRestrictedAccess,
    RedirectionToHttps,
    RedirectionNotNeededNoHttp,
    RedirectionOffHostFromHttp,
    RedirectionNotToHttpsOnInitialRedirection,
    RedirectionNotToHttps,
    RedirectionMissing,
    RedirectionInvalidCert,
    ReferrerPolicyPrivate,
    ReferrerPolicyNotImplemented,
    ReferrerPolicyUnsafe,
    ReferrerPolicyHeaderInvalid,
    HstsImplementedMaxAgeAtLeastSixMonths,
    HstsImplementedMaxAgeLessThanSixMonths,
    HstsNotImplemented,
    HstsHeaderInvalid,
    HstsNotImplementedNoHttps,
    HstsInvalidCert,
    SriImplementedAndAllScriptsLoadedSecurely,
    SriImplementedAndExternalScriptsLoadedSecurely,
    SriNotImplementedResponseNotHtml,
    SriNotImplementedButNoScriptsLoaded,
    SriNotImplementedButAllScriptsLoadedFromSecureOrigin,
    SriNotImplementedButExternalScriptsLoadedSecurely,
    SriImplementedButExternalScriptsNotLoadedSecurely,
    SriNotImplementedAndExternalScriptsNotLoadedSecurely,
    XContentTypeOptionsNosniff,
    XContentTypeOptionsNotImplemented,
    XContentTypeOptionsHeaderInvalid,
    XFrameOptionsImplementedViaCsp,
    XFrameOptionsSameoriginOrDeny,
    XFrameOptionsAllowFromOrigin,
    XFrameOptionsNotImplemented,
    XFrameOptionsHeaderInvalid,
    CorpHeaderInvalid,
    CorpImplementedWithCrossOrigin,
    CorpImplementedWithSameOrigin,
    CorpImplementedWithSameSite,
    CorpNotImplemented,
}

impl Expectation {
    /// The rule id of the result (`observatory.` and the Observatory's name
    /// for it) and its score modifier (the Observatory's `SCORE_TABLE`).
    fn entry(self) -> (&'static str, i32) {
        use Expectation::*;
        match self {
            CspImplementedWithNoUnsafeDefaultSrcNone => {
                ("observatory.csp-implemented-with-no-unsafe-default-src-none", 10)
            }
            CspImplementedWithNoUnsafe => ("observatory.csp-implemented-with-no-unsafe", 5),
            CspImplementedWithUnsafeInlineInStyleSrcOnly => {
                ("observatory.csp-implemented-with-unsafe-inline-in-style-src-only", 0)
            }
            CspImplementedWithInsecureSchemeInPassiveContentOnly => (
                "observatory.csp-implemented-with-insecure-scheme-in-passive-content-only",
                -10,
            ),
            CspImplementedWithUnsafeEval => ("observatory.csp-implemented-with-unsafe-eval", -10),
            CspImplementedWithUnsafeInline => ("observatory.csp-implemented-with-unsafe-inline", -20),
            CspImplementedWithInsecureScheme => ("observatory.csp-implemented-with-insecure-scheme", -20),
            CspHeaderInvalid => ("observatory.csp-header-invalid", -25),
            CspNotImplemented => ("observatory.csp-not-implemented", -25),
            CspNotImplementedButReportingEnabled => ("observatory.csp-not-implemented-but-reporting-enabled", -25),
            CspImplementedButDuplicateDirectives => ("observatory.csp-implemented-but-duplicate-directives", 0),
            CookiesSecureWithHttponlySessionsAndSamesite => {
                ("observatory.cookies-secure-with-httponly-sessions-and-samesite", 5)
            }
            CookiesSecureWithHttponlySessions => ("observatory.cookies-secure-with-httponly-sessions", 0),
            CookiesNotFound => ("observatory.cookies-not-found", 0),
            CookiesWithoutSecureFlagButProtectedByHsts => {
                ("observatory.cookies-without-secure-flag-but-protected-by-hsts", -5)
            }
            CookiesSessionWithoutSecureFlagButProtectedByHsts => (
                "observatory.cookies-session-without-secure-flag-but-protected-by-hsts",
                -10,
            ),
            CookiesWithoutSecureFlag => ("observatory.cookies-without-secure-flag", -20),
            CookiesSamesiteFlagInvalid => ("observatory.cookies-samesite-flag-invalid", -20),
            CookiesAnticsrfWithoutSamesiteFlag => ("observatory.cookies-anticsrf-without-samesite-flag", -20),
            CookiesSessionWithoutHttponlyFlag => ("observatory.cookies-session-without-httponly-flag", -30),
            CookiesSessionWithoutSecureFlag => ("observatory.cookies-session-without-secure-flag", -40),
            CorsNotImplemented => ("observatory.cross-origin-resource-sharing-not-implemented", 0),
            CorsImplementedWithPublicAccess => (
                "observatory.cross-origin-resource-sharing-implemented-with-public-access",
                0,
            ),
            CorsImplementedWithRestrictedAccess => (
                "observatory.cross-origin-resource-sharing-implemented-with-restricted-access",
                0,
            ),
            RedirectionToHttps => ("observatory.redirection-to-https", 0),
            RedirectionNotNeededNoHttp => ("observatory.redirection-not-needed-no-http", 0),
            RedirectionOffHostFromHttp => ("observatory.redirection-off-host-from-http", -5),
            RedirectionNotToHttpsOnInitialRedirection => {
                ("observatory.redirection-not-to-https-on-initial-redirection", -10)
            }
            RedirectionNotToHttps => ("observatory.redirection-not-to-https", -20),
            RedirectionMissing => ("observatory.redirection-missing", -20),
            RedirectionInvalidCert => ("observatory.redirection-invalid-cert", -20),
            ReferrerPolicyPrivate => ("observatory.referrer-policy-private", 5),
            ReferrerPolicyNotImplemented => ("observatory.referrer-policy-not-implemented", 0),
            ReferrerPolicyUnsafe => ("observatory.referrer-policy-unsafe", -5),
            ReferrerPolicyHeaderInvalid => ("observatory.referrer-policy-header-invalid", -5),
            HstsImplementedMaxAgeAtLeastSixMonths => ("observatory.hsts-implemented-max-age-at-least-six-months", 0),
            HstsImplementedMaxAgeLessThanSixMonths => {
                ("observatory.hsts-implemented-max-age-less-than-six-months", -10)
            }
            HstsNotImplemented => ("observatory.hsts-not-implemented", -20),
            HstsHeaderInvalid => ("observatory.hsts-header-invalid", -20),
            HstsNotImplementedNoHttps => ("observatory.hsts-not-implemented-no-https", -20),
            HstsInvalidCert => ("observatory.hsts-invalid-cert", -20),
            SriImplementedAndAllScriptsLoadedSecurely => {
                ("observatory.sri-implemented-and-all-scripts-loaded-securely", 5)
            }
            SriImplementedAndExternalScriptsLoadedSecurely => {
                ("observatory.sri-implemented-and-external-scripts-loaded-securely", 5)
            }
            SriNotImplementedResponseNotHtml => ("observatory.sri-not-implemented-response-not-html", 0),
            SriNotImplementedButNoScriptsLoaded => ("observatory.sri-not-implemented-but-no-scripts-loaded", 0),
            SriNotImplementedButAllScriptsLoadedFromSecureOrigin => (
                "observatory.sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
                0,
            ),
            SriNotImplementedButExternalScriptsLoadedSecurely => (
                "observatory.sri-not-implemented-but-external-scripts-loaded-securely",
                -5,
            ),
            SriImplementedButExternalScriptsNotLoadedSecurely => (
                "observatory.sri-implemented-but-external-scripts-not-loaded-securely",
                -20,
            ),
            SriNotImplementedAndExternalScriptsNotLoadedSecurely => (
                "observatory.sri-not-implemented-and-external-scripts-not-loaded-securely",
                -50,
            ),
            XContentTypeOptionsNosniff => ("observatory.x-content-type-options-nosniff", 0),
            XContentTypeOptionsNotImplemented => ("observatory.x-content-type-options-not-implemented", -5),
            XContentTypeOptionsHeaderInvalid => ("observatory.x-content-type-options-header-invalid", -5),
            XFrameOptionsImplementedViaCsp => ("observatory.x-frame-options-implemented-via-csp", 5),
            XFrameOptionsSameoriginOrDeny => ("observatory.x-frame-options-sameorigin-or-deny", 0),
            XFrameOptionsAllowFromOrigin => ("observatory.x-frame-options-allow-from-origin", 0),
            XFrameOptionsNotImplemented => ("observatory.x-frame-options-not-implemented", -20),
            XFrameOptionsHeaderInvalid => ("observatory.x-frame-options-header-invalid", -20),
            CorpHeaderInvalid => ("observatory.corp-header-invalid", -5),
            CorpImplementedWithCrossOrigin => ("observatory.corp-implemented-with-cross-origin", 0),
            CorpImplementedWithSameOrigin => ("observatory.corp-implemented-with-same-origin", 10),
            CorpImplementedWithSameSite => ("observatory.corp-implemented-with-same-site", 10),
            CorpNotImplemented => ("observatory.corp-not-implemented", 0),
        }
    }

    pub fn rule(self) -> &'static str {
        self.entry().0
    }

    /// The Observatory's name for the result.
    pub fn name(self) -> &'static str {
        &self.rule()["observatory.".len()..]
    }

    pub fn modifier(self) -> i32 {
        self.entry().1
    }
}

/// The Observatory's ten tests, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    ContentSecurityPolicy,
    Cookies,
    CrossOriginResourceSharing,
    Redirection,
    ReferrerPolicy,
    StrictTransportSecurity,
    SubresourceIntegrity,
    XContentTypeOptions,
    XFrameOptions,
    CrossOriginResourcePolicy,
}

impl Test {
    pub const ALL: [Test; 10] = [
        Test::ContentSecurityPolicy,
        Test::Cookies,
        Test::CrossOriginResourceSharing,
        Test::Redirection,
        Test::ReferrerPolicy,
        Test::StrictTransportSecurity,
        Test::SubresourceIntegrity,
        Test::XContentTypeOptions,
        Test::XFrameOptions,
        Test::CrossOriginResourcePolicy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Test::ContentSecurityPolicy => "content-security-policy",
            Test::Cookies => "cookies",
            Test::CrossOriginResourceSharing => "cross-origin-resource-sharing",
            Test::Redirection => "redirection",
            Test::ReferrerPolicy => "referrer-policy",
            Test::StrictTransportSecurity => "strict-transport-security",
            Test::SubresourceIntegrity => "subresource-integrity",
            Test::XContentTypeOptions => "x-content-type-options",
            Test::XFrameOptions => "x-frame-options",
            Test::CrossOriginResourcePolicy => "cross-origin-resource-policy",
        }
    }

    fn run(self, retrieval: &Retrieval) -> Outcome {
        let (result, pass) = match self {
            Test::ContentSecurityPolicy => csp::test(retrieval).verdict(),
            Test::Cookies => cookies::test(retrieval),
            Test::CrossOriginResourceSharing => cors::test(retrieval),
            Test::Redirection => redirection::test(retrieval),
            Test::ReferrerPolicy => referrer::test(retrieval),
            Test::StrictTransportSecurity => hsts::test(retrieval),
            Test::SubresourceIntegrity => sri::test(retrieval),
            Test::XContentTypeOptions => xcto::test(retrieval),
            Test::XFrameOptions => xfo::test(retrieval),
            Test::CrossOriginResourcePolicy => corp::test(retrieval),
        };
        Outcome {
            test: self,
            result,
            pass,
        }
    }
}

/// What one test found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub test: Test,
    pub result: Expectation,
    pub pass: bool,
}

/// The Observatory's verdict on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub grade: &'static str,
    pub score: i32,
    pub outcomes: Vec<Outcome>,
}

/// Why a site gets no grade (the Observatory's scan errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotGraded {
    /// Neither HTTP nor HTTPS answered.
    Down,
    /// The page answered with a status the Observatory does not grade.
    Status(u16),
}

impl std::fmt::Display for NotGraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotGraded::Down => f.write_str("the site answered neither over HTTP nor over HTTPS"),
            NotGraded::Status(status) => write!(
                f,
                "the page answered {status}; like the Observatory, only 2xx, 3xx, 401 and 403 answers are graded"
            ),
        }
    }
}

/// Below this, the bonuses of passing tests do not count.
const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i32 = 90;

/// Runs the ten tests on what [`retrieve`] got and scores them.
pub fn scan(retrieval: &Retrieval) -> Result<Scan, NotGraded> {
    let page = retrieval.auto().page().ok_or(NotGraded::Down)?;
    let status = page.status.as_u16();
    if !(200..400).contains(&status) && status != 401 && status != 403 {
        return Err(NotGraded::Status(status));
    }
    let outcomes: Vec<Outcome> = Test::ALL.iter().map(|test| test.run(retrieval)).collect();
    let modifiers = outcomes.iter().map(|o| o.result.modifier());
    let with_extra_credit = 100 + modifiers.clone().sum::<i32>();
    let uncurved = 100 + modifiers.filter(|m| *m < 0).sum::<i32>();
    let score = if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT {
        with_extra_credit
    } else {
        uncurved
    }
    .max(0);
    Ok(Scan {
        grade: grade_for(score),
        score,
        outcomes,
    })
}

/// The grade chart: steps of five, anything over 100 graded as 100.
fn grade_for(score: i32) -> &'static str {
    match score - score % 5 {
        100.. => "A+",
        90..=95 => "A",
        85 => "A-",
        80 => "B+",
        70..=75 => "B",
        65 => "B-",
        60 => "C+",
        50..=55 => "C",
        45 => "C-",
        40 => "D+",
        30..=35 => "D",
        25 => "D-",
        _ => "F",
    }
}

/// A header as Node.js's HTTP client hands it to the Observatory: repeated
/// headers joined with `, `, except those Node keeps the first of.
fn header(answer: &Answer, name: &str) -> Option<String> {
    const FIRST_ONLY: [&str; 18] = [
        "age",
        "authorization",
        "content-length",
        "content-type",
        "etag",
        "expires",
        "from",
        "host",
        "if-modified-since",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "proxy-authorization",
        "referer",
        "retry-after",
        "server",
        "user-agent",
    ];
    let mut values = answer
        .headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if FIRST_ONLY.contains(&name) {
        return values.next();
    }
    let joined: Vec<String> = values.collect();
    (!joined.is_empty()).then(|| joined.join(", "))
}

/// A header of the graded page as the Observatory reads most of them: only
/// when sent and not empty (JavaScript's truthiness), then its first
/// `limit` characters, trimmed and lower-cased.
fn page_header(retrieval: &Retrieval, name: &str, limit: usize) -> Option<String> {
    let value = header(retrieval.auto().page()?, name).filter(|v| !v.is_empty())?;
    Some(js_trim(bounded(&value, limit)).to_lowercase())
}

/// The first `limit` characters, as the Observatory bounds what it reads.
fn bounded(value: &str, limit: usize) -> &str {
    value.char_indices().nth(limit).map_or(value, |(end, _)| &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grade_chart_steps_by_five() {
        let grades: Vec<&str> = [135, 100, 99, 90, 89, 85, 80, 79, 65, 60, 50, 45, 40, 30, 25, 24, 0]
            .into_iter()
            .map(grade_for)
            .collect();
        assert_eq!(
            grades,
            ["A+", "A+", "A", "A", "A-", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F", "F"]
        );
    }

    #[test]
    fn repeated_headers_are_joined_as_node_joins_them() {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("x-frame-options", "DENY"),
            ("content-type", "text/html"),
            ("content-type", "text/plain"),
        ] {
            headers.append(name, reqwest::header::HeaderValue::from_static(value));
        }
        let answer = Answer {
            url: "http://127.0.0.1/".into(),
            status: reqwest::StatusCode::OK,
            headers,
            body: String::new(),
        };
        assert_eq!(header(&answer, "x-frame-options").as_deref(), Some("DENY, DENY"));
        assert_eq!(header(&answer, "content-type").as_deref(), Some("text/html"));
        assert_eq!(header(&answer, "referrer-policy"), None);
    }
}
