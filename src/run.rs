//! The pipeline, start to finish: config → plan → fetch (async, bounded, interruptible) → map →
//! deliver → launch, with one `match` on the mode. The async runtime lives only inside the fetch
//! window; the environment block is built after it is gone. `--watch` re-fetches through the
//! same [`env_block`], so a restart obeys every rule of a first start.

use crate::cli;
use crate::config::{Config, Mode};
use crate::deliver::env_block::EnvBlock;
use crate::deliver::environ::{self, Limits, Merged};
use crate::dryrun;
use crate::error::Error;
use crate::harden;
use crate::iam;
use crate::launch::{exec, supervise};
use crate::log::{self, Event};
use crate::map::{self, Var};
use crate::plan::Plan;
use crate::source::{self, Versions, window};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

/// Runs secret-exec. Returns the exit status for modes that end here (`--dry-run`, help);
/// in exec mode a return is always a failure.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
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
    let plan = Plan::new(&config.specs, config.aws.agent.is_some());

    match &config.mode {
        Mode::PrintIamPolicy { watch } => {
            println!(
                "{}",
                iam::document(&plan, config.aws.known_region(), *watch)
            );
            Ok(0)
        }
        Mode::DryRun { format, command } => {
            let (merged, _) = resolve(&config, &plan)?;
            // A dry run refuses what the real run would: an oversized variable included.
            environ::check_limits(&merged, command, Limits::current())?;
            let rows: Vec<dryrun::Row> = merged
                .injected
                .iter()
                .map(|i| dryrun::Row {
                    name: &i.var.name,
                    origin: &i.var.origin,
                    overrides: i.overrides,
                })
                .collect();
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
            std::io::stdout()
                .write_all(dryrun::render(&rows, *format, launch.as_ref()).as_bytes())
                .map_err(|e| Error::Internal(format!("cannot write to stdout: {e}")))?;
            Ok(0)
        }
        Mode::Exec(argv) => {
            let (block, _) = env_block(&config, &plan, argv)?;
            log::at(1, Event::Exec)
                .took(log::since_start())
                .say(format_args!(
                    "exec {}, total time before exec",
                    argv[0].to_string_lossy()
                ));
            Err(exec::exec(argv, &block))
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
    Ok((EnvBlock::build(merged), versions))
}

/// Fetches the plan and maps every SPEC, all-or-nothing, reporting failures in SPEC order so the
/// same failure always gives the same message; then merges with the inherited environment.
fn resolve(config: &Config, plan: &Plan) -> Result<(Merged, Versions), Error> {
    let mut results = window::fetch(&config.aws, plan)?;
    let started = Instant::now();
    let mut vars: Vec<Var> = Vec::new();
    for spec in &config.specs {
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

    let merged = environ::merge(std::env::vars_os().collect(), vars, &config.env)?;
    log::at(1, Event::Map)
        .count(merged.injected.len())
        .took(started.elapsed())
        .say(format_args!(
            "mapped {} secret(s) to {} variables",
            config.specs.len(),
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
    Ok((merged, versions))
}
