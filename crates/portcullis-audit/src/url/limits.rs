//! C9, with `--active` only: does the site limit a client? A burst of
//! requests (is one ever refused, or are limits announced?), a request head
//! sent a header a second (is the connection cut?), and a declared body far
//! over any sane limit (is it refused before it is sent?), over plain HTTP
//! or TLS as the site speaks.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Client, Options};
use crate::report::{Evidence, Finding, Item, Severity};

/// A body this large is over every framework's default (body-parser's is
/// 100 KB, nginx's 1 MiB): only its head is sent.
const DECLARED_BODY_BYTES: u64 = 100 * 1024 * 1024;

pub async fn check(client: &Client, options: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(burst(client, options.burst).await);
    findings.extend(slow_head(client, Duration::from_secs(options.slow_secs), options.timeout).await);
    findings.extend(declared_body(client, options.timeout).await);
    findings
}

async fn burst(client: &Client, requests: usize) -> Option<Finding> {
    let started = Instant::now();
    let answers = client.burst("/", requests).await;
    let announced = |a: &super::Answer| {
        ["ratelimit", "ratelimit-policy", "x-ratelimit-limit", "retry-after"]
            .iter()
            .any(|h| a.headers.contains_key(*h))
    };
    if answers
        .iter()
        .any(|a| a.status == StatusCode::TOO_MANY_REQUESTS || announced(a))
    {
        return None;
    }
    Some(Finding {
        rule: "limits.no-rate-limit",
        item: Item::C9,
        severity: Severity::Medium,
        title: "No request of a burst was refused, and no limit is announced".into(),
        evidence: Evidence::at(
            client.base().as_str(),
            format!(
                "{} GET / in {:.1} s: none answered 429, none carried RateLimit or Retry-After",
                answers.len(),
                started.elapsed().as_secs_f64()
            ),
        ),
        fix: "limit each client (express-rate-limit, rate-limiter-flexible), or put portcullis in front: [rate_limit] is on by default".into(),
    })
}

/// A request head sent a header a second: slowloris. Still open after
/// `bound` means one client can hold a connection as long as it likes.
async fn slow_head(client: &Client, bound: Duration, timeout: Duration) -> Option<Finding> {
    let mut stream = connect(client, timeout).await?;
    let host = client.base().host_str().unwrap_or("localhost").to_owned();
    let started = Instant::now();
    if stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n").as_bytes())
        .await
        .is_err()
    {
        return None;
    }
    let mut buffer = [0u8; 512];
    while started.elapsed() < bound {
        // Closed (or answered, which also ends the trickle) within a second?
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await {
            Ok(_) => return None,
            Err(_) => {
                if stream.write_all(b"X-Portcullis-Audit: slow\r\n").await.is_err() {
                    return None;
                }
            }
        }
    }
    Some(Finding {
        rule: "limits.slow-head-not-cut",
        item: Item::C9,
        severity: Severity::Medium,
        title: format!("A request head sent a header a second is still read after {} s", bound.as_secs()),
        evidence: Evidence::at(
            client.base().as_str(),
            format!("GET / HTTP/1.1, then one header a second for {} s: the connection stayed open", bound.as_secs()),
        ),
        fix: "bound the time to send a head (server.headersTimeout = 10000 in Node.js), or put portcullis in front: [server] header_read_timeout is 10 s by default".into(),
    })
}

/// A head that declares a 100 MiB body: refused with 413 before the body,
/// or the server would read (and buffer) whatever it is sent.
async fn declared_body(client: &Client, timeout: Duration) -> Option<Finding> {
    let mut stream = connect(client, timeout).await?;
    let host = client.base().host_str().unwrap_or("localhost").to_owned();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {DECLARED_BODY_BYTES}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut answer = [0u8; 64];
    let status = match tokio::time::timeout(timeout, stream.read(&mut answer)).await {
        Ok(Ok(read)) if read >= 12 => String::from_utf8_lossy(&answer[9..12]).into_owned(),
        _ => "no answer".to_owned(),
    };
    if status == "413" {
        return None;
    }
    Some(Finding {
        rule: "limits.large-body-not-refused",
        item: Item::C9,
        severity: Severity::Medium,
        title: "A request declaring a 100 MiB body is not refused".into(),
        evidence: Evidence::at(
            client.base().as_str(),
            format!("POST / with Content-Length: {DECLARED_BODY_BYTES} and no body sent: {status}"),
        ),
        fix: "limit request bodies (express.json({ limit: '100kb' }) on every parser), or put portcullis in front: [limits] max_body_bytes is 1 MiB by default".into(),
    })
}

/// A connection of our own to the site, over TLS for an HTTPS one.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(client: &Client, timeout: Duration) -> Option<Box<dyn Stream>> {
    let base = client.base();
    let host = base.host_str()?;
    let address = format!("{host}:{}", base.port_or_known_default()?);
    if base.scheme() == "https" {
        let stream = super::tls::connect(&address, host, timeout).await?;
        return Some(Box::new(stream));
    }
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    Some(Box::new(stream))
}
