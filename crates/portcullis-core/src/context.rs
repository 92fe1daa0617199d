//! What every layer needs to know about a request, worked out once at the edge.

use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response};

use crate::body::Body;
use crate::client_ip::{canonical, ip_text, TrustedProxies, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::events::{Events, SecurityEvent};
use crate::pages::NeutralPages;
use crate::policy::{Policy, PolicyLayer, Responded, Verdict};
use crate::request_id;

/// Set by whoever accepted the connection, before the stack runs.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    /// The connection to us was TLS.
    pub tls: bool,
    /// The peer's address as header text, formatted once per connection
    /// rather than for every header and log line of every request.
    pub peer_text: HeaderValue,
    /// What the server holds for the connection (its place within the
    /// connection limits): whatever outlives the connection in its name,
    /// an upgraded tunnel, keeps a clone.
    pub hold: Option<ConnectionHold>,
}

impl ConnectionInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        Self {
            peer,
            tls,
            peer_text: ip_text(canonical(peer.ip())),
            hold: None,
        }
    }

    pub fn holding(self, hold: ConnectionHold) -> Self {
        Self {
            hold: Some(hold),
            ..self
        }
    }
}

/// Released once the connection and everything keeping a clone are gone.
#[derive(Clone)]
pub struct ConnectionHold {
    _held: Arc<dyn std::any::Any + Send + Sync>,
}

impl ConnectionHold {
    pub fn new(held: impl std::any::Any + Send + Sync) -> Self {
        Self { _held: Arc::new(held) }
    }
}

impl std::fmt::Debug for ConnectionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionHold")
    }
}

/// The facts about a request that layers share. Cheap to clone (one shared
/// allocation): several layers keep it for their response hooks.
#[derive(Debug, Clone)]
pub struct RequestContext(Arc<ContextData>);

impl std::ops::Deref for RequestContext {
    type Target = ContextData;

    fn deref(&self) -> &ContextData {
        &self.0
    }
}

impl From<ContextData> for RequestContext {
    fn from(data: ContextData) -> Self {
        Self(Arc::new(data))
    }
}

#[derive(Debug)]
pub struct ContextData {
    pub request_id: HeaderValue,
    pub client_ip: IpAddr,
    pub peer: SocketAddr,
    /// `peer`'s address as header text.
    pub peer_text: HeaderValue,
    /// `client_ip` as header text.
    pub client_ip_text: HeaderValue,
    /// The request came from a configured trusted proxy.
    pub peer_trusted: bool,
    /// The client reached us (or the trusted proxy in front of us) over HTTPS.
    pub https: bool,
    /// The client prefers JSON to HTML, so generated pages are JSON.
    pub wants_json: bool,
}

#[cfg(test)]
impl ContextData {
    /// A request from 127.0.0.1 over plain HTTP, id `rid-1`.
    pub(crate) fn for_tests() -> Self {
        Self {
            request_id: HeaderValue::from_static("rid-1"),
            client_ip: [127, 0, 0, 1].into(),
            peer: ([127, 0, 0, 1], 1).into(),
            peer_text: HeaderValue::from_static("127.0.0.1"),
            client_ip_text: HeaderValue::from_static("127.0.0.1"),
            peer_trusted: false,
            https: false,
            wants_json: false,
        }
    }
}

impl RequestContext {
    pub fn request_id_str(&self) -> &str {
        // Ids are generated as hex or accepted only if alphanumeric (see request_id).
        self.request_id.to_str().unwrap_or("")
    }

    pub fn event(&self, kind: &'static str, rule: &'static str, action: &'static str) -> SecurityEvent {
        SecurityEvent {
            kind,
            rule,
            action,
            request_id: Some(self.request_id_str().to_owned()),
            client_ip: Some(self.client_ip),
            detail: None,
            exclusion: None,
        }
    }

    /// Works out the context of `request`; `connection` is how it reached us.
    pub fn resolve<B>(request: &Request<B>, connection: &ConnectionInfo, trusted: &TrustedProxies) -> Self {
        let headers = request.headers();
        let peer_trusted = trusted.contains(connection.peer.ip());
        let client_ip = trusted.client_ip(
            connection.peer.ip(),
            headers.get_all(X_FORWARDED_FOR).iter().map(HeaderValue::as_bytes),
        );
        let forwarded_https = headers
            .get(X_FORWARDED_PROTO)
            .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
        let request_id = headers
            .get(request_id::HEADER)
            .filter(|id| peer_trusted && request_id::is_acceptable(id))
            .cloned()
            .unwrap_or_else(request_id::generate);
        Self::from(ContextData {
            request_id,
            client_ip,
            peer: connection.peer,
            client_ip_text: if client_ip == canonical(connection.peer.ip()) {
                connection.peer_text.clone()
            } else {
                ip_text(client_ip)
            },
            peer_text: connection.peer_text.clone(),
            peer_trusted,
            https: connection.tls || (peer_trusted && forwarded_https),
            wants_json: prefers_json(headers.get(header::ACCEPT)),
        })
    }
}

