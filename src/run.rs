//! The pipeline, start to finish: config (and the references `--from-env` finds) → plan → fetch
//! (async, bounded, interruptible) → map → deliver (environment, memfds) → launch, with one
//! `match` on the mode. The async runtime lives only inside the fetch window; the environment
//! block is built after it is gone. `--watch` re-fetches through the same [`env_block`], so a
//! restart obeys every rule of a first start. Signals are watched from the first line (see
//! `signals`); the stages after the fetch check for them, and for the deadline, which covers
//! mapping too.

use crate::cli;
use crate::config::{Config, Mode};
use crate::deliver::env_block::EnvBlock;
use crate::deliver::environ::{self, Limits, Merged};
use crate::deliver::files::{self, Files};
use crate::dryrun;
use crate::error::Error;
use crate::from_env::{self, Reference};
use crate::harden;
use crate::iam;
use crate::launch::{exec, listen, supervise};
use crate::log::{self, Event};
use crate::map::{self, Var, Via};
use crate::output;
use crate::plan::Plan;
use crate::secret::SecretText;
use crate::signals;
use crate::source::{self, Results, Versions, window};
use crate::spec::Spec;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

/// Runs secret-exec. Returns the exit status for modes that end here (`--dry-run`, help);
/// in exec mode a return is always a failure.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    signals::install();
    log::start();
    let args: Vec<OsString> = args.into_iter().collect();
    // Known before parsing, so that even a usage error is written in the asked-for format.
    let env_format = std::env::var_os("SECRET_EXEC_LOG_FORMAT");
    if let Some(f) = log::early_format(&args, env_format.as_deref()) {
        log::set_format(f);
    }
    let Some(cli) = cli::parse(args)? else {
        return Ok(0);
    };
    let config = Config::new(cli, &|name| std::env::var_os(name))?;
    log::set_format(config.log_format);
    log::set_level(config.verbosity);
    harden::no_dumps();
    // Found once, before the first start: a `--watch` re-fetch resolves the same references.
    let refs = references(&config, &std::env::vars_os().collect::<Vec<_>>())?;
    // One plan for everything a run reads, so --secret, --file and --from-env share batching,
    // deduplication and the deadline, and the IAM policy covers all three.
    let specs: Vec<Spec> = all_specs(&config, &refs).cloned().collect();
    let plan = Plan::new(&specs, config.aws.agent.is_some())
        .with_failover(config.aws.failover_region.clone())?;

    match &config.mode {
        Mode::PrintIamPolicy { watch } => {
            if plan.entries.is_empty() {
                return Err(Error::Usage(
                    "--print-iam-policy: nothing to grant; --from-env found no reference in this \
                     environment (run it with the environment the command will get)"
                        .into(),
                ));
            }
            let doc = iam::document(&plan, config.aws.known_region(), *watch);
            output::stdout(format!("{doc}\n").as_bytes())?;
            Ok(0)
        }
        Mode::DryRun { format, command } => {
            let r = resolve(&config, &plan, &refs, Make::SizesOnly)?;
            // A dry run refuses what the real run would: an oversized variable included.
            environ::check_limits(&r.merged, command, Limits::current())?;
            signals::check()?;
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
            let merged = &r.merged;
            let predicted = command.first().map(|c| {
                // PATH as the command would get it; when a secret sets it, it is not shown.
                let injected = merged.injected.iter().rev().find(|i| i.var.name == "PATH");
                let path = match injected {
                    Some(i) => Some(i.var.value.expose().as_bytes()),
                    None => merged
                        .inherited
                        .iter()
                        .find(|(k, _)| k == "PATH")
                        .map(|(_, v)| v.as_bytes()),
                };
                let outcome = exec::predict(c.as_bytes(), path, injected.is_none());
                (c.to_string_lossy().into_owned(), outcome)
            });
            let launch = predicted
                .as_ref()
                .map(|(command, outcome)| dryrun::Launch { command, outcome });
            log::at(1, Event::DryRun)
                .count(rows.len())
                .took(log::since_start())
                .say(format_args!(
                    "dry run done: {} variables, total time before exec",
                    rows.len()
                ));
            let text = dryrun::render(&rows, *format, launch.as_ref());
            // Values are wiped before the write, which may block on a slow reader.
            drop(rows);
            drop(r);
            output::stdout(text.as_bytes())?;
            Ok(0)
        }
        Mode::Exec(argv) => {
            let d = env_block(&config, &plan, &refs, argv)?;
            log::at(1, Event::Exec)
                .took(log::since_start())
                .say(format_args!(
                    "exec {}, total time before exec",
                    argv[0].to_string_lossy()
                ));
            signals::check()?;
            Err(exec::exec(argv, &d.block, &d.files, &d.too_big))
        }
        Mode::Supervise(argv, opts) => {
            let d = env_block(&config, &plan, &refs, argv)?;
            let (argv, opts) = (argv.clone(), opts.clone());
            supervise::run(config, plan, refs, argv, opts, d)
        }
    }
}

