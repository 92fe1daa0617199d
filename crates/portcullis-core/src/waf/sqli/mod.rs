//! SQL injection: does the value, pasted into a statement, change it?
//!
//! A value reaches SQL in one of four places: as a bare token
//! (`WHERE id = VALUE`), or inside a single-quoted, double-quoted or
//! backtick-quoted literal. For each place the value could take, the value
//! is tokenized as the database would read it there ([`lexer`]), and a small
//! grammar of SQL expressions decides whether what follows the literal it
//! closed (or the bare token) is SQL: operators between operands, clauses,
//! stacked statements, comments that cut the rest of the statement off.
//!
//! Keywords alone prove nothing: `union station`, `select comfort mattress`,
//! `O'Brien` and `5 or more` are not SQL where they would land, because the
//! grammar rejects them. What is scored is structure: a tautology after a
//! logic operator, `UNION SELECT` with a select list, a stacked `DROP TABLE`,
//! a call to `SLEEP` or `EXTRACTVALUE`.

mod lexer;

use std::cell::Cell;

use lexer::{tokens, Backslash, Token};

use super::{lowercase_into, ByteSet, Hit};

/// Tokens read of an unquoted value with no parenthesis, variable, quote or
/// underscore: enough for any expression such a value can form.
const UNQUOTED_TOKENS: usize = 64;

/// Tokens read first of such a value: prose fails within them.
const FIRST_TOKENS: usize = 8;

/// Nesting the grammar follows before it gives up on a value (payloads nest
/// a few levels; deeper is not an expression anyone writes by hand).
const MAX_DEPTH: usize = 24;

/// The strongest reading of `value` as an injection, if any.
pub fn inspect(value: &str) -> Option<Hit> {
    inspect_in(value, &ByteSet::in_text(value))
}

/// [`inspect`], given the bytes `value` holds.
pub(super) fn inspect_in(value: &str, present: &ByteSet) -> Option<Hit> {
    inspect_reading_first(value, present, FIRST_TOKENS)
}

