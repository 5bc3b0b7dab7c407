//! The pipeline below `run` and above the stages: what a run and every `--watch` re-fetch go
//! through, so the watcher rebuilds a delivery without climbing back into `run`.

pub mod watch;
