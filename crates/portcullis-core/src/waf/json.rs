//! JSON bodies: every key and every string value, with its path
//! (`user.address.street`, `items[0].name`), read by serde_json without
//! building the document.
//!
//! A bounded prefix of a longer body ends mid-document: what came before the
//! cut is still walked. Nesting deeper than the limit stops the walk and is
//! reported, so the decision is defined rather than left to the parser.

use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::decode::Origin;
use super::walk::{Item, Raw, Role, Source};

/// Why the walk stopped before the end of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Nested deeper than the limit.
    TooDeep,
    /// The bytes are not JSON (or the prefix ended; see [`walk`]).
    Invalid,
}

/// Walks `bytes`. `Ok` if the document was read to its end; a prefix that
/// was cut short reports [`Stop::Invalid`] after visiting what it held.
pub fn walk(bytes: &[u8], max_depth: usize, visit: &mut dyn FnMut(Item<'_>)) -> Result<(), Stop> {
    let mut walker = Walker {
        path: String::new(),
        depth: 0,
        max_depth,
        too_deep: false,
        visit,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // Depth is bounded here, below serde_json's own recursion limit.
    let result = (&mut walker).deserialize(&mut deserializer);
    match (result, walker.too_deep) {
        (_, true) => Err(Stop::TooDeep),
        (Ok(()), _) if deserializer.end().is_ok() => Ok(()),
        _ => Err(Stop::Invalid),
    }
}

struct Walker<'v> {
    path: String,
    depth: usize,
    max_depth: usize,
    too_deep: bool,
    visit: &'v mut dyn FnMut(Item<'_>),
}

impl Walker<'_> {
    fn string(&mut self, value: &str) {
        (self.visit)(Item {
            source: Source::Json,
            name: &self.path,
            raw: Raw::Text(value),
            role: Role::Value,
            origin: Origin::Plain,
        });
    }

    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > self.max_depth {
            self.too_deep = true;
            return Err(E::custom("nested too deep"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Walker<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut Walker<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.string(value);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let base = self.path.len();
        let mut index = 0usize;
        loop {
            self.path.truncate(base);
            self.path.push('[');
            self.path.push_str(crate::text::decimal(index as u64, &mut [0; 20]));
            self.path.push(']');
            if seq.next_element_seed(&mut *self)?.is_none() {
                break;
            }
            index += 1;
        }
        self.path.truncate(base);
        self.depth -= 1;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let base = self.path.len();
        while let Some(()) = map.next_key_seed(Key(&mut *self, base))? {
            map.next_value_seed(&mut *self)?;
            self.path.truncate(base);
        }
        self.depth -= 1;
        Ok(())
    }
}

/// A key: appended to the path, then visited as the path down to it (so
/// `constructor` then `prototype` are seen together).
struct Key<'w, 'v>(&'w mut Walker<'v>, usize);

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        let walker = self.0;
        walker.path.truncate(self.1);
        if !walker.path.is_empty() {
            walker.path.push('.');
        }
        walker.path.push_str(key);
        (walker.visit)(Item {
            source: Source::Json,
            name: &walker.path,
            raw: Raw::Text(&walker.path),
            role: Role::Key,
            origin: Origin::Plain,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(json: &str, depth: usize) -> (Vec<String>, Result<(), Stop>) {
        let mut seen = Vec::new();
        let result = walk(json.as_bytes(), depth, &mut |item| {
            seen.push(format!(
                "{}={}:{:?}",
                item.name,
                String::from_utf8_lossy(item.raw.bytes()),
                item.role
            ))
        });
        (seen, result)
    }

    #[test]
    fn keys_and_strings_with_their_paths() {
        let (seen, result) = items(r#"{"user":{"name":"a\u0027b","tags":["x",1,{"k":"v"}]},"n":5}"#, 8);
        assert_eq!(result, Ok(()));
        assert_eq!(
            seen,
            [
                "user=user:Key",
                "user.name=user.name:Key",
                "user.name=a'b:Value",
                "user.tags=user.tags:Key",
                "user.tags[0]=x:Value",
                "user.tags[2].k=user.tags[2].k:Key",
                "user.tags[2].k=v:Value",
                "n=n:Key",
            ]
        );
    }

    #[test]
    fn cut_and_deep_documents_stop_defined() {
        let (seen, result) = items(r#"{"a":"first","b":"sec"#, 8);
        assert_eq!(result, Err(Stop::Invalid));
        assert!(seen.contains(&"a=first:Value".to_owned()));
        let deep = "[".repeat(100);
        assert_eq!(items(&deep, 32).1, Err(Stop::TooDeep));
        assert_eq!(items("not json", 8).1, Err(Stop::Invalid));
    }

    proptest! {
        #[test]
        fn any_bytes_walk_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = walk(&bytes, 16, &mut |_| {});
        }

        #[test]
        fn json_like_text_walks_without_panic(text in r#"[\[\]{}",:a-z0-9\\ ]{0,256}"#) {
            let _ = walk(text.as_bytes(), 16, &mut |_| {});
        }
    }
}
