//! The plain-HTTP listener that runs beside HTTPS: every request gets a 308
//! to the same URL on HTTPS (308 rather than 301, so a POST stays a POST).
//! It reads no bodies and serves nothing else. Each answer is an access line,
//! like every request to the gateway.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use portcullis_core::body::{self, Body};
use portcullis_core::context::{ConnectionInfo, RequestContextLayer, RequestContextPolicy};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::{service_fn, ServiceBuilder, ServiceExt};

use super::Challenges;
use crate::log::{AccessLog, AccessLogLayer, JsonLog};

/// Where requests are sent: the HTTPS port (omitted from URLs when 443).
#[derive(Debug, Clone)]
pub struct Redirect {
    pub https_port: u16,
    /// ACME HTTP-01 answers, served instead of a redirect.
    pub challenges: Arc<Challenges>,
}

const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

impl Redirect {
    /// The answer to one request.
    pub fn answer<B>(&self, request: &Request<B>) -> Response<Body> {
        if let Some(token) = request.uri().path().strip_prefix(ACME_CHALLENGE_PATH) {
            return self.challenge(token);
        }
        match self.location(request) {
            Some(location) => {
                let mut response = Response::new(body::empty());
                *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            None => {
                let mut response = Response::new(body::full("Bad Request\n"));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            }
        }
    }

    /// The key authorization for `token`, as HTTP-01 validation expects.
    fn challenge(&self, token: &str) -> Response<Body> {
        let Some(answer) = self.challenges.http(token) else {
            let mut response = Response::new(body::full("Not Found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        };
        let mut response = Response::new(body::full(answer));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        response
    }

    /// `https://HOST[:PORT]/PATH?QUERY` for the request, or `None` if it
    /// names no valid host.
    fn location<B>(&self, request: &Request<B>) -> Option<HeaderValue> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().host())?;
        let authority: http::uri::Authority = host.parse().ok()?;
        let host = authority.host();
        if host.is_empty() || authority.as_str().contains('@') {
            return None;
        }
        let port = match self.https_port {
            443 => String::new(),
            port => format!(":{port}"),
        };
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        HeaderValue::from_str(&format!("https://{host}{port}{path}")).ok()
    }
}

/// Serves redirects on `listener` until `stopping` turns true. At most
/// `max_connections` are open at once; each must send its request head
/// within `header_timeout`.
pub async fn serve(
    listener: std::net::TcpListener,
    redirect: Redirect,
    max_connections: usize,
    header_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let open = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            () = until_stopped(&mut stopping) => return Ok(()),
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = until_stopped(&mut stopping) => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let answer = redirect.clone();
        let logged = ServiceBuilder::new()
            .layer(RequestContextLayer::new(RequestContextPolicy::default()))
            .layer(AccessLogLayer::new(AccessLog::unbuffered(JsonLog)))
            .service(service_fn(move |request: Request<Body>| {
                std::future::ready(Ok::<_, Infallible>(answer.answer(&request)))
            }));
        let connection = ConnectionInfo::new(peer, false);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(body::boxed);
            request.extensions_mut().insert(connection.clone());
            logged.clone().oneshot(request)
        });
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = connection.await;
            drop(permit);
        });
    }
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(port: u16, host: Option<&str>, uri: &str) -> (u16, Option<String>) {
        let mut request = Request::get(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let redirect = Redirect {
            https_port: port,
            challenges: Arc::default(),
        };
        let response = redirect.answer(&request.body(()).unwrap());
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    #[test]
    fn the_same_url_on_https() {
        assert_eq!(
            location(443, Some("example.com"), "/a/b?x=1"),
            (308, Some("https://example.com/a/b?x=1".into()))
        );
        assert_eq!(
            location(8443, Some("example.com:80"), "/"),
            (308, Some("https://example.com:8443/".into()))
        );
        assert_eq!(
            location(443, Some("[::1]:80"), "/"),
            (308, Some("https://[::1]/".into()))
        );
    }

    #[test]
    fn no_valid_host_is_a_400() {
        assert_eq!(location(443, None, "/").0, 400);
        assert_eq!(location(443, Some("user@evil.example"), "/").0, 400);
        assert_eq!(location(443, Some("a b"), "/").0, 400);
    }
}
