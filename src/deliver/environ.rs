//! The child's environment: inherited variables (after `-i`/`-u`), injected variables, the
//! collision and override rules, and the kernel's size limits — checked here, before exec, so
//! the operator gets a named variable instead of a bare E2BIG.

use crate::error::Error;
use crate::map::{Origin, Var, Via};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// `-i`, `-u` and `--no-override`: what the merge keeps of the inherited environment.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    pub ignore_environment: bool,
    /// Names as `env -u` takes them: any bytes but `=`, not empty.
    pub unset: Vec<OsString>,
    pub no_override: bool,
}

impl EnvOptions {
    /// From the flags; every `-u` name must be one `env -u` accepts.
    pub fn new(
        ignore_environment: bool,
        unset: Vec<OsString>,
        no_override: bool,
    ) -> Result<EnvOptions, Error> {
        for n in &unset {
            if n.is_empty() || n.as_bytes().contains(&b'=') {
                return Err(Error::Usage(format!(
                    "--unset '{}' is not a name env -u accepts (not empty, no '=')",
                    n.to_string_lossy()
                )));
            }
        }
        Ok(EnvOptions {
            ignore_environment,
            unset,
            no_override,
        })
    }
}

#[derive(Debug)]
pub struct Injected {
    pub var: Var,
    /// An inherited variable of the same name was dropped in its favour.
    pub overrides: bool,
}

/// The full environment the command will get.
#[derive(Debug)]
pub struct Merged {
    pub inherited: Vec<(OsString, OsString)>,
    pub injected: Vec<Injected>,
}

/// Two sources for one name. The advice depends on where they come from: two keys of one
/// secret cannot be told apart by a prefix (it applies to both), only by picking one key.
fn collision(name: &str, first: &Origin, second: &Origin) -> Error {
    let what_to_do = if first.spec != second.spec {
        "give one of them an explicit name (VAR=...) or a prefix (PREFIX*=...)".to_string()
    } else if first.key == second.key {
        "the same --secret is given twice; remove one".to_string()
    } else {
        format!(
            "both keys of that secret map to {name}; take them one by one with \
             VAR=ID:KEY, or pass --keep-case if they differ only in case"
        )
    };
    Error::DataGeneral(format!(
        "variable {name} would be set twice, by {first} and by {second}; {what_to_do}"
    ))
}

/// Combines the inherited environment with the injected variables, enforcing: no two sources
/// for one name, no NUL in a value, and `--no-override`.
pub fn merge(
    inherited: Vec<(OsString, OsString)>,
    vars: Vec<Var>,
    opts: &EnvOptions,
) -> Result<Merged, Error> {
    let mut seen: BTreeMap<&str, &Origin> = BTreeMap::new();
    for v in &vars {
        if let Some(first) = seen.insert(&v.name, &v.origin) {
            return Err(collision(&v.name, first, &v.origin));
        }
        if v.value.expose().contains('\0') {
            return Err(Error::data(
                &v.origin.secret_id,
                format!("variable {} (from {})", v.name, v.origin),
                "the value contains a NUL byte, which the environment cannot carry",
            ));
        }
    }
    let mut kept = Vec::new();
    if !opts.ignore_environment {
        for (k, val) in inherited {
            if opts.unset.iter().any(|u| u.as_os_str() == k.as_os_str()) {
                continue;
            }
            kept.push((k, val));
        }
    }
    let mut injected = Vec::with_capacity(vars.len());
    for var in vars {
        let present = kept
            .iter()
            .any(|(k, _)| k.as_bytes() == var.name.as_bytes());
        // A resolved reference takes the place of its own variable: that is the point of
        // --from-env, not an override, so --no-override does not refuse it.
        let overrides = present && var.origin.via != Via::FromEnv;
        if overrides && opts.no_override {
            return Err(Error::data(
                &var.origin.secret_id,
                format!("variable {} (from {})", var.name, var.origin),
                "it is already set in the environment and --no-override is given; \
                 unset it (-u NAME) or rename the injected one (VAR=...)",
            ));
        }
        if present {
            kept.retain(|(k, _)| k.as_bytes() != var.name.as_bytes());
        }
        injected.push(Injected { var, overrides });
    }
    Ok(Merged {
        inherited: kept,
        injected,
    })
}

