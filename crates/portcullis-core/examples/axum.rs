//! The portcullis layers in an axum app, as an Express app puts helmet and
//! friends in front of its routes: security headers, fingerprint removal,
//! safe error pages, cookie hardening, per-client rate limits and CSRF
//! protection, with client addresses from axum's `ConnectInfo`.
//!
//! ```sh
//! cargo run -p portcullis-core --example axum      # then: curl -i http://127.0.0.1:3000/
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use portcullis_core::body::{self, Body};
use portcullis_core::context::{ConnectionInfo, RequestContextLayer, RequestContextPolicy};
use portcullis_core::cookies::{CookieHardening, CookieHardeningLayer, CookiesConfig};
use portcullis_core::csrf::{CrossOriginProtection, CrossOriginProtectionLayer, CsrfConfig};
use portcullis_core::errors::{ErrorsConfig, SafeErrors, SafeErrorsLayer};
use portcullis_core::events::{EventSink, Events, SecurityEvent};
use portcullis_core::fingerprint::{Fingerprint, FingerprintConfig, FingerprintLayer};
use portcullis_core::headers::{SecurityHeaders, SecurityHeadersLayer};
use portcullis_core::pages::NeutralPages;
use portcullis_core::rate_limit::{RateLimit, RateLimitConfig, RateLimitLayer};
use portcullis_core::store::SharedState;
use portcullis_core::InvalidConfig;
use tower::{ServiceBuilder, ServiceExt};

/// The app's own routes, written without a thought for security.
fn handlers() -> Router {
    Router::new()
        .route("/", get(|| async { ([("x-powered-by", "axum")], "hello") }))
        .route(
            "/login",
            post(|| async { ([(header::SET_COOKIE, "session=abc123")], "welcome") }),
        )
        .route(
            "/boom",
            get(|| async {
                let trace = "Error: boom\n    at handler (/srv/app/src/main.rs:42:7)";
                (StatusCode::INTERNAL_SERVER_ERROR, trace)
            }),
        )
}

/// Security events as JSON lines on stderr.
struct Stderr;

impl EventSink for Stderr {
    fn emit(&self, event: SecurityEvent) {
        if let Ok(line) = serde_json::to_string(&event) {
            eprintln!("{line}");
        }
    }
}

/// `handlers` behind the layers. The layers speak portcullis's body type, so
/// the request is converted on the way in (with the client's address from
/// `ConnectInfo`) and the app's response on the way back.
fn protected(handlers: Router, rate_limit: RateLimitConfig, events: Events) -> Result<Router, InvalidConfig> {
    let pages = NeutralPages::default();
    let layers = ServiceBuilder::new()
        .map_request(from_axum)
        .layer(RequestContextLayer::new(RequestContextPolicy::default()))
        .layer(SecurityHeadersLayer::new(SecurityHeaders::default()))
        .layer(FingerprintLayer::new(Fingerprint::from_config(
            &FingerprintConfig::default(),
        )?))
        .layer(CookieHardeningLayer::new(CookieHardening::new(
            CookiesConfig::default(),
            events.clone(),
        )?))
        .layer(SafeErrorsLayer::new(SafeErrors::new(
            ErrorsConfig::default(),
            pages.clone(),
            events.clone(),
        )))
        .layer(RateLimitLayer::new(RateLimit::new(
            rate_limit,
            "default",
            SharedState::in_memory(100_000),
            None,
            pages.clone(),
            events.clone(),
        )?))
        .layer(CrossOriginProtectionLayer::new(CrossOriginProtection::new(
            CsrfConfig::default(),
            pages,
            events,
        )?))
        .map_response(|response: axum::response::Response| response.map(body::boxed))
        .service(handlers);
    Ok(Router::new().fallback_service(layers.map_response(IntoResponse::into_response)))
}

/// An axum request as the layers take it. Served without `ConnectInfo`, it
/// gets no `ConnectionInfo`, and the rate limit refuses it (a neutral 500):
/// it never lets every client through as one.
fn from_axum(request: Request<axum::body::Body>) -> Request<Body> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let mut request = request.map(body::boxed);
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectionInfo::new(peer, false));
    }
    request
}

/// Serves `app` on `listener`, with each client's address.
async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = protected(handlers(), RateLimitConfig::default(), Arc::new(Stderr))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Default)]
    struct Recorded(Mutex<Vec<SecurityEvent>>);

    impl EventSink for Recorded {
        fn emit(&self, event: SecurityEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    /// The example app on a free loopback port, limited to `burst` requests at once.
    async fn start(burst: u64) -> (SocketAddr, Arc<Recorded>) {
        let events = Arc::new(Recorded::default());
        let limit = RateLimitConfig {
            burst,
            ..RateLimitConfig::default()
        };
        let app = protected(handlers(), limit, events.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app));
        (address, events)
    }

    /// One raw HTTP/1.1 exchange; the whole answer as text.
    async fn exchange(address: SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).to_lowercase()
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn the_layers_protect_an_axum_app() {
        let (address, events) = start(100).await;

        let home = exchange(address, &get("/")).await;
        assert!(home.starts_with("http/1.1 200"), "{home}");
        assert!(home.contains("x-content-type-options: nosniff"), "{home}");
        assert!(home.contains("content-security-policy: default-src 'self'"), "{home}");
        assert!(home.contains("ratelimit: \"default\""), "limited per client: {home}");
        assert!(home.contains("x-request-id: "), "{home}");
        assert!(!home.contains("x-powered-by"), "{home}");

        let boom = exchange(address, &get("/boom")).await;
        assert!(boom.starts_with("http/1.1 500"), "{boom}");
        assert!(
            !boom.contains("main.rs"),
            "the stack trace is kept from the client: {boom}"
        );

        let post = "POST /login HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\nConnection: close\r\n";
        let login = exchange(address, &format!("{post}Sec-Fetch-Site: same-origin\r\n\r\n")).await;
        assert!(
            login.contains("set-cookie: id-2=abc123;"),
            "a default session name, renamed: {login}"
        );
        assert!(login.contains("httponly") && login.contains("samesite=lax"), "{login}");

        let forged = exchange(address, &format!("{post}Sec-Fetch-Site: cross-site\r\n\r\n")).await;
        assert!(forged.starts_with("http/1.1 403"), "{forged}");

        let kinds: Vec<&str> = events.0.lock().unwrap().iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&"safe_errors") && kinds.contains(&"csrf"), "{kinds:?}");
    }

    #[tokio::test]
    async fn each_client_address_from_connect_info_is_limited() {
        let (address, events) = start(2).await;
        for _ in 0..2 {
            assert!(exchange(address, &get("/")).await.starts_with("http/1.1 200"));
        }
        let refused = exchange(address, &get("/")).await;
        assert!(refused.starts_with("http/1.1 429"), "{refused}");
        let event = events.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(event.rule, "requests_per_client");
        assert_eq!(event.client_ip, Some("127.0.0.1".parse().unwrap()), "from ConnectInfo");
    }

    #[tokio::test]
    async fn served_without_connect_info_it_refuses_rather_than_pass() {
        let events = Arc::new(Recorded::default());
        let app = protected(handlers(), RateLimitConfig::default(), events.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // `into_make_service()`: no ConnectInfo, so no client address.
        tokio::spawn(async move { axum::serve(listener, app.into_make_service()).await });
        let answer = exchange(address, &get("/")).await;
        assert!(answer.starts_with("http/1.1 500"), "{answer}");
        assert_eq!(events.0.lock().unwrap()[0].rule, "missing_context");
    }
}
