//! Memory and speed of the in-memory store with one million tracked clients:
//! one rate-limit decision for each of 1,000,000 distinct IPv4 addresses,
//! then the growth of the process's resident memory.
//!
//! `cargo run --release -p portcullis-core --example store_memory`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use portcullis_core::store::{MemoryStore, Rate};

const CLIENTS: u32 = 1_000_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn main() {
    let rate = Rate {
        quota: 600,
        window: Duration::from_secs(60),
        burst: 120,
    };
    let before = rss_kib();
    let store = MemoryStore::new(CLIENTS as usize);
    let now = 1_700_000_000_000;
    let start = Instant::now();
    let mut key = String::new();
    for i in 0..CLIENTS {
        use std::fmt::Write;
        key.clear();
        // The key the rate limit uses: scope and client address.
        let _ = write!(key, "rl:default:{}", Ipv4Addr::from(0x0a00_0000 + i));
        assert!(store.gcra_now(&key, now, rate).allowed);
    }
    let elapsed = start.elapsed();
    let grown_kib = rss_kib() - before;
    assert_eq!(store.len(), CLIENTS as usize, "every client is tracked");
    println!(
        "{CLIENTS} clients tracked: +{:.1} MiB resident ({} bytes per client), {:.0} ns per decision",
        grown_kib as f64 / 1024.0,
        grown_kib * 1024 / u64::from(CLIENTS),
        elapsed.as_nanos() as f64 / f64::from(CLIENTS)
    );
}
