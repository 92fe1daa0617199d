//! Safe errors (checklist C3, C4): no framework default pages, no stack traces.
//!
//! Error responses (4xx and 5xx) are inspected: a bounded prefix of the body
//! is read and matched against [`crate::leak`]. A framework's default 404 page
//! becomes a neutral 404; a body that leaks internals becomes a neutral page
//! with the same status, and the original (truncated) goes to the security log
//! with the request id. Designed error pages that leak nothing pass unchanged.

use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::{read_prefix, Body};
use crate::context::RequestContext;
use crate::events::Events;
use crate::leak::{find_leak, is_framework_404};
use crate::pages::{NeutralPage, NeutralPages};
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};

/// The `[errors]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorsConfig {
    /// Replace frameworks' default 404 pages (`Cannot GET /path`).
    pub replace_default_404: bool,
    /// Replace 4xx/5xx bodies with stack traces, paths, exceptions or SQL errors.
    pub replace_leaking_errors: bool,
    /// How much of an error body is inspected.
    pub inspect_bytes: usize,
    /// How much of a replaced body is kept in the security event.
    pub log_body_bytes: usize,
    /// HTML files replacing the built-in neutral pages, by status: `{ 404 = "pages/404.html" }`.
    pub pages: std::collections::BTreeMap<String, std::path::PathBuf>,
}

impl Default for ErrorsConfig {
    fn default() -> Self {
        Self {
            replace_default_404: true,
            replace_leaking_errors: true,
            inspect_bytes: 64 * 1024,
            log_body_bytes: 2048,
            pages: Default::default(),
        }
    }
}

pub struct SafeErrors {
    config: ErrorsConfig,
    pages: NeutralPages,
    events: Events,
}

pub type SafeErrorsLayer = PolicyLayer<SafeErrors>;

pub struct RequestFacts {
    context: Option<RequestContext>,
    head: bool,
}

impl SafeErrors {
    pub fn new(config: ErrorsConfig, pages: NeutralPages, events: Events) -> Self {
        Self { config, pages, events }
    }

    fn replace(&self, facts: &RequestFacts, status: StatusCode, rule: &'static str, original: &[u8]) -> Response<Body> {
        if let Some(context) = &facts.context {
            let mut event = context.event("safe_errors", rule, "replaced");
            let shown = &original[..original.len().min(self.config.log_body_bytes)];
            event.detail = Some(format!(
                "upstream status {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(shown)
            ));
            self.events.emit(event);
        }
        let mut page = self.pages.render(status, facts.context.as_ref());
        if facts.head {
            *page.body_mut() = crate::body::empty();
        }
        page
    }
}

impl Policy for SafeErrors {
    type State = RequestFacts;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<RequestFacts> {
        Verdict::Forward(RequestFacts {
            context: request.extensions().get::<RequestContext>().cloned(),
            head: request.method() == Method::HEAD,
        })
    }

    fn on_response(self: &Arc<Self>, facts: RequestFacts, response: Response<Body>) -> Responded {
        let status = response.status();
        let inspect_404 = status == StatusCode::NOT_FOUND && self.config.replace_default_404;
        let inspect = inspect_404 || (status.as_u16() >= 400 && self.config.replace_leaking_errors);
        if !inspect || response.extensions().get::<NeutralPage>().is_some() {
            return Responded::Now(response);
        }
        let encoded = response
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_some_and(|encoding| !encoding.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            // A compressed body cannot be read here. A server error is replaced
            // rather than trusted; anything else passes.
            return Responded::Now(if status.is_server_error() && self.config.replace_leaking_errors {
                self.replace(&facts, status, "uninspectable_5xx", b"(compressed body)")
            } else {
                response
            });
        }
        let errors = self.clone();
        Responded::later(async move { errors.read_error(facts, inspect_404, response).await })
    }
}

impl SafeErrors {
    /// Replaces an error page whose first bytes show a framework's default
    /// 404 or a leak (a stack trace, a query, a path on the server).
    async fn read_error(&self, facts: RequestFacts, inspect_404: bool, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        let (parts, body) = response.into_parts();
        let prefix = match read_prefix(body, self.config.inspect_bytes).await {
            Ok(prefix) => prefix,
            Err(_) => return self.replace(&facts, status, "broken_error_body", b""),
        };
        if inspect_404 && is_framework_404(&prefix.bytes) {
            return self.replace(&facts, status, "framework_404", &prefix.bytes);
        }
        if self.config.replace_leaking_errors {
            if let Some(rule) = find_leak(&prefix.bytes) {
                return self.replace(&facts, status, rule, &prefix.bytes);
            }
        }
        Response::from_parts(parts, prefix.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use crate::context::ContextData;
    use crate::events::testing::Recorder;
    use crate::policy::PolicyLayer;
    use http_body_util::BodyExt;
    use tower::{service_fn, Layer, ServiceExt};

    async fn through(status: u16, body: &'static str, extra: &[(&str, &str)]) -> (Response<Body>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let layer = PolicyLayer::new(SafeErrors::new(
            ErrorsConfig::default(),
            NeutralPages::default(),
            recorder.clone(),
        ));
        let mut upstream = Response::builder().status(status);
        for (name, value) in extra {
            upstream = upstream.header(*name, *value);
        }
        let upstream = upstream.body(()).unwrap().into_parts().0;
        let headers = upstream.headers.clone();
        let service = layer.layer(service_fn(move |_req: Request<Body>| {
            let mut response = Response::new(full(body));
            *response.status_mut() = upstream.status;
            *response.headers_mut() = headers.clone();
            async move { Ok::<_, std::convert::Infallible>(response) }
        }));
        let mut request = Request::new(crate::body::empty());
        request
            .extensions_mut()
            .insert(RequestContext::from(ContextData::for_tests()));
        (service.oneshot(request).await.unwrap(), recorder)
    }

    async fn text(response: Response<Body>) -> String {
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn stack_trace_is_replaced_and_logged() {
        let (response, events) = through(500, "TypeError: x\n    at fn (/srv/app/app.js:12:3)", &[]).await;
        assert_eq!(response.status(), 500);
        let body = text(response).await;
        assert!(body.contains("rid-1") && !body.contains("app.js"));
        let events = events.taken();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].rule, "stack_trace");
        assert!(events[0].detail.as_deref().unwrap().contains("/srv/app/app.js:12:3"));
    }

    #[tokio::test]
    async fn express_404_is_replaced_without_reflection() {
        let (response, events) = through(404, "<pre>Cannot GET /%3Cscript%3E</pre>", &[]).await;
        assert_eq!(response.status(), 404);
        assert!(!text(response).await.contains("script"));
        assert_eq!(events.taken()[0].rule, "framework_404");
    }

    #[tokio::test]
    async fn designed_pages_pass_unchanged() {
        let page = "<h1>We will be back soon</h1>";
        let (response, events) = through(503, page, &[("retry-after", "120")]).await;
        assert_eq!(response.headers()["retry-after"], "120");
        assert_eq!(text(response).await, page);
        assert!(events.taken().is_empty());
    }

    #[tokio::test]
    async fn compressed_server_errors_are_not_trusted() {
        let (response, events) = through(500, "\x1f\u{8b}...", &[("content-encoding", "gzip")]).await;
        assert!(response.extensions().get::<NeutralPage>().is_some());
        assert_eq!(events.taken()[0].rule, "uninspectable_5xx");
    }
}
