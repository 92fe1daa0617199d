//! Scanner fingerprints: the `User-Agent` of tools that probe for flaws.
//!
//! A weak signal only (score 2): a header anyone can change, never enough to
//! block alone, but it tips a request that also carries a finding.

use super::Hit;

pub fn inspect(user_agent: &str) -> Option<Hit> {
    let lower = user_agent.to_ascii_lowercase();
    SCANNERS.iter().find_map(|name| {
        lower.find(name).map(|at| Hit {
            score: 2,
            context: "scanner User-Agent",
            at,
        })
    })
}

const SCANNERS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nuclei",
    "nmap",
    "masscan",
    "zgrab",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "wpscan",
    "acunetix",
    "netsparker",
    "nessus",
    "openvas",
    "w3af",
    "havij",
    "commix",
    "xsstrike",
    "arachni",
    "skipfish",
    "jaeles",
    "whatweb",
    "burpcollaborator",
    "zap/",
    "appscan",
    "qualys",
    "hydra",
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
    }
}
