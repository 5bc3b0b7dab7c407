//! Writes the man page and shell completions for secret-exec from its clap definition, so they
//! can never drift from `--help`. Used by packaging (cargo-deb assets):
//! `cargo run --example gen-docs -- OUT_DIR` writes `secret-exec.1`, `secret-exec.bash`,
//! `_secret-exec` (zsh) and `secret-exec.fish`.

use clap::CommandFactory;
use clap_complete::Shell;
use secret_exec::cli::Cli;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("usage: gen-docs OUT_DIR"))?;
    std::fs::create_dir_all(&out)?;
    let cmd = Cli::command();
    let name = cmd.get_name().to_string();

    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(out.join(format!("{name}.1")), page)?;

    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut script);
        std::fs::write(out.join(file), script)?;
    }
    Ok(())
}