/// What a layer that needs to know the client answers when the request has
/// no [`RequestContext`]: the stack was assembled without
/// [`RequestContextLayer`] in front (or the server inserted no
/// [`ConnectionInfo`]). Letting the request through would mean every client
/// unlimited, so it is a neutral 500 and an event naming the layer, on the
/// very first request.
pub fn missing(layer: &'static str, pages: &NeutralPages, events: &Events) -> Response<Body> {
    events.emit(SecurityEvent {
        kind: layer,
        rule: "missing_context",
        action: "refused",
        request_id: None,
        client_ip: None,
        detail: Some(
            "no RequestContext: put RequestContextLayer in front of this layer, and insert a ConnectionInfo in every request"
                .into(),
        ),
        exclusion: None,
    });
    pages.render(http::StatusCode::INTERNAL_SERVER_ERROR, None)
}

/// True when `Accept` names JSON and does not name HTML before it.
fn prefers_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let position = |needle: &str| accept.find(needle);
    match (position("json"), position("text/html")) {
        (Some(json), Some(html)) => json < html,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Resolves the [`RequestContext`], puts it in the request extensions, sends
/// the request id upstream and returns it to the client.
///
/// The server must insert a [`ConnectionInfo`] extension in every request.
/// Without one no context is resolved, rather than every client becoming one
/// unknown address: layers that need the client then refuse the request
/// with a neutral 500 and an event ([`missing`]), so the mistake shows at the
/// first request.
#[derive(Debug, Clone, Default)]
pub struct RequestContextPolicy {
    trusted: TrustedProxies,
}

impl RequestContextPolicy {
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted }
    }
}

pub type RequestContextLayer = PolicyLayer<RequestContextPolicy>;

impl Policy for RequestContextPolicy {
    type State = Option<HeaderValue>;

    fn on_request(&self, request: &mut Request<Body>) -> Verdict<Option<HeaderValue>> {
        let Some(connection) = request.extensions().get::<ConnectionInfo>() else {
            return Verdict::Forward(None);
        };
        let context = RequestContext::resolve(request, connection, &self.trusted);
        let id = context.request_id.clone();
        request.headers_mut().insert(request_id::HEADER, id.clone());
        request.extensions_mut().insert(context);
        Verdict::Forward(Some(id))
    }

    fn on_response(self: &Arc<Self>, id: Option<HeaderValue>, mut response: Response<Body>) -> Responded {
        if let Some(id) = id {
            response.headers_mut().insert(request_id::HEADER, id);
        }
        Responded::Now(response)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The context of a plain HTTP request from `ip`.
    pub fn context_from(ip: &str) -> RequestContext {
        let client_ip: IpAddr = ip.parse().expect("a test IP");
        RequestContext::from(ContextData {
            request_id: HeaderValue::from_static("test-id"),
            client_ip,
            peer: SocketAddr::new(client_ip, 40000),
            peer_text: ip_text(client_ip),
            client_ip_text: ip_text(client_ip),
            peer_trusted: false,
            https: false,
            wants_json: false,
        })
    }

    /// A request from `ip` with its context set, as the edge would.
    pub fn request_from(ip: &str) -> Request<Body> {
        let mut request = Request::new(crate::body::empty());
        request.extensions_mut().insert(context_from(ip));
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn connection(peer: &str) -> ConnectionInfo {
        ConnectionInfo::new(peer.parse().unwrap(), false)
    }

    #[test]
    fn untrusted_peer_cannot_set_id_proto_or_client() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let req = request(&[
            ("x-request-id", "abc"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        let ctx = RequestContext::resolve(&req, &connection("192.0.2.1:5000"), &trusted);
        assert_ne!(ctx.request_id, "abc");
        assert!(!ctx.https && !ctx.peer_trusted);
        assert_eq!(ctx.client_ip, "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_peer_passes_id_proto_and_client() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let req = request(&[
            ("x-request-id", "abc"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        let ctx = RequestContext::resolve(&req, &connection("10.0.0.1:5000"), &trusted);
        assert_eq!(ctx.request_id, "abc");
        assert!(ctx.https);
        assert_eq!(ctx.client_ip, "1.1.1.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn json_preference_follows_accept_order() {
        let json = |accept: &str| prefers_json(Some(&HeaderValue::from_str(accept).unwrap()));
        assert!(json("application/json"));
        assert!(json("application/problem+json, text/html;q=0.5"));
        assert!(!json("text/html,application/xhtml+xml,application/json;q=0.9"));
        assert!(!json("*/*"));
        assert!(!prefers_json(None));
    }

    proptest::proptest! {
        // Any header bytes at all: a decision, never a panic.
        #[test]
        fn accept_never_panics(accept in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(value) = HeaderValue::from_bytes(&accept) {
                let _ = prefers_json(Some(&value));
            }
        }
    }
}
