//! C1: what the HTTPS listener accepts, probed with ClientHellos of our own
//! (SSL 3.0, TLS 1.0 and 1.1, and weak cipher suites, which rustls cannot
//! offer), and the certificate it shows: expiry, key, signature. Trust and
//! the host name are judged by the audit's client (a refused certificate
//! is its own finding); the HTTP to HTTPS redirect and HSTS's max-age are
//! graded with the Observatory's tests.

mod certificate;
mod hello;
mod suites;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

pub use self::certificate::connect;
use self::hello::{Answer as Hello, Version};
use self::suites::Weakness;
use super::Answer;
use crate::report::{Evidence, Finding, Item, Severity};

/// Under this, an expiry is worth a warning (Let's Encrypt renews at 30).
const EXPIRY_WARNING_DAYS: i64 = 21;

/// Probes the HTTPS listener of `https` (whose final page, when there is
/// one, is `page`).
pub async fn check(https: &Url, page: Option<&Answer>, timeout: Duration) -> Vec<Finding> {
    let Some(host) = https.host_str() else {
        return Vec::new();
    };
    let address = format!("{host}:{}", https.port_or_known_default().unwrap_or(443));
    let server_name = https.domain();
    let probe = Probe {
        address: &address,
        server_name,
        timeout,
        location: https.as_str(),
    };
    // Both the protocol and the suite verdicts need it: asked once.
    let tls13 = probe.accepts(Version::TLS1_3, suites::TLS13).await.is_some();
    let mut findings = probe.protocols(tls13).await;
    findings.extend(probe.suites(tls13).await);
    if let Some(shown) = certificate::show(&address, host, timeout).await {
        findings.extend(probe.certificate(&shown));
    }
    findings.extend(page.and_then(include_sub_domains));
    findings
}

struct Probe<'a> {
    address: &'a str,
    server_name: Option<&'a str>,
    timeout: Duration,
    location: &'a str,
}

impl Probe<'_> {
    /// The ServerHello for `version` and `suites`, when the server chose
    /// that very version.
    async fn accepts(&self, version: Version, suites: &[u16]) -> Option<hello::ServerHello> {
        match hello::offer(self.address, self.server_name, version, suites, self.timeout).await {
            Ok(Hello::Accepted(chosen)) if chosen.version == version => Some(chosen),
            _ => None,
        }
    }

    fn finding(&self, rule: &'static str, severity: Severity, title: String, excerpt: String, fix: &str) -> Finding {
        Finding {
            rule,
            item: Item::C1,
            severity,
            title,
            evidence: Evidence::at(self.location, excerpt),
            fix: fix.into(),
        }
    }

    /// `tls13`: whether TLS 1.3 is accepted.
    async fn protocols(&self, tls13: bool) -> Vec<Finding> {
        const OLD: [(Version, &str, Severity); 3] = [
            (Version::SSL3, "tls.protocol-ssl3", Severity::Critical),
            (Version::TLS1_0, "tls.protocol-tls1-0", Severity::High),
            (Version::TLS1_1, "tls.protocol-tls1-1", Severity::High),
        ];
        let mut findings = Vec::new();
        for (version, rule, severity) in OLD {
            if let Some(chosen) = self.accepts(version, &suites::everything()).await {
                findings.push(self.finding(
                    rule,
                    severity,
                    format!("{} is accepted (POODLE, BEAST; deprecated by RFC 8996)", version.name()),
                    format!("ServerHello: {}, {}", version.name(), suites::name(chosen.suite)),
                    PROTOCOL_FIX,
                ));
            }
        }
        let modern = tls13 || self.accepts(Version::TLS1_2, &suites::everything()).await.is_some();
        if !modern {
            findings.push(self.finding(
                "tls.no-modern-protocol",
                Severity::High,
                "Neither TLS 1.2 nor TLS 1.3 is accepted".into(),
                "no ServerHello for TLS 1.2 or TLS 1.3".into(),
                PROTOCOL_FIX,
            ));
        }
        findings
    }

    /// Under TLS 1.2, each weakness's suites, offered until the server
    /// refuses what is left.
    async fn suites(&self, tls13: bool) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut cbc = Vec::new();
        for weakness in [
            Weakness::NullOrAnonymous,
            Weakness::Export,
            Weakness::Rc4,
            Weakness::TripleDes,
            Weakness::NoForwardSecrecy,
            Weakness::Cbc,
        ] {
            let mut offered: Vec<u16> = suites::WEAK
                .iter()
                .filter(|s| s.weakness == weakness)
                .map(|s| s.id)
                .collect();
            let mut accepted = Vec::new();
            while let Some(chosen) = self.accepts(Version::TLS1_2, &offered).await {
                if !offered.contains(&chosen.suite) {
                    break;
                }
                offered.retain(|s| *s != chosen.suite);
                accepted.push(suites::name(chosen.suite));
            }
            if accepted.is_empty() {
                continue;
            }
            if weakness == Weakness::Cbc {
                cbc = accepted.clone();
            }
            let (rule, severity, what) = describe(weakness);
            findings.push(self.finding(
                rule,
                severity,
                format!("TLS 1.2 accepts {what}"),
                format!("accepted: {}", accepted.join(", ")),
                SUITE_FIX,
            ));
        }
        let aead = tls13 || self.accepts(Version::TLS1_2, suites::STRONG_TLS12).await.is_some();
        if !aead && !cbc.is_empty() {
            findings.push(self.finding(
                "tls.cbc-only",
                Severity::Medium,
                "Only CBC suites are accepted: no AEAD (AES-GCM, ChaCha20-Poly1305)".into(),
                format!("accepted: {}", cbc.join(", ")),
                SUITE_FIX,
            ));
        }
        findings
    }

    fn certificate(&self, shown: &certificate::Shown) -> Vec<Finding> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let Some(leaf) = shown.chain.first().and_then(|der| certificate::leaf(der, now)) else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        let days = leaf.expires_in.div_euclid(86_400);
        if leaf.expires_in < 0 {
            findings.push(self.finding(
                "tls.certificate-expired",
                Severity::Critical,
                format!("The certificate expired {} days ago", -days),
                leaf.subject.clone(),
                RENEW_FIX,
            ));
        } else if days < EXPIRY_WARNING_DAYS {
            findings.push(self.finding(
                "tls.certificate-expires-soon",
                Severity::Medium,
                format!("The certificate expires in {days} days"),
                leaf.subject.clone(),
                RENEW_FIX,
            ));
        }
        let (algorithm, bits) = leaf.key;
        if (algorithm == "RSA" && bits < 2048) || (algorithm == "EC" && bits < 256) {
            findings.push(self.finding(
                "tls.weak-key",
                Severity::High,
                format!("The certificate's {algorithm} key has {bits} bits"),
                leaf.subject.clone(),
                "issue the certificate for an EC P-256 key or an RSA key of 2048 bits or more (portcullis's ACME certificates use P-256)",
            ));
        }
        if leaf.weak_signature {
            findings.push(self.finding(
                "tls.weak-signature",
                Severity::High,
                "The certificate is signed with SHA-1 or MD5, which browsers refuse".into(),
                leaf.subject,
                RENEW_FIX,
            ));
        }
        findings
    }
}

