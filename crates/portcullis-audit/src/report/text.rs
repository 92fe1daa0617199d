//! The report for people: findings grouped by checklist item, the worst
//! first, each with its evidence and its fix. Colour only on a terminal.

use std::io::{self, Write};

use super::{Report, Severity};

/// Writes `report`; `colour` adds ANSI colours to severities and headings.
pub fn write(report: &Report, colour: bool, out: &mut dyn Write) -> io::Result<()> {
    let paint = |code: &str, text: &str| match colour {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_owned(),
    };
    write!(out, "{}", paint("1", &format!("portcullis audit {}", report.target)))?;
    if let Some(grade) = &report.grade {
        write!(out, "   grade {} (score {})", paint("1", &grade.grade), grade.score)?;
    }
    writeln!(out)?;
    if let Some(scope) = &report.scope {
        writeln!(out, "{scope}")?;
    }
    if let Some(grade) = report.grade.as_ref().filter(|g| !g.tests.is_empty()) {
        writeln!(out)?;
        writeln!(out, "{}", paint("1", "Graded as the MDN HTTP Observatory grades"))?;
        for test in &grade.tests {
            let points = format!("{:>+4}", test.modifier);
            let points = match test.modifier {
                ..0 => paint(severity_colour(Severity::Medium), &points),
                _ => points,
            };
            writeln!(out, "  {points}  {:<31} {}", test.test, test.result)?;
        }
    }
    let mut current = None;
    for finding in &report.findings {
        if current != Some(finding.item) {
            current = Some(finding.item);
            writeln!(out)?;
            writeln!(
                out,
                "{}",
                paint("1", &format!("{} {}", finding.item, finding.item.title()))
            )?;
        }
        let severity = format!("{:<8}", finding.severity.name());
        writeln!(
            out,
            "  {} {}  [{}]",
            paint(severity_colour(finding.severity), &severity),
            finding.title,
            finding.rule
        )?;
        let location = finding.evidence.place();
        writeln!(out, "           at {location}")?;
        for line in finding.evidence.excerpt.lines() {
            writeln!(out, "           | {line}")?;
        }
        writeln!(out, "           fix: {}", finding.fix)?;
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(report))
}

/// `3 findings: 1 high, 2 low`, or `no findings`.
pub fn summary(report: &Report) -> String {
    let counts: Vec<String> = report
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(severity, n)| format!("{n} {severity}"))
        .collect();
    match report.findings.len() {
        0 => "no findings".to_owned(),
        1 => format!("1 finding: {}", counts.join(", ")),
        n => format!("{n} findings: {}", counts.join(", ")),
    }
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1;35",
        Severity::High => "1;31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    fn render(colour: bool) -> String {
        let mut out = Vec::new();
        write(&sample(), colour, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn groups_by_item_with_evidence_and_fix() {
        let text = render(false);
        let headers = text.find("C2 Security headers").unwrap();
        let fingerprint = text.find("C3 No fingerprinting").unwrap();
        assert!(headers < fingerprint, "{text}");
        assert!(text.contains("| X-Powered-By: Express"), "{text}");
        assert!(text.contains("fix: helmet.hsts("), "{text}");
        assert!(text.ends_with("2 findings: 1 high, 1 low\n"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(render(true).contains("\x1b[1;31mhigh"));
    }
}
