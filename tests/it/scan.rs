//! A ptrace memory scanner for the tests: runs secret-exec as a tracee (PTRACE_TRACEME), stops it
//! at the *entry* of a chosen syscall (the `execve` that launches COMMAND, or `exit_group`), reads
//! every readable mapping through /proc/PID/mem and reports where each needle occurs. At an
//! `execve` stop it also reads the envp array the process is handing to the kernel, so a test can
//! check that an occurrence lies inside the environment block and nowhere else.

use crate::support::HANG;
use nix::libc;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// Where the process was stopped for the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The first `execve` after secret-exec itself started: the one that launches COMMAND.
    Execve,
    /// `exit_group`: the process is leaving without having exec'd.
    ExitGroup,
    /// The delivery of this signal to the main thread (before any handler runs); the signal is
    /// then delivered and tracing goes on to the next stop.
    Signal(Signal),
}

impl Stop {
    fn nr(self) -> Option<u64> {
        match self {
            Stop::Execve => Some(libc::SYS_execve as u64),
            Stop::ExitGroup => Some(libc::SYS_exit_group as u64),
            Stop::Signal(_) => None,
        }
    }
}

/// One occurrence of a needle.
#[derive(Clone, Debug)]
pub struct Hit {
    pub addr: u64,
    /// The mapping's name from /proc/PID/maps (`[stack]`, `[heap]`, a path, or empty).
    pub mapping: String,
}

/// One `NAME=value` string of the envp array passed to execve, at its address in the tracee.
pub struct EnvEntry {
    pub addr: u64,
    pub bytes: Vec<u8>,
}

impl EnvEntry {
    pub fn name(&self) -> String {
        let end = self.bytes.iter().position(|&b| b == b'=').unwrap_or(0);
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }
    /// Whether `len` bytes at `addr` lie inside this string's value (after `NAME=`).
    pub fn value_contains(&self, addr: u64, len: usize) -> bool {
        let value_start = self.addr + self.name().len() as u64 + 1;
        addr >= value_start && addr + len as u64 <= self.addr + self.bytes.len() as u64
    }
}

pub struct Scan {
    pub stop: Stop,
    /// For each needle, in order: where it occurs.
    pub hits: Vec<Vec<Hit>>,
    /// Only at an `execve` stop: the environment being handed over.
    pub env: Vec<EnvEntry>,
    /// Readable bytes scanned, and the mappings that were read (so a scan of nothing shows).
    pub bytes_scanned: u64,
    pub mappings: Vec<String>,
}

impl Scan {
    /// The env entry whose value holds the occurrence `hit` of a needle of `len` bytes.
    pub fn env_entry_of(&self, hit: &Hit, len: usize) -> Option<&EnvEntry> {
        self.env.iter().find(|e| e.value_contains(hit.addr, len))
    }
}