fn describe(weakness: Weakness) -> (&'static str, Severity, &'static str) {
    match weakness {
        Weakness::NullOrAnonymous => (
            "tls.suite-null-or-anonymous",
            Severity::Critical,
            "suites without encryption or without authentication",
        ),
        Weakness::Export => (
            "tls.suite-export",
            Severity::Critical,
            "export-grade and single-DES suites",
        ),
        Weakness::Rc4 => ("tls.suite-rc4", Severity::High, "RC4 suites"),
        Weakness::TripleDes => ("tls.suite-3des", Severity::High, "3DES suites (64-bit blocks: Sweet32)"),
        Weakness::NoForwardSecrecy => (
            "tls.suite-no-forward-secrecy",
            Severity::Medium,
            "RSA key exchange, without forward secrecy",
        ),
        Weakness::Cbc => (
            "tls.suite-cbc",
            Severity::Low,
            "CBC suites (padding oracles such as Lucky13)",
        ),
    }
}

/// HSTS that leaves subdomains to be reached over plain HTTP (and their
/// cookies for the parent domain with them).
fn include_sub_domains(page: &Answer) -> Option<Finding> {
    let value = page.header("strict-transport-security")?;
    let lower = value.to_ascii_lowercase();
    if !lower.contains("max-age") || lower.split(';').any(|p| p.trim() == "includesubdomains") {
        return None;
    }
    Some(Finding {
        rule: "tls.hsts-without-include-subdomains",
        item: Item::C1,
        severity: Severity::Low,
        title: "HSTS does not cover subdomains".into(),
        evidence: Evidence::at(&page.url, format!("Strict-Transport-Security: {value}")),
        fix: "add includeSubDomains once every subdomain serves HTTPS: helmet.hsts({ includeSubDomains: true }) (its default), or portcullis's headers.strict_transport_security (includeSubDomains by default)".into(),
    })
}

const PROTOCOL_FIX: &str = "accept TLS 1.2 and 1.3 only: ssl_protocols TLSv1.2 TLSv1.3 in nginx, minVersion: 'TLSv1.2' in Node's tls options, or put portcullis in front (rustls speaks nothing older)";
const SUITE_FIX: &str = "offer forward-secret AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305), as Mozilla's \"intermediate\" configuration does, or put portcullis in front (rustls offers nothing else)";
const RENEW_FIX: &str =
    "renew the certificate, and let renewal run by itself: portcullis's [tls.acme] renews 30 days before expiry";

#[cfg(test)]
mod tests {
    use super::*;

    fn page(hsts: &'static str) -> Answer {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "strict-transport-security",
            reqwest::header::HeaderValue::from_static(hsts),
        );
        Answer {
            url: "https://127.0.0.1/".into(),
            status: reqwest::StatusCode::OK,
            headers,
            body: String::new(),
        }
    }

    #[test]
    fn hsts_should_cover_subdomains() {
        assert!(include_sub_domains(&page("max-age=31536000")).is_some());
        assert!(include_sub_domains(&page("max-age=31536000; includeSubDomains")).is_none());
        // Unreadable HSTS is the Observatory test's finding.
        assert!(include_sub_domains(&page("includeSubDomains")).is_none());
    }
}
