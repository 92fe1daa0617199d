//! `portcullis audit URL` (the checklist verified against a live site) and
//! `portcullis audit PATH` (a Node.js project checked from its files),
//! printed as text, JSON, SARIF or HTML. Exit code 0, or 1 when a finding
//! reaches `--fail-on`, or 2 when the audit could not run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use portcullis_audit::advisories::{default_location, Advisories, Database};
use portcullis_audit::report::{html, json, sarif, text, Severity};
use portcullis_audit::url::{audit, Login, Options};

#[derive(Args)]
pub struct AuditArgs {
    /// The site (`https://example.com/`, `http://127.0.0.1:3000/`), or a
    /// Node.js project's directory (`./my-app`).
    target: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a finding is this severe or worse: info, low, medium,
    /// high, critical.
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    fail_on: Severity,
    /// A PEM file of CAs to trust besides the system's (for a private or
    /// development CA, such as `portcullis cert self-signed` writes).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Seconds each request may take.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// The most requests the audit sends.
    #[arg(long, value_name = "N", default_value_t = 200)]
    max_requests: usize,
    /// The most pages the crawl visits.
    #[arg(long, value_name = "N", default_value_t = 50)]
    max_pages: usize,
    /// Requests per second, at most.
    #[arg(long, value_name = "N", default_value_t = 10.0)]
    rate: f64,
    /// Where to find the site over plain HTTP, when the target is HTTPS (its
    /// redirect is graded).
    #[arg(long, value_name = "PORT", default_value_t = 80)]
    http_port: u16,
    /// Where to find the site over HTTPS, when the target is plain HTTP (a
    /// site that answers there is graded over HTTPS, as the Observatory does).
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    https_port: u16,
    /// A directory of OSV advisory records (such as the GitHub Advisory
    /// Database's) to check the front-end libraries against. Default:
    /// $PORTCULLIS_ADVISORIES, else ~/.local/share/portcullis/advisories.
    #[arg(long, value_name = "DIR")]
    advisories: Option<PathBuf>,
    /// Also the probes that load the site or hold a connection (C9): a
    /// burst, a request head sent slowly, a declared oversized body.
    #[arg(long)]
    active: bool,
    /// Requests of the --active burst.
    #[arg(long, value_name = "N", default_value_t = 150)]
    burst: usize,
    /// Seconds the --active slow request head trickles before it counts as
    /// not cut.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    slow_secs: u64,
    /// With --active: a login form's path, failed --login-attempts times for
    /// one random username to see whether a block comes (C8).
    #[arg(long, value_name = "PATH", requires = "active")]
    login: Option<String>,
    #[arg(long, value_name = "FIELD", default_value = "username")]
    username_field: String,
    #[arg(long, value_name = "FIELD", default_value = "password")]
    password_field: String,
    #[arg(long, value_name = "N", default_value_t = 12)]
    login_attempts: usize,
    /// For a project: read the code in node_modules too (its ReDoS and
    /// other code findings), not only the project's own.
    #[arg(long)]
    include_deps_code: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
    /// One self-contained page, to attach to a ticket.
    Html,
}

impl AuditArgs {
    /// A URL (of any scheme: the URL audit says which it takes), not a path.
    pub fn is_url(&self) -> bool {
        self.target.contains("://")
    }
}

/// `portcullis audit URL`.
pub async fn run(args: AuditArgs) -> ExitCode {
    let cacert = match &args.cacert {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(error) => {
                eprintln!("portcullis audit: --cacert {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let Some(advisories) = load_advisories(&args) else {
        return ExitCode::from(2);
    };
    let (format, fail_on) = (args.format, args.fail_on);
    let options = Options {
        timeout: Duration::from_secs(args.timeout),
        max_requests: args.max_requests,
        max_pages: args.max_pages,
        rate: args.rate,
        http_port: args.http_port,
        https_port: args.https_port,
        cacert,
        active: args.active,
        burst: args.burst,
        slow_secs: args.slow_secs,
        login: args.login.map(|path| Login {
            path,
            username_field: args.username_field,
            password_field: args.password_field,
            attempts: args.login_attempts,
        }),
        advisories,
        ..Options::default()
    };
    let outcome = audit(&args.target, &options).await.map_err(|e| e.to_string());
    finish(outcome, format, fail_on)
}

/// `portcullis audit PATH`: files only, no async runtime.
pub fn run_project(args: AuditArgs) -> ExitCode {
    let Some(advisories) = load_advisories(&args) else {
        return ExitCode::from(2);
    };
    let outcome =
        portcullis_audit::project::audit(std::path::Path::new(&args.target), &advisories, args.include_deps_code)
            .map_err(|e| e.to_string());
    finish(outcome, args.format, args.fail_on)
}

fn load_advisories(args: &AuditArgs) -> Option<Advisories> {
    advisories(args.advisories.as_deref())
        .map_err(|error| eprintln!("portcullis audit: --advisories {error}"))
        .ok()
}

/// Writes the report in `format`; the exit code for `fail_on`.
fn finish(outcome: Result<portcullis_audit::report::Report, String>, format: Format, fail_on: Severity) -> ExitCode {
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            eprintln!("portcullis audit: {error}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Stdout is line-buffered: a report is hundreds of lines.
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        Format::Text => text::write(&report, colour, &mut out),
        Format::Json => json::write(&report, &mut out),
        Format::Sarif => sarif::write(&report, &mut out),
        Format::Html => html::write(&report, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        // The reader (`| head`) has what it wanted.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => {
            eprintln!("portcullis audit: cannot write the report: {error}");
            return ExitCode::from(2);
        }
        Ok(()) => {}
    }
    ExitCode::from(report.exit_code(fail_on))
}

/// The given directory, which must load; else the default location, if
/// there is one.
fn advisories(given: Option<&std::path::Path>) -> Result<Advisories, portcullis_audit::advisories::LoadError> {
    if let Some(dir) = given {
        return Database::load(dir).map(Advisories::Loaded);
    }
    match default_location() {
        Some(dir) if dir.is_dir() => Database::load(&dir).map(Advisories::Loaded),
        Some(dir) => Ok(Advisories::Missing(dir)),
        None => Ok(Advisories::Off),
    }
}

/// `portcullis advisories update`: exit 0 with what was written, or 2.
pub async fn update(from: &str, to: Option<PathBuf>) -> ExitCode {
    let Some(dir) = to.or_else(default_location) else {
        eprintln!("portcullis advisories update: no default location (HOME is not set): give --to DIR");
        return ExitCode::from(2);
    };
    match portcullis_audit::advisories::update(from, &dir).await {
        Ok((path, records)) => {
            println!("wrote {} ({records} advisories)", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis advisories update: {error}");
            ExitCode::from(2)
        }
    }
}
