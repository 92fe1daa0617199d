//! `portcullis audit URL`: the checklist verified against a live site.
//!
//! The home page first, then a bounded same-origin crawl; each checklist
//! item is one module that reads those answers (or sends a few requests of
//! its own) and reports [`Finding`]s with their evidence and fix. Only GET
//! requests are sent, except the marked probes (a malformed JSON body, for
//! C4; cross-site posts of the forms found, for C10), never more than [`Options::max_requests`], never faster than
//! [`Options::rate`].

mod brute_force;
mod client;
mod cookies;
mod crawl;
mod csrf;
mod data_leaks;
mod exposed;
mod fingerprint;
mod headers;
mod html;
mod leaks;
mod libraries;
mod limits;
pub mod observatory;
mod tls;

use std::fmt;
use std::time::Duration;

pub use brute_force::Login;
pub use client::{Answer, Client};

use crate::advisories::Advisories;
use crate::report::{Evidence, Finding, Grade, GradedTest, Item, Report, Severity};

/// How the audit reaches the site.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per request, connection included.
    pub timeout: Duration,
    /// At most this much of each body is read.
    pub max_body_bytes: usize,
    pub max_requests: usize,
    /// Pages the crawl visits, the home page included.
    pub max_pages: usize,
    /// Requests per second, at most.
    pub rate: f64,
    /// The plain-HTTP port of an HTTPS target (and the reverse), for the
    /// Observatory's visit over both schemes.
    pub http_port: u16,
    pub https_port: u16,
    /// A PEM file of extra trusted CAs (a private or development CA).
    pub cacert: Option<Vec<u8>>,
    /// The probes that load the site or hold a connection (C9).
    pub active: bool,
    /// Requests of the active burst.
    pub burst: usize,
    /// How long the active slow-head probe trickles before calling it uncut.
    pub slow_secs: u64,
    /// The login form the active brute-force probe fails at (C8).
    pub login: Option<Login>,
    /// What front-end libraries are checked against (C16).
    pub advisories: Advisories,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
            max_requests: 200,
            max_pages: 50,
            rate: 10.0,
            http_port: 80,
            https_port: 443,
            cacert: None,
            active: false,
            burst: 150,
            slow_secs: 20,
            login: None,
            advisories: Advisories::Off,
        }
    }
}

/// Why the audit could not run: the exit code 2 cases.
#[derive(Debug)]
pub enum AuditError {
    /// Not an http(s) URL.
    Target(String),
    /// The CA file is not PEM, or the client could not be built.
    Setup(String),
    /// The site did not answer its first request.
    Unreachable(String),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Target(why) => write!(f, "not an http or https URL: {why}"),
            AuditError::Setup(why) => write!(f, "cannot set up the client: {why}"),
            AuditError::Unreachable(why) => write!(f, "the site did not answer: {why}"),
        }
    }
}

impl std::error::Error for AuditError {}

/// Audits the site at `target` and reports what fails.
pub async fn audit(target: &str, options: &Options) -> Result<Report, AuditError> {
    let base = url::Url::parse(target).map_err(|e| AuditError::Target(format!("{target}: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(AuditError::Target(target.to_owned()));
    }
    let client = Client::new(base, options)?;
    let mut findings: Vec<Finding> = Vec::new();
    let home = match client.get(client.base().as_str()).await {
        Err(refused) if refused.certificate => {
            findings.push(untrusted(client.base(), &refused));
            client.trust_any_certificate();
            client.get(client.base().as_str()).await
        }
        home => home,
    }
    .map_err(|e| AuditError::Unreachable(e.to_string()))?;
    let retrieval = observatory::retrieve(&client, client.base(), options.http_port, options.https_port).await;
    let graded = observatory::scan(&retrieval);
    if let Some(https) = retrieval.https.route().first() {
        findings.extend(tls::check(https, retrieval.https.page(), options.timeout).await);
    }
    let pages = crawl::crawl(&client, &home, options.max_pages).await;
    match &graded {
        Ok(scan) => findings.extend(observatory::findings(scan, &retrieval)),
        Err(why) => findings.push(not_graded(&home, why)),
    }
    findings.extend(fingerprint::check(&client, &home).await);
    findings.extend(headers::check(&home));
    findings.extend(exposed::check(&client).await);
    findings.extend(csrf::check(&client, &client.answers()).await);
    let libraries = libraries::find(&client, &client.answers()).await;
    findings.extend(libraries::check(&libraries, &options.advisories));
    // These read every answer, the probes' included.
    findings.extend(leaks::check(&client).await);
    let answers = client.answers();
    findings.extend(cookies::check(&client, &answers));
    findings.extend(data_leaks::check(&answers));
    // Last: a burst may get this client limited, or banned.
    if options.active {
        if let Some(login) = &options.login {
            findings.extend(brute_force::check(&client, login).await);
        }
        findings.extend(limits::check(&client, options).await);
    }
    let mut report = Report::new(client.base().as_str());
    report.scope = Some(format!("{} requests, {pages} pages crawled", client.spent()));
    report.grade = graded.ok().map(|scan| grade(&scan));
    for finding in findings {
        report.add(finding);
    }
    report.sort();
    Ok(report)
}

fn grade(scan: &observatory::Scan) -> Grade {
    Grade {
        grade: scan.grade.into(),
        score: scan.score,
        tests: scan
            .outcomes
            .iter()
            .map(|o| GradedTest {
                test: o.test.name(),
                result: o.result.name(),
                pass: o.pass,
                modifier: o.result.modifier(),
            })
            .collect(),
    }
}

fn untrusted(base: &url::Url, refused: &client::RequestError) -> Finding {
    Finding {
        rule: "tls.untrusted-certificate",
        item: Item::C1,
        severity: Severity::Critical,
        title: "Browsers refuse the site's certificate; the rest of the audit went on without verifying it".into(),
        evidence: Evidence::at(base.as_str(), refused.to_string()),
        fix: "serve a certificate browsers trust: portcullis obtains and renews one with [tls.acme] domains = [\"your.host\"]; for a private CA, pass --cacert".into(),
    }
}

fn not_graded(home: &Answer, why: &observatory::NotGraded) -> Finding {
    Finding {
        rule: "observatory.not-graded",
        item: Item::C2,
        severity: Severity::Info,
        title: format!("No grade: {why}"),
        evidence: Evidence::at(&home.url, format!("HTTP status {}", home.status.as_u16())),
        fix: "audit a page that answers 200 (the home page, or a path given in the target URL)".into(),
    }
}
