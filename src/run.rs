//! The pipeline, start to finish: config → plan → fetch (async, bounded, interruptible) → map →
//! deliver → launch, with one `match` on the mode. The async runtime lives only inside the fetch
//! window; the environment block is built after it is gone. `--watch` re-fetches through the
//! same [`env_block`], so a restart obeys every rule of a first start. Signals are watched from
//! the first line (see `signals`); the stages after the fetch check for them, and for the
//! deadline, which covers mapping too.

use crate::cli;
use crate::config::{Config, Mode};
use crate::deliver::env_block::EnvBlock;
use crate::deliver::environ::{self, Limits, Merged};
use crate::dryrun;
use crate::error::Error;
use crate::harden;
use crate::iam;
use crate::launch::{exec, supervise};
use crate::log;
use crate::map::{self, Var};
use crate::output;
use crate::plan::Plan;
use crate::signals;
use crate::source::{self, Versions, window};
use crate::vlog;
use std::ffi::OsString;
use std::time::Instant;

/// Runs secret-exec. Returns the exit status for modes that end here (`--dry-run`, help);
/// in exec mode a return is always a failure.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    signals::install();
    harden::no_dumps();
    let Some(cli) = cli::parse(args)? else {
        return Ok(0);
    };
    let config = Config::new(cli, &|name| std::env::var_os(name))?;
    log::set_level(config.verbosity);
    let plan = Plan::new(&config.specs);

    match &config.mode {
        Mode::PrintIamPolicy { watch } => {
            let doc = iam::document(&plan, config.aws.known_region(), *watch);
            output::stdout(format!("{doc}\n").as_bytes())?;
            Ok(0)
        }
        Mode::DryRun(format) => {
            let (merged, _) = resolve(&config, &plan)?;
            // A dry run refuses what the real run would: an oversized variable included.
            environ::check_limits(&merged, &[], Limits::current())?;
            signals::check()?;
            let rows: Vec<dryrun::Row> = merged
                .injected
                .iter()
                .map(|i| dryrun::Row {
                    name: &i.var.name,
                    origin: &i.var.origin,
                    overrides: i.overrides,
                })
                .collect();
            let text = dryrun::render(&rows, *format);
            // Values are wiped before the write, which may block on a slow reader.
            drop(rows);
            drop(merged);
            output::stdout(text.as_bytes())?;
            Ok(0)
        }
        Mode::Exec(argv) => {
            let (merged, _) = resolve(&config, &plan)?;
            environ::check_limits(&merged, argv, Limits::current())?;
            let too_big = size_report(&merged, Limits::current());
            vlog!(
                1,
                "exec {} with {} injected variables",
                argv[0].to_string_lossy(),
                merged.injected.len()
            );
            Err(exec::exec(argv, &EnvBlock::build(merged), &too_big))
        }
        Mode::Supervise(argv, opts) => {
            let (block, versions) = env_block(&config, &plan, argv)?;
            let (argv, opts) = (argv.clone(), opts.clone());
            supervise::run(config, plan, argv, opts, block, versions)
        }
    }
}

/// The environment block COMMAND is started with, checked against the kernel's limits for
/// `argv`, and the versions it was built from. The first start and every `--watch` re-fetch.
pub(crate) fn env_block(
    config: &Config,
    plan: &Plan,
    argv: &[OsString],
) -> Result<(EnvBlock, Versions), Error> {
    let (merged, versions) = resolve(config, plan)?;
    environ::check_limits(&merged, argv, Limits::current())?;
    vlog!(1, "{} injected variables", merged.injected.len());
    Ok((EnvBlock::build(merged), versions))
}

/// Fetches the plan and maps every SPEC, all-or-nothing, reporting failures in SPEC order so the
/// same failure always gives the same message; then merges with the inherited environment.
fn resolve(config: &Config, plan: &Plan) -> Result<(Merged, Versions), Error> {
    let start = Instant::now();
    let mut results = window::fetch(&config.aws, plan, start)?;
    let mut vars: Vec<Var> = Vec::new();
    let timed_out = |spec: &crate::spec::Spec| Error::TimedOut {
        after: config.aws.timeout,
        secrets: vec![spec.secret.to_string()],
    };
    for spec in &config.specs {
        signals::check()?;
        if start.elapsed() > config.aws.timeout {
            return Err(timed_out(spec));
        }
        if let Some(Ok(fetched)) = results.get(&spec.secret) {
            vars.extend(map::map_spec(spec, fetched, &config.map)?);
            continue;
        }
        return Err(results
            .remove(&spec.secret)
            .and_then(Result::err)
            .unwrap_or_else(|| Error::Internal(format!("no result for '{}'", spec.secret))));
    }
    let versions = source::versions(&results);
    // Every SDK-provided buffer is wiped here; only the mapped values remain.
    drop(results);
    signals::check()?;

    let merged = environ::merge(std::env::vars_os().collect(), vars, &config.env)?;
    for inj in merged.injected.iter().filter(|i| i.overrides) {
        vlog!(1, "{} overrides an inherited variable", inj.var.name);
    }
    Ok((merged, versions))
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
