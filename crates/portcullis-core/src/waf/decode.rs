//! What a value means once every layer of encoding an app or a browser might
//! undo has been undone.
//!
//! Attackers encode payloads so that a filter sees one string and the app
//! another: `%27`, `%2527` (twice), `%u0027`, `&#39;`, `\u0027`, `%c0%a7`
//! (an overlong UTF-8 form), NUL bytes in the middle of keywords. Each value
//! is decoded here once into its distinct spellings ([`Spellings`]); every
//! detector then sees each spelling once.

use std::borrow::Cow;

use super::walk::Raw;
use super::ByteSet;

/// How many rounds of percent-decoding are undone: enough for the double and
/// triple encodings seen in payload lists, bounded so a value cannot make the
/// decoder loop.
const MAX_PERCENT_ROUNDS: usize = 4;

/// One decoding step, reported by `waf explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `%XX`, `%uXXXX` and, in forms and query strings, `+`: this many rounds.
    Percent(u8),
    /// Invalid UTF-8 replaced by U+FFFD.
    Utf8,
    /// Overlong UTF-8 (`%c0%ae`) read as the character it spells: no
    /// browser or library writes it, only a filter evasion does.
    Overlong,
    /// NUL bytes removed.
    Nul,
    /// `&lt;`, `&#39;`, `&#x27;`, ...
    HtmlEntities,
    /// `\uXXXX`, `\u{...}`, `\xXX`, `\n` as in JavaScript strings.
    JsEscapes,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percent(1) => f.write_str("percent-decoded"),
            Self::Percent(n) => write!(f, "percent-decoded {n} times"),
            Self::Utf8 => f.write_str("invalid UTF-8 replaced"),
            Self::Overlong => f.write_str("overlong UTF-8 read"),
            Self::Nul => f.write_str("NUL bytes removed"),
            Self::HtmlEntities => f.write_str("HTML entities decoded"),
            Self::JsEscapes => f.write_str("JavaScript escapes decoded"),
        }
    }
}

/// The steps that led to one spelling, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    steps: [Option<Step>; 5],
}

impl Steps {
    fn push(&mut self, step: Step) {
        if let Some(slot) = self.steps.iter_mut().find(|s| s.is_none()) {
            *slot = Some(step);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Step> + '_ {
        self.steps.iter().map_while(|s| *s)
    }

    pub fn is_empty(&self) -> bool {
        self.steps[0].is_none()
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("as sent");
        }
        for (i, step) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

/// The distinct spellings of one value, the fully URL-decoded one first.
pub struct Spellings<'a> {
    items: [Option<Spelling<'a>>; 3],
}

/// One way to read a value: the text, how it was decoded, and the bytes it
/// holds (which the detectors ask first).
pub struct Spelling<'a> {
    pub(crate) text: Cow<'a, str>,
    pub(crate) steps: Steps,
    pub(crate) present: ByteSet,
}

impl<'a> Spellings<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &Spelling<'a>> {
        self.items.iter().flatten()
    }

    fn add(&mut self, text: Cow<'a, str>, steps: Steps) {
        if self.iter().any(|known| known.text == text) {
            return;
        }
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            let present = ByteSet::in_text(&text);
            *slot = Some(Spelling { text, steps, present });
        }
    }
}

/// Where a value came from decides whether `+` means a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Query strings and urlencoded forms: `+` is a space.
    Form,
    /// Paths, headers, cookies, JSON strings, multipart fields.
    Plain,
}

