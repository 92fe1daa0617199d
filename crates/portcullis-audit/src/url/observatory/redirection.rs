//! The redirection test: where the HTTP visit ends up, and how it gets
//! there.

use super::{Expectation, Retrieval};

pub fn test(retrieval: &Retrieval) -> (Expectation, bool) {
    use Expectation::*;
    let http = &retrieval.http;
    let route = http.route();
    let result = if http.page().is_none() {
        RedirectionNotNeededNoHttp
    } else if !http.verified {
        RedirectionInvalidCert
    } else if route.len() == 1 {
        RedirectionMissing
    } else if route.last().is_some_and(|u| u.scheme() != "https") {
        RedirectionNotToHttps
    } else if route[1].scheme() == "http" {
        RedirectionNotToHttpsOnInitialRedirection
    } else if route[0].scheme() == "http" && route[1].scheme() == "https" && route[0].host_str() != route[1].host_str()
    {
        RedirectionOffHostFromHttp
    } else {
        RedirectionToHttps
    };
    (
        result,
        matches!(result, RedirectionNotNeededNoHttp | RedirectionToHttps),
    )
}
