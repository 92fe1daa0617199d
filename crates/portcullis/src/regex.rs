//! `portcullis regex`: the code audit's ReDoS check (C18) on its own, for
//! one pattern (`check PATTERN`), a list of them (`check --from FILE`, JSON
//! lines), or every literal pattern in a tree (`list DIR`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis_audit::code::redos::{check, check_all, js_string, Complexity, Verdict};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum RegexCommand {
    /// Whether a pattern can be made to backtrack for super-linear time,
    /// with the attack that proves it: exit 0 if safe, 1 if vulnerable, 2
    /// if invalid or not analysed.
    Check(CheckArgs),
    /// Every regular expression with a literal pattern in the JavaScript
    /// and TypeScript under DIR, as JSON lines (file, line, source, flags).
    List {
        dir: PathBuf,
        /// node_modules too.
        #[arg(long)]
        include_deps: bool,
    },
}

#[derive(Args)]
pub struct CheckArgs {
    /// The pattern, as written between the slashes of a literal.
    #[arg(required_unless_present = "from")]
    pattern: Option<String>,
    #[arg(long, default_value = "")]
    flags: String,
    /// JSON lines with "source" and "flags" (as `list` writes them): one
    /// JSON verdict per line out.
    #[arg(long, value_name = "FILE", conflicts_with = "pattern")]
    from: Option<PathBuf>,
}

pub fn run(command: RegexCommand) -> ExitCode {
    match command {
        RegexCommand::Check(args) => match (&args.from, &args.pattern) {
            (Some(file), _) => check_lines(file),
            (None, Some(pattern)) => check_one(pattern, &args.flags),
            (None, None) => ExitCode::from(2),
        },
        RegexCommand::List { dir, include_deps } => {
            let mut out = std::io::stdout().lock();
            for found in portcullis_audit::code::regexes(&dir, include_deps) {
                let line =
                    json!({"file": found.file, "line": found.line, "source": found.source, "flags": found.flags});
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
    }
}

fn check_one(pattern: &str, flags: &str) -> ExitCode {
    let shown = format!("/{pattern}/{flags}");
    match check(pattern, flags) {
        Verdict::Safe => {
            println!("{shown}: safe (no input makes it backtrack for more than linear time)");
            ExitCode::SUCCESS
        }
        Verdict::Vulnerable(attack) => {
            println!("{shown}: vulnerable, {} backtracking", attack.complexity);
            println!("  attack: {}", attack.javascript());
            println!("  proof:  {} (the matcher's count)", attack.proof);
            ExitCode::from(1)
        }
        Verdict::Invalid(why) => {
            eprintln!("{shown}: not a valid JavaScript pattern: {why}");
            ExitCode::from(2)
        }
        Verdict::NotAnalysed(why) => {
            eprintln!("{shown}: not analysed: {why}");
            ExitCode::from(2)
        }
    }
}

fn check_lines(file: &std::path::Path) -> ExitCode {
    let input = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("portcullis regex check: {}: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    let mut patterns = Vec::new();
    for (number, line) in input.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parsed = serde_json::from_str::<Value>(line).ok();
        let source = parsed.as_ref().and_then(|v| v["source"].as_str().map(str::to_owned));
        let Some(source) = source else {
            eprintln!(
                "portcullis regex check: {}:{}: not a JSON object with \"source\"",
                file.display(),
                number + 1
            );
            return ExitCode::from(2);
        };
        let flags = parsed
            .as_ref()
            .and_then(|v| v["flags"].as_str())
            .unwrap_or("")
            .to_owned();
        patterns.push((source, flags));
    }
    let mut out = std::io::stdout().lock();
    for ((source, flags), verdict) in patterns.iter().zip(check_all(&patterns)) {
        if writeln!(out, "{}", verdict_json(source, flags, verdict)).is_err() {
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn verdict_json(source: &str, flags: &str, verdict: Verdict) -> Value {
    let text = |chars: &[u32]| -> String { chars.iter().filter_map(|&c| char::from_u32(c)).collect() };
    match verdict {
        Verdict::Safe => json!({"source": source, "flags": flags, "status": "safe"}),
        Verdict::Vulnerable(attack) => json!({
            "source": source,
            "flags": flags,
            "status": "vulnerable",
            "complexity": match attack.complexity { Complexity::Exponential => "exponential", Complexity::Polynomial(_) => "polynomial" },
            "degree": match attack.complexity { Complexity::Exponential => Value::Null, Complexity::Polynomial(d) => d.into() },
            "attack": {
                "pumps": attack.pumps.iter().map(|(prefix, pump)| json!({"prefix": text(prefix), "pump": text(pump)})).collect::<Vec<_>>(),
                "suffix": text(&attack.suffix),
                "javascript": attack.javascript(),
                "suffix_javascript": js_string(&attack.suffix),
            },
        }),
        Verdict::Invalid(why) => json!({"source": source, "flags": flags, "status": "invalid", "reason": why}),
        Verdict::NotAnalysed(why) => json!({"source": source, "flags": flags, "status": "unknown", "reason": why}),
    }
}
