//! The cookies test, over the cookie jar the Observatory's client keeps
//! (tough-cookie's rules: the last cookie of a name, domain and path wins;
//! a Domain the host is not in, a public suffix as Domain, and a
//! `__Secure-` or `__Host-` cookie without its conditions are dropped).

use url::Url;

use super::{hsts, js_trim, Expectation, Retrieval};

/// A cookie as the jar keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JarCookie {
    pub name: String,
    domain: String,
    path: String,
    host_only: bool,
    pub secure: bool,
    pub http_only: bool,
    /// `strict`, `lax` or `none`; `None` when absent or not one of them.
    pub same_site: Option<&'static str>,
}

/// The jar after every `Set-Cookie` of the HTTPS (else HTTP) visit.
pub fn jar(retrieval: &Retrieval) -> Vec<JarCookie> {
    let mut jar: Vec<JarCookie> = Vec::new();
    for answer in &retrieval.auto().chain {
        let Ok(url) = Url::parse(&answer.url) else {
            continue;
        };
        for line in answer.headers.get_all("set-cookie") {
            let Some(cookie) = parse(&String::from_utf8_lossy(line.as_bytes()), &url) else {
                continue;
            };
            match jar
                .iter_mut()
                .find(|c| (&c.name, &c.domain, &c.path) == (&cookie.name, &cookie.domain, &cookie.path))
            {
                Some(existing) => *existing = cookie,
                None => jar.push(cookie),
            }
        }
    }
    jar
}

fn parse(line: &str, url: &Url) -> Option<JarCookie> {
    let line = js_trim(line);
    let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
    let pair = pair.split(['\n', '\r', '\0']).next().unwrap_or_default();
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (js_trim(name), js_trim(value));
    if name.is_empty() || name.chars().chain(value.chars()).any(|c| c < ' ') {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let mut cookie = JarCookie {
        name: name.to_owned(),
        domain: host.clone(),
        path: String::new(),
        host_only: true,
        secure: false,
        http_only: false,
        same_site: None,
    };
    let mut domain = None;
    for attribute in attributes.split(';').map(js_trim).filter(|a| !a.is_empty()) {
        let (key, value) = match attribute.split_once('=') {
            Some((key, value)) => (key, Some(js_trim(value))),
            None => (attribute, None),
        };
        match js_trim(key).to_ascii_lowercase().as_str() {
            "domain" => {
                if let Some(d) = value
                    .map(|v| v.strip_prefix('.').unwrap_or(v))
                    .filter(|d| !d.is_empty())
                {
                    domain = Some(d.to_ascii_lowercase());
                }
            }
            "path" => {
                cookie.path = value.filter(|v| v.starts_with('/')).unwrap_or_default().to_owned();
            }
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                cookie.same_site = match value.map(str::to_ascii_lowercase).as_deref() {
                    Some("strict") => Some("strict"),
                    Some("lax") => Some("lax"),
                    Some("none") => Some("none"),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    if let Some(domain) = domain {
        if is_public_suffix(&domain) || !domain_match(&host, &domain) {
            return None;
        }
        cookie.domain = domain;
        cookie.host_only = false;
    }
    if cookie.path.is_empty() {
        cookie.path = default_path(url.path());
    }
    let prefix_broken = (cookie.name.starts_with("__Secure-") && !cookie.secure)
        || (cookie.name.starts_with("__Host-") && !(cookie.secure && cookie.host_only && cookie.path == "/"));
    (!prefix_broken).then_some(cookie)
}

/// A Domain no site may set cookies for: a public suffix (`com`,
/// `github.io`) or an IPv4 address; the special-use names (`localhost`,
/// `*.test`, ...) are allowed, as tough-cookie allows them by default.
fn is_public_suffix(domain: &str) -> bool {
    const SPECIAL_USE: [&str; 5] = ["local", "example", "invalid", "localhost", "test"];
    if domain.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().is_ok() {
        return false;
    }
    let labels = domain.split('.').count();
    let top = domain.rsplit('.').next().unwrap_or_default();
    if SPECIAL_USE.contains(&top) && (labels > 1 || matches!(top, "localhost" | "invalid")) {
        return false;
    }
    domain.parse::<std::net::Ipv4Addr>().is_ok() || psl::domain_str(domain).is_none()
}

fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.parse::<std::net::IpAddr>().is_err()
            && host.ends_with(domain)
            && host[..host.len() - domain.len()].ends_with('.'))
}

/// RFC 6265's default path: the request path up to its last `/`.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(end) => path[..end].to_owned(),
    }
}

/// A `SameSite` attribute with no value or an unknown one, in the raw
/// header (the jar would just drop it).
fn invalid_same_site(line: &str) -> bool {
    line.split(';').any(|part| {
        let mut pieces = js_trim(part).split('=');
        let key = pieces.next().unwrap_or_default();
        if !js_trim(key).eq_ignore_ascii_case("samesite") {
            return false;
        }
        match pieces.next() {
            None | Some("") => true,
            Some(value) => !["lax", "strict", "none"].contains(&js_trim(value).to_lowercase().as_str()),
        }
    })
}

/// Worst last: a result replaces the current one only when it is worse.
const ORDER: [Expectation; 7] = [
    Expectation::CookiesWithoutSecureFlagButProtectedByHsts,
    Expectation::CookiesWithoutSecureFlag,
    Expectation::CookiesSessionWithoutSecureFlagButProtectedByHsts,
    Expectation::CookiesSamesiteFlagInvalid,
    Expectation::CookiesAnticsrfWithoutSamesiteFlag,
    Expectation::CookiesSessionWithoutHttponlyFlag,
    Expectation::CookiesSessionWithoutSecureFlag,
];

