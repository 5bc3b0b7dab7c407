//! The pipeline below `run` and above the stages: fetch (async, bounded, interruptible) → map →
//! deliver (environment, memfds), all-or-nothing, under the deadline. The first start and every
//! `--watch` re-fetch go through [`delivery`], so a restart obeys every rule of a first start,
//! and the watcher (beside it, in `watch`) rebuilds without climbing back into `run`.

pub mod watch;

use crate::config::Config;
use crate::deliver::Delivery;
use crate::deliver::dir;
use crate::deliver::env_block::EnvBlock;
use crate::deliver::environ::{self, Limits, Merged};
use crate::deliver::files::{self, Files};
use crate::error::Error;
use crate::from_env::{self, Reference};
use crate::launch::listen;
use crate::log::{self, Event};
use crate::map::{self, Var, Via};
use crate::plan::Plan;
use crate::secret::SecretText;
use crate::signals;
use crate::source::{self, Results, Versions, window};
use crate::spec::Spec;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Instant;

/// Every SPEC a run reads, in command-line order: `--secret`s, `--file`s, `--db-url`s, then the
/// references.
pub fn all_specs<'a>(config: &'a Config, refs: &'a [Reference]) -> impl Iterator<Item = &'a Spec> {
    config
        .specs
        .iter()
        .chain(config.files.iter().map(|f| &f.spec))
        .chain(config.compose.db_urls.iter().map(|d| &d.spec))
        .chain(refs.iter().map(|r| &r.spec))
}

/// The references `--from-env` resolves: in the inherited environment left after `-u`.
pub fn references(
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

/// The first start and every `--watch` re-fetch.
pub fn delivery(
    config: &Config,
    plan: &Plan,
    refs: &[Reference],
    argv: &[OsString],
) -> Result<Delivery, Error> {
    if let Some(d) = &config.dir {
        dir::prepare(d)?;
    }
    let r = resolve(config, plan, refs, Make::Memfds)?;
    environ::check_limits(&r.merged, argv, Limits::current())?;
    let too_big = size_report(&r.merged, Limits::current());
    // Last: a delivery that fails a check writes nothing.
    if let Some(d) = &config.dir {
        dir::write(d, &r.dir)?;
    }
    Ok(Delivery {
        too_big,
        block: EnvBlock::build(r.merged),
        files: r.files,
        versions: r.versions,
    })
}

/// Whether `resolve` makes the memfds (a real run) or only measures them (`--dry-run`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Make {
    Memfds,
    SizesOnly,
}

/// Everything delivered: the environment, the memfds, the `--dir` files, each file's size by
/// variable, and the versions fetched.
pub struct Resolved {
    pub merged: Merged,
    /// Under `--dir`: the `--secret` variables, written as files instead of set.
    pub dir: Vec<Var>,
    pub files: Files,
    pub sizes: BTreeMap<String, usize>,
    pub versions: Versions,
}

/// Fetches the plan and maps every SPEC, file and reference, all-or-nothing, reporting failures
/// in command-line order so the same failure always gives the same message; then merges with
/// the inherited environment. Each file's bytes go from the fetched buffer into its memfd
/// before any buffer is dropped, so the only copy left is the kernel's.
pub fn resolve(
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
    let mut in_dir: Vec<Var> = Vec::new();
    for spec in &config.specs {
        in_time(spec)?;
        let mapped = map::map_spec(spec, get(spec)?, &config.map)?;
        if config.dir.is_some() {
            in_dir.extend(mapped);
        } else {
            vars.extend(mapped);
        }
    }
    dir::check(&in_dir)?;
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
    for d in &config.compose.db_urls {
        in_time(&d.spec)?;
        vars.push(map::compose::db_url_var(d, get(&d.spec)?)?);
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

    // Templates read the environment the command will get, so they come after everything else.
    let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let kept = map::compose::Kept {
        ignore_environment: config.env.ignore_environment,
        unset: &config.env.unset,
    };
    map::compose::render_templates(&config.compose.templates, &mut vars, &inherited, &kept)?;
    let merged = environ::merge(inherited, vars, &config.env)?;
    log::at(1, Event::Map)
        .count(merged.injected.len() + in_dir.len())
        .took(started.elapsed())
        .say(format_args!(
            "mapped {} secret(s) to {} variables",
            all_specs(config, refs).count(),
            merged.injected.len() + in_dir.len()
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
        dir: in_dir,
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
