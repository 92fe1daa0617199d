//! Server-side request forgery to cloud metadata: a URL-valued parameter
//! that points the app's HTTP client at the instance metadata service,
//! where cloud credentials are one GET away.
//!
//! Hosts are read with the WHATWG URL parser (the `url` crate), as Node's
//! `new URL()`, `fetch` and axios read them, so every spelling of
//! 169.254.169.254 (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`,
//! `169.254.43518`, `[::ffff:a9fe:a9fe]`) is the same address.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::Hit;

pub fn inspect(value: &str) -> Option<Hit> {
    let hit = url_at(value);
    if hit.as_ref().is_some_and(|h| h.score == 5) {
        return hit;
    }
    // URLs inside the value: `https://shop/?next=http://169.254.169.254/`.
    // A few are enough: each is parsed, and a value of many `://` must stay cheap.
    let nested = value
        .match_indices("://")
        .skip(1)
        .take(8)
        .filter_map(|(at, _)| {
            // The scheme before `://`: ASCII, so where it starts is a char boundary.
            let scheme_len = value[..at].bytes().rev().take_while(u8::is_ascii_alphanumeric).count();
            let start = at - scheme_len;
            url_at(&value[start..]).map(|hit| Hit { at: start, ..hit })
        })
        .max_by_key(|h| h.score);
    nested.or(hit)
}

fn url_at(value: &str) -> Option<Hit> {
    let trimmed = value.trim();
    let url = if trimmed.contains("://") {
        Url::parse(trimmed).ok()?
    } else if trimmed.starts_with("//") {
        Url::parse(&format!("http:{trimmed}")).ok()?
    } else if trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '[') && trimmed.contains(['.', ':', '/']) {
        // A bare host, for apps that build the URL themselves.
        Url::parse(&format!("http://{trimmed}")).ok()?
    } else {
        return None;
    };
    let metadata = match url.host()? {
        Host::Ipv4(ip) => METADATA_V4.contains(&ip),
        Host::Ipv6(ip) => ip.to_ipv4_mapped().is_some_and(|v4| METADATA_V4.contains(&v4)) || ip == AWS_V6,
        Host::Domain(name) => METADATA_NAMES.contains(&name.trim_end_matches('.')),
    };
    if metadata {
        return Some(Hit {
            score: 5,
            context: "URL to cloud metadata",
            at: 0,
        });
    }
    // Schemes no web app fetches, which reach Redis, memcached or SMTP.
    matches!(url.scheme(), "gopher" | "dict" | "ldap" | "tftp").then_some(Hit {
        score: 4,
        context: "URL with a raw-socket scheme",
        at: 0,
    })
}

const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, DigitalOcean, OpenStack
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
];

const AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.packet.net",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_metadata_address() {
        for attack in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "//169.254.169.254/",
            "169.254.169.254/latest/meta-data",
            "HTTP://METADATA.GOOGLE.INTERNAL./",
        ] {
            assert_eq!(inspect(attack).map(|h| h.score), Some(5), "{attack}");
        }
        assert_eq!(inspect("gopher://127.0.0.1:6379/_FLUSHALL").map(|h| h.score), Some(4));
    }

    #[test]
    fn ordinary_urls_pass() {
        for benign in [
            "https://example.com/a?b=1",
            "http://169.254.1.1/",
            "1.5 kg",
            "12:30",
            "http://localhost:3000/",
        ] {
            assert!(inspect(benign).is_none(), "{benign}");
        }
    }
}
