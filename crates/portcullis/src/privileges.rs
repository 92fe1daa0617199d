//! Not running as root (checklist C15).
//!
//! Root is needed only to bind ports below 1024. Started as root, the
//! gateway binds its listeners, then gives up root for good: no
//! supplementary groups, then the configured group, then the user (in that
//! order: once the user is switched, the group can no longer be). All
//! threads switch together (glibc applies set*id to every thread).

use std::path::Path;

use nix::unistd::{self, Gid, Group, Uid, User};

/// What happened, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not started as root: nothing to drop.
    NotRoot,
    Dropped {
        user: String,
        group: String,
    },
    /// Root kept, as `--allow-root` asked.
    KeptRoot {
        reason: String,
    },
}

/// Drops root to `user`:`group` if running as root. Refuses (with the
/// reason) to go on as root unless `allow_root`. The directories in
/// `hand_over` (created if missing) are given to that user first, so it can
/// keep writing there (ACME storage).
pub fn drop_root(user: &str, group: &str, allow_root: bool, hand_over: &[&Path]) -> Result<Outcome, String> {
    if !Uid::effective().is_root() {
        return Ok(Outcome::NotRoot);
    }
    let target = lookup(user, group).and_then(|(uid, gid)| {
        if uid.is_root() {
            return Err(format!("[server] user `{user}` is root"));
        }
        Ok((uid, gid))
    });
    let (uid, gid) = match target {
        Ok(ids) => ids,
        Err(reason) if allow_root => return Ok(Outcome::KeptRoot { reason }),
        Err(reason) => {
            return Err(format!(
                "running as root and cannot drop privileges: {reason}. Create the user, set [server] user and \
                 group, grant CAP_NET_BIND_SERVICE instead of running as root (see docs/tls.md), or pass \
                 --allow-root to run as root anyway"
            ))
        }
    };
    for dir in hand_over {
        give(dir, uid, gid)?;
    }
    unistd::setgroups(&[]).map_err(|e| format!("cannot clear supplementary groups: {e}"))?;
    unistd::setgid(gid).map_err(|e| format!("cannot switch to group `{group}`: {e}"))?;
    unistd::setuid(uid).map_err(|e| format!("cannot switch to user `{user}`: {e}"))?;
    if unistd::setuid(Uid::from_raw(0)).is_ok() || Uid::effective().is_root() {
        return Err("root could be regained after dropping it; refusing to serve".into());
    }
    Ok(Outcome::Dropped {
        user: user.to_owned(),
        group: group.to_owned(),
    })
}

/// Creates `dir` (owner-only) and gives it, and everything in it, to `uid`:`gid`.
fn give(dir: &Path, uid: Uid, gid: Gid) -> Result<(), String> {
    use std::os::unix::fs::{lchown, DirBuilderExt};
    let fail = |e: std::io::Error| format!("cannot hand `{}` over: {e}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        lchown(&path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(fail)?;
        if path.is_dir() && !path.is_symlink() {
            for entry in std::fs::read_dir(&path).map_err(fail)? {
                pending.push(entry.map_err(fail)?.path());
            }
        }
    }
    Ok(())
}

fn lookup(user: &str, group: &str) -> Result<(Uid, Gid), String> {
    let uid = User::from_name(user)
        .map_err(|e| format!("cannot look up user `{user}`: {e}"))?
        .ok_or_else(|| format!("user `{user}` does not exist"))?
        .uid;
    let gid = Group::from_name(group)
        .map_err(|e| format!("cannot look up group `{group}`: {e}"))?
        .ok_or_else(|| format!("group `{group}` does not exist"))?
        .gid;
    Ok((uid, gid))
}
