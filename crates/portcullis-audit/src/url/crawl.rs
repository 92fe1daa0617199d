//! The crawl: same-origin links from the home page on, breadth first, GET
//! only, bounded in pages (and, through the client, in requests and rate).
//! Every answer it gets is kept for the checks that read all of them.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use url::Url;

use super::{html, Answer, Client};

/// Visits up to `max_pages` pages reachable from `home`; how many it did.
pub async fn crawl(client: &Client, home: &Answer, max_pages: usize) -> usize {
    let mut seen: HashSet<String> = HashSet::from([client.base().join("/").map(String::from).unwrap_or_default()]);
    let mut queue: VecDeque<Url> = links(client.base(), &home.body).into();
    let mut pages = 1;
    while let Some(url) = queue.pop_front() {
        if pages >= max_pages {
            break;
        }
        if !seen.insert(url.to_string()) || !safe_to_follow(&url) {
            continue;
        }
        let Ok(answer) = client.get(url.as_str()).await else {
            break;
        };
        pages += 1;
        if is_html(&answer) {
            let base = Url::parse(&answer.url).unwrap_or_else(|_| client.base().clone());
            queue.extend(
                links(&base, &answer.body)
                    .into_iter()
                    .filter(|l| l.origin() == client.base().origin()),
            );
        }
    }
    pages
}

/// `href`s of links and `action`s of GET forms, resolved against `base`,
/// without their fragments.
pub fn links(base: &Url, html: &str) -> Vec<Url> {
    let mut found = Vec::new();
    for tag in html::start_tags(html) {
        let attribute = match &tag.name[..] {
            b"a" | b"area" => "href",
            b"form" if html::attribute(&tag, "method").is_none_or(|m| m.eq_ignore_ascii_case("get")) => "action",
            _ => continue,
        };
        let Some(value) = html::attribute(&tag, attribute) else {
            continue;
        };
        if let Ok(mut url) = base.join(&value) {
            url.set_fragment(None);
            if matches!(url.scheme(), "http" | "https") {
                found.push(url);
            }
        }
    }
    found
}

/// The `src` of every `<script>`, resolved against `base`.
pub fn scripts(base: &Url, html: &str) -> Vec<Url> {
    html::start_tags(html)
        .iter()
        .filter(|tag| &tag.name[..] == b"script")
        .filter_map(|tag| base.join(&html::attribute(tag, "src")?).ok())
        .collect()
}

/// GET should change nothing, but some apps log out on one.
fn safe_to_follow(url: &Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    !["logout", "log-out", "signout", "sign-out", "delete", "remove"]
        .iter()
        .any(|word| path.contains(word))
}

/// What `find` reads in every HTML page of `answers` that is on the
/// client's origin (by `url`), each once, in the order met.
pub fn on_pages<T>(
    client: &Client,
    answers: &[Arc<Answer>],
    find: fn(&Url, &str) -> Vec<T>,
    url: fn(&T) -> &Url,
) -> Vec<T> {
    let mut found: Vec<T> = Vec::new();
    for answer in answers.iter().filter(|a| is_html(a)) {
        let Ok(page) = Url::parse(&answer.url) else {
            continue;
        };
        for item in find(&page, &answer.body) {
            if url(&item).origin() == client.base().origin() && !found.iter().any(|f| url(f) == url(&item)) {
                found.push(item);
            }
        }
    }
    found
}

pub fn is_html(answer: &Answer) -> bool {
    answer
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_get_forms_are_followed() {
        let base = Url::parse("http://127.0.0.1:3000/shop/").unwrap();
        let html = r#"<a href="/a#top">a</a> <a href="b?x=1">b</a> <a href="mailto:x@y">m</a>
            <form action="/search"><input name=q></form> <form method="post" action="/login"></form>"#;
        let found: Vec<String> = links(&base, html).iter().map(Url::to_string).collect();
        assert_eq!(
            found,
            [
                "http://127.0.0.1:3000/a",
                "http://127.0.0.1:3000/shop/b?x=1",
                "http://127.0.0.1:3000/search",
            ]
        );
    }

    #[test]
    fn scripts_are_found_with_their_sources() {
        let base = Url::parse("http://127.0.0.1:3000/shop/").unwrap();
        let html = r#"<script src="/app.js"></script><script>inline("<script src=/no.js>")</script><script src="vendor/x.js"></script>"#;
        let found: Vec<String> = scripts(&base, html).iter().map(Url::to_string).collect();
        assert_eq!(
            found,
            ["http://127.0.0.1:3000/app.js", "http://127.0.0.1:3000/shop/vendor/x.js"]
        );
    }

    #[test]
    fn logging_out_is_not_followed() {
        assert!(!safe_to_follow(&Url::parse("http://x/account/logout").unwrap()));
        assert!(safe_to_follow(&Url::parse("http://x/account/settings").unwrap()));
    }
}