/// What the kernel accepts for execve (fs/exec.c): each string at most `max_string` bytes with its
/// NUL, and everything [`exec_bytes`] counts within `max_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_string: usize,
    pub max_total: usize,
}

/// `ARG_MAX` (include/uapi/linux/limits.h): the kernel's floor for the total, whatever the stack.
const ARG_MAX: usize = 128 << 10;
/// `_STK_LIM`: the total is capped at three quarters of it, even with an unlimited stack.
const STK_LIM: usize = 8 << 20;
/// `PATH_MAX` with its NUL: the longest filename execve copies.
const PATH_MAX: usize = 4096;
/// `BINPRM_BUF_SIZE`: a `#!` line (interpreter and its argument) fits in it.
const BINPRM_BUF_SIZE: usize = 256;
const PTR: usize = std::mem::size_of::<usize>();

/// What the kernel adds to the count that we do not see before exec: the filename it copies (a
/// PATH candidate, at most PATH_MAX), and for a `#!` script the script path again plus the
/// interpreter and its argument, each with a pointer.
pub const HEADROOM: usize = PATH_MAX + PATH_MAX + BINPRM_BUF_SIZE + 3 * PTR;

impl Limits {
    /// The kernel's formula (bprm_stack_limits): MAX_ARG_STRLEN is 32 pages; the total is a
    /// quarter of the stack soft limit (which exec keeps), capped at 3/4 of `_STK_LIM` (6 MiB)
    /// and at least `ARG_MAX` (128 KiB).
    pub fn for_stack(stack_soft_limit: u64, page_size: usize) -> Limits {
        let quarter = usize::try_from(stack_soft_limit / 4).unwrap_or(usize::MAX);
        Limits {
            max_string: 32 * page_size,
            max_total: quarter.clamp(ARG_MAX, STK_LIM / 4 * 3),
        }
    }

    /// The limits for an exec from this process, read from its page size and stack rlimit.
    pub fn current() -> Limits {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map(|p| p as usize)
            .unwrap_or(4096);
        let stack = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
            .map(|(soft, _)| soft)
            .unwrap_or(8 << 20);
        Limits::for_stack(stack, page)
    }
}

/// The bytes execve counts against `max_total` (do_execveat_common, bprm_stack_limits,
/// copy_strings): the filename, every argv and envp string, each with its NUL, plus one pointer
/// per argv entry (at least one: an empty argv gets one added) and per envp entry.
pub fn exec_bytes(filename_len: usize, args: &[usize], envs: &[usize]) -> usize {
    let strings: usize = args.iter().chain(envs).map(|l| l + 1).sum();
    filename_len + 1 + strings + PTR * (args.len().max(1) + envs.len())
}

