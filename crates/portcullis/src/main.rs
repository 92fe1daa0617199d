//! portcullis: a secure-by-default gateway in front of Node.js/Express apps.

mod config;
mod demo;
mod forwarded;
mod log;
mod proxy;
mod routes;
mod server;
mod stack;
mod timeouts;

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
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file: exit 0 if it is valid, 1 with the reason if not.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Start the bundled example Express app with portcullis in front of it.
    Demo {
        /// The example app's directory (default: examples/express-app of this checkout).
        #[arg(long, value_name = "DIR")]
        app_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portcullis: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        Some(Command::Demo { app_dir }) => runtime.block_on(demo::run(app_dir)),
        None => runtime.block_on(run(cli.run)),
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

async fn run(args: RunArgs) -> ExitCode {
    let overrides = Overrides {
        upstream: args.upstream,
        listen: args.listen,
    };
    let config = match &args.config {
        Some(path) => Config::load(path, &overrides),
        None => Config::from_overrides(&overrides),
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("portcullis: refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match server::bind(config.server.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("portcullis: cannot listen on {}: {error}", config.server.listen);
            return ExitCode::FAILURE;
        }
    };
    serve(config, listener, shutdown_signal()).await
}

/// Serves on `listener` (from [`server::bind`]) until `shutdown`, then drains.
async fn serve(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> ExitCode {
    let log = JsonLog;
    let address = listener
        .local_addr()
        .map_or_else(|_| config.server.listen.to_string(), |a| a.to_string());
    log.notice(
        "listening",
        Some(format!("http://{address} -> http://{}", config.upstream.authority)),
    );
    match server::serve(config, listener, shutdown).await {
        Ok(true) => log.notice("stopped", None),
        Ok(false) => log.notice("stopped before every request finished", None),
        Err(error) => {
            log.notice("failed", Some(error.to_string()));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
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
