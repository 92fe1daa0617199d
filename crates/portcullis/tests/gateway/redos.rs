//! The ReDoS check (C18) against the npm packages people use for it, on
//! the regular expressions of real packages: every literal pattern in the
//! example app's `node_modules` and in the Observatory's (well over a
//! thousand). recheck (the most accurate checker we know) and safe-regex
//! run in node in the same test; every attack either tool or portcullis
//! gives is run on the step-counting matcher at growing sizes.

use std::collections::BTreeSet;
use std::process::Command;

use portcullis_audit::code::redos::{check, input, steps, units, Complexity, Verdict};
use serde_json::Value;

use crate::harness::{app_dir, node_with_input, npm_ci_once};

const LIMIT: u64 = 50_000_000;

/// Whether the input built from `pumps` (prefix, pump) and `suffix` makes
/// the matcher's steps grow faster than the input: each pump repeated n
/// times, n doubled until the work is well above a start's cost, then
/// compared with 2n.
fn grows(source: &str, flags: &str, pumps: &[(Vec<u32>, Vec<u32>)], suffix: &[u32]) -> bool {
    let attack = |n: usize| input(pumps, suffix, n);
    let mut n = 1;
    let Some(mut at_n) = steps(source, flags, &attack(n), LIMIT) else {
        return true;
    };
    while at_n < 20_000 && n < 4_096 {
        match steps(source, flags, &attack(2 * n), LIMIT) {
            Some(more) => (n, at_n) = (2 * n, more),
            None => return true,
        }
    }
    steps(source, flags, &attack(2 * n), LIMIT).is_none_or(|at_2n| at_2n as f64 / at_n.max(1) as f64 > 3.0)
}

fn corpus() -> Vec<(String, String)> {
    let observatory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/observatory");
    npm_ci_once(&app_dir());
    npm_ci_once(&observatory);
    let mut patterns = BTreeSet::new();
    for dir in [app_dir(), observatory] {
        for found in portcullis_audit::code::regexes(&dir, true) {
            patterns.insert((found.source, found.flags));
        }
    }
    patterns.into_iter().collect()
}

/// recheck's and safe-regex's verdicts, one JSON object per pattern.
fn theirs(corpus: &[(String, String)]) -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/redos");
    npm_ci_once(&dir);
    let mut lines = String::new();
    for (source, flags) in corpus {
        lines.push_str(&format!("{}\n", serde_json::json!({"source": source, "flags": flags})));
    }
    String::from_utf8(node_with_input(&dir, "compare.mjs", lines.as_bytes()))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn verdicts_agree_with_recheck_on_the_patterns_of_real_packages() {
    let corpus = corpus();
    assert!(corpus.len() >= 500, "only {} patterns", corpus.len());
    let theirs = theirs(&corpus);
    assert_eq!(theirs.len(), corpus.len());
    let (mut agree, mut ours_vulnerable, mut recheck_vulnerable) = (0, 0, 0);
    let (mut safe_regex_missed, mut safe_regex_false_alarms) = (0, 0);
    let mut called_safe = Vec::new();
    for ((source, flags), their) in corpus.iter().zip(&theirs) {
        let recheck = &their["recheck"];
        let mine = check(source, flags);
        let (status, complexity) = match &mine {
            Verdict::Safe => ("safe", None),
            Verdict::Vulnerable(attack) => (
                "vulnerable",
                Some(match attack.complexity {
                    Complexity::Exponential => "exponential",
                    Complexity::Polynomial(_) => "polynomial",
                }),
            ),
            Verdict::Invalid(_) | Verdict::NotAnalysed(_) => ("unknown", None),
        };
        if status == recheck["status"] && (complexity.is_none() || recheck["complexity"] == complexity.unwrap()) {
            agree += 1;
        }
        // Every attack portcullis reports holds on the matcher.
        if let Verdict::Vulnerable(attack) = &mine {
            ours_vulnerable += 1;
            assert!(
                grows(source, flags, &attack.pumps, &attack.suffix),
                "/{source}/{flags}: {}",
                attack.javascript()
            );
        }
        // recheck's attack, where it holds, is never called safe.
        let mut recheck_holds = false;
        if recheck["status"] == "vulnerable" {
            recheck_vulnerable += 1;
            let pumps: Vec<(Vec<u32>, Vec<u32>)> = recheck["attack"]["pumps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        units(p["prefix"].as_str().unwrap(), flags),
                        units(p["pump"].as_str().unwrap(), flags),
                    )
                })
                .collect();
            let suffix = units(recheck["attack"]["suffix"].as_str().unwrap(), flags);
            recheck_holds = grows(source, flags, &pumps, &suffix);
            if recheck_holds && mine == Verdict::Safe {
                called_safe.push(format!("/{source}/{flags}"));
            }
        }
        let proved_vulnerable = matches!(mine, Verdict::Vulnerable(_)) || recheck_holds;
        match their["safeRegex"].as_bool() {
            Some(true) if proved_vulnerable => safe_regex_missed += 1,
            Some(false) if !proved_vulnerable && mine == Verdict::Safe => safe_regex_false_alarms += 1,
            _ => {}
        }
    }
    let share = f64::from(agree) / corpus.len() as f64;
    eprintln!(
        "{} patterns: agreement with recheck {agree} ({:.1}%); vulnerable: portcullis {ours_vulnerable}, recheck \
         {recheck_vulnerable}; safe-regex missed {safe_regex_missed} proved attacks and flagged \
         {safe_regex_false_alarms} safe patterns",
        corpus.len(),
        100.0 * share
    );
    assert!(
        called_safe.is_empty(),
        "recheck's attack holds, portcullis said safe: {called_safe:#?}"
    );
    assert!(share >= 0.99, "agreement {share}");
}

#[test]
fn regex_check_says_what_it_found_with_its_exit_code() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("regex")
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["check", "^(a+)+$"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("exponential") && out.contains(".repeat(30)"), "{out}");
    let (code, out, _) = run(&["check", "--flags", "i", "^[a-z]+$"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _, err) = run(&["check", "(a"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a valid JavaScript pattern"), "{err}");
    // list then check --from: the NodeGoat route's pattern, found and proved.
    let nodegoat =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../portcullis-audit/fixtures/projects/nodegoat");
    let (code, listed, _) = run(&["list", nodegoat.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let line = listed
        .lines()
        .find(|l| l.contains("profile.js"))
        .unwrap_or_else(|| panic!("{listed}"));
    let found: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (found["line"].as_u64(), found["source"].as_str()),
        (Some(59), Some("([0-9]+)+\\#"))
    );
    let list = std::env::temp_dir().join(format!("portcullis-regexes-{}.jsonl", std::process::id()));
    std::fs::write(&list, format!("{line}\n{{\"source\": \"^a+$\"}}\n")).unwrap();
    let (code, out, _) = run(&["check", "--from", list.to_str().unwrap()]);
    std::fs::remove_file(&list).unwrap();
    assert_eq!(code, Some(0));
    let verdicts: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(verdicts[0]["status"], "vulnerable");
    assert_eq!(verdicts[0]["complexity"], "exponential");
    assert_eq!(verdicts[1]["status"], "safe");
}
