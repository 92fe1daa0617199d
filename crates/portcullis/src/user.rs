//! `portcullis user`: the portal's users file, from the command line.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::portal::{password, qr_terminal, totp, users};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user, or set a user's password and groups; the password is
    /// prompted for (not echoed), or read from standard input.
    Add(AddArgs),
    /// Enrol a TOTP authenticator: writes a new secret and prints its
    /// otpauth:// URI and QR code.
    Totp(FileArgs),
    /// Remove a user.
    Remove(FileArgs),
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Groups, comma-separated (replaces the user's groups).
    #[arg(long, value_delimiter = ',')]
    groups: Option<Vec<String>>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Shortest password accepted (NIST SP 800-63B asks for at least 8).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(8..))]
    min_length: u16,
}

#[derive(Args)]
pub struct FileArgs {
    /// The user's name.
    name: String,
    /// The users file.
    #[arg(long, value_name = "FILE", default_value = "users.toml")]
    users: PathBuf,
    /// The name authenticator apps show beside the user's.
    #[arg(long, default_value = "portcullis", hide = true)]
    issuer: String,
}

pub fn run(command: UserCommand) -> ExitCode {
    let outcome = match command {
        UserCommand::Add(args) => add(&args),
        UserCommand::Totp(args) => enrol(&args),
        UserCommand::Remove(args) => remove(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portcullis user: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_password(args: &AddArgs) -> Result<String, String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
    let again = rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
    if first != again {
        return Err("the two passwords differ".into());
    }
    Ok(first)
}

fn add(args: &AddArgs) -> Result<(), String> {
    let name = &args.file.name;
    users::check_name(name).map_err(|m| format!("a user name must be {m}"))?;
    for group in args.groups.iter().flatten() {
        users::check_name(group).map_err(|m| format!("a group name must be {m}"))?;
    }
    let password = read_password(args)?;
    if let Some(weakness) = password::weakness(&password, name, usize::from(args.min_length)) {
        return Err(format!("password refused: {weakness}"));
    }
    let hash = password::hash(&password)?;
    let groups = args.groups.clone();
    users::edit(&args.file.users, name, |table| {
        table["password"] = toml_edit::value(hash);
        if let Some(groups) = groups {
            table["groups"] = toml_edit::value(toml_edit::Array::from_iter(groups));
        }
    })?;
    println!("{name}: password set in {}", args.file.users.display());
    Ok(())
}

fn existing(path: &Path, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let known = users::parse(&text, path).map_err(|e| e.to_string())?;
    match known.contains_key(name) {
        true => Ok(()),
        false => Err(format!("no user `{name}` in {}: add it first", path.display())),
    }
}

fn enrol(args: &FileArgs) -> Result<(), String> {
    existing(&args.users, &args.name)?;
    let secret = totp::new_secret()?;
    let encoded = totp::encode_secret(&secret);
    users::edit(&args.users, &args.name, |table| {
        table["totp"] = toml_edit::value(encoded.clone())
    })?;
    let uri = totp::uri(&secret, &args.name, &args.issuer)?;
    println!("{}", qr_terminal(&uri));
    println!("{uri}");
    println!("{}: TOTP secret written to {}", args.name, args.users.display());
    Ok(())
}

fn remove(args: &FileArgs) -> Result<(), String> {
    existing(&args.users, &args.name)?;
    let text = std::fs::read_to_string(&args.users).map_err(|e| e.to_string())?;
    let mut document: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    document.remove(&args.name);
    std::fs::write(&args.users, document.to_string()).map_err(|e| e.to_string())?;
    println!("{}: removed from {}", args.name, args.users.display());
    Ok(())
}
