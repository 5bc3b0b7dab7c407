//! The pipeline, start to finish: config → fetch (async, bounded, interruptible) → map → merge
//! → exec. The async runtime lives only for the fetch; the environment block is built after it
//! is gone, so no runtime thread or buffer can hold a copy at execve.

use crate::aws;
use crate::cli::Cli;
use crate::config::{Config, Mode};
use crate::dryrun;
use crate::environ::{self, Limits, Merged};
use crate::error::Error;
use crate::exec::{self, EnvBlock};
use crate::fetch::{self, Results};
use crate::harden;
use crate::log;
use crate::map::{self, Var};
use crate::spec::SecretRef;
use crate::vlog;
use clap::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;

/// Parses the command line; help and version are printed here and reported as `Ok(None)`.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Cli>, Error> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Some(cli)),
        Err(e) if !e.use_stderr() => {
            // --help / --version: not errors.
            let _ = e.print();
            Ok(None)
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            Err(Error::Usage(format!("{first}; see secret-exec --help")))
        }
    }
}

/// Runs secret-exec. Returns the exit status for modes that end here (`--dry-run`, help);
/// in exec mode a return is always a failure.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    harden::no_dumps();
    let Some(cli) = parse(args)? else {
        return Ok(0);
    };
    let config = Config::try_from(cli)?;
    log::set_level(config.verbosity);

    if let Mode::PrintIamPolicy = config.mode {
        let watch = config.supervise.as_ref().is_some_and(|s| s.watch.is_some());
        let policy = crate::iam::policy_for(&config.specs, config.aws.region.as_deref(), watch);
        println!("{policy}");
        return Ok(0);
    }

    match &config.mode {
        Mode::DryRun(format) => {
            let (merged, _) = fetch_and_merge(&config)?;
            // A dry run refuses what the real run would: an oversized variable included.
            environ::check_limits(&merged, &[], Limits::current())?;
            let rows: Vec<dryrun::Row> = merged
                .injected
                .iter()
                .map(|i| dryrun::Row {
                    name: &i.var.name,
                    source: &i.var.source,
                    overrides: i.overrides,
                })
                .collect();
            let out = dryrun::render(&rows, *format);
            std::io::stdout()
                .write_all(out.as_bytes())
                .map_err(|e| Error::Internal(format!("cannot write to stdout: {e}")))?;
            Ok(0)
        }
        Mode::Exec(argv) => {
            let (block, _) = env_block(&config, argv)?;
            vlog!(
                1,
                "exec {} with the injected variables",
                argv[0].to_string_lossy()
            );
            Err(exec::exec(argv, &block))
        }
        Mode::Supervise(argv) => {
            let argv = argv.clone();
            let (block, versions) = env_block(&config, &argv)?;
            let opts = config
                .supervise
                .clone()
                .ok_or_else(|| Error::Internal("supervise mode without its options".into()))?;
            crate::launch::supervise::run(config, argv, opts, block, versions)
        }
        Mode::PrintIamPolicy => unreachable!("handled above"),
    }
}

/// The version id each fetched reference got: what `--watch` compares the live stages with.
pub type Versions = BTreeMap<SecretRef, Option<String>>;

/// Fetch, map and merge every secret with every rule of a normal start: all-or-nothing,
/// refusals, collisions.
fn fetch_and_merge(config: &Config) -> Result<(Merged, Versions), Error> {
    let refs: Vec<SecretRef> = config
        .specs
        .iter()
        .map(|s| s.secret.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut results = fetch_with_runtime(config, refs)?;

    // All-or-nothing, reported in SPEC order so the same failure always gives the same message.
    let mut vars: Vec<Var> = Vec::new();
    for spec in &config.specs {
        let fetched = match results.get(&spec.secret) {
            Some(Ok(f)) => f,
            Some(Err(_)) => {
                let Some(Err(e)) = results.remove(&spec.secret) else {
                    unreachable!("checked above")
                };
                return Err(e);
            }
            None => return Err(Error::Internal(format!("no result for '{}'", spec.secret))),
        };
        vars.extend(map::map_spec(spec, fetched, &config.map)?);
    }
    let versions: Versions = results
        .iter()
        .map(|(r, f)| {
            (
                r.clone(),
                f.as_ref().ok().and_then(|f| f.version_id.clone()),
            )
        })
        .collect();
    // Every SDK-provided buffer is wiped here; only the mapped values remain.
    drop(results);

    let merged = environ::merge(std::env::vars_os().collect(), vars, &config.env)?;
    for inj in merged.injected.iter().filter(|i| i.overrides) {
        vlog!(1, "{} overrides an inherited variable", inj.var.name);
    }
    Ok((merged, versions))
}

/// The environment block COMMAND is started with, checked against the kernel's limits for
/// `argv`. `--watch` calls this again for every re-fetch.
pub fn env_block(config: &Config, argv: &[OsString]) -> Result<(EnvBlock, Versions), Error> {
    let (merged, versions) = fetch_and_merge(config)?;
    environ::check_limits(&merged, argv, Limits::current())?;
    vlog!(2, "{} injected variables", merged.injected.len());
    Ok((EnvBlock::build(merged), versions))
}

/// Runs the fetch on a current-thread runtime under one deadline, and lets SIGTERM, SIGINT and
/// SIGHUP end it at once (as PID 1 in a container, an unhandled SIGTERM would be ignored).
fn fetch_with_runtime(config: &Config, refs: Vec<SecretRef>) -> Result<Results, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let timeout = config.aws.timeout;
    let ids: Vec<String> = refs.iter().map(|r| format!("'{r}'")).collect();
    let result = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut kinds = Vec::new();
        for (kind, number, name) in [
            (SignalKind::terminate(), 15, "SIGTERM"),
            (SignalKind::interrupt(), 2, "SIGINT"),
            (SignalKind::hangup(), 1, "SIGHUP"),
        ] {
            let s =
                signal(kind).map_err(|e| Error::Internal(format!("cannot watch {name}: {e}")))?;
            kinds.push((s, number, name));
        }
        let [(mut term, ..), (mut int, ..), (mut hup, ..)] =
            <[_; 3]>::try_from(kinds).map_err(|_| Error::Internal("signal set".into()))?;
        let work = async {
            let clients = aws::clients(&config.aws, &config.specs).await?;
            vlog!(
                1,
                "fetching {} secret(s), default region {}",
                refs.len(),
                clients.default_region
            );
            Ok::<_, Error>(fetch::fetch_all(&clients, refs).await)
        };
        let signalled = |number: i32, name: &str| Error::Signal {
            number,
            name: name.to_string(),
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, work) => match r {
                Ok(r) => r,
                Err(_) => Err(Error::Unavailable {
                    what: format!("timed out after {timeout:?} fetching {}", ids.join(", ")),
                    why: "credentials and every call must finish within --timeout; check the \
                          network path to Secrets Manager, or raise --timeout".into(),
                }),
            },
            _ = term.recv() => Err(signalled(15, "SIGTERM")),
            _ = int.recv() => Err(signalled(2, "SIGINT")),
            _ = hup.recv() => Err(signalled(1, "SIGHUP")),
        }
    });
    // Dropping the runtime joins its blocking threads (DNS, file reads) before we go on.
    drop(rt);
    result
}
