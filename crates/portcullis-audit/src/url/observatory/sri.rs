//! The subresource integrity test: the page's scripts, where they come
//! from, over what, and whether they carry an `integrity`.

use url::Url;

use super::cookies::only_if_worse;
use super::retrieve::is_html;
use super::{Expectation, Retrieval};
use crate::url::html;

/// Best first: a result replaces the current one only when it is later.
const ORDER: [Expectation; 6] = [
    Expectation::SriImplementedAndAllScriptsLoadedSecurely,
    Expectation::SriImplementedAndExternalScriptsLoadedSecurely,
    Expectation::SriImplementedButExternalScriptsNotLoadedSecurely,
    Expectation::SriNotImplementedButExternalScriptsLoadedSecurely,
    Expectation::SriNotImplementedAndExternalScriptsNotLoadedSecurely,
    Expectation::SriNotImplementedResponseNotHtml,
];

/// The registrable domain of a host, as tldts gives it (none for an IP).
fn site(host: &str) -> Option<String> {
    let host = host.trim_matches(['[', ']']);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    psl::domain_str(host).map(str::to_owned)
}

/// A script's `src` as the DOM reflects it in a document at about:blank:
/// an absolute URL normalised, anything else as written.
fn reflected_src(value: &str) -> String {
    Url::parse(value).map_or_else(|_| value.to_owned(), String::from)
}

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let auto = retrieval.auto();
    let result = match auto.page() {
        None => return (SriNotImplementedButNoScriptsLoaded, false),
        Some(page) if !is_html(page) => SriNotImplementedResponseNotHtml,
        Some(page) => scripts(&html::start_tags(&page.body), retrieval),
    };
    let pass = matches!(
        result,
        SriImplementedAndAllScriptsLoadedSecurely
            | SriImplementedAndExternalScriptsLoadedSecurely
            | SriNotImplementedResponseNotHtml
            | SriNotImplementedButAllScriptsLoadedFromSecureOrigin
            | SriNotImplementedButNoScriptsLoaded
    );
    (result, pass)
}

fn scripts(tags: &[html::StartTag], retrieval: &Retrieval) -> Expectation {
    use Expectation::*;
    let page_site = site(&retrieval.hostname);
    let page_is_https = retrieval.auto().start.scheme() == "https";
    let scripts: Vec<&html::StartTag> = tags.iter().filter(|t| &t.name[..] == b"script").collect();
    let mut result = None;
    let mut foreign = false;
    for script in &scripts {
        let src = reflected_src(&html::attribute(script, "src").unwrap_or_default());
        if src.is_empty() {
            continue;
        }
        let integrity = html::attribute(script, "integrity").is_some_and(|i| !i.is_empty());
        let protocol_relative = src
            .strip_prefix("//")
            .is_some_and(|rest| rest.chars().next().is_some_and(|c| c != '/'));
        let full_url = src.starts_with("http://") || src.starts_with("https://");
        let relative = !protocol_relative && !full_url;
        let same_site = protocol_relative
            || relative
            || site(
                Url::parse(&src)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .as_deref()
                    .unwrap_or_default(),
            ) == page_site;
        let secure_origin = relative || (same_site && !protocol_relative);
        let secure_scheme = src.starts_with("https://") || (relative && page_is_https);
        if secure_origin {
            // A bonus even for SRI on the site's own scripts.
            if integrity && secure_scheme && result.is_none() {
                result = Some(SriImplementedAndAllScriptsLoadedSecurely);
            }
            continue;
        }
        foreign = true;
        let found = match (integrity, secure_scheme) {
            (true, false) => SriImplementedButExternalScriptsNotLoadedSecurely,
            (false, true) => SriNotImplementedButExternalScriptsLoadedSecurely,
            (false, false) => SriNotImplementedAndExternalScriptsNotLoadedSecurely,
            (true, true) => continue,
        };
        result = only_if_worse(found, result, &ORDER);
    }
    if scripts.is_empty() {
        return SriNotImplementedButNoScriptsLoaded;
    }
    result.unwrap_or(if foreign {
        SriImplementedAndExternalScriptsLoadedSecurely
    } else {
        SriNotImplementedButAllScriptsLoadedFromSecureOrigin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_sources_are_normalised() {
        assert_eq!(
            reflected_src("HTTPS://CDN.Example.com/a b.js"),
            "https://cdn.example.com/a%20b.js"
        );
        assert_eq!(reflected_src("//cdn.example.com/x.js"), "//cdn.example.com/x.js");
        assert_eq!(reflected_src("/app.js"), "/app.js");
    }

    #[test]
    fn sites_are_registrable_domains() {
        assert_eq!(site("cdn.example.co.uk").as_deref(), Some("example.co.uk"));
        assert_eq!(site("127.0.0.1"), None);
        assert_eq!(site("[::1]"), None);
    }
}
