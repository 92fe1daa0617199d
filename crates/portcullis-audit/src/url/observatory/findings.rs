//! The graded tests that cost points, as findings with their evidence and
//! fix, and the CORS problem the Observatory does not see.
//!
//! The cookies test only scores here: the C6 check reports every cookie
//! on its own, with more detail than one result can give.

use super::retrieve::CORS_ORIGIN;
use super::{header, Expectation, Retrieval, Scan, Test};
use crate::report::{Evidence, Finding, Item, Severity};

pub fn findings(scan: &Scan, retrieval: &Retrieval) -> Vec<Finding> {
    let mut findings: Vec<Finding> = scan
        .outcomes
        .iter()
        .filter(|o| o.result.modifier() < 0 && o.test != Test::Cookies)
        .map(|o| finding(o.test, o.result, retrieval))
        .collect();
    findings.extend(reflected_origin(retrieval));
    findings
}

/// The header a test reads, which is its evidence.
fn evidence_header(test: Test) -> Option<&'static str> {
    match test {
        Test::ContentSecurityPolicy => Some("Content-Security-Policy"),
        Test::ReferrerPolicy => Some("Referrer-Policy"),
        Test::StrictTransportSecurity => Some("Strict-Transport-Security"),
        Test::XContentTypeOptions => Some("X-Content-Type-Options"),
        Test::XFrameOptions => Some("X-Frame-Options"),
        Test::CrossOriginResourcePolicy => Some("Cross-Origin-Resource-Policy"),
        Test::Cookies | Test::CrossOriginResourceSharing | Test::Redirection | Test::SubresourceIntegrity => None,
    }
}

fn finding(test: Test, result: Expectation, retrieval: &Retrieval) -> Finding {
    let session = match test {
        Test::Redirection => &retrieval.http,
        Test::StrictTransportSecurity => &retrieval.https,
        _ => retrieval.auto(),
    };
    let page = session.page();
    let location = page.map_or_else(|| session.start.to_string(), |p| p.url.clone());
    let excerpt = match (evidence_header(test), page) {
        (Some(name), Some(page)) => header(page, &name.to_ascii_lowercase())
            .map(|value| format!("{name}: {value}"))
            .unwrap_or_else(|| format!("(no {name} header)")),
        _ if test == Test::Redirection => session
            .route()
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(" -> "),
        _ => format!("Observatory result: {}", result.name()),
    };
    let (title, fix) = advice(result);
    Finding {
        rule: result.rule(),
        item: if matches!(test, Test::Redirection | Test::StrictTransportSecurity) {
            Item::C1
        } else {
            Item::C2
        },
        severity: severity(result.modifier()),
        title: format!("{title} ({} points)", result.modifier()),
        evidence: Evidence::at(location, excerpt),
        fix: fix.into(),
    }
}

fn severity(modifier: i32) -> Severity {
    match modifier {
        ..=-40 => Severity::High,
        -30..=-20 => Severity::Medium,
        _ => Severity::Low,
    }
}

const CSP_FIX: &str = "send a Content-Security-Policy with default-src 'self' (or 'none'), object-src 'none', and scripts by nonce or hash, never 'unsafe-inline' or 'unsafe-eval': helmet.contentSecurityPolicy(), or put portcullis in front: [headers.content_security_policy] is on by default";
const TRUSTED_CERTIFICATE_FIX: &str =
    "serve a certificate browsers trust: portcullis obtains and renews one with [tls.acme] domains = [\"your.host\"]";
const REDIRECT_FIX: &str = "answer every plain-HTTP request with a 301 to https:// on the same host first: portcullis's redirect listener does ([tls] redirect_listen, on by default with TLS)";
const SRI_FIX: &str = "load other sites' scripts over https:// with integrity=\"sha384-...\" crossorigin=\"anonymous\", or serve them yourself";