/// Every distinct spelling of `raw`.
pub fn spellings(raw: Raw<'_>, origin: Origin) -> Spellings<'_> {
    let mut steps = Steps::default();
    // What each decoding needs is asked of one pass over the bytes.
    let mut present = ByteSet::in_bytes(raw.bytes());
    let (bytes, rounds) = percent_decode(raw.bytes(), origin, &present);
    if rounds > 0 {
        steps.push(Step::Percent(rounds));
        present = ByteSet::in_bytes(&bytes);
    }
    let bytes = match present.has(0) {
        true => {
            steps.push(Step::Nul);
            Cow::Owned(bytes.iter().copied().filter(|&b| b != 0).collect())
        }
        false => bytes,
    };
    let (text, reading) = match (bytes, raw) {
        // Unchanged text is valid UTF-8 already.
        (Cow::Borrowed(_), Raw::Text(text)) => (Cow::Borrowed(text), Reading::Valid),
        (Cow::Borrowed(bytes), Raw::Bytes(_)) => utf8(bytes),
        (Cow::Owned(bytes), _) => match String::from_utf8(bytes) {
            Ok(text) => (Cow::Owned(text), Reading::Valid),
            Err(error) => {
                let (text, reading) = utf8(error.as_bytes());
                (Cow::Owned(text.into_owned()), reading)
            }
        },
    };
    match reading {
        Reading::Valid => {}
        Reading::Replaced => steps.push(Step::Utf8),
        Reading::Overlong => steps.push(Step::Overlong),
    }
    // Decoding changed the bytes (overlong forms spell ASCII: `%c0%bc` is
    // `<`).
    if matches!(text, Cow::Owned(_)) {
        present = ByteSet::in_text(&text);
    }
    // Markup keeps its entities: in `<p>&lt;script&gt;</p>` they are text,
    // and a browser leaves them so. Outside markup they may be a disguise.
    let entities = (present.has(b'&') && !present.has(b'<')).then(|| html_entities(&text));
    let escapes = present.has(b'\\').then(|| js_escapes(&text));
    // Only what a decoding changed (an owned string) is another spelling.
    let decoded = [(entities, Step::HtmlEntities), (escapes, Step::JsEscapes)].map(|(text, step)| match text {
        Some(Cow::Owned(text)) => {
            let mut steps = steps.clone();
            steps.push(step);
            Some((text, steps))
        }
        _ => None,
    });
    let mut spellings = Spellings {
        items: [Some(Spelling { text, steps, present }), None, None],
    };
    for (text, steps) in decoded.into_iter().flatten() {
        spellings.add(Cow::Owned(text), steps);
    }
    spellings
}

/// Percent-decodes until nothing changes (at most [`MAX_PERCENT_ROUNDS`]),
/// `+` as a space in the first round of form values.
fn percent_decode<'a>(raw: &'a [u8], origin: Origin, present: &ByteSet) -> (Cow<'a, [u8]>, u8) {
    let plus = origin == Origin::Form && present.has(b'+');
    if !plus && !present.has(b'%') {
        return (Cow::Borrowed(raw), 0);
    }
    let mut current = percent_round(raw, plus);
    let mut rounds = 1;
    while rounds < MAX_PERCENT_ROUNDS && current.contains(&b'%') {
        let next = percent_round(&current, false);
        if next == current {
            break;
        }
        current = next;
        rounds += 1;
    }
    if current == raw {
        return (Cow::Borrowed(raw), 0);
    }
    (Cow::Owned(current), rounds as u8)
}

/// One round: `%XX`, `%uXXXX` (as UTF-8) and optionally `+`; malformed
/// escapes stay as they are, like Node's `querystring.unescape`.
fn percent_round(input: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    // Copies up to the next escape in one go, `+` mapped on the way (a loop
    // the compiler vectorises: forms encode every space as one).
    let copy = |out: &mut Vec<u8>, chunk: &[u8]| {
        if plus {
            out.extend(chunk.iter().map(|&b| if b == b'+' { b' ' } else { b }));
        } else {
            out.extend_from_slice(chunk);
        }
    };
    let mut rest = input;
    while let Some(at) = memchr::memchr(b'%', rest) {
        copy(&mut out, &rest[..at]);
        rest = &rest[at..];
        if let Some(value) = hex_pair(rest.get(1..3)) {
            out.push(value);
            rest = &rest[3..];
            continue;
        }
        if matches!(rest.get(1), Some(b'u' | b'U')) {
            if let Some(c) = hex_char(rest.get(2..6)) {
                let mut buffer = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                rest = &rest[6..];
                continue;
            }
        }
        out.push(b'%');
        rest = &rest[1..];
    }
    copy(&mut out, rest);
    out
}

fn hex_pair(digits: Option<&[u8]>) -> Option<u8> {
    let digits = digits?;
    Some((hex(digits[0])? << 4) | hex(digits[1])?)
}

fn hex_char(digits: Option<&[u8]>) -> Option<char> {
    let value = digits?
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | u32::from(hex(d)?)))?;
    char::from_u32(value)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Reads bytes as UTF-8; overlong forms of a character (`C0 AE` for `.`)
/// become that character, as the lenient decoders of old servers read them,
/// and anything else invalid becomes U+FFFD.
fn utf8(bytes: &[u8]) -> (Cow<'_, str>, Reading) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(text), Reading::Valid);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut reading = Reading::Replaced;
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                // The prefix was just checked to be valid.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let (c, used) = match overlong(after) {
                    Some(found) => {
                        reading = Reading::Overlong;
                        found
                    }
                    None => ('\u{FFFD}', error.error_len().unwrap_or(after.len())),
                };
                out.push(c);
                rest = &after[used.max(1)..];
            }
        }
    }
    (Cow::Owned(out), reading)
}

