//! The report as SARIF 2.1.0, for code-scanning dashboards (GitHub, GitLab,
//! Azure DevOps): one run, one rule per check that fired, one result per
//! finding. Severity maps to SARIF's `level` and to the
//! `security-severity` score GitHub sorts by.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::{Finding, Report, Severity};

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut rules: Vec<&Finding> = Vec::new();
    for finding in &report.findings {
        if !rules.iter().any(|r| r.rule == finding.rule) {
            rules.push(finding);
        }
    }
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| {
            let index = rules.iter().position(|r| r.rule == finding.rule).unwrap_or(0);
            result(finding, index)
        })
        .collect();
    let document = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "portcullis",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules.iter().map(|f| rule(f)).collect::<Vec<_>>(),
                }
            },
            "results": results,
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn rule(finding: &Finding) -> Value {
    json!({
        "id": finding.rule,
        "shortDescription": { "text": finding.title },
        "help": { "text": finding.fix },
        "defaultConfiguration": { "level": level(finding.severity) },
        "properties": {
            "tags": ["security", finding.item.to_string()],
            "security-severity": security_severity(finding.severity),
        }
    })
}

fn result(finding: &Finding, rule_index: usize) -> Value {
    let mut physical = json!({ "artifactLocation": { "uri": finding.evidence.location } });
    if let Some(line) = finding.evidence.line {
        physical["region"] = json!({ "startLine": line, "snippet": { "text": finding.evidence.excerpt } });
        if let Some(column) = finding.evidence.column {
            physical["region"]["startColumn"] = json!(column);
        }
    }
    json!({
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": { "text": format!("{}: {}", finding.title, finding.evidence.excerpt) },
        "locations": [{ "physicalLocation": physical }],
        "properties": { "severity": finding.severity.name(), "checklist": finding.item.to_string() },
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's scale: critical from 9.0, high from 7.0, medium from 4.0.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{tests::sample, Evidence, Item};

    #[test]
    fn one_rule_per_check_and_one_result_per_finding() {
        let mut report = sample();
        let mut again = report.findings[0].clone();
        again.evidence = Evidence::in_file("app.js", 12, "res.send(req.query.q)");
        again.item = Item::C2;
        report.add(again);
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        let run = &value["runs"][0];
        assert_eq!(value["version"], "2.1.0");
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 2);
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[2]["ruleIndex"], 0);
        assert_eq!(
            results[2]["locations"][0]["physicalLocation"]["region"]["startLine"],
            12
        );
    }
}
