//! Path traversal and file inclusion: does the value, used as a file path,
//! climb out of the directory the app meant, or name a file no request
//! should name?
//!
//! Separators are read as both Unix and Windows read them (`/` and `\`), the
//! filter-evasion spellings `....//` and `..;/` count as `..`, and what is
//! scored is how far the path climbs and where it lands: `../../etc/passwd`
//! climbs two levels to a system file; `../images/logo.png` one level to an
//! asset (suspicious, not an attack on its own).

use std::borrow::Cow;

use super::{find, ByteSet, Hit};

pub fn inspect(value: &str) -> Option<Hit> {
    inspect_in(value, &ByteSet::in_text(value))
}

/// [`inspect`], given the bytes `value` holds.
pub(super) fn inspect_in(value: &str, present: &ByteSet) -> Option<Hit> {
    // `/`, `\`, `:` and the lead bytes of the look-alike slashes.
    const PATHS: ByteSet = ByteSet::of(b"/\\:\xE2\xEF");
    if !present.meets(&PATHS) && find(value, "..").is_none() {
        return None;
    }
    let lower = value.trim().to_ascii_lowercase();
    if let Some(scheme) = INCLUSION_SCHEMES.iter().find(|s| lower.starts_with(*s)) {
        return Some(Hit {
            score: if *scheme == "file:" && !lower.starts_with("file:/") {
                3
            } else {
                5
            },
            context: "file inclusion URL",
            at: 0,
        });
    }
    if !present.has(b'/') && !present.has(b'\\') && find(&lower, "..").is_none() {
        return None;
    }
    let path = separators_mapped(&lower, present);
    let climbs = climbs(&path);
    // `..;/`, `....//`, `\../`: spellings made to slip past a filter.
    let evasive =
        || find(&lower, "..;").is_some() || find(&lower, "....").is_some() || (present.has(b'\\') && present.has(b'/'));
    let sensitive = names_sensitive_file(&path);
    let absolute = path.starts_with('/') || path.as_bytes().get(1) == Some(&b':');
    let score = match (climbs, sensitive) {
        (2.., _) | (1, true) => 5,
        (1, false) if server_file(&path) => 5,
        (1, false) | (0, true) if evasive() => 5,
        (0, false) if system_path(&path) => 5,
        (0, true) if absolute || tier_one(&path) => 5,
        (0, false) if absolute && server_file(&path) => 5,
        (1, false) | (0, true) => 3,
        _ => return None,
    };
    let at = find(&lower, "..").unwrap_or(0);
    Some(Hit {
        score,
        context: "file path",
        at,
    })
}

/// Backslashes as slashes, as Windows reads them, and the look-alikes IIS
/// read as slashes and dots (its best-fit mapping: fullwidth forms, the
/// division slash, the one-dot leader), and the `0x2e` spelling scanners
/// try. Most values hold none of them and are borrowed as they are.
fn separators_mapped<'a>(lower: &'a str, present: &ByteSet) -> Cow<'a, str> {
    // `\`, and the lead bytes of the look-alikes' UTF-8.
    const MAPPED: ByteSet = ByteSet::of(b"\\\xE2\xEF");
    if !present.meets(&MAPPED) && find(lower, "0x").is_none() {
        return Cow::Borrowed(lower);
    }
    Cow::Owned(
        lower
            .replace("0x2e", ".")
            .replace("0x2f", "/")
            .replace("0x5c", "/")
            .chars()
            .map(|c| match c {
                '\\' | '\u{2215}' | '\u{2216}' | '\u{FF0F}' | '\u{FF3C}' => '/',
                '\u{FF0E}' | '\u{2024}' => '.',
                c => c,
            })
            .collect(),
    )
}

/// The path ends in a file of the server's own kind: code, configuration,
/// logs, databases, keys (`../config.php`, not `../logo.png`).
fn server_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    [
        "php", "asp", "aspx", "jsp", "log", "db", "sqlite", "sql", "ini", "conf", "cnf", "cfg", "config", "env", "bak",
        "key", "pem", "yml", "yaml", "htaccess", "htpasswd", "sh", "py",
    ]
    .contains(&extension)
}

/// The files every traversal payload reaches for: named at all, even
/// relative to the app's directory, they are the attack.
fn tier_one(path: &str) -> bool {
    ["etc/passwd", "etc/shadow", "win.ini", "boot.ini", "proc/self/"]
        .iter()
        .any(|target| find(path, target).is_some())
}

/// The whole value is an absolute path into the system's own directories.
fn system_path(path: &str) -> bool {
    !path.contains(' ')
        && [
            "/etc/",
            "/proc/",
            "/sys/",
            "/root/",
            "/var/log/",
            "/var/adm/",
            "/var/spool/",
            "/usr/local/etc/",
            "/var/lib/",
            "/var/run/",
            "c:/windows/",
            "c:/winnt/",
            "c:/inetpub/",
            "c:/xampp/",
            "c:/boot.ini",
            "/boot.ini",
        ]
        .iter()
        .any(|dir| path.starts_with(dir))
}

