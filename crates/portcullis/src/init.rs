//! `portcullis init`: a commented starter config for one app.
//!
//! Every section appears, with the keys people change most often written
//! out at their defaults and commented (`# key = value`), so the file works
//! as it is and each relaxation is one uncommented line. docs/defaults.md
//! lists every key.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct InitArgs {
    /// The port the app listens on (on 127.0.0.1).
    #[arg(long, value_name = "PORT", default_value_t = 3000)]
    app_port: u16,
    /// Where to write the config.
    #[arg(long, value_name = "FILE", default_value = "portcullis.toml")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

const TEMPLATE: &str = r#"# portcullis.toml: written by `portcullis init`. With only [upstream] set,
# every item of the checklist is on with its secure default; the commented
# lines show those defaults. Every key: docs/defaults.md.
# Check a change with `portcullis check --config portcullis.toml`.

# Proxies in front of portcullis whose X-Forwarded-For may be believed.
# trusted_proxies = ["10.0.0.0/8"]

[upstream]
url = "http://127.0.0.1:{APP_PORT}"
# response_timeout = "60s"

[server]
# listen = "127.0.0.1:8080"
# max_connections_per_ip = 256
# user = "nobody"
# group = "nogroup"
# For `portcullis reload` (SIGHUP reloads the whole config):
# pid_file = "/run/portcullis.pid"

[tls]
# Certificate files (PEM), reloaded when they change:
# cert = "/etc/portcullis/cert.pem"
# key = "/etc/portcullis/key.pem"
# Or certificates from Let's Encrypt:
# [tls.acme]
# domains = ["example.com"]
# email = "ops@example.com"

[headers]
# content_security_policy.directives.script-src = ["'self'", "https://cdn.example.com"]
# x_frame_options = "SAMEORIGIN"

[errors]
# replace_leaking_errors = true

[limits]
# max_body_bytes = 1048576

[cookies]
# rename = ["connect.sid", "session", "session.sig", "JSESSIONID", "PHPSESSID", "laravel_session"]

[csrf]
# enabled = true

[rate_limit]
# requests = 600
# window_secs = 60
# burst = 120

[waf]
# mode = "block"
# level = 1

[filter]
# mode = "remove"
# extra_fields = ["ssn"]

[store]
# Several gateways share limits and sessions through Redis:
# redis = "redis://127.0.0.1:6379"
# on_error = "fail_open"

[log]
# access = true

# Brute-force protection for the app's own login form:
# [[login]]
# path = "/login"
# username_field = "username"

# An admin area behind the login portal (users: `portcullis user add NAME`):
# [[access]]
# path = "/admin"
# groups = ["admin"]
#
# [portal]
# users = "users.toml"

# Prometheus metrics, /healthz and the live dashboard, on loopback:
[metrics]
# listen = "127.0.0.1:9464"

# Alerts when one client keeps failing logins or tripping the WAF:
# [alerts]
# webhook = "https://hooks.slack.com/services/..."
# format = "slack"

# A route with its own policies:
# [[route]]
# name = "upload"
# path = "/upload"
# methods = ["POST"]
# [route.limits]
# max_body_bytes = 52428800
"#;

pub fn starter(app_port: u16) -> String {
    TEMPLATE.replace("{APP_PORT}", &app_port.to_string())
}

pub fn run(args: InitArgs) -> ExitCode {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options
        .open(&args.out)
        .and_then(|mut file| file.write_all(starter(args.app_port).as_bytes()));
    match written {
        Ok(()) => {
            println!(
                "wrote {} for an app on 127.0.0.1:{}; run: portcullis --config {}",
                args.out.display(),
                args.app_port,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("portcullis init: {} exists; --force replaces it", args.out.display());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("portcullis init: cannot write {}: {error}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    /// Every `# key = value` line made active, and comment lines dropped.
    fn uncommented(text: &str) -> String {
        text.lines()
            .filter_map(|line| {
                let Some(rest) = line.strip_prefix("# ") else {
                    return Some(line.to_owned());
                };
                let key = rest.split([' ', '=']).next().unwrap_or("");
                let setting = rest.contains(" = ") || rest.starts_with('[');
                let key_like = key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.[]".contains(c));
                (setting && key_like && !key.is_empty()).then(|| rest.to_owned())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_starter_loads_and_equals_the_defaults() {
        let text = starter(3999);
        let config = Config::parse(&text, "portcullis.toml", &Overrides::default()).unwrap();
        let defaults = Config::parse(
            "[upstream]\nurl = \"http://127.0.0.1:3999\"\n",
            "f",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.upstream.authority, "127.0.0.1:3999");
        assert_eq!(format!("{:?}", config.server), format!("{:?}", defaults.server));
        assert!(config.access.is_none() && config.portal.is_none() && config.logins.is_none());
    }

    #[test]
    fn every_commented_key_is_a_real_key_with_a_valid_value() {
        // Example values the defaults do not have, put back to what loads here.
        let text = uncommented(&starter(3999))
            .replace("cert = \"/etc/portcullis/cert.pem\"\n", "")
            .replace("key = \"/etc/portcullis/key.pem\"\n", "")
            .replace("pid_file = \"/run/portcullis.pid\"\n", "")
            .replace("users = \"users.toml\"", "users = \"/nonexistent/users.toml\"");
        let text = text.split("[tls.acme]").next().unwrap().to_owned() + &text[text.find("[headers]").unwrap()..];
        let result = Config::parse(&text, "portcullis.toml", &Overrides::default());
        let config = result.unwrap_or_else(|e| panic!("{e}\n{text}"));
        let defaults = Config::parse(
            "[upstream]\nurl = \"http://127.0.0.1:3999\"\n",
            "f",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            format!("{:?}", config.server),
            format!("{:?}", defaults.server),
            "commented values are the defaults"
        );
        assert_eq!(
            config.policies.limits.config().max_body_bytes,
            defaults.policies.limits.config().max_body_bytes
        );
        assert!(config.access.is_some() && config.alerts_webhook.is_some());
    }
}
