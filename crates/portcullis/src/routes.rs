//! `[[route]]` matching: which policy stack serves a request.
//!
//! Matching runs on a normalised path so that a stricter route cannot be
//! dodged with a spelling the app would still serve: Express decodes
//! percent-escapes, ignores case and treats `//` and `/./` like `/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::future::{BoxFuture, Either};
use http::{Method, Request, Response};
use portcullis_core::body::Body;
use portcullis_core::path::{normalize, PathPattern};
use tower::util::{BoxCloneSyncService, Oneshot};
use tower::{Service, ServiceExt};

pub type Stack = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A stack's answer to one request (see [`call_ready`]).
pub type Answer = Either<BoxFuture<'static, Result<Response<Body>, Infallible>>, Oneshot<Stack, Request<Body>>>;

/// Calls `stack` in place when it is ready at once, as every layer here
/// is, so that a request costs no clone of the stack (a box and a
/// reference count per layer); through a clone that waits for it otherwise.
pub fn call_ready(stack: &mut Stack, request: Request<Body>) -> Answer {
    match stack.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => Either::Left(stack.call(request)),
        Poll::Pending => Either::Right(stack.clone().oneshot(request)),
    }
}

/// One route's match conditions and its stack.
pub struct RouteStack {
    pub path: PathPattern,
    pub methods: Option<Vec<Method>>,
    pub stack: Stack,
}

/// What a route matches.
struct Conditions {
    path: PathPattern,
    methods: Option<Vec<Method>>,
}

/// Sends each request to the first route that matches, or the default stack.
/// Cloned with the stack it is part of: the conditions are shared, each
/// clone owns its stacks so that it can call them in place.
#[derive(Clone)]
pub struct Router {
    conditions: Arc<[Conditions]>,
    /// One per condition, in the same order.
    stacks: Vec<Stack>,
    fallback: Stack,
}

impl Router {
    pub fn new(routes: Vec<RouteStack>, fallback: Stack) -> Self {
        let (conditions, stacks) = routes
            .into_iter()
            .map(|RouteStack { path, methods, stack }| (Conditions { path, methods }, stack))
            .unzip::<_, _, Vec<_>, _>();
        Self {
            conditions: conditions.into(),
            stacks,
            fallback,
        }
    }

    fn pick(&mut self, method: &Method, path: &str) -> &mut Stack {
        if self.conditions.is_empty() {
            return &mut self.fallback;
        }
        let path = normalize(path);
        let matched = self
            .conditions
            .iter()
            .position(|route| route_matches(&route.path, route.methods.as_deref(), method, &path));
        match matched.and_then(|index| self.stacks.get_mut(index)) {
            Some(stack) => stack,
            None => &mut self.fallback,
        }
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
    type Future = Answer;

    /// Ready at once: each route's stack is checked as it is called.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let stack = self.pick(request.method(), request.uri().path());
        call_ready(stack, request)
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
