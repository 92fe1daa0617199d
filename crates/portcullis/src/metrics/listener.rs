//! The metrics listener (`[metrics] listen`): `/metrics` for Prometheus,
//! `/healthz` for probes and container health checks, and the dashboard. It is never the
//! gateway's own port, and only the clients `[metrics] allow` lists may
//! connect (loopback by default).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use portcullis_core::body::Body;
use portcullis_core::pages::uncached;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::dashboard;
use crate::server::Running;

/// Connections served at once; scrapers and probes need few.
const MAX_CONNECTIONS: usize = 64;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until `stopping`, answering from the config `running` holds.
pub async fn serve(
    socket: std::net::TcpListener,
    allow: Vec<IpNet>,
    running: watch::Receiver<Arc<Running>>,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    socket.set_nonblocking(true)?;
    let listener = TcpListener::from_std(socket)?;
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ip = portcullis_core::client_ip::canonical(peer.ip());
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue; // Dropped: too many at once.
        };
        if !allow.iter().any(|net| net.contains(&ip)) {
            continue; // Closed unanswered, as a firewall would.
        }
        let running = running.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            std::future::ready(Ok::<_, Infallible>(answer(&request, &running.borrow())))
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
}

fn answer(request: &Request<Incoming>, running: &Running) -> Response<Body> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => match super::enabled() {
            Some(metrics) => text(StatusCode::OK, OPENMETRICS, metrics.render(&running.sources())),
            None => text(StatusCode::NOT_FOUND, "text/plain", "metrics are off\n".into()),
        },
        "/healthz" => {
            let store = running.sources().store();
            text(
                StatusCode::OK,
                "application/json",
                format!("{{\"status\":\"ok\",\"store\":\"{store}\"}}\n"),
            )
        }
        // Browsers ask for one; there is none.
        "/favicon.ico" => text(StatusCode::NO_CONTENT, "text/plain", String::new()),
        path if path == "/dashboard" || path.starts_with("/dashboard/") => {
            let wanted = running.config().metrics.as_ref().is_some_and(|m| m.dashboard);
            match dashboard::enabled().filter(|_| wanted) {
                Some(board) => board.answer(&path["/dashboard".len()..], &running.sources()),
                None => text(StatusCode::NOT_FOUND, "text/plain", "the dashboard is off\n".into()),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /healthz, /dashboard\n".into(),
        ),
    }
}

pub(crate) fn text(status: StatusCode, content_type: &'static str, text: String) -> Response<Body> {
    let mut response = uncached(status, content_type, text);
    let nosniff = HeaderValue::from_static("nosniff");
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, nosniff);
    response
}

/// `portcullis healthcheck`: asks `/healthz` on the metrics listener at
/// `address`, for container health checks in an image without a shell or
/// curl. `Ok` with the answer's body when it is a 200.
pub fn probe(address: std::net::SocketAddr) -> Result<String, String> {
    use std::io::{Read, Write};
    let limit = Duration::from_secs(3);
    let failed = |e: std::io::Error| format!("{address}: {e}");
    let mut stream = std::net::TcpStream::connect_timeout(&address, limit).map_err(failed)?;
    stream.set_read_timeout(Some(limit)).map_err(failed)?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(failed)?;
    let mut answer = Vec::new();
    // A health answer is one short line: read a few KiB at most.
    stream.take(4096).read_to_end(&mut answer).map_err(failed)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or("no answer");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body).trim();
    match status.starts_with("HTTP/1.1 200 ") {
        true => Ok(body.to_owned()),
        false => Err(format!("{address}: {status}")),
    }
}
