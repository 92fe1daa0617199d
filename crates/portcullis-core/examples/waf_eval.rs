//! Detection and false-positive rates of the WAF on payload and benign
//! lists (one value per line), each value inspected as a query parameter
//! with the default config: `cargo run --release --example waf_eval --
//! bench/waf/payloads/*.txt bench/waf/benign/*.txt`. `--show` prints what
//! was missed (payload lists) or blocked (benign lists, by their directory).

use portcullis_core::waf::{Waf, WafConfig};

fn main() {
    let mut show = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--show" => show = true,
            _ => files.push(arg),
        }
    }
    let waf = Waf::compile(WafConfig::default()).unwrap_or_else(|e| panic!("default config: {e}"));
    let threshold = waf.config().threshold();
    println!("{:<48} {:>8} {:>8} {:>8}", "file", "values", "blocked", "rate");
    for file in files {
        let text = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let benign = file.contains("benign");
        let (mut total, mut blocked) = (0usize, 0usize);
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let value = String::from_utf8_lossy(line);
            let findings = waf.inspect_values(&[("q", &value)]);
            let score: u32 = findings.iter().map(|f| u32::from(f.score)).sum();
            total += 1;
            let block = score >= threshold;
            blocked += usize::from(block);
            if show && block == benign {
                let why: Vec<_> = findings
                    .iter()
                    .map(|f| format!("{}:{}", f.detector.name(), f.score))
                    .collect();
                println!(
                    "  {} {value} [{}]",
                    if benign { "BLOCKED" } else { "MISSED" },
                    why.join(" ")
                );
            }
        }
        let name = file
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/");
        println!(
            "{name:<48} {total:>8} {blocked:>8} {:>7.1}%",
            100.0 * blocked as f64 / total.max(1) as f64
        );
    }
}
