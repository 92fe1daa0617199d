//! Scanner fingerprints: the `User-Agent` of tools that probe for flaws.
//!
//! A weak signal only (score 2): a header anyone can change, never enough to
//! block alone, but it tips a request that also carries a finding.

use super::{lowercase_into, Hit};

pub fn inspect(user_agent: &str) -> Option<Hit> {
    // Tools name themselves as a product token (`sqlmap/1.7`): compare
    // words, not substrings.
    let mut at = 0;
    for word in user_agent.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.len() >= 3 && word.len() <= 16 {
            let mut buffer = [0; 16];
            let name = lowercase_into(word, &mut buffer).unwrap_or_default();
            if SCANNERS.binary_search(&name).is_ok() {
                return Some(Hit {
                    score: 2,
                    context: "scanner User-Agent",
                    at,
                });
            }
        }
        at += word.len() + 1;
    }
    None
}

/// Sorted, for binary search.
const SCANNERS: &[&str] = &[
    "acunetix",
    "appscan",
    "arachni",
    "burpcollaborator",
    "commix",
    "dirbuster",
    "feroxbuster",
    "ffuf",
    "gobuster",
    "havij",
    "hydra",
    "jaeles",
    "masscan",
    "nessus",
    "netsparker",
    "nikto",
    "nmap",
    "nuclei",
    "openvas",
    "qualys",
    "skipfish",
    "sqlmap",
    "w3af",
    "wfuzz",
    "whatweb",
    "wpscan",
    "xsstrike",
    "zap",
    "zgrab",
];

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
        assert!(super::SCANNERS.windows(2).all(|w| w[0] < w[1]));
    }
}
