//! The portal's HTML: small, accessible forms that work without JavaScript,
//! under a strict Content-Security-Policy (no script at all; the one style
//! element carries a nonce), with no resource from elsewhere.

use http::{header, HeaderValue, Response, StatusCode};
use portcullis_core::body::Body;
use portcullis_core::pages::uncached;

/// What every page needs from its request.
pub struct Frame<'a> {
    /// The portal's prefix, for form actions.
    pub prefix: &'a str,
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    /// Where to go after login (validated), carried through the forms.
    pub next: &'a str,
}

pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str =
    "body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}label{display:block;margin-top:1rem}input{display:block;width:100%;box-sizing:border-box;\
padding:.5rem;font:inherit}button{margin-top:1.25rem;padding:.5rem 1.25rem;font:inherit}\
.error{color:#a00;font-weight:600}svg{display:block;margin:1rem 0;width:14rem;height:14rem}code{word-break:break-all}";

/// A whole page with its status and headers.
pub fn page(status: StatusCode, title: &str, content: &str) -> Response<Body> {
    let nonce = portcullis_core::session::random_hex::<16>().unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\n<body><main>\n<h1>{title}</h1>\n{content}</main></body></html>\n",
        title = escape(title),
    );
    let policy = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = uncached(status, "text/html; charset=utf-8", html);
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

fn hidden(frame: &Frame) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"rd\" value=\"{}\">",
        escape(frame.csrf),
        escape(frame.next)
    )
}

fn error_line(error: Option<&str>) -> String {
    error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e))
    })
}

pub fn login(frame: &Frame, error: Option<&str>) -> String {
    format!(
        "{}<form method=\"post\" action=\"{}login\">{}\
         <label for=\"username\">User name</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Log in</button></form>\n",
        error_line(error),
        escape(frame.prefix),
        hidden(frame)
    )
}

fn code_field() -> &'static str {
    "<label for=\"code\">Six-digit code from your authenticator app</label>\
     <input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus>"
}

pub fn totp(frame: &Frame, error: Option<&str>) -> String {
    format!(
        "{}<form method=\"post\" action=\"{}totp\">{}{}<button type=\"submit\">Verify</button></form>\n",
        error_line(error),
        escape(frame.prefix),
        hidden(frame),
        code_field()
    )
}

pub fn enrol(frame: &Frame, qr_svg: &str, secret: &str, error: Option<&str>) -> String {
    format!(
        "{}<p>This account needs a second factor. Scan the code with an authenticator app, \
         or type the key in it, then enter the code it shows.</p>\n{qr_svg}\n<p>Key: <code>{}</code></p>\
         <form method=\"post\" action=\"{}enrol\">{}{}<button type=\"submit\">Turn on</button></form>\n",
        error_line(error),
        escape(secret),
        escape(frame.prefix),
        hidden(frame),
        code_field()
    )
}

pub fn logout(frame: &Frame, user: &str) -> String {
    format!(
        "<p>Logged in as <strong>{}</strong>.</p><form method=\"post\" action=\"{}logout\">{}\
         <button type=\"submit\">Log out</button></form>\n",
        escape(user),
        escape(frame.prefix),
        hidden(frame)
    )
}

pub fn message(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}
