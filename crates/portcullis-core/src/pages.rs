//! Neutral pages: what a client sees when a layer refuses or replaces a response.
//!
//! They say only the status and the request id, never anything taken from the
//! request, so they cannot reflect input back to a browser.

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{full, Body};
use crate::context::RequestContext;

/// An answer generated here that no cache may keep: `status`, with `body`
/// as `content_type`.
pub fn uncached(status: StatusCode, content_type: &'static str, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Marks a response as generated here, so later layers never "fix" it again.
#[derive(Debug, Clone, Copy)]
pub struct NeutralPage;

/// Placeholder a custom page may contain; replaced by the request id.
pub const REQUEST_ID_PLACEHOLDER: &str = "{{request_id}}";

/// Renders neutral pages; operators may replace the HTML of any status with a file.
#[derive(Debug, Clone, Default)]
pub struct NeutralPages {
    custom_html: Arc<HashMap<u16, String>>,
}

impl NeutralPages {
    pub fn with_custom_html(custom_html: HashMap<u16, String>) -> Self {
        Self {
            custom_html: Arc::new(custom_html),
        }
    }

    /// The page for `status`; JSON if the client prefers it, HTML otherwise.
    pub fn render(&self, status: StatusCode, context: Option<&RequestContext>) -> Response<Body> {
        let request_id = context.map_or("", RequestContext::request_id_str);
        let wants_json = context.is_some_and(|c| c.wants_json);
        let reason = status.canonical_reason().unwrap_or("Error");
        let (content_type, text) = if wants_json {
            let json = serde_json::json!({ "error": reason, "status": status.as_u16(), "request_id": request_id });
            ("application/json", json.to_string())
        } else if let Some(custom) = self.custom_html.get(&status.as_u16()) {
            (
                "text/html; charset=utf-8",
                custom.replace(REQUEST_ID_PLACEHOLDER, request_id),
            )
        } else {
            (
                "text/html; charset=utf-8",
                default_html(status.as_u16(), reason, request_id),
            )
        };
        let mut response = uncached(status, content_type, text);
        response.extensions_mut().insert(NeutralPage);
        response
    }
}

fn default_html(code: u16, reason: &str, request_id: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {reason}</title></head>\n\
         <body><h1>{code} {reason}</h1><p>Request id: <code>{request_id}</code></p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn html_page_names_status_and_nothing_else() {
        let page = NeutralPages::default().render(StatusCode::NOT_FOUND, None);
        assert_eq!(page.status(), 404);
        assert!(page.extensions().get::<NeutralPage>().is_some());
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
        let body = text(page).await;
        assert!(body.contains("404 Not Found"));
    }

    #[tokio::test]
    async fn custom_html_gets_the_request_id() {
        let pages = NeutralPages::with_custom_html(HashMap::from([(502, "<p>down {{request_id}}</p>".to_owned())]));
        let context = crate::context::testing::context_from("192.0.2.9");
        let body = text(pages.render(StatusCode::BAD_GATEWAY, Some(&context))).await;
        assert_eq!(body, "<p>down test-id</p>");
        let body = text(pages.render(StatusCode::BAD_GATEWAY, None)).await;
        assert_eq!(body, "<p>down </p>", "no id to give: the placeholder goes");
    }
}
