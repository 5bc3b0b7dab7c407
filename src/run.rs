//! The pipeline, start to finish: config (and the references `--from-env` finds) → plan → fetch
//! (async, bounded, interruptible) → map → deliver (environment, memfds) → launch, with one
//! `match` on the mode. The async runtime lives only inside the fetch
//! window; the environment block is built after it is gone.

use crate::cli;
use crate::config::{Config, Mode};
use crate::deliver::env_block::EnvBlock;
use crate::deliver::environ::{self, Limits, Merged};
use crate::deliver::files;
use crate::dryrun;
use crate::error::Error;
use crate::from_env::{self, Reference};
use crate::harden;
use crate::iam;
use crate::launch::exec;
use crate::log;
use crate::map::{self, Var, Via};
use crate::plan::Plan;
use crate::secret::SecretText;
use crate::source::{Results, window};
use crate::spec::Spec;
use crate::vlog;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

/// Runs secret-exec. Returns the exit status for modes that end here (`--dry-run`, help);
/// in exec mode a return is always a failure.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    harden::no_dumps();
    let Some(cli) = cli::parse(args)? else {
        return Ok(0);
    };
    let config = Config::new(cli, &|name| std::env::var_os(name))?;
    log::set_level(config.verbosity);
    let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let refs = references(&config, &inherited)?;
    // One plan for everything a run reads, so --secret, --file and --from-env share batching,
    // deduplication and the deadline, and the IAM policy covers all three.
    let specs: Vec<Spec> = config
        .specs
        .iter()
        .chain(config.files.iter().map(|f| &f.spec))
        .chain(refs.iter().map(|r| &r.spec))
        .cloned()
        .collect();
    let plan = Plan::new(&specs);

    match &config.mode {
        Mode::PrintIamPolicy => {
            if plan.entries.is_empty() {
                return Err(Error::Usage(
                    "--print-iam-policy: nothing to grant; --from-env found no reference in this \
                     environment (run it with the environment the command will get)"
                        .into(),
                ));
            }
            println!("{}", iam::document(&plan, config.aws.known_region()));
            Ok(0)
        }
        Mode::DryRun(format) => {
            let r = resolve(&config, &plan, &refs, inherited, Files::SizesOnly)?;
            // A dry run refuses what the real run would: an oversized variable included.
            environ::check_limits(&r.merged, &[], Limits::current())?;
            let rows: Vec<dryrun::Row> = r
                .merged
                .injected
                .iter()
                .map(|i| dryrun::Row {
                    name: &i.var.name,
                    origin: &i.var.origin,
                    overrides: i.overrides,
                    bytes: (i.var.origin.via == Via::File)
                        .then(|| r.sizes.get(&i.var.name).copied())
                        .flatten(),
                })
                .collect();
            std::io::stdout()
                .write_all(dryrun::render(&rows, *format).as_bytes())
                .map_err(|e| Error::Internal(format!("cannot write to stdout: {e}")))?;
            Ok(0)
        }
        Mode::Exec(argv) => {
            let r = resolve(&config, &plan, &refs, inherited, Files::Memfds)?;
            environ::check_limits(&r.merged, argv, Limits::current())?;
            vlog!(
                1,
                "exec {} with {} injected variables and {} files",
                argv[0].to_string_lossy(),
                r.merged.injected.len(),
                r.files.fds.len()
            );
            Err(exec::exec(argv, &EnvBlock::build(r.merged), &r.files))
        }
    }
}

/// The references `--from-env` resolves: in the inherited environment left after `-u`.
fn references(
    config: &Config,
    inherited: &[(OsString, OsString)],
) -> Result<Vec<Reference>, Error> {
    if !config.from_env {
        return Ok(Vec::new());
    }
    let kept: Vec<(OsString, OsString)> = inherited
        .iter()
        .filter(|(k, _)| !config.env.unset.iter().any(|u| u.as_str() == k))
        .cloned()
        .collect();
    let refs = from_env::references(&kept)?;
    if refs.is_empty() {
        vlog!(
            1,
            "--from-env: no inherited variable holds a reference; the environment passes unchanged"
        );
    } else {
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        vlog!(1, "--from-env: resolving {}", names.join(", "));
    }
    Ok(refs)
}

/// Whether `resolve` makes the memfds (a real run) or only measures them (`--dry-run`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Files {
    Memfds,
    SizesOnly,
}

/// Everything delivered: the environment, the memfds, and each file's size by variable.
struct Resolved {
    merged: Merged,
    files: files::Files,
    sizes: BTreeMap<String, usize>,
}

/// Fetches the plan and maps every SPEC, file and reference, all-or-nothing, reporting failures
/// in command-line order so the same failure always gives the same message; then merges with
/// the inherited environment. Each file's bytes go from the fetched buffer into its memfd
/// before any buffer is dropped, so the only copy left is the kernel's.
fn resolve(
    config: &Config,
    plan: &Plan,
    refs: &[Reference],
    inherited: Vec<(OsString, OsString)>,
    make: Files,
) -> Result<Resolved, Error> {
    let mut results = if plan.entries.is_empty() {
        Results::new()
    } else {
        window::fetch(&config.aws, plan)?
    };
    let mut fetched = |spec: &Spec| -> Result<(), Error> {
        match results.get(&spec.secret) {
            Some(Ok(_)) => Ok(()),
            _ => Err(results
                .remove(&spec.secret)
                .and_then(Result::err)
                .unwrap_or_else(|| Error::Internal(format!("no result for '{}'", spec.secret)))),
        }
    };
    for spec in config
        .specs
        .iter()
        .chain(config.files.iter().map(|f| &f.spec))
        .chain(refs.iter().map(|r| &r.spec))
    {
        fetched(spec)?;
    }
    let get = |spec: &Spec| match results.get(&spec.secret) {
        Some(Ok(f)) => Ok(f),
        _ => Err(Error::Internal(format!("no result for '{}'", spec.secret))),
    };

    let mut vars: Vec<Var> = Vec::new();
    for spec in &config.specs {
        vars.extend(map::map_spec(spec, get(spec)?, &config.map)?);
    }
    let mut out_files = files::Files {
        fds: Vec::with_capacity(config.files.len()),
        listen: config.listen_fds,
    };
    let mut sizes = BTreeMap::new();
    for (i, f) in config.files.iter().enumerate() {
        let src = get(&f.spec)?;
        let value = map::file::select(&f.spec, src)?;
        if make == Files::Memfds {
            out_files.fds.push(files::memfd(&f.var, value.bytes())?);
        }
        sizes.insert(f.var.clone(), value.bytes().len());
        let key = f.spec.key_text.clone();
        vars.push(Var {
            name: f.var.clone(),
            value: SecretText::copy_of(&files::path(files::fd_number(config.listen_fds, i))),
            origin: map::origin_of(&f.spec, src, key, Via::File),
        });
    }
    for r in refs {
        let mut mapped = map::map_spec(&r.spec, get(&r.spec)?, &config.map)?;
        for v in &mut mapped {
            v.origin.via = Via::FromEnv;
        }
        vars.extend(mapped);
    }
    // Every SDK-provided buffer is wiped here; only the mapped values remain.
    drop(results);

    let merged = environ::merge(inherited, vars, &config.env)?;
    for inj in merged.injected.iter().filter(|i| i.overrides) {
        vlog!(1, "{} overrides an inherited variable", inj.var.name);
    }
    Ok(Resolved {
        merged,
        files: out_files,
        sizes,
    })
}