/// Every SPEC a run reads, in command-line order: `--secret`s, `--file`s, then the references.
fn all_specs<'a>(config: &'a Config, refs: &'a [Reference]) -> impl Iterator<Item = &'a Spec> {
    config
        .specs
        .iter()
        .chain(config.files.iter().map(|f| &f.spec))
        .chain(refs.iter().map(|r| &r.spec))
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
        .filter(|(k, _)| !config.env.unset.iter().any(|u| u == k))
        .cloned()
        .collect();
    let refs = from_env::references(&kept)?;
    if refs.is_empty() {
        log::at(1, Event::Map).say(format_args!(
            "--from-env: no inherited variable holds a reference; the environment passes unchanged"
        ));
    } else {
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        log::at(1, Event::Map).say(format_args!("--from-env: resolving {}", names.join(", ")));
    }
    Ok(refs)
}

/// What COMMAND is started with: the environment block, checked against the kernel's limits
/// for `argv`, the `--file` memfds, and the versions they were built from.
pub struct Delivery {
    pub block: EnvBlock,
    pub files: Files,
    pub versions: Versions,
    /// The limit and the largest injected variables, for an E2BIG the limit check could not
    /// foresee (see [`size_report`]). Names and sizes only.
    pub too_big: String,
}

/// The first start and every `--watch` re-fetch.
pub fn env_block(
    config: &Config,
    plan: &Plan,
    refs: &[Reference],
    argv: &[OsString],
) -> Result<Delivery, Error> {
    let r = resolve(config, plan, refs, Make::Memfds)?;
    environ::check_limits(&r.merged, argv, Limits::current())?;
    let too_big = size_report(&r.merged, Limits::current());
    Ok(Delivery {
        too_big,
        block: EnvBlock::build(r.merged),
        files: r.files,
        versions: r.versions,
    })
}

/// Whether `resolve` makes the memfds (a real run) or only measures them (`--dry-run`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Make {
    Memfds,
    SizesOnly,
}

/// Everything delivered: the environment, the memfds, each file's size by variable, and the
/// versions fetched.
struct Resolved {
    merged: Merged,
    files: Files,
    sizes: BTreeMap<String, usize>,
    versions: Versions,
}

