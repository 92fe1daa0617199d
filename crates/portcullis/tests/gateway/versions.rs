//! The dependency audit's version semantics against npm's own `semver`
//! package (node, in the same test): thousands of generated (version,
//! range) pairs, prereleases and build metadata included, and as many
//! version pairs to order. Every answer must be the same.

use portcullis_audit::versions;

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn number(&mut self) -> String {
        self.pick(&["0", "1", "2", "3", "10"]).to_owned()
    }

    fn version(&mut self) -> String {
        let mut version = format!("{}.{}.{}", self.number(), self.number(), self.number());
        match self.next() % 6 {
            0 => version.push_str(&format!(
                "-{}",
                self.pick(&["alpha", "beta.1", "rc.2", "0", "alpha.beta", "1.2"])
            )),
            1 => version.push_str(&format!("+{}", self.pick(&["build.5", "001", "sha.abc"]))),
            2 => version.push_str(&format!("-rc.{}+b{}", self.number(), self.number())),
            _ => {}
        }
        match self.next() % 20 {
            0 => format!("v{version}"),
            1 => format!("={version}"),
            2 => format!(" {version} "),
            3 => self
                .pick(&["1.2", "01.2.3", "1.2.3.4", "x", "", "1.2.3-", "latest"])
                .to_owned(),
            _ => version,
        }
    }

    /// A version as ranges write them: sometimes partial or with x.
    fn bound(&mut self) -> String {
        match self.next() % 8 {
            0 => self.number(),
            1 => format!("{}.{}", self.number(), self.number()),
            2 => format!("{}.x", self.number()),
            3 => format!("{}.{}.*", self.number(), self.number()),
            _ => self.version().trim().trim_start_matches(['v', '=']).to_owned(),
        }
    }

    fn comparator(&mut self) -> String {
        let operator = self.pick(&["", "^", "~", ">=", "<=", ">", "<", "=", "~>"]);
        format!("{operator}{}", self.bound())
    }

    fn range(&mut self) -> String {
        match self.next() % 10 {
            0 => format!("{} - {}", self.bound(), self.bound()),
            1 => format!("{} || {}", self.comparator(), self.comparator()),
            2 => format!("{} {}", self.comparator(), self.comparator()),
            3 => self
                .pick(&[
                    "*",
                    "",
                    "x",
                    "latest",
                    ">=1.0.0 <2.0.0 || ^3.1",
                    "^0.0.1",
                    "~0.2",
                    ">= 1.2.3",
                    "1.2.3 - 2",
                ])
                .to_owned(),
            _ => self.comparator(),
        }
    }
}

#[test]
fn ranges_and_order_agree_with_npms_semver() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/semver");
    crate::harness::npm_ci_once(&dir);
    let mut cases = Cases(0x9e37_79b9_7f4a_7c15);
    let pairs: Vec<(String, String)> = (0..6000).map(|_| (cases.version(), cases.range())).collect();
    let orders: Vec<(String, String)> = (0..3000).map(|_| (cases.version(), cases.version())).collect();
    let input = serde_json::json!({ "pairs": pairs, "orders": orders }).to_string();
    let output = crate::harness::node_with_input(&dir, "judge.js", input.as_bytes());
    let npm: serde_json::Value = serde_json::from_slice(&output).unwrap();

    let mut disagreements = Vec::new();
    for ((version, range), expected) in pairs.iter().zip(npm["satisfies"].as_array().unwrap()) {
        let ours = versions::satisfies(version, range);
        if Some(ours) != expected.as_bool() {
            disagreements.push(format!(
                "satisfies({version:?}, {range:?}): npm {expected}, ours {ours}"
            ));
        }
    }
    let mut satisfied = 0;
    for expected in npm["satisfies"].as_array().unwrap() {
        satisfied += usize::from(expected.as_bool() == Some(true));
    }
    for ((a, b), expected) in orders.iter().zip(npm["compare"].as_array().unwrap()) {
        let ours = match (versions::Version::parse(a), versions::Version::parse(b)) {
            (Some(a), Some(b)) => Some(a.cmp(&b) as i64),
            _ => None,
        };
        if ours != expected.as_i64() {
            disagreements.push(format!("compare({a:?}, {b:?}): npm {expected}, ours {ours:?}"));
        }
    }
    // Enough of both answers for the comparison to mean something.
    assert!(satisfied > 500 && satisfied < 5500, "{satisfied} of 6000 satisfied");
    assert!(
        disagreements.is_empty(),
        "{} disagreements, the first:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(30)].join("\n")
    );
}
