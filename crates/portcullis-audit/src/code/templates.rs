//! Server-side templates (C17): the outputs that skip the engine's HTML
//! escaping, where request data becomes markup. EJS's `<%- x %>`,
//! Handlebars' `{{{ x }}}`, Pug's `!{x}` and `tag!= x`. Including another
//! template (`<%- include('x') %>`) is what `<%-` is for, and passes.

use super::rules::Lines;
use crate::report::{Evidence, Finding, Item, Severity};

/// The template languages read, by file extension.
pub fn is_template(extension: &str) -> bool {
    matches!(extension, "ejs" | "hbs" | "handlebars" | "pug")
}

pub fn check(file: &str, extension: &str, text: &str) -> Vec<Finding> {
    let lines = Lines::new(text);
    let mut findings = Vec::new();
    let mut report = |offset: usize, output: &str| {
        let evidence = Evidence::in_file_at(
            file,
            lines.position(offset as u32),
            output.trim().chars().take(160).collect::<String>(),
        );
        findings.push(Finding {
            rule: "code.template-unescaped",
            item: Item::C17,
            severity: Severity::Medium,
            title: "Template output written without HTML escaping".into(),
            evidence,
            fix: "output with the escaping form (<%= x %>, {{ x }}, #{x}); where markup is meant, sanitize it first (DOMPurify, sanitize-html)".into(),
        });
    };
    match extension {
        "ejs" => {
            for (at, _) in text.match_indices("<%-") {
                let rest = &text[at + 3..];
                let output = rest.split("%>").next().unwrap_or(rest);
                if !output.trim_start().starts_with("include") {
                    report(at, &format!("<%-{output}%>"));
                }
            }
        }
        "hbs" | "handlebars" => {
            for (at, _) in text.match_indices("{{{") {
                let rest = &text[at + 3..];
                let output = rest.split("}}}").next().unwrap_or(rest);
                // A partial block ({{{> x}}}) is no output.
                if !output.trim_start().starts_with('>') {
                    report(at, &format!("{{{{{{{output}}}}}}}"));
                }
            }
        }
        "pug" => {
            for (at, _) in text.match_indices("!{") {
                let rest = &text[at + 2..];
                report(at, &format!("!{{{}", rest.split('}').next().unwrap_or(rest)));
            }
            let mut start = 0;
            for line in text.split_inclusive('\n') {
                let tag = line.trim_start();
                if let Some(position) = tag.find("!=") {
                    let before = &tag[..position];
                    // `p!= x` or `div(class="a")!= x`: an unescaped buffered tag.
                    if !before.is_empty() && !before.contains(' ') && !before.ends_with('!') {
                        report(start + (line.len() - tag.len()) + position, tag);
                    }
                }
                start += line.len();
            }
        }
        _ => {}
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(extension: &str, text: &str) -> Vec<(u32, String)> {
        check("view", extension, text)
            .into_iter()
            .map(|f| (f.evidence.line.unwrap_or(0), f.evidence.excerpt))
            .collect()
    }

    #[test]
    fn unescaped_outputs_are_found_and_includes_pass() {
        let ejs = "<%- include('header') %>\n<td><%- output.products[i].code %></td>\n<p><%= name %></p>";
        assert_eq!(rules("ejs", ejs), [(2, "<%- output.products[i].code %>".to_owned())]);
        assert_eq!(rules("hbs", "{{> nav}}\n<div>{{{ bio }}}</div>{{ safe }}").len(), 1);
        assert_eq!(rules("pug", "p!= user.bio\np= user.name\ndiv #{x} !{y}").len(), 2);
        // Lines ending in \r\n are counted as they are.
        let pug = check("view", "pug", "p= a\r\np= b\r\n  div!= c");
        assert_eq!((pug[0].evidence.line, pug[0].evidence.column), (Some(3), Some(6)));
    }
}
