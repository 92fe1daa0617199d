//! What a request and a response look like on the other side of the proxy:
//! hop-by-hop headers removed both ways, forwarding headers set on the way in.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use portcullis_core::client_ip::{X_FORWARDED_FOR, X_FORWARDED_PROTO};
use portcullis_core::context::RequestContext;
use portcullis_core::headers::remove_present;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
/// A static, not a const: a const array of names would be built and dropped
/// at every use.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// True for a request asking to switch protocols (WebSocket).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including any the `Connection` header names.
/// With `keep_upgrade`, `Connection: upgrade` and `Upgrade` survive.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // `close`, `keep-alive` and `upgrade` are options, or already in the list.
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !["close", "keep-alive", "upgrade"]
                .iter()
                .any(|o| t.eq_ignore_ascii_case(o))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = keep_upgrade.then(|| headers.get(header::UPGRADE).cloned()).flatten();
    remove_present(headers, &HOP_BY_HOP);
    if !named.is_empty() {
        remove_present(headers, &named);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host`, `Forwarded` and `X-Real-IP`.
///
/// A trusted proxy's values are extended; anything an untrusted client sent is
/// replaced, so the app can believe these headers. Addresses come preformatted
/// in the context: this runs on every request.
pub fn set_forwarding_headers(headers: &mut HeaderMap, context: &RequestContext, host: Option<&HeaderValue>) {
    let peer = context.peer_text.to_str().unwrap_or_default();
    let proto = if context.https { "https" } else { "http" };
    let trusted = context.peer_trusted;

    match trusted.then(|| joined(headers, &X_FORWARDED_FOR)).flatten() {
        Some(chain) => insert(headers, X_FORWARDED_FOR, &[&chain, ", ", peer].concat()),
        None => {
            headers.insert(X_FORWARDED_FOR, context.peer_text.clone());
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match host {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
    }

    let mut element = String::with_capacity(64);
    element.push_str("for=");
    if context.peer.ip().to_canonical().is_ipv6() {
        element.extend(["\"[", peer, "]\""]);
    } else {
        element.push_str(peer);
    }
    element.extend([";proto=", proto]);
    let quotable = |h: &&str| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if let Some(host) = host.and_then(|h| h.to_str().ok()).filter(quotable) {
        element.extend([";host=\"", host, "\""]);
    }
    match trusted.then(|| joined(headers, &FORWARDED)).flatten() {
        Some(previous) => insert(headers, FORWARDED, &[&previous, ", ", &element].concat()),
        None => insert(headers, FORWARDED, &element),
    }
    headers.insert(X_REAL_IP, context.client_ip_text.clone());
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Built from IP addresses, fixed words and visible-ASCII header text only.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(peer: &str, client: &str, trusted: bool) -> RequestContext {
        RequestContext::from(portcullis_core::context::ContextData {
            request_id: HeaderValue::from_static("id"),
            client_ip: client.parse().unwrap(),
            peer: peer.parse().unwrap(),
            peer_text: portcullis_core::client_ip::ip_text(peer.parse::<std::net::SocketAddr>().unwrap().ip()),
            client_ip_text: portcullis_core::client_ip::ip_text(client.parse().unwrap()),
            peer_trusted: trusted,
            https: false,
            wants_json: false,
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn spoofed_forwarding_from_untrusted_client_is_replaced() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x-forwarded-host", "evil"),
        ]);
        set_forwarding_headers(
            &mut h,
            &context("192.0.2.9:4000", "192.0.2.9", false),
            Some(&HeaderValue::from_static("shop.example")),
        );
        assert_eq!(h["x-forwarded-for"], "192.0.2.9");
        assert_eq!(h["x-real-ip"], "192.0.2.9");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["forwarded"], "for=192.0.2.9;proto=http;host=\"shop.example\"");
    }

    #[test]
    fn trusted_proxy_chain_is_extended() {
        let mut h = headers(&[("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=198.51.100.1")]);
        set_forwarding_headers(&mut h, &context("[::1]:4000", "198.51.100.1", true), None);
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, ::1");
        assert_eq!(h["forwarded"], "for=198.51.100.1, for=\"[::1]\";proto=http");
        assert_eq!(h["x-real-ip"], "198.51.100.1");
    }

    #[test]
    fn hop_by_hop_headers_go_including_named_ones() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        let mut ws = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&ws));
        strip_hop_by_hop(&mut ws, true);
        assert_eq!(
            (ws["connection"].to_str().unwrap(), ws["upgrade"].to_str().unwrap()),
            ("upgrade", "websocket")
        );
    }
}
