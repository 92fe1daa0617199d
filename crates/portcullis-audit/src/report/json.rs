//! The report as JSON, for scripts and CI: a documented, versioned schema
//! (`docs/audit-report.schema.json`, which a test validates the output
//! against). A field is only ever added within a
//! version; renaming or removing one bumps [`SCHEMA_VERSION`].

use std::io::{self, Write};

use serde::Serialize;

use super::{Finding, Grade, Report};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: Tool,
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grade: Option<&'a Grade>,
    summary: Summary,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Summary {
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
}

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let count = |severity| report.findings.iter().filter(|f| f.severity == severity).count();
    use super::Severity::*;
    let document = Document {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "portcullis",
            version: env!("CARGO_PKG_VERSION"),
        },
        target: &report.target,
        scope: report.scope.as_deref(),
        grade: report.grade.as_ref(),
        summary: Summary {
            critical: count(Critical),
            high: count(High),
            medium: count(Medium),
            low: count(Low),
            info: count(Info),
        },
        findings: &report.findings,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn the_output_validates_against_the_documented_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/audit-report.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut report = sample();
        report.scope = Some("3 requests, 1 pages crawled".into());
        report.grade = Some(crate::report::Grade {
            grade: "B+".into(),
            score: 80,
            tests: vec![crate::report::GradedTest {
                test: "x-frame-options",
                result: "x-frame-options-not-implemented",
                pass: false,
                modifier: -20,
            }],
        });
        report.findings[1].evidence = crate::report::Evidence::in_file("app.js", 12, "eval(req.query.x)");
        for report in [sample(), report] {
            let mut out = Vec::new();
            write(&report, &mut out).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
        // And the schema can fail: a severity the model does not have.
        let mut out = Vec::new();
        write(&sample(), &mut out).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        value["findings"][0]["severity"] = "severe".into();
        assert!(!validator.is_valid(&value));
    }

    #[test]
    fn fields_as_documented() {
        let mut out = Vec::new();
        write(&sample(), &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["summary"]["high"], 1);
        let first = &value["findings"][0];
        assert_eq!(first["rule"], "headers.hsts.missing");
        assert_eq!(first["item"], "C2");
        assert_eq!(first["severity"], "high");
        assert_eq!(first["evidence"]["location"], "https://127.0.0.1:8443/");
        assert!(first["evidence"].get("line").is_none());
    }
}
