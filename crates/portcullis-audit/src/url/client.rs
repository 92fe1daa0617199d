//! Bounded requests to one origin, each answer kept for the checks that read
//! every answer (cookies).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use super::{AuditError, Options};

/// One answer: what the checks read, and where it came from.
#[derive(Debug, Clone)]
pub struct Answer {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// At most [`Options::max_body_bytes`], lossily decoded.
    pub body: String,
}

impl Answer {
    /// `Name: value`, as the evidence quotes a header.
    pub fn header_line(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?;
        Some(format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

pub struct Client {
    base: Url,
    http: reqwest::Client,
    /// For what the site serves behind a certificate nobody trusts: the
    /// Observatory grades such sites too (HSTS and redirects then fail).
    unverified: reqwest::Client,
    max_body_bytes: usize,
    max_requests: usize,
    /// Between two requests' starts.
    interval: std::time::Duration,
    next_start: tokio::sync::Mutex<tokio::time::Instant>,
    /// Shared, so the checks that read every answer do not copy bodies.
    answers: Mutex<Vec<Arc<Answer>>>,
    sent: AtomicUsize,
    /// Set once the site's certificate was refused: the audit goes on
    /// without verifying, having reported it.
    trusting: AtomicBool,
}

/// A request that got no answer.
#[derive(Debug)]
pub struct RequestError {
    message: String,
    /// The TLS handshake refused the site's certificate.
    pub certificate: bool,
}

impl RequestError {
    fn new(message: String) -> Self {
        Self {
            message,
            certificate: false,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Client {
    pub fn new(base: Url, options: &Options) -> Result<Self, AuditError> {
        let build = |verify: bool| -> Result<reqwest::Client, AuditError> {
            let mut builder = reqwest::Client::builder()
                .timeout(options.timeout)
                .connect_timeout(options.timeout)
                // Redirects are findings (C1), not something to follow blindly.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("portcullis-audit/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(!verify);
            if let Some(pem) = &options.cacert {
                let certificates = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| AuditError::Setup(format!("--cacert: {e}")))?;
                if certificates.is_empty() {
                    return Err(AuditError::Setup("--cacert: no PEM certificate in the file".into()));
                }
                for certificate in certificates {
                    builder = builder.add_root_certificate(certificate);
                }
            }
            builder.build().map_err(|e| AuditError::Setup(e.to_string()))
        };
        let http = build(true)?;
        let unverified = build(false)?;
        Ok(Self {
            base,
            http,
            unverified,
            max_body_bytes: options.max_body_bytes,
            max_requests: options.max_requests,
            interval: std::time::Duration::from_secs_f64(1.0 / options.rate.max(0.001)),
            next_start: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            answers: Mutex::new(Vec::new()),
            sent: AtomicUsize::new(0),
            trusting: AtomicBool::new(false),
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// From now on, accepts whatever certificate the site shows.
    pub fn trust_any_certificate(&self) {
        self.trusting.store(true, Ordering::Relaxed);
    }

    /// Every answer so far, in order.
    pub fn answers(&self) -> Vec<Arc<Answer>> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// `requests` GETs of `path` at once, past the rate (that is the point),
    /// within the request budget; the answers that came.
    pub async fn burst(&self, path: &str, requests: usize) -> Vec<Answer> {
        let Ok(url) = self.base.join(path) else {
            return Vec::new();
        };
        let requests = requests.min(self.max_requests.saturating_sub(self.spent()));
        let sends = (0..requests).map(|_| self.http.get(url.clone()).send());
        let mut answers = Vec::new();
        for response in futures_util::future::join_all(sends).await.into_iter().flatten() {
            answers.push(Answer {
                url: url.to_string(),
                status: response.status(),
                headers: response.headers().clone(),
                body: String::new(),
            });
        }
        self.keep(requests, answers.iter().cloned());
        answers
    }

    /// Requests sent so far.
    pub fn spent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts `sent` requests and keeps their `answers` for the checks.
    fn keep(&self, sent: usize, answers: impl IntoIterator<Item = Answer>) {
        self.sent.fetch_add(sent, Ordering::Relaxed);
        if let Ok(mut kept) = self.answers.lock() {
            kept.extend(answers.into_iter().map(Arc::new));
        }
    }

    /// An urlencoded form POST of `fields`, as a browser sends it.
    pub async fn post_form(
        &self,
        target: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Result<Answer, RequestError> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        let body = body.finish();
        self.send(
            Method::POST,
            target,
            headers,
            Some(("application/x-www-form-urlencoded", body)),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Result<Answer, RequestError> {
        self.send(Method::GET, path, &[], None).await
    }

    /// A request to `path` (joined to the base, so a whole URL of the same
    /// origin too; another origin is refused), with
    /// extra `headers` and a body (its content type, then the bytes).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Result<Answer, RequestError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| RequestError::new(format!("{path}: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(RequestError::new(format!("{url}: another origin")));
        }
        let http = if self.trusting.load(Ordering::Relaxed) {
            &self.unverified
        } else {
            &self.http
        };
        self.exchange(http, method, url, headers, body).await
    }

    /// A request to any `url`, for following the site's own redirects as
    /// a browser does; with `verify` off, whatever certificate the site
    /// shows is accepted. Answers from the audited host are kept.
    pub async fn fetch(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        verify: bool,
    ) -> Result<Answer, RequestError> {
        let http = if verify { &self.http } else { &self.unverified };
        self.exchange(http, method, url, headers, None).await
    }

    async fn exchange(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Result<Answer, RequestError> {
        if self.spent() >= self.max_requests {
            return Err(RequestError::new(format!("{url}: the request budget is spent")));
        }
        {
            let mut next_start = self.next_start.lock().await;
            tokio::time::sleep_until(*next_start).await;
            *next_start = tokio::time::Instant::now() + self.interval;
        }
        let mut request = http.request(method, url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let failed = |e: reqwest::Error| RequestError {
            message: format!("{url}: {}", error_chain(&e)),
            certificate: is_certificate_error(&e),
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while body.len() < self.max_body_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(failed(e)),
            }
        }
        body.truncate(self.max_body_bytes);
        let answer = Answer {
            url: url.to_string(),
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        // Every request counts against the budget; only the audited host's
        // answers are read by the checks.
        let ours = url.host_str() == self.base.host_str();
        self.keep(1, ours.then(|| answer.clone()));
        Ok(answer)
    }
}

/// reqwest's error and its causes, which say what actually failed
/// (`connection refused`, `invalid peer certificate: UnknownIssuer`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// rustls refused the certificate (untrusted, expired, another name): the
/// one failure after which the Observatory retries without verifying.
fn is_certificate_error(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if matches!(rustls_error(cause), Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The rustls error inside `error`, through the boxes and `io::Error`s
/// that hyper wraps it in (whose `source()` skips what they wrap).
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let io = error.downcast_ref::<std::io::Error>()?;
    rustls_error(io.get_ref()?)
}
