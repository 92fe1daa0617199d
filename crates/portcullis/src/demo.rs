//! `portcullis demo`: the example Express app, unprotected and behind the
//! gateway, side by side, so a newcomer can compare the two.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use crate::config::{Config, Overrides};

pub async fn run(app_dir: Option<PathBuf>) -> ExitCode {
    match start(app_dir).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("portcullis demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(app_dir: Option<PathBuf>) -> Result<ExitCode, String> {
    let dir = app_dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/express-app"));
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("cannot find the example app at {}: {e}", dir.display()))?;
    install_dependencies(&dir).await?;

    let app_port = free_port().await?;
    let mut app = Command::new("node")
        .arg("app.js")
        .current_dir(&dir)
        .env("PORT", app_port.to_string())
        .env("HOST", "127.0.0.1")
        // Express shows stack traces unless NODE_ENV=production: the demo shows what leaks.
        .env_remove("NODE_ENV")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start node (is Node.js installed?): {e}"))?;
    wait_for_port(app_port).await?;

    let overrides = Overrides {
        upstream: Some(format!("http://127.0.0.1:{app_port}")),
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
    };
    let (config, password, users_dir) = demo_config(&overrides)?;
    let listener =
        crate::server::Listeners::bind(config.server.listen, config.server.workers.get()).map_err(|e| e.to_string())?;
    let gateway: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;

    println!(
        "\nportcullis demo\n\n  example app, unprotected:  http://127.0.0.1:{app_port}/\n  the same app, protected:   http://{gateway}/\n\n\
         Compare, for instance:\n  curl -i http://127.0.0.1:{app_port}/boom     # stack trace, X-Powered-By\n  curl -i http://{gateway}/boom     # neutral 500, security headers\n  curl -i http://{gateway}/no-such-page\n  \
         curl -i \"http://127.0.0.1:{app_port}/echo?q=%27%20OR%201%3D1--\"     # the app takes it in\n  \
         curl -i \"http://{gateway}/echo?q=%27%20OR%201%3D1--\"     # the WAF refuses it: 403\n  \
         curl http://127.0.0.1:{app_port}/api/users     # password hashes and reset tokens\n  \
         curl http://{gateway}/api/users     # removed\n  \
         open http://{gateway}/admin in a browser: the login portal (user `admin`, password `{password}`)\n\n\
         Press Ctrl-C to stop both. Gateway log lines (JSON) follow.\n"
    );
    // Its config is not read from a file: there is nothing to reload.
    let source = crate::instance::Source { path: None, overrides };
    let sockets = crate::instance::Sockets {
        listeners: listener,
        redirect: None,
        metrics: None,
    };
    let code = crate::serve(source, config, sockets).await;
    let _ = app.kill().await;
    let _ = std::fs::remove_dir_all(users_dir);
    Ok(code)
}

/// The defaults, with the example's admin page behind the portal: one user,
/// `admin`, with a random password, in a users file of the demo's own.
fn demo_config(overrides: &Overrides) -> Result<(Config, String, std::path::PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let password = portcullis_core::session::random_hex::<8>().map_err(|e| e.to_string())?;
    let hash = crate::portal::password::hash(&password)?;
    let users = dir.join("users.toml");
    crate::portal::users::edit(&users, "admin", |table| {
        table["password"] = toml_edit::value(hash);
        table["groups"] = toml_edit::value(toml_edit::Array::from_iter(["admin"]));
    })?;
    let text = format!(
        "[portal]\nusers = {:?}\nsecond_factor = \"optional\"\n\n[[access]]\npath = \"/admin\"\ngroups = [\"admin\"]\n",
        users.display().to_string()
    );
    let config = Config::parse(&text, "demo config", overrides).map_err(|e| e.to_string())?;
    Ok((config, password, dir))
}

/// Runs `npm ci` once, when `node_modules` is missing.
async fn install_dependencies(dir: &Path) -> Result<(), String> {
    if dir.join("node_modules").is_dir() {
        return Ok(());
    }
    eprintln!("portcullis demo: installing the example app's dependencies (npm ci)...");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .await
        .map_err(|e| format!("cannot run npm (is Node.js installed?): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm ci failed in {} ({status})", dir.display()))
    }
}

async fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

async fn wait_for_port(port: u16) -> Result<(), String> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the example app did not start listening on port {port}"))
}
