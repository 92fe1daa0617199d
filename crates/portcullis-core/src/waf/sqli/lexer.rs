//! SQL tokens as MySQL, PostgreSQL, SQL Server, Oracle and SQLite read them,
//! merged: where dialects disagree (`#`, backslashes in strings), the reading
//! that lets an attacker do more wins, or both are tried.

/// One token. Words stay borrowed; the grammar classifies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A string literal; `closed` is false when the value ends inside it.
    Str {
        quote: u8,
        closed: bool,
    },
    Number,
    Word(&'a str),
    /// `` `name` `` or `[name]`.
    QuotedName,
    /// `@x`, `@@version`, `$1`, `:name`.
    Variable,
    Compare,
    /// `&&`, `||`.
    Logic,
    /// `+ - * / % & | ^ << >> ~ !`, `::`, `:=`.
    Arith(u8),
    LParen,
    RParen,
    Comma,
    Semicolon,
    Dot,
    /// `--` or `#` to the end of the value, or an unclosed `/*`: the rest of
    /// the statement is ignored. (One a line break ends is only a space.)
    Comment,
    /// A character no dialect gives a meaning here.
    Other,
}

/// Whether a backslash escapes the next character inside strings (MySQL's
/// default) or is an ordinary character (standard SQL, PostgreSQL, SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backslash {
    Escapes,
    Literal,
}

/// Tokens of `text`, at most `limit`; with `inside`, the text starts inside
/// a string opened by that quote (the app's own quote before the value).
pub fn tokens<'a>(
    text: &'a str,
    inside: Option<u8>,
    backslash: Backslash,
    limit: usize,
    out: &mut Vec<(Token<'a>, usize)>,
) {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        at: 0,
        backslash,
    };
    if let Some(quote) = inside {
        let token = lexer.string_body(quote);
        out.push((token, 0));
    }
    while out.len() < limit {
        let Some(token) = lexer.next() else {
            return;
        };
        out.push(token);
    }
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    backslash: Backslash,
}

impl<'a> Lexer<'a> {
    fn peek(&self, offset: usize) -> u8 {
        self.bytes.get(self.at + offset).copied().unwrap_or(0)
    }

    fn next(&mut self) -> Option<(Token<'a>, usize)> {
        loop {
            self.skip_space();
            let start = self.at;
            let byte = *self.bytes.get(self.at)?;
            let token = match byte {
                b'/' if self.peek(1) == b'*' => match self.block_comment() {
                    Some(()) => continue,
                    None => self.rest_as(Token::Comment),
                },
                // The end of a MySQL executable comment (`/*!50000 ... */`).
                b'*' if self.peek(1) == b'/' => {
                    self.at += 2;
                    continue;
                }
                b'-' if self.peek(1) == b'-' => match self.line_comment() {
                    Some(()) => continue,
                    None => Token::Comment,
                },
                b'#' => match self.line_comment() {
                    Some(()) => continue,
                    None => Token::Comment,
                },
                b'\'' | b'"' => {
                    self.at += 1;
                    self.string_body(byte)
                }
                b'`' => self.delimited(b'`'),
                b'[' => self.delimited(b']'),
                b'0'..=b'9' => self.number(),
                // MySQL's NULL.
                b'\\' if self.peek(1) == b'N' => self.op(2, Token::Number),
                b'.' if self.peek(1).is_ascii_digit() => self.number(),
                b'@' => {
                    self.at += 1 + usize::from(self.peek(1) == b'@');
                    self.word_chars();
                    Token::Variable
                }
                b'$' if self.peek(1).is_ascii_digit() => {
                    self.at += 1;
                    self.word_chars();
                    Token::Variable
                }
                b'$' => self.dollar_quoted(),
                b':' if self.peek(1) == b':' || self.peek(1) == b'=' => self.op(2, Token::Arith(b':')),
                b':' if is_word_start(self.peek(1)) => {
                    self.at += 1;
                    self.word_chars();
                    Token::Variable
                }
                b'=' => self.op(if self.peek(1) == b'=' { 2 } else { 1 }, Token::Compare),
                b'<' => match (self.peek(1), self.peek(2)) {
                    (b'=', b'>') => self.op(3, Token::Compare),
                    (b'=' | b'>', _) => self.op(2, Token::Compare),
                    (b'<', _) => self.op(2, Token::Arith(b'<')),
                    _ => self.op(1, Token::Compare),
                },
                b'>' => match self.peek(1) {
                    b'=' => self.op(2, Token::Compare),
                    b'>' => self.op(2, Token::Arith(b'>')),
                    _ => self.op(1, Token::Compare),
                },
                b'!' => match self.peek(1) {
                    b'=' | b'<' | b'>' => self.op(2, Token::Compare),
                    _ => self.op(1, Token::Arith(b'!')),
                },
                b'&' if self.peek(1) == b'&' => self.op(2, Token::Logic),
                b'|' if self.peek(1) == b'|' => self.op(2, Token::Logic),
                b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^' | b'~' => self.op(1, Token::Arith(byte)),
                b'(' => self.op(1, Token::LParen),
                b')' => self.op(1, Token::RParen),
                b',' => self.op(1, Token::Comma),
                b';' => self.op(1, Token::Semicolon),
                b'.' => self.op(1, Token::Dot),
                _ if is_word_start(byte) => self.word(),
                _ => {
                    self.at += utf8_len(byte);
                    Token::Other
                }
            };
            return Some((token, start));
        }
    }

