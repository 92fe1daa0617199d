//! Scanner fingerprints: the `User-Agent` of tools that probe for flaws.
//!
//! A weak signal only (score 2): a header anyone can change, never enough to
//! block alone, but it tips a request that also carries a finding.

use super::{lowercase_is, Hit};

pub fn inspect(user_agent: &str) -> Option<Hit> {
    // Tools name themselves as a product token (`sqlmap/1.7`): compare
    // words, not substrings.
    let mut at = 0;
    for word in user_agent.split(|c: char| !c.is_ascii_alphanumeric()) {
        if lowercase_is(is_scanner, word.as_bytes()) {
            return Some(Hit {
                score: 2,
                context: "scanner User-Agent",
                at,
            });
        }
        at += word.len() + 1;
    }
    None
}

fn is_scanner(word: &[u8]) -> bool {
    matches!(
        word,
        b"acunetix"
            | b"appscan"
            | b"arachni"
            | b"burpcollaborator"
            | b"commix"
            | b"dirbuster"
            | b"feroxbuster"
            | b"ffuf"
            | b"gobuster"
            | b"havij"
            | b"hydra"
            | b"jaeles"
            | b"masscan"
            | b"nessus"
            | b"netsparker"
            | b"nikto"
            | b"nmap"
            | b"nuclei"
            | b"openvas"
            | b"qualys"
            | b"skipfish"
            | b"sqlmap"
            | b"w3af"
            | b"wfuzz"
            | b"whatweb"
            | b"wpscan"
            | b"xsstrike"
            | b"zap"
            | b"zgrab"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn scanners_are_named() {
        assert_eq!(
            super::inspect("sqlmap/1.7.2#stable (https://sqlmap.org)").map(|h| h.score),
            Some(2)
        );
        assert!(super::inspect("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0").is_none());
        assert!(super::inspect("Mozilla/5.0 (compatible; Nmap Scripting Engine)").is_some());
    }
}