pub fn only_if_worse(new: Expectation, old: Option<Expectation>, order: &[Expectation]) -> Option<Expectation> {
    let rank = |e: Expectation| order.iter().position(|o| *o == e).map_or(-1, |i| i as i64);
    match old {
        Some(old) if rank(new) <= rank(old) => Some(old),
        _ => Some(new),
    }
}

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let hsts = hsts::test(retrieval).1;
    let mut result = None;
    let worse = |new: Expectation, result: &mut Option<Expectation>| *result = only_if_worse(new, *result, &ORDER);
    if let Some(page) = retrieval.auto().page() {
        for line in page.headers.get_all("set-cookie") {
            if invalid_same_site(&String::from_utf8_lossy(line.as_bytes())) {
                worse(CookiesSamesiteFlagInvalid, &mut result);
            }
        }
    }
    let cookies = jar(retrieval);
    if cookies.is_empty() {
        result = Some(CookiesNotFound);
    }
    let mut missing_same_site = false;
    for cookie in &cookies {
        let name = cookie.name.to_lowercase();
        let session = name.contains("login") || name.contains("sess");
        let anti_csrf = name.contains("csrf");
        if !cookie.secure && cookie.same_site == Some("none") {
            worse(CookiesSamesiteFlagInvalid, &mut result);
        }
        if !cookie.secure {
            worse(
                if hsts {
                    CookiesWithoutSecureFlagButProtectedByHsts
                } else {
                    CookiesWithoutSecureFlag
                },
                &mut result,
            );
        }
        if anti_csrf && cookie.same_site.is_none() {
            worse(CookiesAnticsrfWithoutSamesiteFlag, &mut result);
        }
        if session && !cookie.secure {
            worse(
                if hsts {
                    CookiesSessionWithoutSecureFlagButProtectedByHsts
                } else {
                    CookiesSessionWithoutSecureFlag
                },
                &mut result,
            );
        }
        if session && !cookie.http_only {
            worse(CookiesSessionWithoutHttponlyFlag, &mut result);
        }
        missing_same_site |= cookie.same_site.is_none();
    }
    let result = result.unwrap_or(if missing_same_site {
        CookiesSecureWithHttponlySessions
    } else {
        CookiesSecureWithHttponlySessionsAndSamesite
    });
    let pass = matches!(
        result,
        CookiesNotFound | CookiesSecureWithHttponlySessionsAndSamesite | CookiesSecureWithHttponlySessions
    );
    (result, pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    #[test]
    fn attributes_are_read_as_tough_cookie_reads_them() {
        let cookie = parse(
            "sid=1; Path=/app; SECURE; HttpOnly; SameSite=LAX",
            &url("https://shop.example.com/x"),
        )
        .unwrap();
        assert_eq!(
            (cookie.secure, cookie.http_only, cookie.same_site),
            (true, true, Some("lax"))
        );
        assert_eq!(cookie.path, "/app");
        let cookie = parse("a=b; SameSite=sometimes", &url("https://shop.example.com/app/page")).unwrap();
        assert_eq!((cookie.same_site, cookie.path.as_str()), (None, "/app"));
    }

    #[test]
    fn cookies_the_jar_refuses_are_dropped() {
        let page = url("https://shop.example.com/");
        assert!(parse("novalue", &page).is_none());
        assert!(parse("=x", &page).is_none());
        assert!(parse("a=b; Domain=other.com", &page).is_none());
        assert!(parse("a=b; Domain=com", &page).is_none());
        assert!(parse("__Secure-a=b", &page).is_none());
        assert!(parse("__Host-a=b; Secure; Path=/; Domain=example.com", &page).is_none());
        assert!(parse("__Host-a=b; Secure; Path=/", &page).is_some());
        assert!(parse("a=b; Domain=.example.com", &page).is_some());
        assert!(parse("a=b; Domain=127.0.0.1", &url("http://127.0.0.1/")).is_none());
        assert!(parse("a=b; Domain=localhost", &url("http://localhost/")).is_some());
    }

    #[test]
    fn a_same_site_without_a_known_value_is_invalid() {
        assert!(invalid_same_site("a=b; SameSite"));
        assert!(invalid_same_site("a=b; samesite=Sometimes"));
        assert!(!invalid_same_site("a=b; SameSite=Strict"));
        assert!(!invalid_same_site("a=b; Secure"));
    }

    #[test]
    fn only_a_worse_result_replaces_the_current_one() {
        use Expectation::*;
        let current = Some(CookiesSessionWithoutHttponlyFlag);
        assert_eq!(only_if_worse(CookiesWithoutSecureFlag, current, &ORDER), current);
        assert_eq!(
            only_if_worse(CookiesSessionWithoutSecureFlag, current, &ORDER),
            Some(CookiesSessionWithoutSecureFlag)
        );
        assert_eq!(
            only_if_worse(CookiesWithoutSecureFlag, None, &ORDER),
            Some(CookiesWithoutSecureFlag)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_set_cookie_line_parses_or_is_dropped_without_panicking(line in "[ -~\u{0}\t\u{a0}é]{0,120}") {
            let _ = parse(&line, &url("https://shop.example.com/a/b"));
            let _ = invalid_same_site(&line);
        }
    }
}
