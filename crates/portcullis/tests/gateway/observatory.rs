//! `portcullis audit`'s grade against the real MDN HTTP Observatory
//! (`@mdn/mdn-http-observatory`, the npm package), run on the same nine
//! local sites in the same test: the grade, the score and every test's
//! result must be the same.
//!
//! The Observatory scans a host name on ports 80 and 443 only, so each site
//! gets a loopback address of its own (127.0.80.N) with both ports; binding
//! them needs root, as the CI machine runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{npm_ci_once, Process, TempDir};

/// In address order: 127.0.80.1 is `bare`. `policies` redirects to
/// `strict`'s address, so every site is up before any is scanned.
const SITES: [&str; 9] = [
    "bare",
    "helmet",
    "unsafe",
    "policies",
    "strict",
    "odd",
    "untrusted",
    "api",
    "missing",
];

fn observatory_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/observatory")
}

/// A CA and a certificate for every site's address.
fn certificates(out: &Path) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.args(["cert", "self-signed", "--out"]).arg(out);
    for n in 1..=SITES.len() {
        command.args(["--host", &format!("127.0.80.{n}")]);
    }
    assert!(command.output().unwrap().status.success());
}

/// The Observatory's scan of `address`, trusting `ca`.
fn observatory(address: &str, ca: &Path) -> Value {
    let output = Command::new("node")
        .arg("node_modules/@mdn/mdn-http-observatory/src/scan.js")
        .arg(address)
        .env("NODE_EXTRA_CA_CERTS", ca)
        .current_dir(observatory_dir())
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn portcullis(url: &str, ca: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "audit",
            url,
            "--format",
            "json",
            "--max-pages",
            "1",
            "--rate",
            "100",
            "--timeout",
            "5",
            "--cacert",
        ])
        .arg(ca)
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))
}

/// Grade, score and each test's result, or the reason for no grade.
fn verdicts(observatory: &Value, ours: &Value) -> (String, String) {
    let theirs = match observatory.get("error") {
        Some(_) => "not graded".to_owned(),
        None => {
            let tests = observatory["tests"].as_object().unwrap();
            let results: Vec<String> = tests
                .iter()
                .map(|(name, t)| format!("{name}={}", t["result"].as_str().unwrap()))
                .collect();
            format!(
                "{} {} {}",
                observatory["scan"]["grade"],
                observatory["scan"]["score"],
                results.join(" ")
            )
        }
    };
    let ours = match ours.get("grade") {
        None => "not graded".to_owned(),
        Some(grade) => {
            // In the Observatory's JSON, by name.
            let mut results: Vec<String> = grade["tests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| format!("{}={}", t["test"].as_str().unwrap(), t["result"].as_str().unwrap()))
                .collect();
            results.sort();
            format!("{} {} {}", grade["grade"], grade["score"], results.join(" "))
        }
    };
    (theirs, ours)
}

#[test]
fn grades_scores_and_results_equal_the_observatorys_on_nine_sites() {
    let dir = observatory_dir();
    npm_ci_once(&dir);
    // The package downloads Chromium's HSTS preload list when installed;
    // its install scripts are off (no network here), and no loopback
    // address is preloaded anyway.
    let preload = dir.join("node_modules/@mdn/mdn-http-observatory/conf/hsts-preload.json");
    if !preload.exists() {
        std::fs::write(&preload, "{}").unwrap();
    }
    let certs = TempDir::new();
    let (trusted, unknown) = (certs.0.join("trusted"), certs.0.join("unknown"));
    certificates(&trusted);
    certificates(&unknown);
    let sites: Vec<Process> = SITES
        .iter()
        .enumerate()
        .map(|(i, scenario)| {
            let pair = if *scenario == "untrusted" { &unknown } else { &trusted };
            let site = Process::spawn(
                Command::new("node")
                    .arg(dir.join("target.mjs"))
                    .args([&format!("127.0.80.{}", i + 1), *scenario])
                    .arg(pair.join("cert.pem"))
                    .arg(pair.join("key.pem")),
            );
            site.stdout.wait_for_or_explain("ready", &site.stderr);
            site
        })
        .collect();
    let ca = trusted.join("ca.pem");
    let mut disagreements = Vec::new();
    for (i, scenario) in SITES.iter().enumerate() {
        let address = format!("127.0.80.{}", i + 1);
        let scheme = if matches!(*scenario, "bare" | "missing") {
            "http"
        } else {
            "https"
        };
        let (theirs, ours) = verdicts(
            &observatory(&address, &ca),
            &portcullis(&format!("{scheme}://{address}/"), &ca),
        );
        eprintln!("{scenario:>9}: {theirs}");
        if theirs != ours {
            disagreements.push(format!("{scenario}:\n  Observatory {theirs}\n  portcullis  {ours}"));
        }
    }
    drop(sites);
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