pub struct Traced {
    /// The scan at the last stop (the only one for [`trace`]).
    pub scan: Scan,
    /// The scans at the stops before the last, in order.
    pub scans: Vec<Scan>,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` (which must start secret-exec) as a tracee, scans it for `needles` at `stop`, then
/// lets it run to the end. Panics if the process ends without reaching `stop` (a scan that never
/// happened must not pass).
pub fn trace(cmd: Command, stop: Stop, needles: &[&[u8]]) -> Traced {
    trace_stops(cmd, &[stop], needles, |_| {})
}

/// [`trace`] through several stops in order, scanning at each. `started` gets the tracee's pid
/// as soon as it runs, e.g. to have another thread signal it when some condition is met.
pub fn trace_stops(
    mut cmd: Command,
    stops: &[Stop],
    needles: &[&[u8]],
    started: impl FnOnce(i32),
) -> Traced {
    // SAFETY: the hook only makes the ptrace syscall, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // ptrace requests must come from the tracer thread, which for PTRACE_TRACEME is the thread
    // that forked: everything below happens on this one.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tracee");
    let pid = Pid::from_raw(child.id() as i32);
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    started(pid.as_raw());
    let out_t = reader(Box::new(child.stdout.take().unwrap()));
    let err_t = reader(Box::new(child.stderr.take().unwrap()));

    // The exec of secret-exec itself stops the tracee with SIGTRAP before its first instruction.
    match waitpid(pid, None).expect("wait for the first exec") {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => panic!("tracee did not stop at its own exec: {other:?}"),
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
    // SAFETY: PTRACE_SETOPTIONS on our stopped tracee.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid.as_raw(), 0usize, opts as usize) };
    assert_eq!(
        rc,
        0,
        "PTRACE_SETOPTIONS: {}",
        std::io::Error::last_os_error()
    );

    let start = Instant::now();
    let mut deliver = 0usize;
    let mut scans = Vec::new();
    for &stop in stops {
        let scan = loop {
            assert!(
                start.elapsed() < HANG,
                "tracee did not reach {stop:?} in {HANG:?}"
            );
            // SAFETY: resumes our stopped tracee until the next syscall boundary.
            let rc = unsafe { libc::ptrace(libc::PTRACE_SYSCALL, pid.as_raw(), 0usize, deliver) };
            assert_eq!(rc, 0, "PTRACE_SYSCALL: {}", std::io::Error::last_os_error());
            deliver = 0usize;
            match waitpid(pid, None).expect("waitpid on the tracee") {
                WaitStatus::PtraceSyscall(_) => {
                    let info = syscall_info(pid);
                    if info.op == libc::PTRACE_SYSCALL_INFO_ENTRY {
                        // SAFETY: `op` says the entry member of the union is the valid one.
                        let entry = unsafe { info.u.entry };
                        if Some(entry.nr) == stop.nr() {
                            let env = if stop == Stop::Execve {
                                read_envp(pid, entry.args[2])
                            } else {
                                Vec::new()
                            };
                            break scan_memory(pid, stop, needles, env);
                        }
                    }
                }
                WaitStatus::PtraceEvent(..) => {}
                WaitStatus::Stopped(_, sig) => {
                    deliver = sig as usize;
                    if stop == Stop::Signal(sig) {
                        break scan_memory(pid, stop, needles, Vec::new());
                    }
                }
                other => panic!("tracee ended before {stop:?}: {other:?}"),
            }
        };
        scans.push(scan);
    }

    // SAFETY: detaching lets the stopped tracee continue untraced; `deliver` hands on a signal
    // it was stopped for.
    let rc = unsafe { libc::ptrace(libc::PTRACE_DETACH, pid.as_raw(), 0usize, deliver) };
    assert_eq!(rc, 0, "PTRACE_DETACH: {}", std::io::Error::last_os_error());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the tracee") {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("tracee hung after the scan");
        }
        // Polling a child we no longer trace; there is no readiness signal other than its exit.
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Traced {
        scan: scans.pop().expect("at least one stop"),
        scans,
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Attaches to a running process (not traced before), stops it, scans its memory for `needles`,
/// and lets it go on. For a process that stays resident, such as the `--init` parent.
pub fn attach_scan(pid: i32, needles: &[&[u8]]) -> Scan {
    let pid = Pid::from_raw(pid);
    // SAFETY: PTRACE_ATTACH on a process we may trace (tests run as root).
    let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid.as_raw(), 0usize, 0usize) };
    assert_eq!(rc, 0, "PTRACE_ATTACH: {}", std::io::Error::last_os_error());
    loop {
        match waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL))
            .expect("wait for the attach stop")
        {
            WaitStatus::Stopped(_, Signal::SIGSTOP) => break,
            // Another signal arrived first: deliver it, keep waiting for our stop.
            WaitStatus::Stopped(_, sig) => {
                // SAFETY: resumes the stopped tracee, delivering the signal it stopped for.
                unsafe { libc::ptrace(libc::PTRACE_CONT, pid.as_raw(), 0usize, sig as usize) };
            }
            other => panic!("attached process did not stop: {other:?}"),
        }
    }
    let scan = scan_memory(pid, Stop::Signal(Signal::SIGSTOP), needles, Vec::new());
    // SAFETY: detaching our stopped tracee.
    let rc = unsafe { libc::ptrace(libc::PTRACE_DETACH, pid.as_raw(), 0usize, 0usize) };
    assert_eq!(rc, 0, "PTRACE_DETACH: {}", std::io::Error::last_os_error());
    scan
}

fn syscall_info(pid: Pid) -> libc::ptrace_syscall_info {
    // SAFETY: all-zero is a valid value of this plain C struct; the kernel fills at most
    // `size_of` bytes of it.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: PTRACE_GET_SYSCALL_INFO writes into `info`, which is `size` bytes long.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            size,
            &mut info as *mut _,
        )
    };
    assert!(
        rc > 0,
        "PTRACE_GET_SYSCALL_INFO: {}",
        std::io::Error::last_os_error()
    );
    info
}

fn mem_file(pid: Pid) -> std::fs::File {
    std::fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem of the tracee")
}

fn read_exact_at(mem: &std::fs::File, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    mem.read_exact_at(&mut buf, addr)
        .unwrap_or_else(|e| panic!("read tracee memory at {addr:#x}: {e}"));
    buf
}

/// Reads the NULL-terminated `char *envp[]` at `envp` and every string it points to.
fn read_envp(pid: Pid, envp: u64) -> Vec<EnvEntry> {
    let mem = mem_file(pid);
    let mut out = Vec::new();
    for i in 0.. {
        assert!(i < 1_000_000, "envp is not NULL-terminated");
        let p = read_exact_at(&mem, envp + 8 * i, 8);
        let addr = u64::from_ne_bytes(p.try_into().unwrap());
        if addr == 0 {
            break;
        }
        let mut bytes = Vec::new();
        let mut at = addr;
        loop {
            let chunk = read_exact_at(&mem, at, 256);
            match chunk.iter().position(|&b| b == 0) {
                Some(n) => {
                    bytes.extend_from_slice(&chunk[..n]);
                    break;
                }
                None => bytes.extend_from_slice(&chunk),
            }
            at += 256;
        }
        out.push(EnvEntry { addr, bytes });
    }
    out
}

/// Mappings that are readable on paper but that the kernel will not hand out through
/// /proc/PID/mem; they are kernel-provided and never hold process data.
const SPECIAL: &[&str] = &["[vvar]", "[vvar_vclock]", "[vsyscall]"];

enum Unreadable {
    Gone,
    Io(std::io::Error),
}

/// Reads one chunk of a mapping. At an execve stop only the stopped thread is frozen: a
/// thread still exiting can unmap a region between the maps listing and the read, which the
/// kernel reports as EIO. A failed read is retried while the mapping is still listed; a mapping
/// that is no longer listed is reported `Gone`, one that stays listed and unreadable is a failure.
fn read_stable(
    mem: &std::fs::File,
    buf: &mut [u8],
    pos: u64,
    pid: Pid,
    line: &str,
) -> Result<(), Unreadable> {
    let mut last = None;
    for _ in 0..5 {
        match mem.read_exact_at(buf, pos) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(Unreadable::Io)?;
        if !maps.lines().any(|l| l == line) {
            return Err(Unreadable::Gone);
        }
        std::thread::yield_now();
    }
    Err(Unreadable::Io(last.expect("at least one read failed")))
}

fn scan_memory(pid: Pid, stop: Stop, needles: &[&[u8]], env: Vec<EnvEntry>) -> Scan {
    assert!(needles.iter().all(|n| !n.is_empty()), "empty needle");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mem = mem_file(pid);
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    const CHUNK: u64 = 1 << 20;
    let mut hits = vec![Vec::new(); needles.len()];
    let mut bytes_scanned = 0;
    let mut mappings = Vec::new();
    let mut buf = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next().unwrap(), f.next().unwrap());
        let name = f.nth(3).unwrap_or("").to_string();
        if !perms.starts_with('r') || SPECIAL.contains(&name.as_str()) {
            continue;
        }
        let (lo, hi) = range.split_once('-').unwrap();
        let lo = u64::from_str_radix(lo, 16).unwrap();
        let hi = u64::from_str_radix(hi, 16).unwrap();
        let mut pos = lo;
        while pos < hi {
            let len = (CHUNK + overlap as u64).min(hi - pos) as usize;
            buf.resize(len, 0);
            if let Err(e) = read_stable(&mem, &mut buf, pos, pid, line) {
                match e {
                    // Torn down while the scan ran (another thread of the tracee was still
                    // winding down): it no longer exists, so it holds nothing at this stop.
                    Unreadable::Gone => break,
                    Unreadable::Io(e) => panic!("read mapping {line}: {e}"),
                }
            }
            // A match starting in the overlap belongs to the next chunk.
            let own = CHUNK.min(hi - pos) as usize;
            for (n, needle) in needles.iter().enumerate() {
                for at in find_all(&buf, needle).filter(|&at| at < own) {
                    hits[n].push(Hit {
                        addr: pos + at as u64,
                        mapping: name.clone(),
                    });
                }
            }
            bytes_scanned += own as u64;
            pos += own as u64;
        }
        mappings.push(name);
    }
    Scan {
        stop,
        hits,
        env,
        bytes_scanned,
        mappings,
    }
}

/// Start offsets of every occurrence of `needle` in `hay` (overlapping ones included).
pub fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let first = needle[0];
    let mut from = 0;
    std::iter::from_fn(move || {
        while from + needle.len() <= hay.len() {
            let at = from
                + hay[from..=hay.len() - needle.len()]
                    .iter()
                    .position(|&b| b == first)?;
            from = at + 1;
            if &hay[at..at + needle.len()] == needle {
                return Some(at);
            }
        }
        None
    })
}

#[test]
fn find_all_table() {
    let rows: &[(&[u8], &[u8], &[usize])] = &[
        (b"abcabc", b"abc", &[0, 3]),
        (b"aaaa", b"aa", &[0, 1, 2]),
        (b"xyz", b"xyzw", &[]),
        (b"", b"a", &[]),
        (b"zzab", b"ab", &[2]),
        (b"a", b"a", &[0]),
    ];
    for (hay, needle, want) in rows {
        let got: Vec<usize> = find_all(hay, needle).collect();
        assert_eq!(&got, want, "{:?} in {:?}", needle, hay);
    }
}
