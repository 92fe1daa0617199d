//! JavaScript's notion of whitespace, for the ports of JavaScript tools
//! (the Observatory, npm's semver) that must read text as they do.

/// Whitespace as JavaScript's `trim()` and `\s` know it.
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// `text.trim()`.
pub fn trim(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// `text.split(/\s+/)`: empty pieces where the text starts or ends with
/// whitespace, as in JavaScript.
pub fn split_spaces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if is_space(c) {
            pieces.push(&text[start..at]);
            let mut end = at + c.len_utf8();
            while let Some(&(next, c)) = chars.peek() {
                if !is_space(c) {
                    break;
                }
                end = next + c.len_utf8();
                chars.next();
            }
            start = end;
        }
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_keeps_javascripts_empty_pieces() {
        assert_eq!(split_spaces(""), [""]);
        assert_eq!(split_spaces("a  b"), ["a", "b"]);
        assert_eq!(split_spaces(" a b "), ["", "a", "b", ""]);
        assert_eq!(trim("\u{feff} x\u{a0}"), "x");
    }
}
