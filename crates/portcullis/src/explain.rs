//! `portcullis waf explain`: what the WAF finds in a request, and why.
//!
//! Reads a raw HTTP request (a file, or `-` for stdin), or builds one from
//! `--path`, `--query`, `--form`, `--json` and `--header`, picks the route
//! the gateway would (with `--config`), and prints every finding with where
//! it was, how the value had to be decoded, and where it was assumed to
//! land; then the decision, and the exclusion that would allow the request.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use portcullis_core::path::normalize;
use portcullis_core::waf::walk::BodyKind;
use portcullis_core::waf::{exclusions_for, Mode, Waf, WafConfig};

use crate::config::{Config, Overrides};
use crate::routes::route_matches;

#[derive(Args)]
pub struct ExplainArgs {
    /// A raw HTTP/1.1 request to read (`-` for stdin).
    #[arg(value_name = "REQUEST_FILE")]
    request: Option<PathBuf>,
    /// The config whose [waf] and routes apply (default: the built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, default_value = "GET")]
    method: String,
    #[arg(long, default_value = "/")]
    path: String,
    /// A query string, as sent: `q=1%27+OR+1%3D1`.
    #[arg(long, value_name = "QUERY")]
    query: Option<String>,
    /// An urlencoded form body (makes the request a POST).
    #[arg(long, value_name = "BODY", conflicts_with = "json")]
    form: Option<String>,
    /// A JSON body (makes the request a POST).
    #[arg(long, value_name = "BODY")]
    json: Option<String>,
    /// A header, `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "HEADER")]
    headers: Vec<String>,
}

/// A request to explain, however it was given.
struct Request {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

pub fn run(args: ExplainArgs) -> ExitCode {
    let request = match read_request(&args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("portcullis waf explain: {error}");
            return ExitCode::from(2);
        }
    };
    let waf = match waf_for(&args, &request) {
        Ok(waf) => waf,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let config = waf.config();
    let kind = BodyKind::of(&request.headers);
    let body = kind.as_ref().map(|kind| {
        let limit = config.inspect_body_bytes;
        (
            kind,
            &request.body[..request.body.len().min(limit)],
            request.body.len() <= limit,
        )
    });
    let inspection = waf.inspect(&request.path, request.query.as_deref(), &request.headers, body);
    let threshold = config.threshold();
    println!(
        "{} {}{}  (level {}, blocks at score {threshold}, mode {})",
        request.method,
        request.path,
        request.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default(),
        config.level,
        match config.mode {
            Mode::Block => "block",
            Mode::Detect => "detect",
            Mode::Off => "off",
        }
    );
    if request.body.len() > config.inspect_body_bytes {
        println!(
            "  body: {} bytes, the first {} inspected",
            request.body.len(),
            config.inspect_body_bytes
        );
    }
    for finding in inspection.findings() {
        println!(
            "\n  {} at {} (score {})",
            finding.detector.name(),
            finding.location,
            finding.score
        );
        println!("    read as:  {}", finding.context);
        println!("    decoding: {}", finding.decoding);
        if !finding.fragment.is_empty() {
            println!("    fragment: {:?}", finding.fragment);
        }
    }
    let score = inspection.score();
    let blocked = config.mode != Mode::Off && score >= threshold;
    if inspection.findings().is_empty() {
        println!("\nno findings: forwarded");
    } else if !blocked {
        println!("\nscore {score} < {threshold}: forwarded");
    } else {
        let verdict = if config.mode == Mode::Block {
            "blocked (403)"
        } else {
            "forwarded and logged (detect mode)"
        };
        println!("\nscore {score} >= {threshold}: {verdict}");
        println!("\nTo let exactly this request through, add:\n");
        print!("{}", exclusions_for(inspection.findings(), &request.path));
    }
    if blocked && config.mode == Mode::Block {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The WAF of the route the gateway would pick for this request.
fn waf_for(args: &ExplainArgs, request: &Request) -> Result<Waf, String> {
    let Some(path) = &args.config else {
        return Waf::compile(WafConfig::default()).map_err(|e| e.to_string());
    };
    // The upstream does not matter here; the file may leave it to the command line.
    let overrides = Overrides {
        upstream: Some("http://127.0.0.1:9".into()),
        listen: None,
    };
    let config = Config::load(path, &overrides).map_err(|e| e.to_string())?;
    let normalized = normalize(&request.path);
    let route = config
        .routes
        .iter()
        .find(|route| route_matches(&route.path, route.methods.as_deref(), &request.method, &normalized));
    let policies = route.map_or(&config.policies, |r| &r.policies);
    Ok((*policies.waf).clone())
}

fn read_request(args: &ExplainArgs) -> Result<Request, String> {
    if let Some(file) = &args.request {
        let mut raw = Vec::new();
        let read = if file.as_os_str() == "-" {
            std::io::stdin().read_to_end(&mut raw)
        } else {
            std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut raw))
        };
        read.map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return parse_raw(&raw);
    }
    let mut headers = HeaderMap::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("`{header}` is not a header, expected `Name: value`"))?;
        headers.append(header_name(name)?, header_value(value.trim())?);
    }
    let (body, content_type) = match (&args.form, &args.json) {
        (Some(form), _) => (form.clone(), Some("application/x-www-form-urlencoded")),
        (_, Some(json)) => (json.clone(), Some("application/json")),
        _ => (String::new(), None),
    };
    if let Some(content_type) = content_type {
        headers
            .entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static(content_type));
    }
    let method = if content_type.is_some() && args.method == "GET" {
        "POST"
    } else {
        &args.method
    };
    let (path, query) = match args.path.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (args.path.clone(), args.query.clone()),
    };
    if !path.starts_with('/') {
        return Err(format!("--path `{path}` must start with `/`"));
    }
    Ok(Request {
        method: Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not an HTTP method"))?,
        path,
        query,
        headers,
        body: body.into_bytes(),
    })
}

/// `METHOD /target HTTP/1.1`, headers, a blank line, the body.
fn parse_raw(raw: &[u8]) -> Result<Request, String> {
    let split = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|at| (at, at + 4))
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|at| (at, at + 2)))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..split.0]);
    let mut lines = head.lines();
    let request_line = lines.next().ok_or("the request is empty")?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "`{request_line}` is not a request line, expected e.g. `GET /path?q=1 HTTP/1.1`"
        ));
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("`{line}` is not a header line"))?;
        headers.append(header_name(name)?, header_value(value.trim())?);
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    Ok(Request {
        method: Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not an HTTP method"))?,
        path,
        query,
        headers,
        body: raw[split.1..].to_vec(),
    })
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("`{name}` is not a header name"))
}

fn header_value(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| format!("`{value}` is not a valid header value"))
}
