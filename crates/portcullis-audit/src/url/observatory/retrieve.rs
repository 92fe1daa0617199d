//! What the Observatory fetches before it tests anything: the page over
//! HTTP and over HTTPS, each following the site's redirects (at most ten),
//! with a second try that accepts any certificate when the first is refused
//! for its certificate; then a CORS preflight to where HTTPS (or, without
//! it, HTTP) ended.

use reqwest::Method;
use url::Url;

use super::super::{Answer, Client};
use super::{header, js_trim};
use crate::url::html;

const ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// The Origin the Observatory's preflight claims.
pub const CORS_ORIGIN: &str = "https://http-observatory.security.mozilla.org";
const MAX_REDIRECTS: usize = 10;

/// One scheme's visit: the redirect chain and how it was verified.
#[derive(Debug, Clone)]
pub struct Session {
    /// Where the visit started.
    pub start: Url,
    /// Every answer of the chain, the final one last; empty when the site
    /// could not be reached this way.
    pub chain: Vec<Answer>,
    /// Whether the certificates were verified (false after a refused one).
    pub verified: bool,
}

impl Session {
    pub fn page(&self) -> Option<&Answer> {
        self.chain.last()
    }

    /// The URLs of the chain, in order.
    pub fn route(&self) -> Vec<Url> {
        self.chain.iter().filter_map(|a| Url::parse(&a.url).ok()).collect()
    }
}

/// Everything the tests read.
#[derive(Debug, Clone)]
pub struct Retrieval {
    pub hostname: String,
    pub http: Session,
    pub https: Session,
    /// The preflight's final answer, when it was a 2xx.
    pub cors: Option<Answer>,
    /// `<meta http-equiv="Content-Security-Policy">` contents of the page.
    pub meta_csp: Vec<String>,
    /// `<meta name="referrer">`'s content, the last one.
    pub meta_referrer: Option<String>,
}

impl Retrieval {
    /// The visit the tests read: HTTPS when it answered at all, else HTTP.
    pub fn auto(&self) -> &Session {
        if self.https.chain.is_empty() {
            &self.http
        } else {
            &self.https
        }
    }
}

/// Fetches `target`'s page over both schemes: HTTP on `http_port`, HTTPS on
/// `https_port`, unless the target names its own port for its scheme.
pub async fn retrieve(client: &Client, target: &Url, http_port: u16, https_port: u16) -> Retrieval {
    let http = session(client, on_scheme(target, "http", http_port)).await;
    let https = session(client, on_scheme(target, "https", https_port)).await;
    let mut retrieval = Retrieval {
        hostname: target.host_str().unwrap_or_default().to_owned(),
        http,
        https,
        cors: None,
        meta_csp: Vec::new(),
        meta_referrer: None,
    };
    let auto = retrieval.auto();
    let last = auto.route().pop().unwrap_or_else(|| auto.start.clone());
    let verified = auto.verified;
    if let Some(page) = auto.page().filter(|p| is_html(p)).cloned() {
        read_meta(&mut retrieval, &page.body);
    }
    retrieval.cors = preflight(client, last, verified).await;
    retrieval
}

fn on_scheme(target: &Url, scheme: &str, default_port: u16) -> Url {
    let mut url = target.clone();
    url.set_fragment(None);
    if url.scheme() != scheme {
        // Both are special schemes, so neither call can fail.
        let _ = url.set_scheme(scheme);
        let _ = url.set_port(Some(default_port));
    }
    url
}

async fn session(client: &Client, start: Url) -> Session {
    for verify in [true, false] {
        match chain(client, &start, verify).await {
            Ok(chain) => {
                return Session {
                    start,
                    chain,
                    verified: verify,
                }
            }
            Err(refused_certificate) if refused_certificate && verify => continue,
            Err(_) => break,
        }
    }
    Session {
        start,
        chain: Vec::new(),
        verified: false,
    }
}

