//! portcullis: a secure-by-default gateway in front of Node.js/Express apps.

mod alerts;
mod audit;
mod config;
mod dashboard;
mod demo;
mod explain;
mod forwarded;
mod heads;
mod idle;
mod init;
mod instance;
mod log;
mod metrics;
mod pool;
mod portal;
mod privileges;
mod proxy;
mod regex;
mod reload;
mod routes;
mod server;
mod stack;
mod timeouts;
mod tls;
mod tunnel;
mod user;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use config::{Config, Overrides};
use log::JsonLog;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A secure-by-default gateway in front of web apps"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Config file (TOML); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The app to protect, e.g. http://127.0.0.1:3000.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Keep running as root when started as root and unable to drop to
    /// [server] user/group (not recommended).
    #[arg(long)]
    allow_root: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file: exit 0 if it is valid, 1 with the reason if not.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Certificates for development.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The WAF's view of requests.
    #[command(subcommand)]
    Waf(WafCommand),
    /// Check a live site against the production checklist: exit 0, 1 when a
    /// finding reaches --fail-on, 2 when the audit could not run.
    Audit(audit::AuditArgs),
    /// The advisory database the audits read.
    #[command(subcommand)]
    Advisories(AdvisoriesCommand),
    /// The ReDoS check of the code audit, on given patterns or a tree.
    #[command(subcommand)]
    Regex(regex::RegexCommand),
    /// Check the running gateway's config, then have it reload (SIGHUP
    /// through its pid file): exit 0 if sent, 1 if the config is invalid.
    Reload(reload::ReloadArgs),
    /// Ask a running gateway's metrics listener whether it is healthy: exit
    /// 0 if it answers 200, 1 if not (for container health checks).
    Healthcheck {
        /// The `[metrics] listen` address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        address: SocketAddr,
    },
    /// Write a commented starter config for an app on a given port.
    Init(init::InitArgs),
    /// The login portal's users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Start the bundled example Express app with portcullis in front of it.
    Demo {
        /// The example app's directory (default: examples/express-app of this checkout).
        #[arg(long, value_name = "DIR")]
        app_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdvisoriesCommand {
    /// Download every npm advisory (OSV's npm all.zip) into the default
    /// location, or --to DIR.
    Update {
        #[arg(long, value_name = "URL", default_value = portcullis_audit::advisories::OSV_NPM_ZIP)]
        from: String,
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum WafCommand {
    /// Print every finding in a request, with its decoding and context, and
    /// the decision: exit 0 if it would be forwarded, 1 if blocked, 2 on a
    /// usage error.
    Explain(explain::ExplainArgs),
}

#[derive(Subcommand)]
enum CertCommand {
    /// Write a local CA (ca.pem, for clients to trust) and a certificate it
    /// signed (cert.pem, key.pem, for [tls]).
    SelfSigned {
        /// A name or IP address the certificate is for; repeat for several.
        #[arg(long = "host", value_name = "NAME", required = true)]
        hosts: Vec<String>,
        /// Directory to write the files to.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

// Requests allocate and free many small, short-lived values on each worker
// thread; mimalloc's per-thread free lists serve them in a fraction of
// glibc's instructions (docs/benchmarks.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        Some(Command::Cert(CertCommand::SelfSigned { hosts, out })) => self_signed(&hosts, &out),
        Some(Command::Demo { app_dir }) => with_runtime(demo::run(app_dir)),
        Some(Command::Waf(WafCommand::Explain(args))) => explain::run(args),
        // A project's audit reads files only: no worker threads to start.
        Some(Command::Audit(args)) if !args.is_url() => audit::run_project(args),
        Some(Command::Audit(args)) => with_runtime(audit::run(args)),
        Some(Command::Advisories(AdvisoriesCommand::Update { from, to })) => with_runtime(audit::update(&from, to)),
        Some(Command::Regex(command)) => regex::run(command),
        Some(Command::User(command)) => user::run(command),
        Some(Command::Init(args)) => init::run(args),
        Some(Command::Reload(args)) => reload::run(args),
        Some(Command::Healthcheck { address }) => healthcheck(address),
        None => with_runtime(run(cli.run)),
    }
}

/// Runs `work` on a multi-threaded async runtime, started for it.
fn with_runtime(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => {
            eprintln!("portcullis: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path, &Overrides::default()) {
        Ok(_) => {
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn healthcheck(address: SocketAddr) -> ExitCode {
    match metrics::listener::probe(address) {
        Ok(body) => {
            println!("healthy: {body}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("portcullis: unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn self_signed(hosts: &[String], out: &std::path::Path) -> ExitCode {
    match tls::self_signed::write(hosts, out) {
        Ok(written) => {
            println!(
                "wrote {} (trust this CA in clients), {} and {} (for [tls] cert and key)",
                written.ca.display(),
                written.cert.display(),
                written.key.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let source = instance::Source {
        path: args.config,
        overrides: Overrides {
            upstream: args.upstream,
            listen: args.listen,
        },
    };
    let config = match source.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("portcullis: refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let sockets = match instance::Sockets::bind(&config) {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("portcullis: {error}");
            return ExitCode::FAILURE;
        }
    };
    let pid_file = match config.server.pid_file.as_deref().map(reload::PidFile::write) {
        Some(Err(error)) => {
            eprintln!("portcullis: [server] pid_file: {error}");
            return ExitCode::FAILURE;
        }
        written => written.map(Result::ok),
    };
    // Every port is bound: root is no longer needed.
    if let Err(reason) = drop_root(&config, args.allow_root) {
        eprintln!("portcullis: refusing to serve: {reason}");
        return ExitCode::FAILURE;
    }
    let code = serve(source, config, sockets).await;
    drop(pid_file);
    code
}

/// Serves `config` on `listeners` until SIGTERM or SIGINT, then drains;
/// on SIGHUP, reads the config again from `source` and puts it in force.
async fn serve(source: instance::Source, config: Config, sockets: instance::Sockets) -> ExitCode {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let address = sockets
        .listeners
        .local_addr()
        .map_or_else(|_| config.server.listen.to_string(), |a| a.to_string());
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let upstream = config.upstream.authority.to_string();
    let running = match server::Running::new(config) {
        Ok(running) => running,
        Err(error) => {
            eprintln!("portcullis: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (instance, running, listeners) = instance::Instance::start(source, running, sockets);
    tokio::spawn(instance.run(stopping.clone()));
    JsonLog.notice("listening", Some(format!("{scheme}://{address} -> http://{upstream}")));
    let mut stopped = stopping;
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    match server::serve(running, listeners, shutdown).await {
        Ok(true) => JsonLog.notice("stopped", None),
        Ok(false) => JsonLog.notice("stopped before every request finished", None),
        Err(error) => {
            JsonLog.notice("failed", Some(error.to_string()));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Switches from root to `[server] user` and `group` (see privileges.rs),
/// handing the ACME storage over first.
fn drop_root(config: &Config, allow_root: bool) -> Result<(), String> {
    let acme = config.tls.as_ref().and_then(|tls| tls.acme.as_ref());
    let hand_over: Vec<&std::path::Path> = acme.map(|acme| acme.storage.as_path()).into_iter().collect();
    let server = &config.server;
    match privileges::drop_root(&server.user, &server.group, allow_root, &hand_over)? {
        privileges::Outcome::NotRoot => {}
        privileges::Outcome::Dropped { user, group } => {
            JsonLog.notice("dropped root", Some(format!("running as {user}:{group}")))
        }
        privileges::Outcome::KeptRoot { reason } => JsonLog.notice("running as root (--allow-root)", Some(reason)),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // No SIGTERM handler: Ctrl-C still works.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
