//! The users file (`users.toml`): one table per user.
//!
//! ```toml
//! [ada]
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! groups = ["admin"]
//! totp = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"   # base32, written by `portcullis user totp`
//! ```
//!
//! Read when the gateway starts (a bad entry refuses to start, naming file,
//! line and key) and again whenever the file changes, so `portcullis user
//! add` takes effect without a restart; a change that does not load keeps
//! the users in force and says why. Written through `toml_edit`, keeping
//! comments, by a rename over the old file, so no reader sees half a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;
use toml_edit::{DocumentMut, Item};

use super::password;
use super::totp;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub groups: Vec<String>,
    /// The TOTP secret's bytes, when one is enrolled.
    pub totp: Option<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    password: String,
    #[serde(default)]
    groups: Vec<String>,
    totp: Option<String>,
}

/// An error in the users file, pointing at its line.
#[derive(Debug)]
pub struct UsersError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for UsersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Names and groups go into headers and events: a plain set of characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!("`{name}`: 1 to 64 letters, digits, `.`, `_`, `@` or `-`"));
    }
    Ok(())
}

/// Parses the text of a users file.
pub fn parse(text: &str, path: &Path) -> Result<HashMap<String, User>, UsersError> {
    let document: toml_edit::Document<&str> = toml_edit::Document::parse(text).map_err(|e| UsersError {
        path: path.to_owned(),
        line: e.span().map(|span| text[..span.start].matches('\n').count() + 1),
        key: None,
        message: e.message().to_owned(),
    })?;
    let line_of = |user: &str, key: Option<&str>| {
        let (name, item) = document.as_table().get_key_value(user)?;
        let span = match key.and_then(|key| item.as_table_like()?.get_key_value(key)) {
            Some((key, _)) => key.span(),
            None => name.span(),
        }?;
        Some(text[..span.start].matches('\n').count() + 1)
    };
    let error = |user: &str, key: Option<&str>, message: String| UsersError {
        path: path.to_owned(),
        line: line_of(user, key),
        key: Some(key.map_or(user.to_owned(), |key| format!("{user}.{key}"))),
        message,
    };
    let table: HashMap<String, toml::Value> = toml::from_str(text).map_err(|e| UsersError {
        path: path.to_owned(),
        line: None,
        key: None,
        message: e.to_string(),
    })?;
    let mut users = HashMap::new();
    for (name, value) in table {
        check_name(&name).map_err(|m| error(&name, None, format!("a user name must be {m}")))?;
        let entry: Entry = value.try_into().map_err(|e: toml::de::Error| {
            error(&name, None, format!("{} (keys: password, groups, totp)", e.message()))
        })?;
        password::check_hash(&entry.password).map_err(|m| error(&name, Some("password"), m))?;
        for group in &entry.groups {
            check_name(group).map_err(|m| error(&name, Some("groups"), format!("a group name must be {m}")))?;
        }
        let totp = match &entry.totp {
            Some(secret) => Some(totp::decode_secret(secret).map_err(|m| error(&name, Some("totp"), m))?),
            None => None,
        };
        users.insert(
            name.clone(),
            User {
                name,
                password: entry.password,
                groups: entry.groups,
                totp,
            },
        );
    }
    Ok(users)
}

