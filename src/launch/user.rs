//! `--user USER[:GROUP]`: COMMAND runs as another user while secret-exec fetches with its own
//! identity. Names are read from /etc/passwd and /etc/group directly (no NSS module is loaded,
//! so a scratch image behaves as a full one); numbers need neither file. The switch happens
//! right before execve (in place, or in the supervisor's forked child) with raw syscalls:
//! supplementary groups cleared, then the gid, then the uid. `no_new_privs`, when set, stays.

use crate::error::Error;
use nix::libc;

/// The identity COMMAND gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The first entry of a colon-separated database (`/etc/passwd`, `/etc/group`) whose first field
/// is `name`: its third and fourth fields (uid/gid and, for passwd, the primary gid).
fn lookup(db: &str, name: &str) -> Option<(u32, Option<u32>)> {
    db.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        let id = f.nth(1)?.parse().ok()?;
        Some((id, f.next().and_then(|g| g.parse().ok())))
    })
}

/// The uid whose /etc/passwd entry names it, for its primary group.
fn passwd_gid(db: &str, uid: u32) -> Option<u32> {
    db.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[2].parse() == Ok(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

/// Resolves `USER[:GROUP]` against the text of /etc/passwd and /etc/group (empty when the file
/// is missing). A number is an id as is; a name must be in the file (else 78). Without GROUP the
/// gid is USER's primary group from /etc/passwd, or, for a number with no entry, the same number
/// (never root's group by accident).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<User, Error> {
    let usage = |why: &str| Error::Usage(format!("--user '{spec}': {why}"));
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(usage("the form is USER[:GROUP], a name or a number each"));
    }
    let unknown = |what: &str, name: &str, file: &str| {
        Error::Config(format!(
            "--user '{spec}': no {what} '{name}' in {file}; use a number, or add it to {file}"
        ))
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, passwd_gid(passwd, uid)),
        Err(_) => lookup(passwd, user).ok_or_else(|| unknown("user", user, "/etc/passwd"))?,
    };
    let gid = match grp {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup(group, g)
                    .ok_or_else(|| unknown("group", g, "/etc/group"))?
                    .0
            }
        },
        None => primary.unwrap_or(uid),
    };
    if uid == u32::MAX || gid == u32::MAX {
        return Err(usage("-1 is not an id"));
    }
    Ok(User { uid, gid })
}

/// `--user`, resolved against this system's files; `None` when not given.
pub fn parse(spec: Option<&str>) -> Result<Option<User>, Error> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    resolve(spec, &read("/etc/passwd"), &read("/etc/group")).map(Some)
}

/// Whether this process holds `cap` in its effective set (`CapEff` in /proc/self/status).
fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << cap) != 0)
}

/// Refuses, before anything is fetched, a switch this process cannot make: another uid needs
/// CAP_SETUID and another gid (or clearing supplementary groups) CAP_SETGID. Running as `user`
/// already (same uid, gid and no other group) needs nothing. Exit 77, permission.
pub fn check_permitted(user: User) -> Result<(), Error> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let groups = nix::unistd::getgroups().unwrap_or_default();
    let no_change =
        uid == user.uid && gid == user.gid && groups.iter().all(|g| g.as_raw() == user.gid);
    if no_change {
        return Ok(());
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // CAP_SETGID is 6, CAP_SETUID is 7 (linux/capability.h).
    if has_capability(&status, 6) && has_capability(&status, 7) {
        return Ok(());
    }
    Err(Error::UserSwitch(format!(
        "--user: secret-exec runs as uid {uid} without CAP_SETUID and CAP_SETGID, so it cannot \
         start COMMAND as uid {} gid {}; run it as root (or with those capabilities), or drop \
         --user",
        user.uid, user.gid
    )))
}

/// Becomes `user`: no supplementary group, then the gid, then the uid (real, effective and
/// saved). Raw syscalls only, for the thread that is about to exec: async-signal-safe, so a
/// forked child of a multi-threaded parent may call it. Returns the errno of the step that
/// failed.
pub fn switch(user: User) -> Result<(), i32> {
    // SAFETY: credential syscalls on this thread; no memory is touched.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, user.gid, user.gid, user.gid) != 0
            || libc::syscall(libc::SYS_setresuid, user.uid, user.uid, user.uid) != 0
        {
            return Err(*libc::__errno_location());
        }
    }
    Ok(())
}

/// The `--user` of this run, set once before the first launch; both launch paths read it.
static TARGET: std::sync::OnceLock<User> = std::sync::OnceLock::new();

/// Records `--user` for [`switch_to_target`] (a second call is ignored).
pub fn set_target(user: User) {
    let _ = TARGET.set(user);
}

/// The `--user` of this run, if any.
pub fn target() -> Option<User> {
    TARGET.get().copied()
}

/// [`switch`] to the `--user` of this run, if any, with the user for [`failed`]. A plain read of
/// an initialised `OnceLock`: async-signal-safe.
pub fn switch_to_target() -> Result<(), (User, i32)> {
    match TARGET.get() {
        Some(u) => switch(*u).map_err(|e| (*u, e)),
        None => Ok(()),
    }
}

/// The error for a switch that failed between the check and exec.
pub fn failed(user: User, errno: i32) -> Error {
    Error::UserSwitch(format!(
        "--user: cannot become uid {} gid {}: {}",
        user.uid,
        user.gid,
        nix::errno::Errno::from_raw(errno).desc()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:\nnogroup:x:65534:\n";

    #[test]
    fn resolution_table() {
        let ok: &[(&str, (u32, u32))] = &[
            ("app", (1000, 1001)),
            ("1000", (1000, 1001)),
            ("app:staff", (1000, 50)),
            ("app:7", (1000, 7)),
            ("4242", (4242, 4242)),
            ("4242:0", (4242, 0)),
            ("nobody", (65534, 65534)),
            ("0", (0, 0)),
        ];
        for (spec, (uid, gid)) in ok {
            assert_eq!(
                resolve(spec, PASSWD, GROUP).unwrap(),
                User {
                    uid: *uid,
                    gid: *gid
                },
                "{spec}"
            );
        }
        // Numbers work without either file (a scratch image).
        assert_eq!(resolve("70:71", "", "").unwrap(), User { uid: 70, gid: 71 });
        let bad: &[(&str, i32, &str)] = &[
            ("", 64, "the form is"),
            ("app:", 64, "the form is"),
            (":staff", 64, "the form is"),
            ("4294967295", 64, "-1"),
            ("ghost", 78, "no user 'ghost' in /etc/passwd"),
            ("app:ghosts", 78, "no group 'ghosts' in /etc/group"),
            ("app", 78, "no user 'app'"),
        ];
        for (i, (spec, code, want)) in bad.iter().enumerate() {
            // The last row: the name is not there when /etc/passwd is missing.
            let passwd = if i == bad.len() - 1 { "" } else { PASSWD };
            let e = resolve(spec, passwd, GROUP).unwrap_err();
            assert_eq!(e.exit_code(), *code, "{spec}: {e}");
            assert!(e.to_string().contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn capability_bits() {
        let status = "Name:\tx\nCapEff:\t00000000000000c0\n";
        assert!(has_capability(status, 6) && has_capability(status, 7));
        let status = "CapEff:\t0000000000000040\n";
        assert!(has_capability(status, 6) && !has_capability(status, 7));
        assert!(!has_capability("", 7));
    }
}