    fn skip_space(&mut self) {
        while let Some(&byte) = self.bytes.get(self.at) {
            match byte {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => self.at += 1,
                // No-break space: SQL Server and MySQL treat it as a space.
                0xC2 if self.peek(1) == 0xA0 => self.at += 2,
                _ => return,
            }
        }
    }

    fn op(&mut self, len: usize, token: Token<'a>) -> Token<'a> {
        self.at += len;
        token
    }

    fn rest_as(&mut self, token: Token<'a>) -> Token<'a> {
        self.at = self.bytes.len();
        token
    }

    /// Skips a `--` or `#` comment that a line break ends (`Some`), or
    /// reports one that runs to the end of the value.
    fn line_comment(&mut self) -> Option<()> {
        match memchr::memchr(b'\n', &self.bytes[self.at..]) {
            Some(end) => {
                self.at += end + 1;
                Some(())
            }
            None => {
                self.at = self.bytes.len();
                None
            }
        }
    }

    /// Skips a closed `/* */` comment (`Some`), or reports an unclosed one.
    /// `/*!` (MySQL runs its contents) skips only the marker and version.
    fn block_comment(&mut self) -> Option<()> {
        if self.peek(2) == b'!' {
            self.at += 3;
            while self.peek(0).is_ascii_digit() {
                self.at += 1;
            }
            return Some(());
        }
        let end = memchr::memmem::find(&self.bytes[self.at + 2..], b"*/")?;
        self.at += 2 + end + 2;
        Some(())
    }

    /// A string's body after its opening quote: a doubled quote stays inside.
    fn string_body(&mut self, quote: u8) -> Token<'a> {
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            if byte == b'\\' && self.backslash == Backslash::Escapes {
                self.at += 1;
            } else if byte == quote {
                if self.peek(0) == quote {
                    self.at += 1;
                } else {
                    return Token::Str { quote, closed: true };
                }
            }
        }
        self.at = self.bytes.len();
        Token::Str { quote, closed: false }
    }