/// How bytes read as UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Valid,
    /// Some sequences were invalid and became U+FFFD.
    Replaced,
    /// Some sequences were overlong forms of a character.
    Overlong,
}

/// The character an overlong 2-, 3- or 4-byte sequence spells, and its length.
fn overlong(bytes: &[u8]) -> Option<(char, usize)> {
    let continuation = |i: usize| bytes.get(i).filter(|b| *b & 0xC0 == 0x80).map(|b| u32::from(b & 0x3F));
    let lead = *bytes.first()?;
    let (value, len) = match lead {
        // IIS read `%c0%2e` and `%c1%1c` too: any second byte, its low six bits.
        0xC0 | 0xC1 => ((u32::from(lead & 0x1F) << 6) | u32::from(bytes.get(1)? & 0x3F), 2),
        0xE0 if bytes.get(1).is_some_and(|b| *b < 0xA0) => (
            (u32::from(lead & 0x0F) << 12) | (continuation(1)? << 6) | continuation(2)?,
            3,
        ),
        0xF0 if bytes.get(1).is_some_and(|b| *b < 0x90) => (
            (u32::from(lead & 0x07) << 18) | (continuation(1)? << 12) | (continuation(2)? << 6) | continuation(3)?,
            4,
        ),
        // The 5- and 6-byte forms of the original UTF-8, which old decoders accepted.
        0xF8 => (
            (continuation(1)? << 18) | (continuation(2)? << 12) | (continuation(3)? << 6) | continuation(4)?,
            5,
        ),
        0xFC => (
            (continuation(1)? << 24)
                | (continuation(2)? << 18)
                | (continuation(3)? << 12)
                | (continuation(4)? << 6)
                | continuation(5)?,
            6,
        ),
        _ => return None,
    };
    Some((char::from_u32(value)?, len))
}

