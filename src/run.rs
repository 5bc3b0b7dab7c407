//! A run, start to finish: config (and the references `--from-env` finds) → plan → the pipeline
//! (fetch, map, deliver) → launch, with one `match` on the mode. The async runtime lives only
//! inside the fetch window; the environment block is built after it is gone. Signals are watched
//! from the first line (see `signals`); the stages after the fetch check for them, and for the
//! deadline, which covers mapping too.

use crate::cli;
use crate::config::{Config, Mode};
use crate::deliver::dir;
use crate::deliver::environ::{self, Limits};
use crate::dryrun;
use crate::error::Error;
use crate::harden;
use crate::iam;
use crate::launch::{exec, supervise};
use crate::log::{self, Event};
use crate::map::Via;
use crate::output;
use crate::pipeline::{self, Make, watch};
use crate::plan::Plan;
use crate::signals;
use crate::spec::Spec;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

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
    if let Some(u) = config.user {
        crate::launch::user::set_target(u);
    }
    // Found once, before the first start: a `--watch` re-fetch resolves the same references.
    let refs = pipeline::references(&config, &std::env::vars_os().collect::<Vec<_>>())?;
    // One plan for everything a run reads, so --secret, --file and --from-env share batching,
    // deduplication and the deadline, and the IAM policy covers all three.
    let specs: Vec<Spec> = pipeline::all_specs(&config, &refs).cloned().collect();
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
            let r = pipeline::resolve(&config, &plan, &refs, Make::SizesOnly)?;
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
                .chain(r.dir.iter().map(|v| dryrun::Row {
                    name: &v.name,
                    origin: &v.origin,
                    overrides: false,
                    bytes: Some(v.value.len()),
                }))
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
            let d =
                pipeline::delivery(&config, &plan, &refs, argv).inspect_err(|_| dir::cleanup())?;
            log::at(1, Event::Exec)
                .took(log::since_start())
                .say(format_args!(
                    "exec {}, total time before exec",
                    argv[0].to_string_lossy()
                ));
            signals::check().inspect_err(|_| dir::cleanup())?;
            let failed = exec::exec(argv, &d.block, &d.files, &d.too_big);
            // COMMAND never started: the --dir files it was to read go too.
            dir::cleanup();
            Err(failed)
        }
        Mode::Supervise(argv, opts) => {
            let first =
                pipeline::delivery(&config, &plan, &refs, argv).inspect_err(|_| dir::cleanup())?;
            let (argv, opts) = (argv.clone(), opts.clone());
            // The supervisor starts the watcher once signals are blocked (threads inherit the
            // mask); it gets deliveries, never the configuration.
            let (every, splay) = (opts.watch, opts.splay);
            let job = watch::Job {
                config,
                plan,
                refs,
                argv: argv.clone(),
            };
            let ended = supervise::run(argv, opts, first, move |baseline| {
                every
                    .map(|interval| watch::spawn(job, interval, splay, baseline))
                    .transpose()
            });
            // A resident secret-exec outlives COMMAND: the --dir files go with it.
            dir::cleanup();
            ended
        }
    }
}
