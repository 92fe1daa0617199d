//! Paths, header and cookie values already found clean, remembered per thread.
//!
//! A browser sends the same `User-Agent`, `Referer` and cookies on every
//! request of a visit, most requests go to a few paths, and what the detectors find in a value depends only on
//! its bytes and its place (its [`Role`] and how it is encoded), never on the
//! request around it or on the route's settings: exclusions and thresholds
//! apply to findings afterwards. So a value that a full inspection found
//! nothing in needs no second one. A value is remembered only once it was
//! found clean, and recognised only by its exact bytes: a hash collision or a
//! flood of distinct values costs a fresh inspection, never a missed attack.
//!
//! Each worker runs on its own thread, so each has its own table and no
//! lock; the table is direct-mapped, a few hundred slots of at most
//! [`LONGEST`] bytes, its memory bounded and reused.

use std::cell::RefCell;
use std::hash::BuildHasher;

use super::decode::Origin;
use super::walk::Role;

/// Slots per thread; a power of two.
const SLOTS: usize = 512;
/// Longer values are rare in headers and not worth keeping.
pub const LONGEST: usize = 512;

#[derive(Default)]
struct Slot {
    place: Option<(Role, Origin)>,
    bytes: Vec<u8>,
}

struct CleanValues {
    hasher: foldhash::fast::RandomState,
    slots: Vec<Slot>,
}

impl CleanValues {
    fn new() -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            slots: std::iter::repeat_with(Slot::default).take(SLOTS).collect(),
        }
    }

    fn slot(&mut self, bytes: &[u8]) -> &mut Slot {
        let index = self.hasher.hash_one(bytes) as usize & (SLOTS - 1);
        &mut self.slots[index]
    }
}

thread_local! {
    static CLEAN: RefCell<Option<CleanValues>> = const { RefCell::new(None) };
}

fn with_table<T>(f: impl FnOnce(&mut CleanValues) -> T) -> T {
    CLEAN.with_borrow_mut(|table| f(table.get_or_insert_with(CleanValues::new)))
}

/// Whether `bytes`, in this place, were found clean before on this thread.
pub fn seen_clean(role: Role, origin: Origin, bytes: &[u8]) -> bool {
    with_table(|table| {
        let slot = table.slot(bytes);
        slot.place == Some((role, origin)) && slot.bytes == bytes
    })
}

/// Remembers that a full inspection found nothing in `bytes` in this place,
/// in place of whatever value shared its slot.
pub fn remember_clean(role: Role, origin: Origin, bytes: &[u8]) {
    if bytes.len() > LONGEST {
        return;
    }
    with_table(|table| {
        let slot = table.slot(bytes);
        slot.place = Some((role, origin));
        slot.bytes.clear();
        slot.bytes.extend_from_slice(bytes);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";

    #[test]
    fn a_value_is_known_only_in_the_place_it_was_found_clean() {
        assert!(!seen_clean(Role::UserAgent, Origin::Plain, AGENT));
        remember_clean(Role::UserAgent, Origin::Plain, AGENT);
        assert!(seen_clean(Role::UserAgent, Origin::Plain, AGENT));
        assert!(!seen_clean(Role::Value, Origin::Plain, AGENT));
        assert!(!seen_clean(Role::UserAgent, Origin::Form, AGENT));
        assert!(!seen_clean(Role::UserAgent, Origin::Plain, &AGENT[1..]));
    }

    #[test]
    fn values_past_the_longest_are_not_kept() {
        let long = vec![b'a'; LONGEST + 1];
        remember_clean(Role::Value, Origin::Plain, &long);
        assert!(!seen_clean(Role::Value, Origin::Plain, &long));
    }

    #[test]
    fn each_thread_has_its_own_table() {
        remember_clean(Role::Value, Origin::Plain, b"theme=dark");
        let elsewhere = std::thread::spawn(|| seen_clean(Role::Value, Origin::Plain, b"theme=dark"));
        assert!(!elsewhere.join().unwrap());
        assert!(seen_clean(Role::Value, Origin::Plain, b"theme=dark"));
    }
}