/// What the result means and how to fix it.
fn advice(result: Expectation) -> (&'static str, &'static str) {
    use Expectation::*;
    match result {
        CspNotImplemented => ("No Content-Security-Policy", CSP_FIX),
        CspNotImplementedButReportingEnabled => ("The Content-Security-Policy is only reported, not enforced", CSP_FIX),
        CspHeaderInvalid => ("The Content-Security-Policy cannot be parsed (a repeated directive, or 'strict-dynamic' without a nonce or hash)", CSP_FIX),
        CspImplementedWithUnsafeInline => ("The Content-Security-Policy lets any inline or broadly sourced script run", CSP_FIX),
        CspImplementedWithUnsafeEval => ("The Content-Security-Policy allows 'unsafe-eval'", CSP_FIX),
        CspImplementedWithInsecureScheme => ("The Content-Security-Policy allows active content over plain HTTP", CSP_FIX),
        CspImplementedWithInsecureSchemeInPassiveContentOnly => ("The Content-Security-Policy allows images or media over plain HTTP", CSP_FIX),
        HstsNotImplemented => (
            "No Strict-Transport-Security over HTTPS",
            "send Strict-Transport-Security: max-age=31536000; includeSubDomains on HTTPS answers: helmet.hsts(), or put portcullis in front: headers.strict_transport_security, on by default",
        ),
        HstsImplementedMaxAgeLessThanSixMonths | HstsHeaderInvalid => (
            "Strict-Transport-Security is shorter than six months, or unreadable",
            "send Strict-Transport-Security: max-age=31536000; includeSubDomains, once: helmet.hsts({ maxAge: 31536000 }), or portcullis's headers.strict_transport_security",
        ),
        HstsNotImplementedNoHttps => ("The site does not answer over HTTPS", TRUSTED_CERTIFICATE_FIX),
        HstsInvalidCert | RedirectionInvalidCert => ("The certificate is not trusted", TRUSTED_CERTIFICATE_FIX),
        RedirectionMissing => ("Plain HTTP is served, not redirected to HTTPS", REDIRECT_FIX),
        RedirectionNotToHttps => ("Plain HTTP redirects, but not to HTTPS", REDIRECT_FIX),
        RedirectionNotToHttpsOnInitialRedirection => ("Plain HTTP first redirects to another plain-HTTP URL", REDIRECT_FIX),
        RedirectionOffHostFromHttp => ("Plain HTTP redirects to HTTPS on another host, so HSTS is never set for this one", REDIRECT_FIX),
        ReferrerPolicyUnsafe | ReferrerPolicyHeaderInvalid => (
            "The Referrer-Policy sends full URLs to other sites, or is unreadable",
            "send Referrer-Policy: no-referrer (or strict-origin-when-cross-origin): helmet.referrerPolicy(), or portcullis's headers.referrer_policy, on by default",
        ),
        SriNotImplementedAndExternalScriptsNotLoadedSecurely => ("Other sites' scripts load over plain HTTP (or protocol-relative) without integrity", SRI_FIX),
        SriImplementedButExternalScriptsNotLoadedSecurely => ("Other sites' scripts load over plain HTTP (or protocol-relative)", SRI_FIX),
        SriNotImplementedButExternalScriptsLoadedSecurely => ("Other sites' scripts load without integrity", SRI_FIX),
        XContentTypeOptionsNotImplemented | XContentTypeOptionsHeaderInvalid => (
            "No X-Content-Type-Options: nosniff",
            "send X-Content-Type-Options: nosniff: helmet.noSniff(), or portcullis's headers.x_content_type_options, on by default",
        ),
        XFrameOptionsNotImplemented | XFrameOptionsHeaderInvalid => (
            "The page can be framed by any site (clickjacking)",
            "send X-Frame-Options: SAMEORIGIN and CSP frame-ancestors 'self': helmet.frameguard(), or portcullis's headers.x_frame_options, on by default",
        ),
        CorpHeaderInvalid => (
            "The Cross-Origin-Resource-Policy is unreadable",
            "send Cross-Origin-Resource-Policy: same-origin: helmet.crossOriginResourcePolicy(), or portcullis's headers.cross_origin_resource_policy, on by default",
        ),
        _ => (
            "The Observatory takes points off",
            "see the Observatory's advice for this result",
        ),
    }
}

/// A preflight whose answer lets the Origin it names read credentialed
/// responses: any site can then act as the logged-in user.
fn reflected_origin(retrieval: &Retrieval) -> Option<Finding> {
    let answer = retrieval.cors.as_ref()?;
    let origin = header(answer, "access-control-allow-origin")?;
    let credentials = header(answer, "access-control-allow-credentials")?;
    if origin.trim() != CORS_ORIGIN || !credentials.trim().eq_ignore_ascii_case("true") {
        return None;
    }
    Some(Finding {
        rule: "cors.reflected-origin",
        item: Item::C2,
        severity: Severity::High,
        title: "CORS lets any origin read answers with the user's cookies (the Origin is reflected, with credentials)".into(),
        evidence: Evidence::at(
            &answer.url,
            format!("Origin: {CORS_ORIGIN} -> Access-Control-Allow-Origin: {origin}, Access-Control-Allow-Credentials: {credentials}"),
        ),
        fix: "allow only the origins you trust: cors({ origin: ['https://app.example.com'], credentials: true }), never origin: true with credentials".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_the_points_lost() {
        assert_eq!(severity(-50), Severity::High);
        assert_eq!(severity(-25), Severity::Medium);
        assert_eq!(severity(-20), Severity::Medium);
        assert_eq!(severity(-5), Severity::Low);
    }
}
