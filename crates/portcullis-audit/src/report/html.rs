//! The report as one self-contained HTML page to attach to a ticket: the
//! grade (when graded), the summary and every finding, no external
//! resources, and a policy that runs no script, since evidence quotes what
//! the site sent (escaped, and inert even if it were not).

use std::io::{self, Write};

use super::{text, Report};

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let target = escape(&report.target);
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>portcullis audit: {target}</title>\n<style>{STYLE}</style></head>\n<body>\n\
         <header><h1>portcullis audit</h1><p class=\"target\">{target}</p>"
    )?;
    if let Some(scope) = &report.scope {
        write!(out, "<p class=\"scope\">{}</p>", escape(scope))?;
    }
    if let Some(grade) = &report.grade {
        write!(
            out,
            "<p class=\"grade\"><span>{}</span> score {}</p>",
            escape(&grade.grade),
            grade.score
        )?;
        if !grade.tests.is_empty() {
            write!(
                out,
                "<table class=\"tests\"><caption>Graded as the MDN HTTP Observatory grades</caption>"
            )?;
            for test in &grade.tests {
                write!(
                    out,
                    "<tr><td>{:+}</td><td>{}</td><td>{}</td></tr>",
                    test.modifier,
                    escape(test.test),
                    escape(test.result)
                )?;
            }
            write!(out, "</table>")?;
        }
    }
    writeln!(
        out,
        "</header>\n<p class=\"summary\">{}</p>",
        escape(&text::summary(report))
    )?;
    let mut current = None;
    for finding in &report.findings {
        if current != Some(finding.item) {
            if current.is_some() {
                writeln!(out, "</section>")?;
            }
            current = Some(finding.item);
            writeln!(
                out,
                "<section><h2>{} {}</h2>",
                finding.item,
                escape(finding.item.title())
            )?;
        }
        let location = finding.evidence.place();
        writeln!(
            out,
            "<article class=\"finding {severity}\"><h3><span class=\"severity\">{severity}</span> {title} <code>{rule}</code></h3>\n\
             <p class=\"where\">at {location}</p><pre>{excerpt}</pre><p class=\"fix\"><strong>Fix:</strong> {fix}</p></article>",
            severity = finding.severity.name(),
            title = escape(&finding.title),
            rule = escape(finding.rule),
            location = escape(&location),
            excerpt = escape(&finding.evidence.excerpt),
            fix = escape(&finding.fix),
        )?;
    }
    if current.is_some() {
        writeln!(out, "</section>")?;
    }
    writeln!(out, "</body></html>")
}

const STYLE: &str =
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
h1{margin:0}.target{font-family:monospace}.grade span{font-size:2.5rem;font-weight:700;margin-right:.5rem}\
h2{border-bottom:1px solid #ccc;margin-top:2rem}h3{font-size:1rem;margin:.25rem 0}code{color:#555}\
.finding{border-left:4px solid #999;padding:.25rem .75rem;margin:1rem 0}\
.severity{text-transform:uppercase;font-size:.75rem;font-weight:700;margin-right:.5rem}\
.critical{border-color:#7b1fa2}.high{border-color:#c62828}.medium{border-color:#ef6c00}.low{border-color:#0277bd}\
pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;white-space:pre-wrap}";

/// Text as HTML text or a quoted attribute value.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn every_finding_is_on_the_page_and_what_the_site_sent_is_escaped() {
        let mut report = sample();
        report.findings[0].evidence.excerpt = "<script>alert(1)</script>".into();
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("default-src 'none'"));
        for finding in &report.findings {
            assert!(page.contains(&escape(&finding.title)), "{}", finding.title);
        }
        assert!(page.contains("2 findings: 1 high, 1 low"));
    }
}
