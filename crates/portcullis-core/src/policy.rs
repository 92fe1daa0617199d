//! The shape every layer shares: look at the request (and maybe answer it),
//! then look at the response on its way back.
//!
//! Each checklist module implements [`Policy`]; [`PolicyLayer`] turns it into
//! a tower layer, so the plumbing exists once and modules hold only policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::body::Body;

pub trait Policy: Send + Sync + 'static {
    /// What the request hook hands to the response hook.
    type State: Send + 'static;

    /// Inspects or rewrites the request, and decides whether it goes on.
    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Self::State>;

    /// Inspects or rewrites the response the inner service produced; at
    /// once, or after a wait the policy owns (so it can outlive the
    /// request's borrow). By default, the response as it is.
    fn on_response(self: &Arc<Self>, state: Self::State, response: Response<Body>) -> Responded {
        let _ = state;
        Responded::Now(response)
    }
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

/// What a policy's response hook gives back. Most responses are decided at
/// once; only those that need a look at the body or a word with the store
/// wait, and only they pay for a future of their own.
pub enum Responded {
    Now(Response<Body>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Responded {
    pub fn later(response: impl Future<Output = Response<Body>> + Send + 'static) -> Self {
        Self::Later(Box::pin(response))
    }
}

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
    S: Service<Request<Body>, Response = Response<Body>> + Clone,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = PolicyFuture<P, S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.policy.on_request(&mut request) {
            Verdict::Answer(answer) => {
                let body = std::mem::replace(request.body_mut(), crate::body::empty());
                PolicyFuture::Answered {
                    answer: Some(early(answer, body, &request)),
                }
            }
            Verdict::Forward(state) => PolicyFuture::Inner {
                response: self.inner.call(request),
                after: Some((self.policy.clone(), state)),
            },
            Verdict::Later(decision) => {
                // The inner service was polled ready; keep that one for the
                // call after the decision and leave a clone in its place.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                PolicyFuture::Deciding {
                    decision,
                    waiting: Some((request, inner, self.policy.clone())),
                }
            }
        }
    }
}

pin_project! {
    /// One layer's part of a request: its decision, the inner service's
    /// response, then its response hook. A plain value nested in the outer
    /// layer's, so a request through the whole stack allocates nothing for
    /// the layers that decide at once.
    #[project = Step]
    pub enum PolicyFuture<P: Policy, S: Service<Request<Body>>> {
        Answered { answer: Option<Response<Body>> },
        Deciding {
            decision: Decision<P::State>,
            waiting: Option<(Request<Body>, S, Arc<P>)>,
        },
        Inner {
            #[pin]
            response: S::Future,
            after: Option<(Arc<P>, P::State)>,
        },
        Responding { response: Pin<Box<dyn Future<Output = Response<Body>> + Send>> },
    }
}

impl<P, S> Future for PolicyFuture<P, S>
where
    P: Policy,
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Output = Result<Response<Body>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Each step's values are taken exactly once, as it ends; a future is
        // not polled again after it returned `Ready`.
        const SPENT: &str = "PolicyFuture polled after it completed";
        loop {
            let next = match self.as_mut().project() {
                Step::Answered { answer } => return Poll::Ready(Ok(answer.take().expect(SPENT))),
                Step::Deciding { decision, waiting } => {
                    let (body, decision) = ready!(decision.as_mut().poll(cx));
                    let (mut request, mut inner, policy) = waiting.take().expect(SPENT);
                    match decision {
                        Err(answer) => PolicyFuture::Answered {
                            answer: Some(early(answer, body, &request)),
                        },
                        Ok(state) => {
                            *request.body_mut() = body;
                            PolicyFuture::Inner {
                                response: inner.call(request),
                                after: Some((policy, state)),
                            }
                        }
                    }
                }
                Step::Inner { response, after } => {
                    let response = ready!(response.poll(cx))?;
                    let (policy, state) = after.take().expect(SPENT);
                    match policy.on_response(state, response) {
                        Responded::Now(response) => return Poll::Ready(Ok(response)),
                        Responded::Later(response) => PolicyFuture::Responding { response },
                    }
                }
                Step::Responding { response } => return response.as_mut().poll(cx).map(Ok),
            };
            self.set(next);
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