    fn delimited(&mut self, close: u8) -> Token<'a> {
        match memchr::memchr(close, &self.bytes[self.at + 1..]) {
            Some(end) => {
                self.at += end + 2;
                Token::QuotedName
            }
            None => {
                self.at += 1;
                Token::Other
            }
        }
    }

    /// PostgreSQL's `$$text$$` and `$tag$text$tag$`.
    fn dollar_quoted(&mut self) -> Token<'a> {
        let tag_len = self.bytes[self.at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        if self.peek(1 + tag_len) != b'$' {
            self.at += 1;
            return Token::Other;
        }
        let tag = &self.bytes[self.at..self.at + tag_len + 2];
        let body = self.at + tag.len();
        match memchr::memmem::find(&self.bytes[body..], tag) {
            Some(end) => {
                self.at = body + end + tag.len();
                Token::Str {
                    quote: b'$',
                    closed: true,
                }
            }
            None => self.rest_as(Token::Str {
                quote: b'$',
                closed: false,
            }),
        }
    }

    fn number(&mut self) -> Token<'a> {
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X' | b'b' | b'B') {
            self.at += 2;
            while self.peek(0).is_ascii_hexdigit() {
                self.at += 1;
            }
            return Token::Number;
        }
        while self.peek(0).is_ascii_digit() {
            self.at += 1;
        }
        if self.peek(0) == b'.' {
            self.at += 1;
            while self.peek(0).is_ascii_digit() {
                self.at += 1;
            }
        }
        if matches!(self.peek(0), b'e' | b'E')
            && (self.peek(1).is_ascii_digit() || (matches!(self.peek(1), b'+' | b'-') && self.peek(2).is_ascii_digit()))
        {
            self.at += 2;
            while self.peek(0).is_ascii_digit() {
                self.at += 1;
            }
        }
        // MySQL reads `1a` as a name; `1or` stays a number and a keyword.
        if is_word_start(self.peek(0)) {
            let word_start = self.at;
            self.word_chars();
            if is_keyword_glue(&self.text[word_start..self.at]) {
                self.at = word_start;
            } else {
                return Token::Word(&self.text[word_start..self.at]);
            }
        }
        Token::Number
    }

    fn word_chars(&mut self) {
        while let Some(&byte) = self.bytes.get(self.at) {
            if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' {
                self.at += 1;
            } else if byte >= 0x80 {
                self.at += utf8_len(byte);
            } else {
                return;
            }
        }
    }

    fn word(&mut self) -> Token<'a> {
        let start = self.at;
        self.word_chars();
        self.at = self.at.min(self.bytes.len());
        let word = self.text.get(start..self.at).unwrap_or("");
        // Typed string literals: N'..', E'..', X'..', B'..', _utf8'..'.
        if matches!(self.peek(0), b'\'') && (word.len() == 1 && "nNeExXbBqQ".contains(word) || word.starts_with('_')) {
            self.at += 1;
            return self.string_body(b'\'');
        }
        Token::Word(word)
    }
}

/// Words an attacker glues to a number (`1or 1=1`, `1union select`).
fn is_keyword_glue(word: &str) -> bool {
    [
        "or", "and", "xor", "union", "like", "div", "order", "group", "limit", "having", "into", "from", "is", "in",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

fn is_word_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

/// The length of the UTF-8 sequence `lead` starts (1 for a stray byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str, inside: Option<u8>) -> Vec<Token<'_>> {
        let mut out = Vec::new();
        tokens(text, inside, Backslash::Literal, usize::MAX, &mut out);
        out.into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn a_value_inside_quotes_closes_the_literal() {
        assert_eq!(
            lex("' OR 'a'='a", Some(b'\'')),
            [
                Token::Str {
                    quote: b'\'',
                    closed: true
                },
                Token::Word("OR"),
                Token::Str {
                    quote: b'\'',
                    closed: true
                },
                Token::Compare,
                Token::Str {
                    quote: b'\'',
                    closed: false
                },
            ]
        );
        assert_eq!(
            lex("O''Brien", Some(b'\'')),
            [Token::Str {
                quote: b'\'',
                closed: false
            }]
        );
    }

    #[test]
    fn comments_and_mysql_specials() {
        assert_eq!(
            lex("1/**/or/**/1", None),
            [Token::Number, Token::Word("or"), Token::Number]
        );
        assert_eq!(lex("/*!50000union*/ x", None), [Token::Word("union"), Token::Word("x")]);
        assert_eq!(lex("a -- b", None), [Token::Word("a"), Token::Comment]);
        assert_eq!(lex("a #b", None), [Token::Word("a"), Token::Comment]);
        assert_eq!(lex("a /* b", None), [Token::Word("a"), Token::Comment]);
        assert_eq!(lex("@@version", None), [Token::Variable]);
        assert_eq!(lex("0x41", None), [Token::Number]);
        assert_eq!(
            lex("$$x$$", None),
            [Token::Str {
                quote: b'$',
                closed: true
            }]
        );
        assert_eq!(
            lex("N'x'", None),
            [Token::Str {
                quote: b'\'',
                closed: true
            }]
        );
    }

    #[test]
    fn backslashes_escape_only_where_they_do() {
        let mut out = Vec::new();
        tokens("\\' or 1", Some(b'\''), Backslash::Escapes, usize::MAX, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        tokens("\\' or 1", Some(b'\''), Backslash::Literal, usize::MAX, &mut out);
        assert_eq!(out.len(), 3);
    }
}
