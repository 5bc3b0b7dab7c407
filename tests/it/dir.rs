//! `--dir DIR`: the `--secret` variables as files on a memory file system (0400, atomic
//! replace), against moto. /dev/shm is the tmpfs every Linux machine has; the build directory
//! stands for a disk.

use crate::support::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A directory under /dev/shm, removed on drop; `--dir` points below it.
pub fn shm_dir(stem: &str) -> TempDir {
    TempDir::under(Path::new("/dev/shm"), stem)
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
    let name = seed(
        "dir/exec",
        &serde_json::json!({"username": "app", "password": PASSWORD}).to_string(),
    );
    let shm = shm_dir("dir-exec");
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
    let shm = shm_dir("dir-umask");
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
    let shm = shm_dir("dir-bad");
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
    moto().create_json(&name, &serde_json::json!({"a": "1", "b": "2"}));
    let shm = shm_dir("dir-sup");
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
    let shm = shm_dir("dir-dry");
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

/// A resident secret-exec with `--dir`; COMMAND writes what it saw to `STATE_DIR/state`.
struct Resident {
    child: Reaped,
    state: TempDir,
    secrets: PathBuf,
    _shm: TempDir,
}

impl Resident {
    fn start(args: &[&str], script: &str) -> Resident {
        let shm = shm_dir("dir-res");
        let secrets = shm.path().join("secrets");
        let state = TempDir::new("dir-res");
        let err = std::fs::File::create(state.path().join("stderr")).unwrap();
        let mut run = se()
            .args(["--dir".as_ref(), secrets.as_os_str()])
            .args(args)
            .args(["--", "/bin/sh", "-c", script])
            .env("SECRETS", &secrets)
            .env("STATE_DIR", state.path());
        let child = run
            .cmd
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Resident {
            child: Reaped(child),
            state,
            secrets,
            _shm: shm,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.state.path().join("stderr")).unwrap_or_default()
    }

    fn read_state(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.path().join(name)).unwrap_or_default()
    }

    /// Waits until `done` holds for the state file `name` (a readiness probe, not a sleep).
    fn wait_state(&mut self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        loop {
            let s = self.read_state(name);
            if done(&s) {
                return s;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("secret-exec ended ({st}); stderr: {}", self.stderr());
            }
            assert!(
                start.elapsed() < HANG,
                "state {name} never ready: {}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits until COMMAND reported `value`; returns the pid it reported with it.
    fn wait_value(&mut self, value: &str) -> i32 {
        let s = self.wait_state("state", |s| {
            s.split_once(' ').is_some_and(|(v, _)| v == value)
        });
        s.trim().split_once(' ').unwrap().1.parse().unwrap()
    }

    /// SIGTERM, which the scripts answer with 42; returns stderr.
    fn terminate(mut self) -> String {
        let pid = self.child.id() as i32;
        // SAFETY: signalling our own child.
        let rc = unsafe { nix::libc::kill(pid, nix::libc::SIGTERM) };
        assert_eq!(rc, 0);
        let st = wait_exit(&mut self.child, HANG, || "secret-exec did not end".into());
        let e = self.stderr();
        assert_eq!(st.code(), Some(42), "{e}");
        e
    }
}

/// The splay delays logged at -v: (chosen, bound) in milliseconds.
fn splays(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split("acting on the change in ").nth(1)?;
            let (chosen, rest) = rest.split_once("ms (--splay up to ")?;
            let bound = rest.split_once("ms)")?.0;
            Some((chosen.parse().ok()?, bound.parse().ok()?))
        })
        .collect()
}

/// COMMAND re-reads `$SECRETS/PASSWORD` on SIGHUP and reports "value pid".
const RELOADER: &str = r#"report() { v=$(cat "$SECRETS/PASSWORD"); printf '%s %s\n' "$v" "$$" > "$STATE_DIR/state.tmp" && mv "$STATE_DIR/state.tmp" "$STATE_DIR/state"; }
trap report HUP; trap 'exit 42' TERM; report; while :; do sleep 0.05; done"#;

#[test]
fn signal_mode_rewrites_files_and_signals_without_a_restart() {
    let name = unique("dir/signal");
    let first = format!("canary-first-{}", unique("c"));
    let second = format!("canary-second-{}", unique("c"));
    let json = |p: &str| serde_json::json!({"password": p}).to_string();
    // The first version has a key the second drops: its file goes at the rotation.
    moto().create_json(&name, &serde_json::json!({"password": first, "old": "o"}));
    let mut r = Resident::start(
        &["-s", &name, "--watch=1s", "--on-change=signal:HUP", "-v"],
        RELOADER,
    );
    let pid = r.wait_value(&first);
    assert_eq!(
        std::fs::read(r.secrets.join("PASSWORD")).unwrap(),
        first.as_bytes()
    );
    assert_eq!(names(&r.secrets), ["OLD", "PASSWORD"]);
    let inode = std::fs::metadata(r.secrets.join("PASSWORD")).unwrap().ino();
    moto().put(&name, &json(&second));
    assert_eq!(r.wait_value(&second), pid, "COMMAND was restarted");
    // Replaced by a rename (a new inode), never rewritten in place; no temporary left.
    let m = std::fs::metadata(r.secrets.join("PASSWORD")).unwrap();
    assert_ne!(m.ino(), inode, "PASSWORD was rewritten in place");
    assert_eq!(m.permissions().mode() & 0o7777, 0o400);
    assert_eq!(names(&r.secrets), ["PASSWORD"]);
    let e = r.stderr();
    assert!(e.contains("sending signal 1 to COMMAND"), "{e}");
    assert!(!e.contains("restarted"), "{e}");
    // The default splay is a tenth of the 1s interval.
    let s = splays(&e);
    assert!(
        !s.is_empty() && s.iter().all(|&(c, b)| b == 100 && c <= b),
        "{s:?}: {e}"
    );

    // After the rotation the resident parent holds neither value (ptrace scan).
    let needles: [&[u8]; 2] = [first.as_bytes(), second.as_bytes()];
    let parent = crate::scan::attach_scan(r.child.id() as i32, &needles);
    assert!(parent.bytes_scanned > 0);
    assert!(
        parent.hits.iter().all(Vec::is_empty),
        "parent holds a value after a signal-mode rotation: {:?}",
        parent.hits
    );
    let secrets = r.secrets.clone();
    let e = r.terminate();
    assert!(!secrets.exists(), "--dir left behind: {e}");
    for v in [&first, &second] {
        assert!(!e.contains(v.as_str()));
    }
}

/// Many reads race many atomic rewrites: every read is a whole value, old or new. The values
/// are 60,000 bytes, so a reader of a file being written would see a short or mixed one.
#[test]
fn readers_racing_rewrites_never_see_a_partial_value() {
    let name = unique("dir/race");
    let values: Vec<String> = "abc"
        .chars()
        .map(|c| c.to_string().repeat(60_000))
        .collect();
    let json = |v: &str| serde_json::json!({"v": v}).to_string();
    let sums: Vec<String> = values
        .iter()
        .map(|v| {
            let mut c = std::process::Command::new("cksum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin.take().unwrap().write_all(v.as_bytes()).unwrap();
            String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
        })
        .collect();
    moto().create(&name, &json(&values[0]));
    let mut r = Resident::start(
        &[
            "-s",
            &format!("V={name}:v"),
            "--watch=1s",
            "--on-change=signal:USR1",
            "--splay",
            "300ms",
            "-v",
        ],
        r#"trap : USR1; trap 'exit 42' TERM; while :; do cksum < "$SECRETS/V" >> "$STATE_DIR/sums"; done"#,
    );
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            moto().put(&name, &json(v));
        }
        // Wait for readers to see value i, then for more reads of it.
        let seen = r.wait_state("sums", |s| s.contains(sums[i].as_str()));
        let n = seen.lines().count();
        r.wait_state("sums", |s| s.lines().count() > n + 20);
    }
    let all = r.read_state("sums");
    let e = r.terminate();
    let reads = all.lines().count();
    assert!(reads > 60, "{reads} reads");
    for line in all.lines() {
        // cksum prints once it has read the whole file (a reader killed by SIGTERM prints
        // nothing), so every line is one complete read.
        assert!(
            sums.iter().any(|s| s.trim_end() == line),
            "a partial or unknown value was read: {line}"
        );
    }
    let s = splays(&e);
    assert_eq!(s.len(), 2, "{e}");
    assert!(s.iter().all(|&(c, b)| b == 300 && c <= 300), "{s:?}");
}

#[test]
fn signal_mode_needs_every_value_in_files() {
    let rows: &[(&[&str], &str)] = &[
        (
            &["-s", "a", "--watch", "--on-change=signal:HUP"],
            "deliver them with --dir",
        ),
        (
            &[
                "-s",
                "a",
                "--dir",
                "/dev/shm/x",
                "--file",
                "F=b",
                "--watch",
                "--on-change=signal:HUP",
            ],
            "--file memfd is sealed",
        ),
        (
            &["-s", "a", "--watch", "--on-change=signal:NOPE"],
            "--on-change",
        ),
        (&["-s", "a", "--splay", "1s"], "needs --watch"),
    ];
    for (args, want) in rows {
        let out = se().args(*args).args(["--", "true"]).run();
        out.assert_code(64);
        out.assert_stderr_has(want);
    }
}