/// [`inspect_in`], reading `first_tokens` of an unquoted value before the rest.
fn inspect_reading_first(value: &str, present: &ByteSet, first_tokens: usize) -> Option<Hit> {
    const NOT_WORD: ByteSet = ByteSet::except(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const PUNCTUATION: ByteSet = ByteSet::except(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ");
    if value.len() < 2 || !present.meets(&NOT_WORD) {
        return None;
    }
    // Without punctuation, SQL needs at least three words (`1 OR 1`).
    if !present.meets(&PUNCTUATION) && value.bytes().filter(|b| *b == b' ').count() < 2 {
        return None;
    }
    // One allocation for the tokens of most values.
    let mut buffer = Vec::with_capacity(32);
    let mut best: Option<Hit> = None;
    let mut consider = |hit: Option<Hit>| {
        if let Some(hit) = hit {
            if best.as_ref().is_none_or(|b| hit.score > b.score) {
                best = Some(hit);
            }
        }
    };
    // The three unquoted places read the same tokens.
    // Unquoted, English fails the grammar within a few tokens; only the
    // fragments that count anywhere need the whole value read, and each
    // needs a parenthesis, a variable, a string or an underscored name.
    const ANYWHERE: ByteSet = ByteSet::of(b"(@$:'\"_");
    let anywhere = present.meets(&ANYWHERE);
    // Most such values fail all three places within their first tokens:
    // those are read first, and the rest only if a place read to their end.
    let mut limit = if anywhere { usize::MAX } else { first_tokens };
    let unquoted = loop {
        buffer.clear();
        tokens(value, None, Backslash::Literal, limit, &mut buffer);
        let reach = Cell::new(0);
        let places = [
            bare(value, &buffer, &reach),
            after_expression(value, &buffer, &reach),
            statement(value, &buffer, &reach),
        ];
        if buffer.len() < limit || reach.get() <= buffer.len() || limit == UNQUOTED_TOKENS {
            break places;
        }
        limit = UNQUOTED_TOKENS;
    };
    if let Some(at) = anywhere.then(|| unmistakable(value, &buffer)).flatten() {
        return Some(Hit {
            score: 5,
            context: "SQL anywhere in the value",
            at,
        });
    }
    unquoted.into_iter().for_each(&mut consider);
    for (quote, context) in [
        (b'\'', "single-quoted SQL string"),
        (b'"', "double-quoted SQL string"),
        (b'`', "backtick-quoted SQL name"),
    ] {
        let Some(close) = memchr::memchr(quote, value.as_bytes()) else {
            continue;
        };
        let escaped = value.as_bytes()[..close].contains(&b'\\');
        let modes: &[Backslash] = if escaped {
            &[Backslash::Literal, Backslash::Escapes]
        } else {
            &[Backslash::Literal]
        };
        for &mode in modes {
            consider(quoted(value, quote, mode, context, &mut buffer));
        }
    }
    best
}

/// Fragments that are SQL wherever they stand, even when what surrounds them
/// does not parse: a subquery reading a table (`(SELECT pw FROM users`),
/// SQL Server's `DECLARE @s`, `EXEC(@s)`, `xp_cmdshell`, `WAITFOR DELAY '`.
fn unmistakable(value: &str, tokens: &[(Token<'_>, usize)]) -> Option<usize> {
    let word = |i: usize, w: &str| matches!(tokens.get(i), Some((Token::Word(x), _)) if x.eq_ignore_ascii_case(w));
    let is = |i: usize, token: Token<'_>| tokens.get(i).is_some_and(|(t, _)| *t == token);
    let variable = |i: usize| matches!(tokens.get(i), Some((Token::Variable, _)));
    (0..tokens.len()).find_map(|i| {
        let found = match tokens[i].0 {
            Token::LParen => {
                word(i + 1, "select")
                    && tokens[i + 2..]
                        .iter()
                        .take(32)
                        .take_while(|(t, _)| *t != Token::RParen)
                        .any(|(t, _)| matches!(t, Token::Word(w) if keyword(w) == Keyword::From))
            }
            // `@@version`, `@@hostname`: the server's own variables.
            Token::Variable => value[tokens[i].1..].strip_prefix("@@").is_some_and(|name| {
                let end = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                let mut buffer = [0; 24];
                lowercase_into(&name.as_bytes()[..end], &mut buffer).is_some_and(is_server_variable)
            }),
            Token::Word(w) => {
                let mut buffer = [0; 24];
                match lowercase_into(w.as_bytes(), &mut buffer).unwrap_or_default() {
                    b"declare" => variable(i + 1),
                    b"exec" | b"execute" => is(i + 1, Token::LParen) && variable(i + 2),
                    b"waitfor" => {
                        (word(i + 1, "delay") || word(i + 1, "time"))
                            && matches!(tokens.get(i + 2), Some((Token::Str { .. }, _)))
                    }
                    b"xp_cmdshell" => true,
                    // The system catalogs, read as tables (`information_schema.tables`,
                    // `FROM sysobjects`): where an attacker learns the schema.
                    name if is_catalog(name) => is(i + 1, Token::Dot) || (i > 0 && word(i - 1, "from")),
                    // What the database is and who it runs as: `version()`,
                    // `user()`, asked with empty parentheses where SQL puts a
                    // value (not after a word: `the version() call`).
                    name if is_identity_call(name) => {
                        let after_word =
                            i > 0 && matches!(tokens[i - 1].0, Token::Word(w) if keyword(w) == Keyword::None);
                        !after_word && is(i + 1, Token::LParen) && is(i + 2, Token::RParen)
                    }
                    // Functions whose names no prose uses, called.
                    name => is(i + 1, Token::LParen) && is_attack_call(name),
                }
            }
            _ => false,
        };
        found.then_some(tokens[i].1)
    })
}

fn is_catalog(word: &[u8]) -> bool {
    matches!(
        word,
        b"information_schema"
            | b"sysobjects"
            | b"syscolumns"
            | b"sysdatabases"
            | b"sqlite_master"
            | b"sqlite_schema"
            | b"pg_catalog"
            | b"pg_shadow"
            | b"pg_user"
            | b"all_tables"
            | b"all_tab_columns"
            | b"user_tables"
            | b"dba_users"
            | b"msysobjects"
    )
}

/// The system variables payloads read (MySQL, SQL Server): a password
/// with `@@` in it names none of them.
fn is_server_variable(name: &[u8]) -> bool {
    name.starts_with(b"version")
        || matches!(
            name,
            b"hostname"
                | b"datadir"
                | b"basedir"
                | b"tmpdir"
                | b"plugin_dir"
                | b"servername"
                | b"servicename"
                | b"identity"
                | b"spid"
                | b"language"
                | b"secure_file_priv"
                | b"global"
                | b"session"
        )
}

fn is_identity_call(word: &[u8]) -> bool {
    matches!(
        word,
        b"version"
            | b"database"
            | b"schema"
            | b"user"
            | b"current_user"
            | b"system_user"
            | b"session_user"
            | b"current_database"
            | b"current_schema"
            | b"connection_id"
            | b"last_insert_id"
    )
}

fn is_attack_call(word: &[u8]) -> bool {
    matches!(
        word,
        b"load_file"
            | b"benchmark"
            | b"pg_sleep"
            | b"extractvalue"
            | b"updatexml"
            | b"utl_inaddr"
            | b"utl_http"
            | b"dbms_pipe"
            | b"receive_message"
            | b"xp_dirtree"
            | b"sp_executesql"
            | b"sp_oacreate"
            | b"openrowset"
            | b"opendatasource"
            | b"lo_import"
            | b"pg_read_file"
            | b"pg_ls_dir"
            | b"current_setting"
    )
}

/// The value as a bare token: it must read as an expression from its start.
fn bare<'a>(value: &'a str, buffer: &[(Token<'a>, usize)], reach: &Cell<usize>) -> Option<Hit> {
    let mut grammar = Grammar::new(value, buffer, None, reach);
    let first = grammar.peek();
    let numeric_start = matches!(
        first,
        Some(Token::Number | Token::Str { .. } | Token::Variable | Token::LParen | Token::Arith(b'-'))
    );
    let starts_parenthesized = first == Some(Token::LParen);
    if !grammar.operand() || !grammar.tail() {
        return None;
    }
    let f = &grammar.found;
    let tautology_test = f.logic && (f.tautology || (numeric_start && (f.compare_literal || f.function || f.comment)));
    // `1 ORDER BY 3`, `1 GROUP BY 1 HAVING 1=1`, `(CASE WHEN 1=2 THEN 1 END)`.
    // A number, then `UNION SELECT`: the column-count probe's first step.
    let probe = (f.clause_sql && numeric_start) || (f.tautology && f.function) || (f.union && numeric_start);
    // `PI() AND COS(PI())=-1`, `456 + ASCII(substring(pw,1,1))-10`,
    // `( COS ( 1 OR 'b') ) --`: computations on the database's functions.
    let computed = (f.logic_strong && f.compare && f.function)
        || (numeric_start && f.arith && f.function)
        || (starts_parenthesized && f.comment && (f.function || f.arith || f.logic || f.compare));
    let score = if f.strong() || tautology_test || probe || computed {
        5
    } else if f.union || (f.logic && f.compare_literal) || (f.clause && numeric_start) {
        3
    } else {
        return None;
    };
    Some(Hit {
        score,
        context: "bare SQL token",
        at: 0,
    })
}

/// The value after an expression the app wrote (`ORDER BY x VALUE`,
/// `LIMIT 1 VALUE`): it must start with a clause.
fn after_expression<'a>(value: &'a str, buffer: &[(Token<'a>, usize)], reach: &Cell<usize>) -> Option<Hit> {
    let mut grammar = Grammar::new(value, buffer, None, reach);
    let clause = matches!(
        grammar.keyword_at(0),
        Keyword::Union
            | Keyword::Order
            | Keyword::Group
            | Keyword::Having
            | Keyword::Limit
            | Keyword::Procedure
            | Keyword::Into
            | Keyword::As
            | Keyword::Where
    ) || matches!(grammar.peek(), Some(Token::Logic | Token::RParen | Token::Comma))
        || grammar.keyword_at(0) == Keyword::Logic;
    grammar.last = Operand::Name;
    if !clause || !grammar.tail() {
        return None;
    }
    let f = &grammar.found;
    // `ORDER BY 21`: the column-count probe.
    let probe = f.clause_sql;
    if !(f.strong() || f.tautology || f.compare_strong || (f.logic_strong && f.function) || probe) {
        return None;
    }
    Some(Hit {
        score: 5,
        context: "SQL clause",
        at: 0,
    })
}

/// The value as a statement of its own, as an app that runs what it is
/// sent would: plain statements are suspicious, ones that also reach for
/// other tables, delays or files are attacks.
fn statement<'a>(value: &'a str, buffer: &[(Token<'a>, usize)], reach: &Cell<usize>) -> Option<Hit> {
    let mut grammar = Grammar::new(value, buffer, None, reach);
    let verb = match grammar.peek() {
        Some(Token::Semicolon) => {
            // `; DROP TABLE users --`: a statement after the app's own.
            grammar.bump();
            ";"
        }
        Some(Token::Word(verb)) if matches!(keyword(verb), Keyword::Statement | Keyword::Select) => verb,
        _ => return None,
    };
    let parsed = grammar.statement();
    let found = &grammar.found;
    if !parsed || !(found.stacked || found.attack_function || found.subquery || found.union_select) {
        return None;
    }
    let f = &grammar.found;
    let runs_code = ["exec", "execute", "declare", "waitfor", "shutdown"]
        .iter()
        .any(|v| verb.eq_ignore_ascii_case(v));
    // `SELECT * is slow` is a sentence; `SELECT 1 FROM t` a statement.
    // Read to the end: a FROM may follow.
    reach.set(buffer.len() + 1);
    let from = buffer
        .iter()
        .any(|(t, _)| matches!(t, Token::Word(w) if keyword(w) == Keyword::From));
    let select = verb.eq_ignore_ascii_case("select") && from;
    let score = if f.union_select
        || f.subquery
        || f.attack_function
        || f.into_file
        || f.comment
        || runs_code
        || select
        || verb == ";"
    {
        5
    } else if verb.eq_ignore_ascii_case("select") {
        3
    } else {
        4
    };
    Some(Hit {
        score,
        context: "SQL statement",
        at: 0,
    })
}

/// The value inside a literal opened by `quote`: it must close it, then read
/// as the rest of an expression.
fn quoted<'a>(
    value: &'a str,
    quote: u8,
    backslash: Backslash,
    context: &'static str,
    buffer: &mut Vec<(Token<'a>, usize)>,
) -> Option<Hit> {
    buffer.clear();
    tokens(value, Some(quote), backslash, usize::MAX, buffer);
    let Some(&(Token::Str { closed: true, .. }, _)) = buffer.first() else {
        return None;
    };
    let at = buffer.get(1).map_or(value.len(), |(_, at)| *at);
    // Out of the literal, a batch that does not parse as one expression
    // (`'goto label; label: declare @s ...`) still holds what is SQL anywhere.
    if let Some(at) = unmistakable(value, &buffer[1..]) {
        return Some(Hit { score: 5, context, at });
    }
    // Quoted, the value is read whole: how far the grammar looks is moot.
    let reach = Cell::new(0);
    let mut grammar = Grammar::new(value, buffer, Some(quote), &reach);
    grammar.pos = 1;
    if !grammar.tail() {
        return None;
    }
    let f = &grammar.found;
    // A quote closed, then UNION SELECT: never prose, even cut short.
    let score = if f.strong()
        || f.clause
        || f.tautology
        || f.logic_strong
        || f.compare_strong
        || f.union
        || literal_made_expression(value, &buffer[1..])
    {
        5
    } else if f.comment && !f.logic && !f.compare {
        // `admin'--` cuts the password check off. A random password with
        // `'#` in it, or `7" #2 needle`, only looks alike.
        let before = value[..at].trim_end();
        let wordlike = before[..before.len().saturating_sub(1)]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b' ');
        let remark = value[at..].trim_start_matches(['-', '#', '/', '*']);
        let short = remark.bytes().filter(|b| !b.is_ascii_whitespace()).count() <= 3;
        if wordlike && short {
            5
        } else {
            3
        }
    } else if f.arith || f.logic || f.compare || f.comment {
        3
    } else if f.closes_paren || f.comma {
        2
    } else {
        return None;
    };
    Some(Hit { score, context, at })
}

/// What the grammar met on the way through a value.
#[derive(Debug, Default)]
struct Found {
    logic: bool,
    /// A logic operator whose right side is a literal or an expression, not
    /// a lone name (`' or 1`, not `" and white`).
    logic_strong: bool,
    compare: bool,
    /// `=`-style comparison with a literal, as a boolean term of its own
    /// (`' or x=1`, `'='`), not inside arithmetic (`9" & PAGE = 1`).
    compare_strong: bool,
    /// A comparison with a literal on one side (`x = 1`).
    compare_literal: bool,
    /// A comparison of two literals (`1=1`, `'a'='a'`).
    tautology: bool,
    arith: bool,
    union: bool,
    /// `UNION SELECT` whose select list is plainly SQL (numbers, `NULL`,
    /// calls, `FROM`), not English words after "union select".
    union_select: bool,
    stacked: bool,
    subquery: bool,
    attack_function: bool,
    function: bool,
    /// `ORDER BY`, `GROUP BY`, `HAVING`, `LIMIT`, `PROCEDURE`.
    clause: bool,
    /// A clause whose operand is SQL (`ORDER BY 3`, `ORDER BY if(...)`),
    /// not a word (`order by price`).
    clause_sql: bool,
    into_file: bool,
    comment: bool,
    closes_paren: bool,
    comma: bool,
}

impl Found {
    fn strong(&self) -> bool {
        self.union_select || self.stacked || self.subquery || self.attack_function || self.into_file
    }
}

struct Grammar<'t, 'a> {
    text: &'a str,
    tokens: &'t [(Token<'a>, usize)],
    pos: usize,
    /// The last binary operator applied at this level.
    previous: Option<Operator>,
    /// What the last operand parsed was.
    last: Operand,
    /// The value puts text before the quote it closes (`aa' like '0`, not
    /// `"LIKE" STAMP`).
    opens_with_text: bool,
    depth: usize,
    /// The quote the app opened, which closes a string the value leaves open.
    app_quote: Option<u8>,
    found: Found,
    /// How far into the tokens the grammar has looked (one past the furthest
    /// index asked for): when it reaches the end of a prefix, the decision
    /// may depend on what follows.
    reach: &'t Cell<usize>,
}

impl<'t, 'a> Grammar<'t, 'a> {
    fn new(text: &'a str, tokens: &'t [(Token<'a>, usize)], app_quote: Option<u8>, reach: &'t Cell<usize>) -> Self {
        Self {
            text,
            tokens,
            pos: 0,
            previous: None,
            last: Operand::Literal,
            opens_with_text: !matches!(tokens.first(), Some((Token::Str { .. }, 0)))
                || tokens.get(1).is_some_and(|(_, at)| text[..*at].trim_end().len() > 1),
            depth: 0,
            app_quote,
            found: Found::default(),
            reach,
        }
    }

    fn peek(&self) -> Option<Token<'a>> {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> Option<Token<'a>> {
        let index = self.pos + offset;
        self.reach.set(self.reach.get().max(index + 1));
        self.tokens.get(index).map(|(t, _)| *t)
    }

    fn keyword_at(&self, offset: usize) -> Keyword {
        match self.peek_at(offset) {
            Some(Token::Word(word)) => keyword(word),
            _ => Keyword::None,
        }
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.peek().is_none()
    }

    /// After an operand at the outermost level: operators, clauses and
    /// statements until the value ends.
    fn tail(&mut self) -> bool {
        loop {
            match self.peek() {
                None => return true,
                Some(Token::Comment) => {
                    self.found.comment = true;
                    return true;
                }
                Some(Token::RParen) => {
                    self.found.closes_paren = true;
                    self.bump();
                }
                Some(Token::Comma) => {
                    self.found.comma = true;
                    self.bump();
                    if !self.operand() {
                        return false;
                    }
                }
                Some(Token::Semicolon) => return self.stacked(),
                _ => {
                    if self.operator() {
                        continue;
                    }
                    // SQL Server needs no `;` between statements. Without
                    // one, a plain query quoted in prose (`db.query('SELECT *
                    // FROM t')`) does not count; a batch that runs code,
                    // reads a variable or calls an attack function does.
                    if matches!(self.keyword_at(0), Keyword::Statement | Keyword::Select) {
                        let runs_code = ["exec", "execute", "declare", "waitfor", "shutdown", "begin", "if"]
                            .iter()
                            .any(|verb| self.keyword_is(verb));
                        let stacked_before = self.found.stacked;
                        let ok = self.statement();
                        let batch = self.tokens[..self.pos]
                            .iter()
                            .any(|(t, _)| matches!(t, Token::Variable | Token::Comment | Token::Semicolon));
                        if !(runs_code || batch || self.found.attack_function || self.found.subquery) {
                            self.found.stacked = stacked_before;
                        }
                        return ok;
                    }
                    if !self.clause() {
                        return false;
                    }
                }
            }
        }
    }

    /// A binary operator and its right operand; false (and nothing consumed)
    /// if the next token is not an operator.
    fn operator(&mut self) -> bool {
        let start = self.pos;
        let left_literal = self.last == Operand::Literal;
        if self.keyword_is("sounds")
            && matches!(self.peek_at(1), Some(Token::Word(w)) if w.eq_ignore_ascii_case("like"))
        {
            self.bump();
        }
        let kind = match (self.peek(), self.keyword_at(0)) {
            (Some(Token::Logic), _) | (_, Keyword::Logic) => Operator::Logic,
            (Some(Token::Compare), _) => Operator::Compare,
            (_, Keyword::Compare) => Operator::WordCompare,
            (Some(Token::Arith(b'!' | b'~')), _) => return false,
            (Some(Token::Arith(_)), _) | (_, Keyword::Arith) => Operator::Arith,
            (_, Keyword::Is) => {
                self.bump();
                if self.keyword_at(0) == Keyword::Not {
                    self.bump();
                }
                if !matches!(self.keyword_at(0), Keyword::Literal) {
                    self.pos = start;
                    return false;
                }
                self.bump();
                self.found.compare = true;
                // `|| user_id IS NOT NULL`: a test that is true of every row.
                self.found.compare_literal = true;
                return true;
            }
            (_, Keyword::Not) if matches!(self.keyword_at(1), Keyword::Compare | Keyword::In | Keyword::Between) => {
                self.bump();
                return self.operator();
            }
            (_, Keyword::In) => {
                self.bump();
                if self.peek() != Some(Token::LParen) {
                    self.pos = start;
                    return false;
                }
                self.found.compare = true;
                self.found.compare_strong |= matches!(self.previous, None | Some(Operator::Logic));
                return self.operand();
            }
            (_, Keyword::Between) => {
                self.bump();
                let ok = self.operand() && self.keyword_is("and") && {
                    self.bump();
                    self.operand()
                };
                self.found.compare |= ok;
                return ok;
            }
            (_, Keyword::Collate) => {
                self.bump();
                let ok = matches!(self.peek(), Some(Token::Word(_) | Token::QuotedName));
                self.bump();
                return ok;
            }
            _ => return false,
        };
        self.bump();
        // `::` casts to a type name.
        if self.tokens[self.pos - 1].0 == Token::Arith(b':') && matches!(self.peek(), Some(Token::Word(_))) {
            self.bump();
            return true;
        }
        let right_start = self.pos;
        if !self.operand() {
            self.pos = start;
            return false;
        }
        let mut right = self.operand_kind(right_start);
        let right_token = (self.pos == right_start + 1).then(|| self.tokens[right_start].0);
        let boolean_term = matches!(self.previous, None | Some(Operator::Logic));
        match kind {
            Operator::Logic => {
                // `OR true`: true of every row, whatever came before. (`1950
                // or 1960` is too, to SQL; to a person it is two years.)
                let or = self.tokens[start].0 == Token::Logic || self.word_at(start).eq_ignore_ascii_case("or");
                let always = matches!(right_token, Some(Token::Word(w)) if w.eq_ignore_ascii_case("true"));
                self.found.tautology |= or && always;
                self.found.logic = true;
                self.previous = Some(kind);
                // OR binds loosest: its right side runs to the next logic operator.
                while !matches!(self.peek(), Some(Token::Logic))
                    && self.keyword_at(0) != Keyword::Logic
                    && self.operator()
                {
                    right = Operand::Expression;
                }
                self.found.logic_strong |= right == Operand::Expression || right == Operand::Literal;
            }
            Operator::Compare | Operator::WordCompare => {
                self.found.compare = true;
                let right_literal = right == Operand::Literal;
                self.found.compare_literal |= left_literal || right_literal;
                // `x=x`: a column compared with itself is true of every row.
                let same_name = start > 0
                    && matches!((self.tokens[start - 1].0, right_token), (Token::Word(l), Some(Token::Word(r)))
                        if l.eq_ignore_ascii_case(r) && keyword(l) == Keyword::None);
                self.found.tautology |= (left_literal && right_literal || same_name) && kind == Operator::Compare;
                self.found.compare_strong |= boolean_term
                    && (left_literal || right_literal)
                    && (kind == Operator::Compare || (self.opens_with_text && right != Operand::Name));
            }
            Operator::Arith => self.found.arith = true,
        }
        self.previous = Some(kind);
        self.last = Operand::Expression;
        true
    }

    /// What the operand in `tokens[start..pos]` is: a literal (the app's
    /// reopened string only if the value put something in it), a bare name,
    /// or an expression (a call, parentheses, several tokens).
    fn operand_kind(&self, start: usize) -> Operand {
        let (mut first, mut end) = (start, self.pos);
        while end > first + 2 && self.tokens[first].0 == Token::LParen && self.tokens[end - 1].0 == Token::RParen {
            first += 1;
            end -= 1;
        }
        // `-8`: a signed number is still a literal.
        if end == first + 2
            && matches!(self.tokens[first].0, Token::Arith(b'-' | b'+'))
            && self.tokens[first + 1].0 == Token::Number
        {
            return Operand::Literal;
        }
        if end != first + 1 {
            return Operand::Expression;
        }
        match self.tokens[first] {
            (Token::Number | Token::Variable | Token::Str { closed: true, .. }, _) => Operand::Literal,
            (Token::Str { closed: false, .. }, at) => {
                if self.text[at..].trim_start_matches(['\'', '"']).trim().is_empty() {
                    Operand::Name
                } else {
                    Operand::Literal
                }
            }
            (Token::Word(word), _) if keyword(word) == Keyword::Literal => Operand::Literal,
            _ => Operand::Name,
        }
    }

    /// The word at `index`, or empty if that token is not a word.
    fn word_at(&self, index: usize) -> &'a str {
        match self.tokens.get(index) {
            Some((Token::Word(w), _)) => w,
            _ => "",
        }
    }

    fn keyword_is(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    /// A value, with any unary operators in front of it.
    fn operand(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        let start = self.pos;
        self.depth += 1;
        let ok = self.operand_inner();
        self.depth -= 1;
        self.last = self.operand_kind(start);
        ok
    }

    fn operand_inner(&mut self) -> bool {
        let Some(token) = self.peek() else {
            return false;
        };
        match token {
            Token::Number | Token::Variable | Token::QuotedName | Token::Str { closed: true, .. } => {
                self.bump();
                self.qualified();
                true
            }
            // The value leaves a string open for the app's own quote to close.
            // The value leaves a string open for a quote after it to close:
            // the app's own (inside a literal), or one later in the statement.
            Token::Str { quote, closed: false } => {
                self.bump();
                (self.app_quote.is_none() || Some(quote) == self.app_quote) && self.at_end()
            }
            Token::Arith(b'-' | b'+' | b'~' | b'!') => {
                self.bump();
                self.operand()
            }
            Token::LParen => self.parenthesized(),
            Token::Word(word) => self.word_operand(word),
            _ => false,
        }
    }

    fn word_operand(&mut self, word: &str) -> bool {
        match keyword(word) {
            // MySQL's IF(), REPLACE(), INSERT() share their names with statements.
            Keyword::Statement if self.peek_at(1) == Some(Token::LParen) => {
                self.bump();
                self.found.function = true;
                self.call_arguments()
            }
            Keyword::Not => {
                self.bump();
                self.operand()
            }
            Keyword::Literal => {
                self.bump();
                true
            }
            Keyword::Prefix => {
                self.bump();
                self.operand()
            }
            Keyword::Exists => {
                self.bump();
                self.peek() == Some(Token::LParen) && self.parenthesized()
            }
            Keyword::Case => {
                self.found.function = true;
                self.bump();
                self.skip_balanced_until(|k| k == Keyword::End)
            }
            Keyword::None | Keyword::Attack => {
                self.bump();
                if self.peek() == Some(Token::LParen) {
                    self.found.function = true;
                    if keyword(word) == Keyword::Attack && self.sql_arguments() {
                        self.found.attack_function = true;
                        return true;
                    }
                    return self.call_arguments();
                }
                self.qualified();
                true
            }
            _ => false,
        }
    }

    /// `schema.table.column`, `dbms_lock.sleep(5)`.
    fn qualified(&mut self) {
        while self.peek() == Some(Token::Dot)
            && matches!(
                self.peek_at(1),
                Some(Token::Word(_) | Token::QuotedName | Token::Arith(b'*'))
            )
        {
            self.bump();
            if let Some(Token::Word(word)) = self.peek() {
                if keyword(word) == Keyword::Attack && self.peek_at(1) == Some(Token::LParen) {
                    self.found.attack_function = true;
                }
            }
            self.bump();
            if self.peek() == Some(Token::LParen) {
                self.found.function = true;
                self.call_arguments();
            }
        }
    }

    /// `( ... )` after a function name: anything balanced, noting subqueries
    /// and attack functions inside. A value that ends inside leaves the app
    /// to close the parenthesis.
    fn call_arguments(&mut self) -> bool {
        self.bump();
        self.skip_balanced_until(|_| false)
    }

    /// Arguments that read as expressions (`sleep(5)`), not as words in
    /// brackets (`sleep (8 hours)`); consumed only if they do.
    fn sql_arguments(&mut self) -> bool {
        let start = self.pos;
        if self.peek_at(1) == Some(Token::RParen) {
            self.pos += 2;
            return true;
        }
        if self.parenthesized() {
            return true;
        }
        self.pos = start;
        false
    }

    /// `( expression )`, `( SELECT ... )` or `(1, 2)`.
    fn parenthesized(&mut self) -> bool {
        if matches!(self.keyword_at(1), Keyword::Select | Keyword::With) {
            self.found.subquery = true;
            self.bump();
            return self.skip_balanced_until(|_| false);
        }
        self.bump();
        let outer = self.previous.take();
        let ok = self.parenthesized_list();
        self.previous = outer;
        ok
    }

    fn parenthesized_list(&mut self) -> bool {
        loop {
            if self.at_end() {
                return true;
            }
            if !self.operand() {
                return false;
            }
            while self.operator() {}
            match self.peek() {
                Some(Token::RParen) => {
                    self.bump();
                    return true;
                }
                Some(Token::Comma) => self.bump(),
                None => return true,
                Some(Token::Comment) => {
                    self.found.comment = true;
                    self.pos = self.tokens.len();
                    return true;
                }
                _ => return false,
            }
        }
    }

    /// Skips to the `)` that closes the current level (consumed) or to the
    /// keyword `stop` at this level (consumed), noting what it passes.
    /// True if it got there or the value ended first.
    fn skip_balanced_until(&mut self, stop: impl Fn(Keyword) -> bool) -> bool {
        let mut level = 0usize;
        while let Some(token) = self.peek() {
            // `IIF(2510=9436, ...)`, `CASE WHEN 1=1`: sqlmap's boolean tests.
            if token == Token::Compare
                && self.pos > 0
                && is_literal(self.tokens[self.pos - 1].0)
                && self.peek_at(1).is_some_and(is_literal)
            {
                self.found.tautology = true;
            }
            self.bump();
            match token {
                Token::LParen => level += 1,
                Token::RParen if level == 0 => return true,
                Token::RParen => level -= 1,
                Token::Comment => self.found.comment = true,
                Token::Word(word) => match keyword(word) {
                    Keyword::Select => self.found.subquery = true,
                    Keyword::Attack if self.peek() == Some(Token::LParen) => self.found.attack_function = true,
                    k if level == 0 && stop(k) => return true,
                    _ => {}
                },
                Token::Semicolon if level == 0 => return false,
                Token::Other => return false,
                _ => {}
            }
        }
        true
    }

    /// A clause that may follow an expression: `UNION SELECT`, `ORDER BY`,
    /// `INTO OUTFILE`, `FROM`, an alias...
    fn clause(&mut self) -> bool {
        match self.keyword_at(0) {
            Keyword::Union => {
                self.bump();
                if self.keyword_at(0) == Keyword::All || self.keyword_is("distinct") {
                    self.bump();
                }
                let parens = self.tokens[self.pos..]
                    .iter()
                    .take_while(|(t, _)| *t == Token::LParen)
                    .count();
                if self.keyword_at(parens) != Keyword::Select {
                    return false;
                }
                self.found.union = true;
                self.pos += parens + 1;
                self.select_rest()
            }
            Keyword::Order | Keyword::Group if self.keyword_at(1) == Keyword::By => {
                self.pos += 2;
                self.found.clause = true;
                let ok = self.expression_list();
                self.found.clause_sql |= self.last != Operand::Name;
                ok
            }
            Keyword::Having | Keyword::Where => {
                self.bump();
                self.found.clause = true;
                self.operand()
            }
            Keyword::Limit | Keyword::Offset => {
                self.bump();
                self.found.clause = true;
                matches!(self.peek(), Some(Token::Number | Token::Variable)) && {
                    self.bump();
                    true
                }
            }
            Keyword::Procedure => {
                self.bump();
                self.found.clause = true;
                self.operand()
            }
            Keyword::Into => {
                self.bump();
                if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("outfile") || w.eq_ignore_ascii_case("dumpfile"))
                {
                    self.found.into_file = true;
                    self.bump();
                    return self.operand();
                }
                false
            }
            Keyword::From => {
                // `1 from dual`, `version() from users`: the rest is a statement.
                self.bump();
                self.found.clause = true;
                self.select_rest()
            }
            Keyword::As => {
                self.bump();
                matches!(
                    self.peek(),
                    Some(Token::Word(_) | Token::QuotedName | Token::Str { closed: true, .. })
                ) && {
                    self.bump();
                    true
                }
            }
            _ => false,
        }
    }

    fn expression_list(&mut self) -> bool {
        loop {
            if !self.operand() {
                return false;
            }
            while self.operator() {}
            if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("asc") || w.eq_ignore_ascii_case("desc"))
            {
                self.bump();
            }
            if self.peek() != Some(Token::Comma) {
                return true;
            }
            self.bump();
        }
    }

    /// What follows `SELECT`: read loosely (the structure is proven), noting
    /// whether the select list is plainly SQL rather than a sentence.
    fn select_rest(&mut self) -> bool {
        let start = self.pos;
        let ok = self.skip_statement();
        if self.found.union {
            self.found.union_select |= plainly_sql(&self.tokens[start..self.pos]);
        }
        ok
    }

    /// The rest of a statement: to the value's end, a comment, or the next
    /// `;`. An unmatched `)` closes the app's own parenthesis.
    fn skip_statement(&mut self) -> bool {
        let mut level = 0usize;
        while let Some(token) = self.peek() {
            match token {
                Token::Semicolon if level == 0 => return self.stacked(),
                Token::LParen => level += 1,
                Token::RParen => level = level.saturating_sub(1),
                Token::Comment => {
                    self.found.comment = true;
                    self.pos = self.tokens.len();
                    return true;
                }
                Token::Word(word) => match keyword(word) {
                    Keyword::Select if level > 0 => self.found.subquery = true,
                    Keyword::Attack if self.peek_at(1) == Some(Token::LParen) => self.found.attack_function = true,
                    _ => {}
                },
                _ => {}
            }
            self.bump();
        }
        true
    }

    /// `;` and what follows: nothing, a comment, or a statement.
    fn stacked(&mut self) -> bool {
        self.bump();
        match self.peek() {
            None => true,
            Some(Token::Comment) => {
                self.found.comment = true;
                true
            }
            Some(Token::Semicolon) => self.stacked(),
            _ => self.statement(),
        }
    }

    /// A statement starts with its verb and that verb's next word
    /// (`DROP TABLE`, `EXEC xp_cmdshell`, `WAITFOR DELAY`): "Bye; drop by
    /// later" is not one.
    fn statement(&mut self) -> bool {
        let Some(Token::Word(verb)) = self.peek() else {
            return false;
        };
        let next = |g: &Self, words: &[&str]| matches!(g.peek_at(1), Some(Token::Word(w)) if words.iter().any(|x| w.eq_ignore_ascii_case(x)));
        let verb = verb.to_ascii_lowercase();
        let valid = match verb.as_str() {
            "select" => {
                self.bump();
                let start = self.pos;
                let ok = self.skip_statement();
                let list = &self.tokens[start..self.pos];
                // `SELECT 1 FROM t`, `SELECT @@version`; not `42 Select Road, Unit 7`.
                let statement = list.iter().any(|(t, _)| match t {
                    Token::Variable => true,
                    Token::Word(w) => keyword(w) == Keyword::From,
                    _ => false,
                });
                self.found.stacked |= ok && statement && plainly_sql(list);
                return ok;
            }
            "drop" | "create" | "alter" | "truncate" | "rename" => next(
                self,
                &[
                    "table",
                    "database",
                    "schema",
                    "view",
                    "user",
                    "login",
                    "procedure",
                    "function",
                    "index",
                    "trigger",
                    "temporary",
                    "or",
                    "role",
                ],
            ),
            "insert" | "replace" | "merge" => next(self, &["into"]),
            "delete" => next(self, &["from"]),
            "update" => {
                matches!(self.peek_at(1), Some(Token::Word(_) | Token::QuotedName)) && {
                    matches!(self.peek_at(2), Some(Token::Word(w)) if w.eq_ignore_ascii_case("set"))
                }
            }
            "exec" | "execute" | "call" => match self.peek_at(1) {
                Some(Token::LParen | Token::Variable) => true,
                // A procedure: `xp_cmdshell`, `master..xp_dirtree`, `dbo.proc`.
                Some(Token::Word(name)) => name.contains('_') || self.peek_at(2) == Some(Token::Dot),
                _ => false,
            },
            "declare" | "set" => matches!(self.peek_at(1), Some(Token::Variable)),
            "waitfor" => next(self, &["delay", "time"]),
            "shutdown" => {
                matches!(self.peek_at(1), None | Some(Token::Comment | Token::Semicolon)) || next(self, &["with"])
            }
            "grant" | "revoke" => next(
                self,
                &["all", "select", "insert", "update", "delete", "execute", "usage"],
            ),
            "load" => next(self, &["data", "xml"]),
            "copy" => {
                matches!(self.peek_at(1), Some(Token::Word(_)))
                    && {
                        matches!(self.peek_at(2), Some(Token::Word(w)) if w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("to"))
                    }
            }
            "show" => next(
                self,
                &["tables", "databases", "columns", "grants", "variables", "processlist"],
            ),
            "if" => {
                matches!(self.peek_at(1), Some(Token::LParen | Token::Number | Token::Variable))
                    || next(self, &["not", "exists"])
            }
            "begin" => {
                matches!(self.peek_at(1), None | Some(Token::Semicolon | Token::Comment))
                    || next(
                        self,
                        &[
                            "try",
                            "tran",
                            "transaction",
                            "declare",
                            "select",
                            "exec",
                            "set",
                            "if",
                            "waitfor",
                            "shutdown",
                        ],
                    )
            }
            "commit" | "rollback" => matches!(self.peek_at(1), None | Some(Token::Semicolon | Token::Comment)),
            _ => false,
        };
        if !valid {
            return false;
        }
        self.found.stacked = true;
        self.bump();
        self.skip_statement()
    }
}

/// A select list or statement made of SQL's own material (numbers, `NULL`,
/// calls, `*`, `FROM`, a comment), not of English words after "select".
fn plainly_sql(tokens: &[(Token<'_>, usize)]) -> bool {
    tokens.iter().any(|(t, _)| match t {
        Token::Number | Token::Str { .. } | Token::Variable | Token::LParen | Token::Arith(b'*') | Token::Comment => {
            true
        }
        Token::Word(w) => matches!(keyword(w), Keyword::From | Keyword::Literal | Keyword::Attack),
        _ => false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Logic,
    /// `=`, `<>`, `>=`...
    Compare,
    /// `LIKE`, `REGEXP`...
    WordCompare,
    Arith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    Literal,
    Name,
    Expression,
}

/// `a'||'b`, `' DIV '`, `A' ^ 'B`, `aa'|3!='4`: the app's literal closed, an
/// operator straight after the quote, and a string reopened for the app's
/// own quote to close, in a few tokens: one literal turned into an
/// expression of two, the probe that finds injectable strings. Prose puts
/// a letter after an apostrophe (`it's`, `rock 'n' roll`), and words where
/// probes put atoms (`SMALL "&" SIGN`, `"LIKE" STAMP`).
fn literal_made_expression(value: &str, after_close: &[(Token<'_>, usize)]) -> bool {
    let operator = match after_close.first() {
        Some((Token::Logic | Token::Compare | Token::Arith(_), _)) => true,
        Some((Token::Word(word), _)) => matches!(
            keyword(word),
            Keyword::Logic | Keyword::Compare | Keyword::Arith | Keyword::Is | Keyword::Not
        ),
        _ => false,
    };
    // Probes name columns and operators (`column`, `LIKE`); searches and
    // names spell out words that are neither.
    let word = value
        .split(|c: char| !c.is_alphabetic())
        .any(|run| run.chars().count() > 3 && keyword(run) == Keyword::None);
    operator
        && !word
        && after_close.len() <= 8
        && matches!(after_close.last(), Some((Token::Str { closed: false, .. }, _)))
}

fn is_literal(token: Token<'_>) -> bool {
    matches!(token, Token::Number | Token::Str { .. })
}

/// How the grammar treats a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    /// An identifier (or a function when a `(` follows).
    None,
    Logic,
    Compare,
    Arith,
    Is,
    Not,
    In,
    Between,
    Collate,
    /// `NULL`, `TRUE`, `FALSE`, `UNKNOWN`.
    Literal,
    /// Operators written before an operand: `BINARY`, `INTERVAL`, `DISTINCT`.
    Prefix,
    Exists,
    Case,
    End,
    Select,
    With,
    Union,
    All,
    Order,
    Group,
    By,
    Having,
    Where,
    Limit,
    Offset,
    Procedure,
    Into,
    From,
    As,
    /// A word that starts a statement (`DROP`, `WAITFOR`, ...).
    Statement,
    /// Functions that only attacks call from a user's value: delays,
    /// error-based extraction, file and command access.
    Attack,
    /// Other reserved words that cannot be an operand.
    Reserved,
}

fn keyword(word: &str) -> Keyword {
    let mut buffer = [0; 24];
    let Some(lower) = lowercase_into(word.as_bytes(), &mut buffer) else {
        return Keyword::None;
    };
    match lower {
        b"and" | b"or" | b"xor" => Keyword::Logic,
        b"like" | b"rlike" | b"ilike" | b"regexp" | b"glob" | b"match" | b"sounds" | b"similar" => Keyword::Compare,
        b"div" | b"mod" => Keyword::Arith,
        b"is" => Keyword::Is,
        b"not" => Keyword::Not,
        b"in" => Keyword::In,
        b"between" => Keyword::Between,
        b"collate" | b"escape" => Keyword::Collate,
        b"null" | b"true" | b"false" | b"unknown" => Keyword::Literal,
        b"binary" | b"interval" | b"distinct" | b"prior" => Keyword::Prefix,
        b"exists" => Keyword::Exists,
        b"case" => Keyword::Case,
        b"end" => Keyword::End,
        b"select" => Keyword::Select,
        b"with" => Keyword::With,
        b"union" | b"intersect" | b"except" | b"minus" => Keyword::Union,
        b"all" => Keyword::All,
        b"order" => Keyword::Order,
        b"group" => Keyword::Group,
        b"by" => Keyword::By,
        b"having" => Keyword::Having,
        b"where" => Keyword::Where,
        b"limit" => Keyword::Limit,
        b"offset" => Keyword::Offset,
        b"procedure" => Keyword::Procedure,
        b"into" => Keyword::Into,
        b"from" => Keyword::From,
        b"as" => Keyword::As,
        b"drop" | b"insert" | b"update" | b"delete" | b"create" | b"alter" | b"truncate" | b"exec" | b"execute"
        | b"declare" | b"waitfor" | b"shutdown" | b"grant" | b"revoke" | b"merge" | b"replace" | b"rename"
        | b"call" | b"load" | b"copy" | b"show" | b"begin" | b"if" => Keyword::Statement,
        b"sleep"
        | b"benchmark"
        | b"pg_sleep"
        | b"pg_read_file"
        | b"pg_ls_dir"
        | b"lo_import"
        | b"lo_export"
        | b"extractvalue"
        | b"updatexml"
        | b"load_file"
        | b"xp_cmdshell"
        | b"xp_dirtree"
        | b"sp_executesql"
        | b"sp_oacreate"
        | b"openrowset"
        | b"opendatasource"
        | b"receive_message"
        | b"get_host_name"
        | b"get_host_address"
        | b"randomblob"
        | b"dbms_pipe"
        | b"utl_inaddr"
        | b"utl_http"
        | b"geometrycollection"
        | b"name_const"
        | b"gtid_subset"
        | b"ctxsys"
        | b"xmltype"
        | b"load_extension" => Keyword::Attack,
        b"set" | b"values" | b"join" | b"on" | b"then" | b"else" | b"when" | b"asc" | b"desc" | b"table" | b"for"
        | b"using" => Keyword::Reserved,
        _ => Keyword::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::testing;

    #[test]
    fn injections_in_every_place_are_found() {
        testing::assert_all(
            inspect,
            &[
                "' OR '1'='1",
                "' or 1=1--",
                "admin'--",
                "admin' #",
                "1 OR 1=1",
                "1) or (1=1",
                "') OR ('a'='a",
                "\" or \"\"=\"",
                "1 UNION SELECT NULL,NULL,NULL--",
                "-1' UNION ALL SELECT username, password FROM users--",
                "1; DROP TABLE users",
                "'; WAITFOR DELAY '0:0:5'--",
                "1 AND SLEEP(5)",
                "' AND extractvalue(1,concat(0x7e,version()))--",
                "1 AND (SELECT * FROM (SELECT(SLEEP(5)))a)",
                "' || (select password from users limit 1) || '",
                "1/**/or/**/1=1",
                "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2,3",
                "x' AND 1=(SELECT COUNT(*) FROM tabname); --",
                "1 order by 3--",
                "' ORDER BY 1-- -",
                "SO_BUY AND IF(1=1,BENCHMARK(1589466,MD5(0X41)),0)",
                "PHPX AND 1=1 AND XX=X",
                "\\' or 1=1 -- ",
                "1' AND pg_sleep(5)--",
                "1;EXEC xp_cmdshell('dir')",
                "x` OR 1=1-- ",
            ],
            true,
        );
    }

    #[test]
    fn expressions_longer_than_the_first_tokens_are_read_whole() {
        for value in [
            "1 or 1 = 1 or 1 = 1",
            "1 or x = x and 1 = 1 -- x",
            "1 and 1 and 1 and 1 and 1 union select 1",
        ] {
            let present = ByteSet::in_text(value);
            assert!(
                inspect_reading_first(value, &present, FIRST_TOKENS).is_some(),
                "{value}"
            );
        }
        // A statement whose end decides: what follows its `;`.
        let value = "drop table 1 1 1 1 1 ; 1";
        let present = ByteSet::in_text(value);
        assert_eq!(
            inspect_reading_first(value, &present, FIRST_TOKENS),
            inspect_reading_first(value, &present, UNQUOTED_TOKENS)
        );
    }

    proptest::proptest! {
        #[test]
        fn reading_the_first_tokens_first_decides_as_reading_all(
            words in proptest::prop_oneof![
                // Long expressions, which the first tokens cut mid-way.
                proptest::collection::vec(proptest::sample::select(vec!["1", "x", "or", "and", "=", "--"]), 6..20),
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "1", "0", "x", "or", "and", "union", "select", "from", "order", "by", "group", "having",
                        "not", "like", "is", "null", "true", "=", "<", "-", "+", "*", ",", ".", ";", "--", "#",
                        "/*", "*/", "limit", "where", "drop", "table", "users", "the", "chair", "5-year",
                    ]),
                    0..24,
                ),
            ],
        ) {
            let value = words.join(" ");
            let present = ByteSet::in_text(&value);
            proptest::prop_assert_eq!(
                inspect_reading_first(&value, &present, FIRST_TOKENS),
                inspect_reading_first(&value, &present, UNQUOTED_TOKENS)
            );
        }
    }

    #[test]
    fn probes_and_reconnaissance_are_found() {
        testing::assert_all(
            inspect,
            &[
                // A literal turned into an expression of two.
                "a'||'b",
                "' DIV '",
                "A' ^ 'B",
                "'NOT LIKE'",
                "aa'|3!='4",
                "'/1/1='",
                // Always true, whatever came before.
                "' OR x=x--",
                "1 or true",
                // What the database is, and its catalogs.
                "ascii(substring(version() from 1 for 1))",
                "DATABASE() LIKE SCHEMA()",
                "1 AND 1=0 UNION SELECT table_name FROM information_schema.tables",
                "MID(@@hostname, 1, 1)",
                "select current_setting('hba_file');",
                "1 /**/union/**/select",
            ],
            true,
        );
    }

    #[test]
    fn words_and_punctuation_that_are_not_sql_pass() {
        testing::assert_all(
            inspect,
            &[
                "union station",
                "select comfort mattress",
                "O'Brien",
                "O'Brien and O'Neil",
                "1=1 math proof",
                "5 or more",
                "2 OR 4 METAL BUTTONS",
                "13 IS A LUCKY NUMBER",
                "Tom and Jerry",
                "Y'ALL COME BACK NOW",
                "It's a nice day, isn't it?",
                "rock'n'roll",
                "MATS 5\" BY 7\"",
                "\"ALASKA\" + 1978",
                "TRUE#LAST",
                "Bye; drop by later",
                "I like it; select a seat",
                "what's 2+2",
                "Tr0ub4dor&3'-=",
                "hunter2!@#$%^&*()",
                "AS FOR ME AND MY HOUSE",
                "BY ORDER OF THE MANAGEMENT",
                "hello (world)",
                "Use db.query('SELECT * FROM users WHERE id = ?', [id]) instead of string concatenation.",
                "price: $20 - $30",
                "C'est la vie",
                "user@example.com",
                "SMALL \"&\" SIGN",
                "\"LIKE\" STAMP",
                "I@@kqE@2u&\\!'we",
                "the version() call returns a string",
                "A '-' sign",
                "x = x",
                "1950 or 1960",
            ],
            false,
        );
    }
}
