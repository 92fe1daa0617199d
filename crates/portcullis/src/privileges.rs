//! Not running as root (checklist C15).
//!
//! Root is needed only to bind ports below 1024. Started as root, the
//! gateway binds its listeners, then gives up root for good: no
//! supplementary groups, then the configured group, then the user (in that
//! order: once the user is switched, the group can no longer be). All
//! threads switch together (glibc applies set*id to every thread).

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
/// reason) to go on as root unless `allow_root`.
pub fn drop_root(user: &str, group: &str, allow_root: bool) -> Result<Outcome, String> {
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
