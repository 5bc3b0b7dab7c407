//! The child's environment: inherited variables (after `-i`/`-u`), injected variables, the
//! collision and override rules, and the kernel's size limits — checked here, before exec, so
//! the operator gets a named variable instead of a bare E2BIG.

use crate::config::EnvOptions;
use crate::error::Error;
use crate::map::{Source, Var};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

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

impl Merged {
    /// The value the child will see for `name` (PATH lookup for the command search).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        if let Some(i) = self.injected.iter().find(|i| i.var.name == name) {
            return Some(i.var.value.expose().as_bytes());
        }
        self.inherited
            .iter()
            .find(|(k, _)| k.as_bytes() == name.as_bytes())
            .map(|(_, v)| v.as_bytes())
    }
}

fn collision(name: &str, first: &Source, second: &Source) -> Error {
    Error::DataGeneral(format!(
        "variable {name} would be set twice, by {first} and by {second}; \
         give one of them an explicit name (VAR=...) or a prefix (PREFIX*=...)"
    ))
}

/// Combines the inherited environment with the injected variables, enforcing: no two sources
/// for one name, no NUL in a value, and `--no-override`.
pub fn merge(
    inherited: Vec<(OsString, OsString)>,
    vars: Vec<Var>,
    opts: &EnvOptions,
) -> Result<Merged, Error> {
    let mut seen: BTreeMap<&str, &Source> = BTreeMap::new();
    for v in &vars {
        if let Some(first) = seen.insert(&v.name, &v.source) {
            return Err(collision(&v.name, first, &v.source));
        }
        if v.value.expose().contains('\0') {
            return Err(Error::data(
                &v.source.secret_id,
                format!("variable {} (from {})", v.name, v.source),
                "the value contains a NUL byte, which the environment cannot carry",
            ));
        }
    }
    let mut kept = Vec::new();
    if !opts.ignore_environment {
        for (k, val) in inherited {
            if opts.unset.iter().any(|u| u.as_bytes() == k.as_bytes()) {
                continue;
            }
            kept.push((k, val));
        }
    }
    let mut injected = Vec::with_capacity(vars.len());
    for var in vars {
        let overrides = kept
            .iter()
            .any(|(k, _)| k.as_bytes() == var.name.as_bytes());
        if overrides && opts.no_override {
            return Err(Error::data(
                &var.source.secret_id,
                format!("variable {} (from {})", var.name, var.source),
                "it is already set in the environment and --no-override is given; \
                 unset it (-u NAME) or rename the injected one (VAR=...)",
            ));
        }
        if overrides {
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
/// NUL, and all strings plus the pointer arrays within `max_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_string: usize,
    pub max_total: usize,
}

/// Room left for what the kernel adds that we cannot see: the `#!` interpreter path and argument
/// of a script, and a PATH directory longer than the one we measured with.
const SAFETY_MARGIN: usize = 8192;

impl Limits {
    /// Read from this process: MAX_ARG_STRLEN is 32 pages; the total is a quarter of the stack
    /// rlimit (which exec keeps), capped at 6 MiB and at least 128 KiB — bprm_stack_limits().
    pub fn current() -> Limits {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map(|p| p as usize)
            .unwrap_or(4096);
        let stack = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
            .map(|(soft, _)| soft)
            .unwrap_or(8 << 20);
        let quarter = usize::try_from(stack / 4).unwrap_or(usize::MAX);
        let total = quarter.min((8 << 20) / 4 * 3).max(32 * page);
        Limits {
            max_string: 32 * page,
            max_total: total,
        }
    }
}

/// Checks the environment and argv against `limits`, naming the culprit.
pub fn check_limits(merged: &Merged, argv: &[OsString], limits: Limits) -> Result<(), Error> {
    let ptr = std::mem::size_of::<usize>();
    let mut total = SAFETY_MARGIN + ptr * (argv.len().max(1) + 1);
    for a in argv {
        if a.len() + 1 > limits.max_string {
            return Err(Error::Usage(format!(
                "a COMMAND argument is {} bytes; the kernel takes at most {} per argument",
                a.len(),
                limits.max_string - 1
            )));
        }
        total += a.len() + 1 + ptr;
    }
    // Name the largest injected variables first: they are what the operator can change.
    for inj in &merged.injected {
        let size = inj.var.name.len() + 1 + inj.var.value.len() + 1;
        if size > limits.max_string {
            return Err(Error::data(
                &inj.var.source.secret_id,
                format!("variable {} (from {})", inj.var.name, inj.var.source),
                format!(
                    "NAME=value is {size} bytes; Linux takes at most {} bytes per variable. \
                     Select a smaller key, or deliver this secret as a file",
                    limits.max_string
                ),
            ));
        }
        total += size + ptr;
    }
    for (k, v) in &merged.inherited {
        total += k.len() + 1 + v.len() + 1 + ptr;
    }
    if total > limits.max_total {
        let largest = merged
            .injected
            .iter()
            .max_by_key(|i| i.var.value.len())
            .map(|i| {
                format!(
                    "; the largest injected variable is {} ({} bytes)",
                    i.var.name,
                    i.var.value.len()
                )
            })
            .unwrap_or_default();
        return Err(Error::DataGeneral(format!(
            "the environment and arguments would be {total} bytes, over the {} bytes the kernel \
             accepts (a quarter of the stack limit, ulimit -s){largest}; inject fewer or smaller \
             values, start with -i, or raise ulimit -s",
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
            source: Source {
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
                *overrides && !opts.unset.contains(&"USER".to_string()),
                "{opts:?}"
            );
            assert_eq!(m.get("USER"), Some(&b"new"[..]));
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
            max_total: SAFETY_MARGIN + 2000,
        };
        let argv: Vec<OsString> = vec!["cmd".into()];
        let rows: &[(&[(&str, usize)], Option<&str>)] = &[
            (&[("A", 10)], None),
            (&[("A", 997)], None),
            (&[("A", 998)], Some("variable A")),
            (&[("A", 900), ("B", 900)], None),
            (
                &[("A", 900), ("B", 900), ("C", 900)],
                Some("the largest injected variable is"),
            ),
        ];
        for (vars, want) in rows {
            let injected: Vec<Var> = vars
                .iter()
                .map(|(n, len)| var(n, &"x".repeat(*len), "s"))
                .collect();
            let m = merge(vec![], injected, &EnvOptions::default()).unwrap();
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

    #[test]
    fn current_limits_match_the_kernel_formula() {
        let l = Limits::current();
        assert!(l.max_string >= 32 * 4096);
        assert!(l.max_total >= l.max_string);
        assert!(l.max_total <= 6 << 20);
    }
}