/// How many levels above its start the path reaches.
fn climbs(path: &str) -> usize {
    let mut depth: isize = 0;
    let mut lowest: isize = 0;
    // A URL's own path starts after its authority: `https://a/../b` stays on `a`.
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    for segment in path.split('/') {
        let segment = segment.trim_end_matches(';');
        let dots = segment.bytes().filter(|b| *b == b'.').count();
        if segment.len() >= 2 && dots >= 1 && segment.bytes().all(|b| b == b'.' || b == b'?') {
            // `..`; `....`, which a filter that strips `../` once turns into
            // it; `.?`, which Windows' wildcard matches.
            depth -= 1;
            lowest = lowest.min(depth);
        } else if !segment.is_empty() && segment != "." {
            depth += 1;
        }
    }
    lowest.unsigned_abs()
}

/// A [`SENSITIVE`] target appears in the path as whole components: at a
/// `/` (or the start), and followed by the end, a `/`, or a `.`
/// (`passwd.bak`, or `passwd%00.png` once the NUL that truncated it in C is
/// gone). Tried only where a component starts, so the scan stays one pass.
fn names_sensitive_file(path: &str) -> bool {
    let bytes = path.as_bytes();
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'/', bytes).map(|at| at + 1));
    const FIRST_BYTES: ByteSet = ByteSet::first_bytes(SENSITIVE);
    starts
        .filter(|&at| at < bytes.len() && FIRST_BYTES.has(bytes[at]))
        .any(|at| {
            let rest = &bytes[at..];
            SENSITIVE.iter().any(|target| {
                if target.as_bytes()[0] != rest[0] {
                    return false;
                }
                let name = target.trim_end_matches('/').as_bytes();
                rest.starts_with(name)
                    && (target.ends_with('/')
                        || matches!(rest.get(name.len()), None | Some(b'/' | b'.' | b';' | b'?' | b'#')))
            })
        })
}

const INCLUSION_SCHEMES: &[&str] = &[
    "file:",
    "php://",
    "phar://",
    "zip://",
    "expect://",
    "glob://",
    "data://",
    "jar:file",
    "netdoc:",
];

/// Files and directories an app has no reason to be asked for: system
/// accounts and configuration, process information, keys, secrets, and the
/// Windows files payload lists probe for.
const SENSITIVE: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/hostname",
    "etc/sudoers",
    "etc/crontab",
    "etc/fstab",
    "etc/os-release",
    "etc/ssh/",
    "etc/mysql/",
    "etc/nginx/",
    "etc/apache2/",
    "etc/httpd/",
    "proc/self/",
    "proc/version",
    "proc/1/",
    "proc/net/",
    "var/log/",
    "var/run/secrets/",
    "root/",
    ".ssh/",
    "id_rsa",
    "id_ed25519",
    "authorized_keys",
    ".bash_history",
    ".htaccess",
    ".htpasswd",
    ".env",
    ".git/",
    ".aws/credentials",
    ".npmrc",
    ".docker/config.json",
    "web.config",
    "web-inf/",
    "wp-config.php",
    "windows/win.ini",
    "win.ini",
    "boot.ini",
    "windows/system.ini",
    "windows/system32/",
    "system32/",
    "winnt/",
    "inetpub/",
    "package.json",
    "httpd.conf",
    "apache2.conf",
    "nginx.conf",
    "php.ini",
    "my.cnf",
    "configuration.php",
    "sysprep.inf",
    "unattend.xml",
    "ntuser.dat",
    "access.log",
    "error.log",
    "access_log",
    "error_log",
    ".netrc",
    ".pgpass",
    "xampp/",
    "apache/logs/",
    "apache2/logs/",
    "logs/",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn score(value: &str) -> u8 {
        inspect(value).map_or(0, |hit| hit.score)
    }

    #[test]
    fn climbs_and_sensitive_files_are_found() {
        for attack in [
            "../../etc/passwd",
            "../../../../../../windows/win.ini",
            "..\\..\\boot.ini",
            "....//....//etc/passwd",
            "..;/..;/etc/passwd",
            "/etc/passwd",
            "/proc/self/environ",
            "C:\\Windows\\win.ini",
            "file:///etc/passwd",
            "php://filter/convert.base64-encode/resource=index.php",
            "../.env",
            "images/../../../etc/shadow",
            "/var/www/../../etc/passwd.png",
        ] {
            assert_eq!(score(attack), 5, "{attack}");
        }
    }

    #[test]
    fn ordinary_paths_and_urls_pass() {
        for benign in [
            "images/logo.png",
            "https://example.com/a/../b",
            "/docs/getting-started",
            "2024/01/report.pdf",
            "and/or",
            "wait... what?",
            "see ../README",
            "my passwd etc",
            "/etc/motd.txt is where",
            "C:\\Program Files\\nodejs\\node.exe crashed",
        ] {
            assert!(score(benign) < 5, "{benign}");
        }
    }
}
