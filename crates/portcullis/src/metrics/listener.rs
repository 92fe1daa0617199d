//! The metrics listener (`[metrics] listen`): `/metrics` for Prometheus and
//! `/healthz` for probes and container health checks. It is never the
//! gateway's own port, and only the clients `[metrics] allow` lists may
//! connect (loopback by default).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

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

fn answer(request: &Request<Incoming>, running: &Running) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let Some(metrics) = super::enabled() else {
                return text(StatusCode::NOT_FOUND, "text/plain", "metrics are off\n".into());
            };
            let certificates = running
                .config()
                .tls
                .as_ref()
                .map(|tls| tls.resolver.current().expiries());
            let body = metrics.render(running.store_down(), &certificates.unwrap_or_default());
            text(StatusCode::OK, OPENMETRICS, body)
        }
        "/healthz" => {
            let store = match running.store_down() {
                None => "memory",
                Some(false) => "up",
                Some(true) => "down",
            };
            text(
                StatusCode::OK,
                "application/json",
                format!("{{\"status\":\"ok\",\"store\":\"{store}\"}}\n"),
            )
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
