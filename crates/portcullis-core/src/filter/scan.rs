//! Finds the members of a JSON document whose names are sensitive, as byte
//! spans to cut, so that everything else is kept byte for byte.
//!
//! A strict RFC 8259 reader: what it cannot read (not JSON, nested deeper
//! than [`MAX_DEPTH`]) is reported, never guessed at.

use std::ops::Range;

/// Nesting read at most (serde_json's default limit too).
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    NotJson,
    TooDeep,
}

/// What [`find`] found: the bytes to cut (each a member, or a run of
/// members, with the comma that separated it from the rest), and the names
/// of the members removed, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub cuts: Vec<Range<usize>>,
    pub fields: Vec<String>,
}

/// The members of `json`, at any depth, whose name `sensitive` accepts. The
/// name is given decoded (escapes resolved). Members inside a removed member
/// go with it and are not reported.
pub fn find(json: &[u8], sensitive: &dyn Fn(&str) -> bool) -> Result<Found, Unreadable> {
    let mut reader = Reader {
        bytes: json,
        at: 0,
        sensitive,
        found: Found::default(),
        name: String::new(),
    };
    reader.space();
    reader.value(0)?;
    reader.space();
    if reader.at != json.len() {
        return Err(Unreadable::NotJson);
    }
    // An object's own cuts are known when it closes, after those inside it.
    reader.found.cuts.sort_unstable_by_key(|cut| cut.start);
    Ok(reader.found)
}

/// `json` without the `cuts` (in order and disjoint, as [`find`] gives them).
pub fn apply(json: &[u8], cuts: &[Range<usize>]) -> Vec<u8> {
    let removed: usize = cuts.iter().map(|cut| cut.len()).sum();
    let mut kept = Vec::with_capacity(json.len() - removed);
    let mut from = 0;
    for cut in cuts {
        kept.extend_from_slice(&json[from..cut.start]);
        from = cut.end;
    }
    kept.extend_from_slice(&json[from..]);
    kept
}

/// One member of an object being read: where its name starts, where its
/// value ends, and whether it goes.
struct Member {
    start: usize,
    end: usize,
    removed: bool,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    sensitive: &'a dyn Fn(&str) -> bool,
    found: Found,
    /// The current member's decoded name, reused across members.
    name: String,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Unreadable> {
        if self.peek() != Some(byte) {
            return Err(Unreadable::NotJson);
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), Unreadable> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(false),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Unreadable::NotJson),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Unreadable> {
        if depth > MAX_DEPTH {
            return Err(Unreadable::TooDeep);
        }
        self.at += 1;
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        let mut members = Vec::new();
        loop {
            let start = self.at;
            self.string(true)?;
            self.space();
            self.expect(b':')?;
            self.space();
            let removed = (self.sensitive)(&self.name);
            if removed {
                self.found.fields.push(self.name.clone());
                let (cuts, fields) = (self.found.cuts.len(), self.found.fields.len());
                self.value(depth)?;
                self.found.cuts.truncate(cuts);
                self.found.fields.truncate(fields);
            } else {
                self.value(depth)?;
            }
            members.push(Member {
                start,
                end: self.at,
                removed,
            });
            self.space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.space();
                }
                Some(b'}') => {
                    self.at += 1;
                    self.cut(&members);
                    return Ok(());
                }
                _ => return Err(Unreadable::NotJson),
            }
        }
    }

    /// The cuts that remove an object's sensitive members and leave valid
    /// JSON: a member followed by another goes with the comma after it; a
    /// run of members at the end goes with the comma before it.
    fn cut(&mut self, members: &[Member]) {
        let kept_at_end = members.iter().rposition(|m| !m.removed);
        let trailing = kept_at_end.map_or(0, |last| last + 1);
        for (member, next) in members[..trailing].iter().zip(&members[1..]) {
            if member.removed {
                self.found.cuts.push(member.start..next.start);
            }
        }
        if trailing < members.len() {
            let from = kept_at_end.map_or(members[0].start, |last| members[last].end);
            self.found.cuts.push(from..members[members.len() - 1].end);
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Unreadable> {
        if depth > MAX_DEPTH {
            return Err(Unreadable::TooDeep);
        }
        self.at += 1;
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.space();
                }
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Unreadable::NotJson),
            }
        }
    }

    /// Reads a string; a member's name (`name`) is decoded into `self.name`.
    fn string(&mut self, name: bool) -> Result<(), Unreadable> {
        self.expect(b'"')?;
        if name {
            self.name.clear();
        }
        loop {
            let rest = &self.bytes[self.at..];
            // Control characters are not allowed unescaped in a string.
            let Some(stop) = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) else {
                return Err(Unreadable::NotJson);
            };
            let run = &rest[..stop];
            let run = std::str::from_utf8(run).map_err(|_| Unreadable::NotJson)?;
            if name {
                self.name.push_str(run);
            }
            self.at += stop;
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => self.escape(name)?,
                _ => return Err(Unreadable::NotJson),
            }
        }
    }

    fn escape(&mut self, name: bool) -> Result<(), Unreadable> {
        let Some(&kind) = self.bytes.get(self.at + 1) else {
            return Err(Unreadable::NotJson);
        };
        self.at += 2;
        let decoded = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF if self.bytes[self.at..].starts_with(b"\\u") => {
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Unreadable::NotJson);
                        }
                        let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                    // A lone surrogate is valid JSON text but no character.
                    _ => char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER),
                }
            }
            _ => return Err(Unreadable::NotJson),
        };
        if name {
            self.name.push(decoded);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, Unreadable> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(Unreadable::NotJson)?;
        let text = std::str::from_utf8(digits).map_err(|_| Unreadable::NotJson)?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Unreadable::NotJson);
        }
        self.at += 4;
        u16::from_str_radix(text, 16).map_err(|_| Unreadable::NotJson)
    }

    fn word(&mut self, word: &[u8]) -> Result<(), Unreadable> {
        if !self.bytes[self.at..].starts_with(word) {
            return Err(Unreadable::NotJson);
        }
        self.at += word.len();
        Ok(())
    }

    fn number(&mut self) -> Result<(), Unreadable> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Unreadable::NotJson),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), Unreadable> {
        let start = self.at;
        self.digits();
        if self.at == start {
            return Err(Unreadable::NotJson);
        }
        Ok(())
    }
}