/// Decodes character references as a browser does in text: named (the
/// common ones, with or without `;`), decimal and hexadecimal.
fn html_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match entity(after) {
            Some((c, used)) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference (after its `&`) stands for, and the bytes it used.
fn entity(after: &str) -> Option<(char, usize)> {
    let bytes = after.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (radix, start) = match bytes.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = bytes[start..]
            .iter()
            .take_while(|b| {
                if radix == 16 {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        // Leading zeros are allowed (`&#0000039;`); the value is capped like a browser's.
        let value = u32::from_str_radix(&after[start..start + digits], radix)
            .unwrap_or(0x110000)
            .min(0x110000);
        let c = char::from_u32(value).filter(|c| *c != '\0').unwrap_or('\u{FFFD}');
        let end = start + digits;
        return Some((c, end + usize::from(bytes.get(end) == Some(&b';'))));
    }
    let name_len = bytes.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
    let name = &after[..name_len];
    let c = NAMED.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)?;
    Some((c, name_len + usize::from(bytes.get(name_len) == Some(&b';'))))
}

/// The named references that spell characters with a meaning in markup,
/// scripts or queries (the full table has over 2,000 names; these are the
/// ones that can disguise syntax).
const NAMED: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{A0}'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("colon", ':'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("lpar", '('),
    ("rpar", ')'),
    ("semi", ';'),
    ("comma", ','),
    ("period", '.'),
    ("equals", '='),
    ("excl", '!'),
    ("num", '#'),
    ("percnt", '%'),
    ("plus", '+'),
    ("grave", '`'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("ast", '*'),
    ("dollar", '$'),
    ("vert", '|'),
    ("lowbar", '_'),
    ("quest", '?'),
    ("commat", '@'),
    ("hyphen", '-'),
];

/// Decodes `\uXXXX`, `\u{X...}`, `\xXX`, `\n`, `\r` and `\t` escapes;
/// other backslashes stay.
fn js_escapes(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let decoded = match bytes.get(i + 1) {
            Some(b'u') if bytes.get(i + 2) == Some(&b'{') => {
                let digits = bytes[i + 3..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
                (digits > 0 && digits <= 6 && bytes.get(i + 3 + digits) == Some(&b'}'))
                    .then(|| u32::from_str_radix(&text[i + 3..i + 3 + digits], 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .map(|c| (c, 4 + digits))
            }
            Some(b'u') => hex_char(bytes.get(i + 2..i + 6)).map(|c| (c, 6)),
            Some(b'x') => hex_pair(bytes.get(i + 2..i + 4)).map(|b| (char::from(b), 4)),
            Some(b'n') => Some(('\n', 2)),
            Some(b'r') => Some(('\r', 2)),
            Some(b't') => Some(('\t', 2)),
            _ => None,
        };
        match decoded {
            Some((c, used)) => {
                out.push_str(&text[copied..i]);
                out.push(c);
                i += used;
                copied = i;
                changed = true;
            }
            None => i += 1,
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(raw: &str, origin: Origin) -> Vec<String> {
        spellings(Raw::Bytes(raw.as_bytes()), origin)
            .iter()
            .map(|s| s.text.to_string())
            .collect()
    }

    #[test]
    fn plain_values_are_borrowed_and_single() {
        let spellings = spellings(Raw::Bytes(b"hello world"), Origin::Form);
        let first = spellings.iter().next().unwrap();
        assert!(matches!(first.text, Cow::Borrowed("hello world")));
        assert!(first.steps.is_empty());
        assert_eq!(spellings.iter().count(), 1);
    }

    #[test]
    fn text_is_read_as_the_bytes_it_holds() {
        let plain = spellings(Raw::Text("héllo wörld"), Origin::Plain);
        let first = plain.iter().next().unwrap();
        assert!(matches!(first.text, Cow::Borrowed("héllo wörld")));
        let decoded = spellings(Raw::Text("caf%C3%A9 %27"), Origin::Plain);
        assert_eq!(decoded.iter().next().unwrap().text, "café '");
    }

    #[test]
    fn percent_encodings_are_undone_until_stable() {
        assert_eq!(all("%27%20OR%201=1", Origin::Form), ["' OR 1=1"]);
        assert_eq!(all("%2527", Origin::Plain), ["'"]);
        assert_eq!(all("%252527", Origin::Plain), ["'"]);
        assert_eq!(all("%u0027", Origin::Plain), ["'"]);
        assert_eq!(all("a+b", Origin::Form), ["a b"]);
        assert_eq!(all("a+b", Origin::Plain), ["a+b"]);
        assert_eq!(all("100%", Origin::Plain), ["100%"]);
        assert_eq!(all("%zz%4", Origin::Plain), ["%zz%4"]);
        let spellings = spellings(Raw::Bytes(b"%2527"), Origin::Plain);
        assert_eq!(
            spellings.iter().next().unwrap().steps.to_string(),
            "percent-decoded 2 times"
        );
    }

    #[test]
    fn overlong_utf8_and_nul_bytes() {
        assert_eq!(all("%c0%ae%c0%ae%c0%af", Origin::Plain), ["../"]);
        assert_eq!(all("%e0%80%ae", Origin::Plain), ["."]);
        assert_eq!(all("%fc%80%80%80%80%ae", Origin::Plain), ["."]);
        assert_eq!(all("%ff", Origin::Plain), ["\u{FFFD}"]);
        assert_eq!(all("<scr%00ipt>", Origin::Plain), ["<script>"]);
        assert_eq!(all("caf%C3%A9", Origin::Plain), ["café"]);
    }

    #[test]
    fn entities_outside_markup_and_js_escapes() {
        assert_eq!(all("&#39; OR 1=1", Origin::Plain), ["&#39; OR 1=1", "' OR 1=1"]);
        assert_eq!(all("&lt;script&gt;", Origin::Plain), ["&lt;script&gt;", "<script>"]);
        assert_eq!(all("&#x6a&#x61vascript&colon;", Origin::Plain)[1], "javascript:");
        assert_eq!(all("<p>&lt;script&gt;</p>", Origin::Plain), ["<p>&lt;script&gt;</p>"]);
        assert_eq!(all("\\u003cscript\\x3e", Origin::Plain)[1], "<script>");
        assert_eq!(all("\\u{27}", Origin::Plain)[1], "'");
        assert_eq!(all("AT&T", Origin::Plain), ["AT&T"]);
        assert_eq!(all("C:\\new\\x", Origin::Plain), ["C:\\new\\x", "C:\new\\x"]);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            for origin in [Origin::Form, Origin::Plain] {
                let spellings = spellings(Raw::Bytes(&raw), origin);
                prop_assert!(spellings.iter().count() >= 1);
            }
        }

        #[test]
        fn escape_heavy_text_decodes_without_panic(raw in "[%&#;\\\\ux0-9a-fA-F{}<>'c]{0,64}") {
            let _ = spellings(Raw::Bytes(raw.as_bytes()), Origin::Form).iter().count();
        }
    }
}
