//! Who the client is: the socket peer, unless the peer is a trusted proxy.
//!
//! Only a trusted peer may speak for someone else. Its `X-Forwarded-For` is
//! read right to left, skipping the hops we trust; the first hop we do not
//! trust is the client. Anything a client wrote itself is never believed.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::InvalidConfig;

/// The headers a trusted proxy reports the client and scheme in.
pub const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");

/// How IPv6 clients are grouped unless a section says otherwise: one
/// subscriber commonly holds a whole /56 (or /48), so counting single
/// addresses would let one client act as millions.
pub const DEFAULT_IPV6_PREFIX: u8 = 56;

/// A CIDR range (`10.0.0.0/8`) or a single address, as config lists them.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not a CIDR range or IP address, expected e.g. 10.0.0.0/8 or ::1"))
}

/// A config list of ranges; an error names the entry (`key[i]`).
pub fn parse_nets(texts: &[String], key: &str) -> Result<Vec<IpNet>, InvalidConfig> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| parse_net(text).map_err(|message| InvalidConfig::new(format!("{key}[{i}]"), message)))
        .collect()
}

/// The address a client is counted under: IPv4 as is, IPv6 by its `prefix`.
pub fn group(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(_) => IpNet::new(ip, ipv6_prefix).map_or(ip, |net| net.trunc().network()),
        v4 => v4,
    }
}

/// CIDR ranges of proxies allowed to report the client address.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address for a request that came from `peer` carrying these
    /// `X-Forwarded-For` header values (in order of appearance).
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a [u8]>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&[u8]> = forwarded_for.flat_map(|value| value.split(|b| *b == b',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.contains(ip) => client = ip,
                Some(ip) => return ip,
                // A hop we cannot read ends the chain: the last trusted hop is all we know.
                None => return client,
            }
        }
        client
    }
}

/// An address as header text (e.g. for `X-Forwarded-For`).
pub fn ip_text(ip: IpAddr) -> http::HeaderValue {
    // The textual form of an IP address is plain ASCII: always a valid header value.
    http::HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value")
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 client they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` element: an IP, optionally with a port, IPv6 optionally bracketed.
pub fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let got = proxies.client_ip(ip("203.0.113.9"), [b"1.2.3.4".as_slice()].into_iter());
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn trusted_chain_is_read_right_to_left_skipping_trusted_hops() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = [b"6.6.6.6, 198.51.100.7".as_slice(), b"10.1.1.1".as_slice()];
        assert_eq!(
            proxies.client_ip(ip("10.0.0.2"), headers.into_iter()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let got = proxies.client_ip(ip("10.0.0.2"), [b"10.9.9.9, 10.1.1.1".as_slice()].into_iter());
        assert_eq!(got, ip("10.9.9.9"));
    }

    #[test]
    fn unreadable_hop_stops_at_the_last_trusted_one() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let got = proxies.client_ip(ip("10.0.0.2"), [b"1.2.3.4, garbage, 10.1.1.1".as_slice()].into_iter());
        assert_eq!(got, ip("10.1.1.1"));
    }

    #[test]
    fn hops_with_ports_brackets_and_mapped_addresses() {
        assert_eq!(parse_hop(b" 192.0.2.1:8080 "), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop(b"[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop(b"::ffff:192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop(b"unknown"), None);
        assert_eq!(parse_hop(b"\xff\xfe"), None);
    }

    proptest! {
        // Whatever an attacker puts in the header, an untrusted peer stays the client
        // and a trusted peer yields either a hop that was in the header or the peer.
        #[test]
        fn never_panics_and_never_invents(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let proxies = trusted(&["127.0.0.0/8"]);
            let untrusted = proxies.client_ip(ip("192.0.2.50"), [header.as_slice()].into_iter());
            prop_assert_eq!(untrusted, ip("192.0.2.50"));
            let got = proxies.client_ip(ip("127.0.0.1"), [header.as_slice()].into_iter());
            let from_header = header.split(|b| *b == b',').filter_map(parse_hop).any(|h| h == got);
            prop_assert!(got == ip("127.0.0.1") || from_header);
        }
    }
}
