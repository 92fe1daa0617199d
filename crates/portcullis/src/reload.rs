//! `portcullis reload`: checks the config the running gateway reads, then
//! asks it to reload (SIGHUP to the process its pid file names), as
//! `nginx -t && nginx -s reload` does. The gateway logs `config reloaded`, or
//! a `config`/`reload` event saying why it kept the config in force.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::{Config, Overrides};

#[derive(Args)]
pub struct ReloadArgs {
    /// The config file the gateway was started with: checked first, and read
    /// for its `[server] pid_file`.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The pid file, when the config names none.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

pub fn run(args: ReloadArgs) -> ExitCode {
    let config = match Config::load(&args.config, &Overrides::default()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("portcullis: not reloading: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Some(pid_file) = args.pid_file.or(config.server.pid_file) else {
        eprintln!("portcullis: no pid file: set [server] pid_file in the config, or pass --pid-file");
        return ExitCode::from(2);
    };
    match signal(&pid_file) {
        Ok(pid) => {
            println!(
                "{}: valid; sent SIGHUP to process {pid} ({}): it logs \"config reloaded\", or why it kept its config",
                args.config.display(),
                pid_file.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis: {error}");
            ExitCode::from(2)
        }
    }
}

fn signal(pid_file: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| format!("cannot read {}: {e}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| format!("{} holds no process id", pid_file.display()))?;
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|e| format!("cannot signal process {pid} (from {}): {e}", pid_file.display()))?;
    Ok(pid)
}

/// The running gateway's pid file: written at start, removed at exit.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn write(path: &Path) -> Result<Self, String> {
        let text = format!("{}\n", std::process::id());
        crate::tls::write_file(path, &text, 0o644)?;
        Ok(Self(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // After dropping root the directory may no longer be writable: a
        // stale file names a process that is gone, which `reload` reports.
        let _ = std::fs::remove_file(&self.0);
    }
}