/// Fetches the plan and maps every SPEC, file and reference, all-or-nothing, reporting failures
/// in command-line order so the same failure always gives the same message; then merges with
/// the inherited environment. Each file's bytes go from the fetched buffer into its memfd
/// before any buffer is dropped, so the only copy left is the kernel's.
fn resolve(
    config: &Config,
    plan: &Plan,
    refs: &[Reference],
    make: Make,
) -> Result<Resolved, Error> {
    // `--from-env` alone with no reference found: nothing to ask, so no credentials needed.
    let start = Instant::now();
    let mut results = if plan.entries.is_empty() {
        Results::new()
    } else {
        window::fetch(&config.aws, plan, start)?
    };
    let started = Instant::now();
    // Mapping counts against the same deadline, and a signal stops it between secrets.
    let in_time = |spec: &Spec| -> Result<(), Error> {
        signals::check()?;
        if start.elapsed() > config.aws.timeout {
            return Err(Error::TimedOut {
                after: config.aws.timeout,
                secrets: vec![spec.secret.to_string()],
            });
        }
        Ok(())
    };
    for spec in all_specs(config, refs) {
        if !matches!(results.get(&spec.secret), Some(Ok(_))) {
            return Err(results
                .remove(&spec.secret)
                .and_then(Result::err)
                .unwrap_or_else(|| Error::Internal(format!("no result for '{}'", spec.secret))));
        }
    }
    let get = |spec: &Spec| match results.get(&spec.secret) {
        Some(Ok(f)) => Ok(f),
        _ => Err(Error::Internal(format!("no result for '{}'", spec.secret))),
    };

    let mut vars: Vec<Var> = Vec::new();
    for spec in &config.specs {
        in_time(spec)?;
        vars.extend(map::map_spec(spec, get(spec)?, &config.map)?);
    }
    let listen = i32::try_from(listen::from_env()).unwrap_or(0);
    let mut out_files = Files {
        fds: Vec::with_capacity(config.files.len()),
        listen,
    };
    let mut sizes = BTreeMap::new();
    for (i, f) in config.files.iter().enumerate() {
        in_time(&f.spec)?;
        let src = get(&f.spec)?;
        let value = map::file::select(&f.spec, src)?;
        if make == Make::Memfds {
            out_files.fds.push(files::memfd(&f.var, value.bytes())?);
        }
        sizes.insert(f.var.clone(), value.bytes().len());
        let key = f.spec.key_text.clone();
        vars.push(Var {
            name: f.var.clone(),
            value: SecretText::copy_of(&files::path(files::fd_number(listen, i))),
            origin: map::origin_of(&f.spec, src, key, Via::File),
        });
    }
    for r in refs {
        in_time(&r.spec)?;
        let mut mapped = map::map_spec(&r.spec, get(&r.spec)?, &config.map)?;
        for v in &mut mapped {
            v.origin.via = Via::FromEnv;
        }
        vars.extend(mapped);
    }
    let versions = source::versions(&results);
    // Every SDK-provided buffer is wiped here; only the mapped values remain.
    drop(results);
    signals::check()?;

    let merged = environ::merge(std::env::vars_os().collect(), vars, &config.env)?;
    log::at(1, Event::Map)
        .count(merged.injected.len())
        .took(started.elapsed())
        .say(format_args!(
            "mapped {} secret(s) to {} variables",
            all_specs(config, refs).count(),
            merged.injected.len()
        ));
    for inj in merged.injected.iter().filter(|i| i.overrides) {
        log::at(1, Event::Override)
            .secret(&inj.var.origin.secret_id)
            .say(format_args!(
                "{} overrides an inherited variable",
                inj.var.name
            ));
    }
    Ok(Resolved {
        merged,
        files: out_files,
        sizes,
        versions,
    })
}

/// For an E2BIG the limit check could not foresee: the limit, and the injected variables that
/// take the most room, largest first, with the secrets they come from. Sizes and names only.
fn size_report(merged: &Merged, limits: Limits) -> String {
    let mut sizes: Vec<(usize, String)> = merged
        .injected
        .iter()
        .map(|i| {
            let len = i.var.name.len() + 1 + i.var.value.len();
            (
                len,
                format!("{} ({len} bytes, from {})", i.var.name, i.var.origin),
            )
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
    let listed: Vec<String> = sizes.into_iter().take(5).map(|(_, s)| s).collect();
    let mut text = format!("the {} bytes the kernel accepts", limits.max_total);
    if !listed.is_empty() {
        text.push_str("; injected variables, largest first: ");
        text.push_str(&listed.join(", "));
    }
    text
}