/// Checks the environment and argv against `limits`, naming the culprit. The filename and a
/// `#!` interpreter are not known yet, so [`HEADROOM`] stands in for them.
pub fn check_limits(merged: &Merged, argv: &[OsString], limits: Limits) -> Result<(), Error> {
    for a in argv {
        if a.len() + 1 > limits.max_string {
            return Err(Error::Usage(format!(
                "a COMMAND argument is {} bytes; the kernel takes at most {} per argument",
                a.len(),
                limits.max_string - 1
            )));
        }
    }
    for inj in &merged.injected {
        let size = inj.var.name.len() + 1 + inj.var.value.len() + 1;
        if size > limits.max_string {
            return Err(Error::data(
                &inj.var.origin.secret_id,
                format!("variable {} (from {})", inj.var.name, inj.var.origin),
                format!(
                    "NAME=value is {size} bytes with its NUL; Linux takes at most {} bytes per \
                     variable (32 pages, MAX_ARG_STRLEN). Select a smaller key, or deliver this \
                     secret as a file",
                    limits.max_string
                ),
            ));
        }
    }
    let args: Vec<usize> = argv.iter().map(|a| a.len()).collect();
    let envs: Vec<usize> = merged
        .inherited
        .iter()
        .map(|(k, v)| k.len() + 1 + v.len())
        .chain(
            merged
                .injected
                .iter()
                .map(|i| i.var.name.len() + 1 + i.var.value.len()),
        )
        .collect();
    let total = exec_bytes(HEADROOM - 1, &args, &envs);
    if total > limits.max_total {
        // Name the largest injected variable: it is what the operator can change.
        let largest = merged
            .injected
            .iter()
            .max_by_key(|i| i.var.value.len())
            .map(|i| {
                format!(
                    "; the largest injected variable is {} ({} bytes, from {})",
                    i.var.name,
                    i.var.value.len(),
                    i.var.origin
                )
            })
            .unwrap_or_default();
        return Err(Error::DataGeneral(format!(
            "the environment and arguments would be {total} bytes (with {HEADROOM} bytes kept for \
             the command path and a #! interpreter), over the {} bytes the kernel accepts (a \
             quarter of the stack limit, ulimit -s){largest}; inject fewer or smaller values, \
             start with -i, or raise ulimit -s",
            limits.max_total
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretText;

    fn var(name: &str, value: &str, spec: &str) -> Var {
        Var {
            name: name.into(),
            value: SecretText::copy_of(value),
            origin: Origin {
                via: crate::map::Via::Secret,
                spec: spec.into(),
                secret_id: spec.into(),
                key: Some(format!("/{}", name.to_lowercase())),
                version_id: None,
                stage: "AWSCURRENT".into(),
                explicit: false,
            },
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn override_unset_and_ignore() {
        let rows: &[(EnvOptions, &[&str], bool)] = &[
            (EnvOptions::default(), &["HOME", "USER"], true),
            (
                EnvOptions {
                    unset: vec!["HOME".into()],
                    ..Default::default()
                },
                &["USER"],
                true,
            ),
            (
                EnvOptions {
                    ignore_environment: true,
                    ..Default::default()
                },
                &[],
                false,
            ),
        ];
        for (opts, kept, overrides) in rows {
            let m = merge(
                env(&[("HOME", "/root"), ("USER", "old"), ("USER", "dup")]),
                vec![var("USER", "new", "s")],
                opts,
            )
            .unwrap();
            let names: Vec<_> = m
                .inherited
                .iter()
                .map(|(k, _)| k.to_str().unwrap())
                .collect();
            let want: Vec<_> = kept.iter().filter(|k| **k != "USER").copied().collect();
            assert_eq!(names, want, "{opts:?}");
            assert_eq!(
                m.injected[0].overrides,
                *overrides && !opts.unset.contains(&OsString::from("USER")),
                "{opts:?}"
            );
            let user: Vec<&str> = m
                .injected
                .iter()
                .filter(|i| i.var.name == "USER")
                .map(|i| i.var.value.expose())
                .chain(
                    m.inherited
                        .iter()
                        .filter(|(k, _)| k == "USER")
                        .map(|_| "inherited"),
                )
                .collect();
            assert_eq!(user, ["new"], "{opts:?}");
        }
    }

    /// A resolved reference replaces its own variable, even under --no-override; a file path
    /// or a --secret on the same name as another source is a collision naming both flags.
    #[test]
    fn via_rules() {
        let via = |name: &str, spec: &str, via: Via| {
            let mut v = var(name, "v", spec);
            v.origin.via = via;
            v
        };
        let strict = EnvOptions {
            no_override: true,
            ..Default::default()
        };
        let m = merge(
            env(&[("DB", "secretsmanager:db"), ("HOME", "/")]),
            vec![via("DB", "DB=secretsmanager:db", Via::FromEnv)],
            &strict,
        )
        .unwrap();
        assert!(!m.injected[0].overrides);
        assert_eq!(m.inherited, env(&[("HOME", "/")]));

        let rows: &[(Via, Via, [&str; 2])] = &[
            (Via::Secret, Via::File, ["by --secret 'a'", "by --file 'b'"]),
            (Via::File, Via::File, ["by --file 'a'", "by --file 'b'"]),
            (
                Via::FromEnv,
                Via::Secret,
                ["by --from-env 'a'", "by --secret 'b'"],
            ),
        ];
        for (first, second, wants) in rows {
            let err = merge(
                vec![],
                vec![via("X", "a", *first), via("X", "b", *second)],
                &EnvOptions::default(),
            )
            .unwrap_err();
            assert_eq!(err.exit_code(), 65);
            for want in wants {
                assert!(err.to_string().contains(want), "{err}");
            }
        }
    }

    #[test]
    fn no_override_refuses() {
        let opts = EnvOptions {
            no_override: true,
            ..Default::default()
        };
        let err = merge(env(&[("USER", "x")]), vec![var("USER", "v", "s")], &opts).unwrap_err();
        assert_eq!(err.exit_code(), 65);
        assert!(err.to_string().contains("--no-override"), "{err}");
        assert!(merge(env(&[("OTHER", "x")]), vec![var("USER", "v", "s")], &opts).is_ok());
    }

    #[test]
    fn collision_names_both_sources() {
        let err = merge(
            vec![],
            vec![var("A", "1", "one"), var("A", "2", "two")],
            &EnvOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 65);
        let msg = err.to_string();
        assert!(
            msg.contains("--secret 'one'") && msg.contains("--secret 'two'"),
            "{msg}"
        );
        assert!(msg.contains("PREFIX*="), "{msg}");
    }

    /// Two keys of one secret that give one name: a prefix would not help, so it is not offered.
    #[test]
    fn collision_inside_one_secret_does_not_suggest_a_prefix() {
        let mut a = var("A_B", "1", "prod/db");
        a.origin.key = Some("/a-b".into());
        let mut b = var("A_B", "2", "prod/db");
        b.origin.key = Some("/a_b".into());
        let msg = merge(vec![], vec![a, b], &EnvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("PREFIX") && !msg.contains("prefix"), "{msg}");
        assert!(msg.contains("VAR=ID:KEY"), "{msg}");
        let twice = merge(
            vec![],
            vec![var("A", "1", "s"), var("A", "1", "s")],
            &EnvOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(twice.contains("given twice"), "{twice}");
    }

    #[test]
    fn nul_is_refused_by_name() {
        let err = merge(vec![], vec![var("K", "a\0b", "s")], &EnvOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 65);
        assert!(err.to_string().contains("variable K"));
    }

    #[test]
    fn limits_table() {
        let limits = Limits {
            max_string: 1000,
            // cmd + A=900 x + B=900 x, exactly: HEADROOM + (3+1) + 2 * (902+1) + 3 pointers.
            max_total: HEADROOM + 4 + 2 * 903 + 3 * PTR,
        };
        let argv: Vec<OsString> = vec!["cmd".into()];
        let rows: &[(&[(&str, usize)], &[(&str, &str)], Option<&str>)] = &[
            (&[("A", 10)], &[], None),
            (&[("A", 997)], &[], None),
            (&[("A", 998)], &[], Some("variable A (from --secret 's'")),
            (&[("A", 900), ("B", 900)], &[], None),
            (
                &[("A", 900), ("B", 901)],
                &[],
                Some("the largest injected variable is B (901 bytes"),
            ),
            (&[("A", 900)], &[("B", "")], None),
            (
                &[("A", 900)],
                &[("B", "y")],
                Some("the largest injected variable is A"),
            ),
        ];
        for (vars, inherited, want) in rows {
            let injected: Vec<Var> = vars
                .iter()
                .map(|(n, len)| var(n, &"x".repeat(*len), "s"))
                .collect();
            let inherited = match inherited {
                [] => vec![],
                [(k, v)] => env(&[(k, &format!("{}{v}", "x".repeat(900)))]),
                _ => unreachable!(),
            };
            let m = merge(inherited, injected, &EnvOptions::default()).unwrap();
            match (check_limits(&m, &argv, limits), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => {
                    assert_eq!(e.exit_code(), 65);
                    assert!(e.to_string().contains(w), "{e}");
                }
                (got, _) => panic!("{vars:?}: {:?}", got.err()),
            }
        }
    }

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const UNLIMITED: u64 = nix::libc::RLIM_INFINITY;

    /// Stack soft limit → the total the kernel formula gives, for every branch of it.
    const STACKS: &[(u64, usize)] = &[
        (256 * KIB, 128 << 10), // a quarter is 64 KiB: raised to ARG_MAX
        (MIB, 256 << 10),
        (8 * MIB, 2 << 20),  // the usual default
        (64 * MIB, 6 << 20), // a quarter is 16 MiB: capped at 3/4 of _STK_LIM
        (UNLIMITED, 6 << 20),
    ];

    #[test]
    fn formula_table() {
        for (stack, total) in STACKS {
            let l = Limits::for_stack(*stack, 4096);
            assert_eq!(l.max_total, *total, "stack {stack}");
            assert_eq!(l.max_string, 128 << 10);
        }
        assert_eq!(Limits::for_stack(8 * MIB, 65536).max_string, 2 << 20);
        assert_eq!(exec_bytes(9, &[9], &[]), 10 + 10 + PTR);
        assert_eq!(exec_bytes(9, &[], &[3, 0]), 10 + 4 + 1 + 3 * PTR);
    }

    const TRUE: &str = "/bin/true";

    /// Runs /bin/true with exactly the strings `envs` under a stack soft limit of `stack`;
    /// `Err(errno)` when execve refuses.
    fn exec_true(stack: u64, envs: &[String]) -> Result<(), i32> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(TRUE);
        cmd.env_clear();
        for e in envs {
            let (k, v) = e.split_once('=').unwrap();
            cmd.env(k, v);
        }
        // SAFETY: setrlimit is a plain syscall, safe between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let (_, hard) =
                    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)?;
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_STACK,
                    stack,
                    hard,
                )?;
                Ok(())
            });
        }
        match cmd.status() {
            Ok(s) => {
                assert!(s.success(), "{TRUE} ran but failed: {s}");
                Ok(())
            }
            Err(e) => Err(e.raw_os_error().expect("an errno")),
        }
    }

    /// Environment strings whose `exec_bytes` for `/bin/true` is exactly `target`.
    fn env_totalling(target: usize, limits: Limits) -> Vec<String> {
        let n = target / (limits.max_string / 2) + 1;
        let fixed = exec_bytes(TRUE.len(), &[TRUE.len()], &vec![0; n]);
        let spare = target - fixed;
        let envs: Vec<String> = (0..n)
            .map(|i| {
                let name = format!("E{i}=");
                let len = spare / n + usize::from(i < spare % n);
                format!("{name}{}", "x".repeat(len - name.len()))
            })
            .collect();
        let lens: Vec<usize> = envs.iter().map(String::len).collect();
        assert_eq!(exec_bytes(TRUE.len(), &[TRUE.len()], &lens), target);
        envs
    }

    /// Measures the limits on this kernel: at exactly `max_total` / `max_string` execve succeeds,
    /// one byte more is E2BIG. This is what proves `Limits` and `exec_bytes` are the kernel's.
    #[test]
    fn kernel_agrees_at_the_boundary() {
        let (_, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK).unwrap();
        let e2big = Err(nix::libc::E2BIG);
        let page = Limits::current().max_string / 32;
        let mut measured = 0;
        for (stack, _) in STACKS {
            if *stack > hard {
                continue; // cannot raise the soft limit above the hard one without privilege
            }
            let l = Limits::for_stack(*stack, page);
            let at = env_totalling(l.max_total, l);
            assert_eq!(
                exec_true(*stack, &at),
                Ok(()),
                "stack {stack}: at the limit"
            );
            let over = env_totalling(l.max_total + 1, l);
            assert_eq!(
                exec_true(*stack, &over),
                e2big,
                "stack {stack}: one byte over"
            );
            eprintln!(
                "stack soft limit {stack}: execve took {} bytes, E2BIG at {}",
                l.max_total,
                l.max_total + 1
            );
            measured += 1;
        }
        assert!(
            measured >= 3,
            "only {measured} stack sizes could be tried (hard limit {hard})"
        );

        let l = Limits::for_stack(8 * MIB, page);
        let one = |len: usize| vec![format!("S={}", "x".repeat(len - 2))];
        // A string of max_string bytes with its NUL passes; one byte more does not.
        assert_eq!(exec_true(8 * MIB, &one(l.max_string - 1)), Ok(()));
        assert_eq!(exec_true(8 * MIB, &one(l.max_string)), e2big);
        eprintln!(
            "one string: {} bytes with its NUL taken, E2BIG at {}",
            l.max_string,
            l.max_string + 1
        );
    }

    #[test]
    fn current_limits_follow_this_process() {
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK).unwrap();
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .unwrap()
            .unwrap() as usize;
        assert_eq!(Limits::current(), Limits::for_stack(soft, page));
    }
}