/// The users file, read again when it changes.
pub struct UsersFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    modified: Option<SystemTime>,
    users: Arc<HashMap<String, User>>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl UsersFile {
    /// Reads `path`; a missing file is no users (the portal then admits nobody).
    pub fn open(path: &Path) -> Result<Self, UsersError> {
        let users = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            loaded: Mutex::new(Loaded {
                modified: modified(path),
                users: Arc::new(users),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users now, reread if the file changed. A change that does not
    /// load is reported once and the previous users stay.
    pub fn current(&self) -> (Arc<HashMap<String, User>>, Option<UsersError>) {
        let now = modified(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if now == loaded.modified {
            return (loaded.users.clone(), None);
        }
        loaded.modified = now;
        match read(&self.path) {
            Ok(users) => {
                loaded.users = Arc::new(users);
                (loaded.users.clone(), None)
            }
            Err(error) => (loaded.users.clone(), Some(error)),
        }
    }
}

fn read(path: &Path) -> Result<HashMap<String, User>, UsersError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(error) => Err(UsersError {
            path: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the users file: {error}"),
        }),
    }
}

const NEW_FILE_HEADER: &str = "# portcullis users: written by `portcullis user add` and `portcullis user totp`.\n\n";

/// Changes one user's entry in the file at `path` (created if missing),
/// keeping everything else as written.
pub fn edit(path: &Path, user: &str, change: impl FnOnce(&mut toml_edit::Table)) -> Result<(), String> {
    let (text, header) = match std::fs::read_to_string(path) {
        Ok(text) => (text, ""),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => (String::new(), NEW_FILE_HEADER),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let mut document: DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not TOML: {e}", path.display()))?;
    let entry = document.entry(user).or_insert(Item::Table(toml_edit::Table::new()));
    let Some(table) = entry.as_table_mut() else {
        return Err(format!("{}: `{user}` is not a table", path.display()));
    };
    change(table);
    // Parsed back before it replaces the old file: a write never breaks it.
    let written = format!("{header}{document}");
    parse(&written, path).map_err(|e| e.to_string())?;
    let temporary = path.with_extension("toml.tmp");
    write_private(&temporary, &written).map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

/// Writes a file only its owner can read: it holds hashes and TOTP secrets.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gets users or an error, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "(\\[[a-z\" .]{0,8}\\]\n|[a-z]{1,8} = (\"[^\"]{0,20}\"|\\[\"[a-z]{0,4}\"\\]|[0-9]{1,3})\n|.{0,12}\n){0,8}") {
            let _ = parse(&text, Path::new("users.toml"));
        }
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let path = Path::new("users.toml");
        let hash = password::hash("a long enough password").unwrap();
        let text = format!("[ada]\npassword = \"{hash}\"\ngroups = [\"admin\"]\n\n[bob]\npassword = \"$2b$10$x\"\n");
        let error = parse(&text, path).unwrap_err();
        assert_eq!(
            (error.line, error.key.as_deref()),
            (Some(6), Some("bob.password")),
            "{error}"
        );
        let text = format!("[ada]\npassword = \"{hash}\"\ntotp = \"not base32!\"\n");
        assert_eq!(parse(&text, path).unwrap_err().key.as_deref(), Some("ada.totp"));
        let text = format!("[\"a b\"]\npassword = \"{hash}\"\n");
        assert!(parse(&text, path).unwrap_err().message.contains("user name"));
        let text = format!("[ada]\npassword = \"{hash}\"\nrole = \"admin\"\n");
        assert!(parse(&text, path).unwrap_err().message.contains("keys: password"));
        let users = parse(&format!("[ada]\npassword = \"{hash}\"\ngroups = [\"admin\"]\n"), path).unwrap();
        assert_eq!(users["ada"].groups, ["admin"]);
    }

    #[test]
    fn edits_keep_comments_and_are_read_again() {
        let dir = std::env::temp_dir().join(format!("portcullis-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.toml");
        let _ = std::fs::remove_file(&path);
        let file = UsersFile::open(&path).unwrap();
        assert!(file.current().0.is_empty(), "no file: no users");
        let hash = password::hash("a long enough password").unwrap();
        edit(&path, "ada", |t| t["password"] = toml_edit::value(hash.clone())).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("# kept\n{text}")).unwrap();
        edit(&path, "ada", |t| {
            t["groups"] = toml_edit::value(toml_edit::Array::from_iter(["ops"]))
        })
        .unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("# kept\n"));
        let (users, error) = file.current();
        assert!(error.is_none());
        assert_eq!(users["ada"].groups, ["ops"]);
        assert!(edit(&path, "ada", |t| t["password"] = toml_edit::value("plain")).is_err());
        assert!(
            file.current().0["ada"].password.starts_with("$argon2id$"),
            "a bad edit is not written"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
