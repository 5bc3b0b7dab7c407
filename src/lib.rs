//! secret-exec: fetch secrets from AWS Secrets Manager, put them in the environment, exec.
//! The binary is a thin `main` over [`run`]. The stages are the layout: `spec` → `plan` →
//! `source/` → `map/` → `deliver/` → `launch/`, driven by `pipeline/` (a run's fetch, map and
//! delivery, and the `--watch` loop beside it), with `iam` and `dryrun` as the modes that stop
//! early; docs/architecture.md is the map. Modules are crate-private unless the binary, an
//! example or the tests need them.

pub(crate) mod arn;
pub(crate) mod bounded_read;
pub mod cli;
pub(crate) mod config;
pub mod deliver;
pub(crate) mod dryrun;
pub(crate) mod duration;
pub mod error;
pub(crate) mod from_env;
pub(crate) mod harden;
pub(crate) mod iam;
pub(crate) mod launch;
pub mod log;
pub(crate) mod map;
pub mod output;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod run;
pub(crate) mod sanitize;
#[cfg(test)]
mod scratch;
pub(crate) mod secret;
pub mod signals;
pub(crate) mod source;
pub(crate) mod spec;
pub mod wipe_alloc;

pub use error::Error;
pub use run::run;

#[cfg(test)]
mod layout_tests {
    /// docs/architecture.md: no stage imports `cli`, `config` or `run`; each owns its options.
    #[test]
    fn stages_do_not_import_cli_config_or_run() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        if ["crate::cli", "crate::config", "crate::run"]
                            .iter()
                            .any(|m| line.contains(m))
                        {
                            found.push(format!("{}:{}: {line}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        for stage in ["source", "map", "deliver", "launch"] {
            walk(&src.join(stage), &mut found);
        }
        assert!(found.is_empty(), "{}", found.join("\n"));
        // The check can fail: the file that assembles the options does import config.
        let run = std::fs::read_to_string(src.join("run.rs")).unwrap();
        assert!(run.contains("crate::config"));
    }
}
