//! `--dir DIR`: the `--secret` variables as files on a memory file system (0400, atomic
//! replace), against moto. /dev/shm is the tmpfs every Linux machine has; the build directory
//! stands for a disk.

use crate::support::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A directory under /dev/shm, removed on drop; `--dir` points below it.
pub struct ShmDir(PathBuf);

impl ShmDir {
    pub fn new(stem: &str) -> ShmDir {
        let p = PathBuf::from("/dev/shm").join(unique(&format!("secret-exec-{stem}")));
        std::fs::create_dir(&p).unwrap();
        ShmDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const PASSWORD: &str = "p@ss\nword with spaces\t\u{e9}";

#[test]
fn exec_mode_writes_files_not_variables() {
    let name = unique("dir/exec");
    moto().create(
        &name,
        &serde_json::json!({"username": "app", "password": PASSWORD}).to_string(),
    );
    let shm = ShmDir::new("dir-exec");
    let dir = shm.path().join("secrets");
    let out = se()
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args(["--secret", &name])
        .args(["--file", &format!("CERT={name}:username")])
        .args([
            "--",
            "/bin/sh",
            "-c",
            // The environment has neither variable; the --file memfd is unchanged by --dir.
            r#"printf '%s|%s|%s|' "${USERNAME-unset}" "${PASSWORD-unset}" "$CERT"; cat "$CERT""#,
        ])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "unset|unset|/dev/fd/3|app");
    // Byte-exact, 0400, ours; DIR created 0700; no temporary left.
    assert_eq!(
        std::fs::read(dir.join("PASSWORD")).unwrap(),
        PASSWORD.as_bytes()
    );
    assert_eq!(std::fs::read(dir.join("USERNAME")).unwrap(), b"app");
    assert_eq!(names(&dir), ["PASSWORD", "USERNAME"]);
    for f in ["PASSWORD", "USERNAME"] {
        let p = dir.join(f);
        assert_eq!(mode(&p), 0o400, "{f}");
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.uid(), nix::unistd::geteuid().as_raw(), "{f}");
        assert_eq!(m.gid(), nix::unistd::getegid().as_raw(), "{f}");
    }
    assert_eq!(mode(&dir), 0o700);
    out.assert_no_leak(&[PASSWORD]);
}

/// A wide umask takes nothing from 0700/0400, and a narrow one adds nothing.
#[test]
fn modes_do_not_depend_on_the_umask() {
    let name = seed("dir/umask", "v");
    let shm = ShmDir::new("dir-umask");
    for (umask, sub) in [("000", "a"), ("777", "b")] {
        let dir = shm.path().join(sub);
        // sh sets the umask, then execs secret-exec with the test environment.
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                &format!("umask {umask}; exec \"$0\" --dir \"$1\" -s V={name} -- true"),
            ])
            .arg(BIN)
            .arg(&dir)
            .env_clear()
            .envs(se().envs())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&dir), 0o700, "umask {umask}");
        assert_eq!(mode(&dir.join("V")), 0o400, "umask {umask}");
        assert_eq!(std::fs::read(dir.join("V")).unwrap(), b"v");
    }
}

/// A disk is refused with 78 naming the directory, before anything is fetched (the secret does
/// not exist, which would be 66), and nothing is created there.
#[test]
fn a_disk_directory_is_refused_before_any_fetch() {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let missing = target.join(unique("dir-disk"));
    for dir in [target.clone(), missing.clone()] {
        let out = se()
            .args(["--dir".as_ref(), dir.as_os_str()])
            .args(["-s", &unique("dir/no-such-secret"), "--", "true"])
            .run();
        out.assert_code(78);
        out.assert_stderr_has(&format!("--dir {}", dir.display()));
        out.assert_stderr_has("not on a memory file system");
        out.assert_one_clean_line();
    }
    assert!(!missing.exists());
    // A missing parent, and a file where DIR should be: 78 too.
    let shm = ShmDir::new("dir-bad");
    std::fs::write(shm.path().join("file"), "x").unwrap();
    for (dir, why) in [
        (shm.path().join("a/b"), "its parent must exist"),
        (shm.path().join("file"), "is not a directory"),
    ] {
        let out = se()
            .args(["--dir".as_ref(), dir.as_os_str()])
            .args(["-s", "x", "--", "true"])
            .run();
        out.assert_code(78);
        out.assert_stderr_has(why);
    }
}

#[test]
fn usage_errors() {
    for (args, want) in [
        (&["--dir", "", "-s", "x", "--", "true"][..], "--dir needs"),
        (
            &["--dir", "/dev/shm/x", "--file", "A=x", "--", "true"],
            "no --secret",
        ),
    ] {
        let out = se().args(args).run();
        out.assert_code(64);
        out.assert_stderr_has(want);
    }
}

/// A resident secret-exec removes what it wrote when COMMAND ends: DIR too when it made it;
/// an existing DIR keeps what others put there.
#[test]
fn supervised_runs_clean_up_after_command() {
    let name = unique("dir/sup");
    moto().create(&name, &serde_json::json!({"a": "1", "b": "2"}).to_string());
    let shm = ShmDir::new("dir-sup");
    let made = shm.path().join("made");
    let out = se()
        .args(["--init"])
        .args(["--dir".as_ref(), made.as_os_str()])
        .args(["-s", &name, "--", "/bin/sh", "-c", r#"cat "$0/A" "$0/B""#])
        .arg_path(&made)
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout, "12");
    assert!(!made.exists(), "the directory secret-exec made is left");

    let kept = shm.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    std::fs::write(kept.join("OTHER"), "x").unwrap();
    let out = se()
        .args(["--init"])
        .args(["--dir".as_ref(), kept.as_os_str()])
        .args(["-s", &name, "--", "/bin/sh", "-c", r#"cat "$0/A"; exit 3"#])
        .arg_path(&kept)
        .run();
    out.assert_code(3);
    assert_eq!(out.stdout, "1");
    assert_eq!(names(&kept), ["OTHER"]);

    // A COMMAND that cannot start: nothing is left in exec mode either.
    let out = se()
        .args(["--dir".as_ref(), made.as_os_str()])
        .args(["-s", &name, "--", "/nonexistent/cmd"])
        .run();
    out.assert_code(127);
    assert!(!made.exists());
}

/// Two variables of one name cannot be one file; `--dry-run` lists the files' variables with
/// their sizes and writes nothing.
#[test]
fn collisions_and_dry_run() {
    let name = seed("dir/dry", "secret-value");
    let shm = ShmDir::new("dir-dry");
    let dir = shm.path().join("d");
    let out = se()
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args([
            "-s",
            &format!("V={name}"),
            "-s",
            &format!("V={name}"),
            "--",
            "true",
        ])
        .run();
    out.assert_code(65);
    out.assert_stderr_has("would be written twice");
    assert!(!dir.exists());

    let out = se()
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args(["-s", &format!("V={name}"), "--dry-run"])
        .run();
    out.assert_code(0);
    let rows = out.dry_run_rows();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert_eq!((rows[0][0], rows[0][7]), ("V", "12"));
    assert!(!dir.exists());
}
