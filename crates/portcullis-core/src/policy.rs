//! The shape every layer shares: look at the request (and maybe answer it),
//! then look at the response on its way back.
//!
//! Each checklist module implements [`Policy`]; [`PolicyLayer`] turns it into
//! a tower layer, so the plumbing exists once and modules hold only policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::Either;
use futures_util::{FutureExt, TryFutureExt};
use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::Body;

pub trait Policy: Send + Sync + 'static {
    /// What the request hook hands to the response hook.
    type State: Send + 'static;

    /// Inspects or rewrites the request, and decides whether it goes on.
    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Self::State>;

    /// Inspects or rewrites the response the inner service produced. The
    /// future owns its policy, so it can outlive the request's borrow.
    fn on_response(
        self: Arc<Self>,
        state: Self::State,
        response: Response<Body>,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// What a policy decided about a request.
pub enum Verdict<S> {
    /// Pass it to the inner service; `S` goes to the response hook.
    Forward(S),
    /// Answer the client with this response at once; the inner service never
    /// sees the request.
    Answer(Response<Body>),
    /// Decide asynchronously: after asking a shared store, or after a look at
    /// a bounded prefix of the body (see [`crate::body::read_prefix`]). The
    /// policy has taken the body out of the request; the decision gives it
    /// back, unchanged.
    Later(Decision<S>),
}

/// What [`Verdict::Later`] resolves to: the body to forward, and either the
/// state for the response hook or the answer to send instead.
pub type Decision<S> = Pin<Box<dyn Future<Output = (Body, Result<S, Response<Body>>)> + Send>>;

#[derive(Debug)]
pub struct PolicyLayer<P> {
    policy: Arc<P>,
}

impl<P> PolicyLayer<P> {
    pub fn new(policy: P) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

/// A layer sharing a policy that is already shared: compiled once, used by
/// every event loop's stack.
impl<P> From<Arc<P>> for PolicyLayer<P> {
    fn from(policy: Arc<P>) -> Self {
        Self { policy }
    }
}

impl<P> Clone for PolicyLayer<P> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
        }
    }
}

impl<P, S> Layer<S> for PolicyLayer<P> {
    type Service = PolicyService<P, S>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            policy: self.policy.clone(),
            inner,
        }
    }
}

#[derive(Debug)]
pub struct PolicyService<P, S> {
    policy: Arc<P>,
    inner: S,
}

impl<P, S: Clone> Clone for PolicyService<P, S> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<P, S> Service<Request<Body>> for PolicyService<P, S>
where
    P: Policy,
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.policy.on_request(&mut request) {
            Verdict::Answer(answer) => {
                let body = std::mem::replace(request.body_mut(), crate::body::empty());
                Box::pin(std::future::ready(Ok(early(answer, body, &request))))
            }
            Verdict::Forward(state) => {
                let response = self.inner.call(request);
                let policy = self.policy.clone();
                // Combinators rather than an async block: rustc cannot yet prove an
                // async block holding `S::Future` is `Send` for every lifetime.
                Box::pin(response.and_then(move |response| policy.on_response(state, response).map(Ok)))
            }
            Verdict::Later(decision) => {
                // The inner service was polled ready; keep that one for the
                // call after the decision and leave a clone in its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let policy = self.policy.clone();
                Box::pin(decision.then(move |(body, decision)| match decision {
                    Err(answer) => Either::Left(std::future::ready(Ok(early(answer, body, &request)))),
                    Ok(state) => {
                        *request.body_mut() = body;
                        let response = inner.call(request);
                        Either::Right(response.and_then(move |response| policy.on_response(state, response).map(Ok)))
                    }
                }))
            }
        }
    }
}

/// An answer given before the request went on, with what is left of the
/// request body attached for the server to discard ([`crate::body::Unread`]).
/// Not when the client asked to wait (`Expect: 100-continue`): it has sent no
/// body and, given a final answer instead of `100 Continue`, sends none.
fn early<B>(mut answer: Response<Body>, body: Body, request: &Request<B>) -> Response<Body> {
    let waits = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !waits {
        crate::body::Unread::attach(&mut answer, body);
    }
    answer
}
