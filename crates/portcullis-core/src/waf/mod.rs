//! Input inspection (checklist C11): a WAF.

pub mod command;
pub mod decode;
pub mod keys;
pub mod scanner;
pub mod sqli;
pub mod ssrf;
pub mod template;
pub mod traversal;
pub mod xss;

/// What a detector found in one spelling of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1 (a weak sign) to 5 (an attack on its own).
    pub score: u8,
    /// Where the value was assumed to land, e.g. "single-quoted SQL string".
    pub context: &'static str,
    /// Byte offset in the spelling where the attack starts.
    pub at: usize,
}
