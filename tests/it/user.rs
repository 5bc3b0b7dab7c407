//! `--user USER[:GROUP]`: COMMAND as another user, exec mode and supervised, with `--dir` files
//! owned by that user; names from /etc/passwd, numbers without it; refusals before any fetch.
//! These need root (to switch at all); a non-root run of the suite skips them with a line.

use crate::dir::shm_dir;
use crate::support::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

/// secret-exec under `setpriv` with `setpriv_args` (e.g. a non-root uid), the test environment.
fn setpriv(setpriv_args: &[&str], args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(setpriv_args)
        .arg("--")
        .arg(BIN)
        .args(args)
        .env_clear()
        .envs(se().envs())
        .output()
        .expect("setpriv (util-linux) is installed")
}

#[test]
fn command_runs_as_the_user_by_name_and_number() {
    if !have_root("user::command_runs_as_the_user_by_name_and_number") {
        return;
    }
    let name = seed("user/id", "v");
    let report = r#"printf '%s %s %s|' "$(id -u)" "$(id -g)" "$(id -G)""#;
    // nobody from /etc/passwd; 54321 has no entry (its gid is the same number); an explicit
    // group; each in exec mode and under the supervisor.
    for (user, want) in [
        ("nobody", "65534 65534 65534|"),
        ("65534", "65534 65534 65534|"),
        ("54321", "54321 54321 54321|"),
        ("54321:nogroup", "54321 65534 65534|"),
    ] {
        for mode in [None, Some("--init")] {
            let out = se()
                .args(mode)
                .args(["--user", user, "-s", &format!("V={name}")])
                .args(["--", "/bin/sh", "-c", report])
                .run();
            out.assert_code(0);
            assert_eq!(out.stdout, want, "--user {user} {mode:?}");
        }
    }
}

#[test]
fn dir_files_belong_to_the_user_and_no_one_else_reads_them() {
    if !have_root("user::dir_files_belong_to_the_user_and_no_one_else_reads_them") {
        return;
    }
    let name = seed("user/dir", "only-for-4242");
    let shm = shm_dir("user-dir");
    let dir = shm.path().join("s");
    let out = se()
        .args(["--user", "4242:4343", "--dir"])
        .arg_path(&dir)
        .args(["-s", &format!("V={name}")])
        .args(["--", "/bin/sh", "-c", r#"cat "$0/V""#])
        .arg_path(&dir)
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "only-for-4242");
    for (p, mode) in [(dir.clone(), 0o700), (dir.join("V"), 0o400)] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4242, 4343), "{}", p.display());
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{}", p.display());
    }
    // Another unprivileged user cannot list DIR nor read the file.
    let other = Command::new("setpriv")
        .args(["--reuid=4444", "--regid=4444", "--clear-groups", "--"])
        .args(["/bin/cat"])
        .arg(dir.join("V"))
        .output()
        .unwrap();
    assert!(!other.status.success());
    assert!(other.stdout.is_empty());
}

#[test]
fn refusals_come_before_any_fetch() {
    if !have_root("user::refusals_come_before_any_fetch") {
        return;
    }
    // The secret does not exist: a fetch would end with 66.
    let missing = unique("user/no-such-secret");
    let out = se()
        .args(["--user", "no-such-user-x", "-s", &missing, "--", "true"])
        .run();
    out.assert_code(78);
    out.assert_stderr_has("no user 'no-such-user-x' in /etc/passwd");
    out.assert_one_clean_line();

    // Not root and no CAP_SETUID: 77, before the fetch.
    let drop = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let out = setpriv(&drop, &["--user", "0", "-s", &missing, "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("without CAP_SETUID"), "{stderr}");
    // Already that user: nothing to switch, so the run goes on to the fetch (66).
    let out = setpriv(&drop, &["--user", "65534", "-s", &missing, "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{stderr}");
    // A dry run starts nothing, so it does not need the switch.
    let name = seed("user/dry", "v");
    let out = setpriv(
        &drop,
        &["--user", "0", "-s", &format!("V={name}"), "--dry-run"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