/// The answers from `start` through its redirects; `Err(true)` when a
/// certificate was refused on the way, `Err(false)` for other failures.
async fn chain(client: &Client, start: &Url, verify: bool) -> Result<Vec<Answer>, bool> {
    let mut answers = Vec::new();
    let mut url = start.clone();
    loop {
        let answer = client
            .fetch(Method::GET, url.clone(), &[("accept", ACCEPT)], verify)
            .await
            .map_err(|e| e.certificate)?;
        let next = redirect(&answer, &url).filter(|_| answers.len() < MAX_REDIRECTS);
        answers.push(answer);
        match next {
            Some(next) => url = next,
            None => return Ok(answers),
        }
    }
}

fn redirect(answer: &Answer, from: &Url) -> Option<Url> {
    if !matches!(answer.status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    from.join(&header(answer, "location")?).ok()
}

/// The preflight, following redirects as axios does; kept only when it
/// ends in a 2xx (axios throws on anything else, and the Observatory then
/// has no CORS answer).
async fn preflight(client: &Client, mut url: Url, verify: bool) -> Option<Answer> {
    let headers = [
        ("accept", ACCEPT),
        ("access-control-request-method", "GET"),
        ("origin", CORS_ORIGIN),
    ];
    for _ in 0..=MAX_REDIRECTS {
        let answer = client
            .fetch(Method::OPTIONS, url.clone(), &headers, verify)
            .await
            .ok()?;
        match redirect(&answer, &url) {
            Some(next) => url = next,
            None => return answer.status.is_success().then_some(answer),
        }
    }
    None
}

/// The Observatory's test for an HTML answer: the media type exactly as
/// sent, before any parameter.
pub fn is_html(answer: &Answer) -> bool {
    let content_type = header(answer, "content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default();
    matches!(media_type, "text/html" | "application/xhtml+xml")
}

fn read_meta(retrieval: &mut Retrieval, page: &str) {
    for tag in html::start_tags(page).iter().filter(|t| &t.name[..] == b"meta") {
        let equiv = html::attribute(tag, "http-equiv");
        let content = html::attribute(tag, "content");
        match (equiv, content) {
            (Some(equiv), Some(content)) => {
                if js_trim(&equiv).eq_ignore_ascii_case("content-security-policy") && !content.is_empty() {
                    retrieval.meta_csp.push(content);
                }
            }
            _ => {
                let referrer =
                    html::attribute(tag, "name").is_some_and(|n| js_trim(&n).eq_ignore_ascii_case("referrer"));
                if let Some(content) = html::attribute(tag, "content").filter(|c| referrer && !c.is_empty()) {
                    retrieval.meta_referrer = Some(content);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_scheme_gets_its_own_port() {
        let target = Url::parse("https://127.0.0.1:8443/shop?x=1#top").unwrap();
        assert_eq!(on_scheme(&target, "http", 80).as_str(), "http://127.0.0.1/shop?x=1");
        assert_eq!(
            on_scheme(&target, "http", 8080).as_str(),
            "http://127.0.0.1:8080/shop?x=1"
        );
        assert_eq!(
            on_scheme(&target, "https", 443).as_str(),
            "https://127.0.0.1:8443/shop?x=1"
        );
    }

    #[test]
    fn meta_policies_and_referrer_are_read() {
        let mut retrieval = Retrieval {
            hostname: "x".into(),
            http: Session {
                start: Url::parse("http://x/").unwrap(),
                chain: Vec::new(),
                verified: true,
            },
            https: Session {
                start: Url::parse("https://x/").unwrap(),
                chain: Vec::new(),
                verified: true,
            },
            cors: None,
            meta_csp: Vec::new(),
            meta_referrer: None,
        };
        read_meta(
            &mut retrieval,
            r#"<meta http-equiv=" Content-Security-Policy" content="default-src 'self'">
               <meta name=referrer content=origin><meta name="Referrer" content="no-referrer">
               <meta http-equiv="refresh" name="referrer" content="5">"#,
        );
        assert_eq!(retrieval.meta_csp, ["default-src 'self'"]);
        // With both http-equiv and content, a meta is never read as a referrer.
        assert_eq!(retrieval.meta_referrer.as_deref(), Some("no-referrer"));
    }
}
