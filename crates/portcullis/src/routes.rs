//! `[[route]]` matching: which policy stack serves a request.
//!
//! Matching runs on a normalised path so that a stricter route cannot be
//! dodged with a spelling the app would still serve: Express decodes
//! percent-escapes, ignores case and treats `//` and `/./` like `/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use portcullis_core::body::Body;
use portcullis_core::path::{normalize, PathPattern};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

pub type Stack = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// One route's match conditions and its stack.
pub struct RouteStack {
    pub path: PathPattern,
    pub methods: Option<Vec<Method>>,
    pub stack: Stack,
}

/// Sends each request to the first route that matches, or the default stack.
#[derive(Clone)]
pub struct Router {
    routes: Arc<[RouteStack]>,
    fallback: Stack,
}

impl Router {
    pub fn new(routes: Vec<RouteStack>, fallback: Stack) -> Self {
        Self {
            routes: routes.into(),
            fallback,
        }
    }

    fn pick(&self, method: &Method, path: &str) -> &Stack {
        if self.routes.is_empty() {
            return &self.fallback;
        }
        let path = normalize(path);
        self.routes
            .iter()
            .find(|route| route_matches(&route.path, route.methods.as_deref(), method, &path))
            .map_or(&self.fallback, |route| &route.stack)
    }
}

/// Whether a route with this `path` and `methods` (`None`: every method)
/// serves `method` on `normalized` (see [`normalize`]).
pub fn route_matches(path: &PathPattern, methods: Option<&[Method]>, method: &Method, normalized: &str) -> bool {
    methods.is_none_or(|m| m.contains(method)) && path.matches(normalized)
}

impl Service<Request<Body>> for Router {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<Stack, Request<Body>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.pick(request.method(), request.uri().path())
            .clone()
            .oneshot(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_defeats_the_usual_spellings() {
        for spelling in [
            "/admin",
            "/ADMIN",
            "/%61dmin",
            "//admin",
            "/./admin",
            "/x/../admin",
            "/admin/",
            "\\admin",
        ] {
            let normalized = normalize(spelling);
            assert!(
                PathPattern::parse("/admin").unwrap().matches(&normalized),
                "{spelling} -> {normalized}"
            );
        }
    }

    #[test]
    fn prefixes_respect_segment_boundaries() {
        let api = PathPattern::parse("/api").unwrap();
        assert!(api.matches("/api") && api.matches("/api/users"));
        assert!(!api.matches("/apiary"));
        let slash = PathPattern::parse("/api/").unwrap();
        assert!(slash.matches("/api/x") && !slash.matches("/apix"));
    }

    #[test]
    fn globs_match_whole_normalized_paths() {
        let pdf = PathPattern::parse("/files/*.PDF").unwrap();
        assert!(pdf.matches(&normalize("/files/Report.pdf")));
        assert!(!pdf.matches(&normalize("/files/report.txt")));
        assert!(PathPattern::parse("api").is_err());
        assert!(PathPattern::parse("/a/[z-").is_err());
    }
}
