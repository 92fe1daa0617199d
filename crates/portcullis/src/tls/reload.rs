//! Certificate hot reload: new handshakes get the new certificate, open
//! connections keep theirs, and a broken new file is refused while the old
//! certificate stays in service.

use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use portcullis_core::events::SecurityEvent;
use tokio::signal::unix::{signal, SignalKind};

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
/// changed, or at once on SIGHUP. Runs until the process ends.
pub async fn watch(tls: Tls, log: JsonLog) {
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(tls.reload_interval);
    let mut seen = stamps(&tls.files);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async { hangup.as_mut()?.recv().await } => true,
        };
        let now = stamps(&tls.files);
        if !forced && now == seen {
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

/// Without certificate files, SIGHUP has nothing to reload; it must not
/// stop the gateway (its default action), so it is answered with a notice.
pub async fn nothing_to_reload(log: JsonLog) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangup.recv().await.is_some() {
        log.notice("SIGHUP: no certificate files to reload", None);
    }
}
