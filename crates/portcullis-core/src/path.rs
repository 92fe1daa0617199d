//! Request paths as the app will read them.
//!
//! Policies that apply to some paths compare normalised paths, so that they
//! cannot be dodged with a spelling the app would still serve: Express
//! decodes percent-escapes, ignores case and treats `//` and `/./` like `/`.

use std::borrow::Cow;

/// Lowercases, percent-decodes, and resolves `//`, `.` and `..` segments.
pub fn normalize(path: &str) -> Cow<'_, str> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let lowered = decoded.to_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in lowered.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let trailing = lowered.ends_with('/') && !segments.is_empty();
    let mut normalized = String::with_capacity(lowered.len() + 1);
    for segment in &segments {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if trailing || normalized.is_empty() {
        normalized.push('/');
    }
    if normalized == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalized_paths_are_canonical(path in "[/a-zA-Z%.\\\\0-9]{0,64}") {
            let once = normalize(&path).into_owned();
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once.contains("//") && !once.contains("/./") && !once.contains("/../"));
            prop_assert!(!once.bytes().any(|b| b.is_ascii_uppercase()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(path in any::<String>()) {
            let _ = normalize(&path);
        }
    }
}
