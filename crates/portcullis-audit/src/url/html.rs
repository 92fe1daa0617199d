//! The start tags of a page, read as a browser's tokenizer reads them: the
//! text of `<script>`, `<style>`, `<textarea>` and the like is text, so a
//! `<a href>` written inside a script's string is not a link.

use html5gum::{State, Token, Tokenizer};

pub type StartTag = html5gum::StartTag<()>;

/// Every start tag of `html`, in order.
pub fn start_tags(html: &str) -> Vec<StartTag> {
    let mut tokenizer = Tokenizer::new(html);
    let mut tags = Vec::new();
    while let Some(Ok(token)) = tokenizer.next() {
        if let Token::StartTag(tag) = token {
            // The tree builder's switch, for the elements whose content is
            // never markup. `<noscript>` stays markup, as in a browser (or
            // jsdom) with scripting off.
            let state = match &tag.name[..] {
                b"script" => Some(State::ScriptData),
                b"style" | b"xmp" | b"iframe" | b"noembed" | b"noframes" => Some(State::RawText),
                b"textarea" | b"title" => Some(State::RcData),
                b"plaintext" => Some(State::PlainText),
                _ => None,
            };
            if let Some(state) = state {
                tokenizer.set_state(state);
            }
            tags.push(tag);
        }
    }
    tags
}

/// The value of `name` on `tag`, lossily decoded.
pub fn attribute(tag: &StartTag, name: &str) -> Option<String> {
    tag.attributes
        .get(name.as_bytes())
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(html: &str) -> Vec<String> {
        start_tags(html)
            .iter()
            .map(|t| String::from_utf8_lossy(&t.name).into_owned())
            .collect()
    }

    #[test]
    fn markup_inside_scripts_styles_and_titles_is_text() {
        let html = r#"<title><a href=1></title><script>document.write("<a href=2>")</script>
            <style>a::after{content:"<img>"}</style><textarea><meta></textarea><a href=3>"#;
        assert_eq!(names(html), ["title", "script", "style", "textarea", "a"]);
    }

    #[test]
    fn noscript_content_is_markup() {
        assert_eq!(names("<noscript><img src=x></noscript>"), ["noscript", "img"]);
    }

    #[test]
    fn the_first_of_duplicate_attributes_wins() {
        let tags = start_tags("<script src=a.js src=b.js integrity=x></script>");
        assert_eq!(attribute(&tags[0], "src").as_deref(), Some("a.js"));
        assert_eq!(attribute(&tags[0], "integrity").as_deref(), Some("x"));
    }

    proptest::proptest! {
        #[test]
        fn any_page_tokenizes_without_panicking(page in "[ -~\u{0}\u{a0}é<>/=\"']{0,300}") {
            let _ = start_tags(&page);
        }
    }
}
