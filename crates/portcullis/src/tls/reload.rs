//! Certificate hot reload: new handshakes get the new certificate, open
//! connections keep theirs, and a broken new file is refused while the old
//! certificate stays in service.

use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use portcullis_core::events::SecurityEvent;

use super::certificates::{CertificateFiles, CertificateSet, LoadError};
use super::{provider, Tls};
use crate::log::JsonLog;

/// Loads every certificate; on failure, says which one (by index) and why.
pub fn load_all(files: &[CertificateFiles]) -> Result<CertificateSet, (usize, LoadError)> {
    let provider = provider();
    let loaded = files
        .iter()
        .enumerate()
        .map(|(i, f)| f.load(&provider).map_err(|e| (i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CertificateSet::new(loaded))
}

/// What tells a file changed: modification time, size and inode (an atomic
/// rename gives a new inode even within the same clock tick).
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamps(files: &[CertificateFiles]) -> Vec<Stamp> {
    files
        .iter()
        .flat_map(|f| [&f.cert, &f.key])
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len(), meta.ino()))
        })
        .collect()
}

/// Checks the files every `reload_interval` and reloads them when they
/// changed (a config reload also reads them again). Runs until aborted.
pub async fn watch(tls: Tls, log: JsonLog) {
    let mut tick = tokio::time::interval(tls.reload_interval);
    let mut seen = stamps(&tls.files);
    loop {
        tick.tick().await;
        let now = stamps(&tls.files);
        if now == seen {
            continue;
        }
        // A refused set is retried only when the files change again.
        seen = now;
        match load_all(&tls.files) {
            Ok(set) => {
                let described = set.describe();
                tls.resolver.replace(set);
                log.notice("certificates reloaded", Some(described));
            }
            Err((index, error)) => {
                let file = &tls.files[index];
                let path = if error.in_key { &file.key } else { &file.cert };
                log.emit_now(SecurityEvent {
                    kind: "tls",
                    rule: "certificate_reload",
                    action: "refused",
                    request_id: None,
                    client_ip: None,
                    detail: Some(format!(
                        "{}: {}; the certificates in service are kept",
                        path.display(),
                        error.message
                    )),
                    exclusion: None,
                });
            }
        }
    }
}
