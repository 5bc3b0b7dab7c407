//! Writes the man page and shell completions for secret-exec from its clap definition, so they
//! can never drift from `--help`. Used by packaging (cargo-deb assets):
//! `cargo run --example gen-docs -- OUT_DIR` writes `secret-exec.1`, `secret-exec.bash`,
//! `_secret-exec` (zsh) and `secret-exec.fish`.
//!
//! The man page takes NAME, SYNOPSIS, DESCRIPTION and OPTIONS from clap, EXAMPLES and EXIT
//! STATUS from the same texts `--help` prints (`cli::EXAMPLES`, `cli::EXIT_CODES`), and adds
//! ENVIRONMENT, FILES and SEE ALSO, which `--help` has no room for.

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{Roff, bold, italic, roman};
use secret_exec::cli::{Cli, EXAMPLES, EXIT_CODES};
use std::path::PathBuf;

/// Every environment variable a run reads: secret-exec's own reads first, then the ones the AWS
/// SDK's standard region, credential and endpoint chains read on its behalf.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "AWS_REGION, AWS_DEFAULT_REGION",
        "The region, when --region is not given (AWS_REGION wins). Also used by --print-iam-policy.",
    ),
    (
        "AWS_PROFILE",
        "The profile in the AWS config files, when --profile is not given (default: default).",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Static credentials; when both keys are set they are used directly and the rest of the \
         credential chain is skipped.",
    ),
    (
        "AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL",
        "The Secrets Manager endpoint when --endpoint-url is not given, the first one set wins. \
         A value that is not an http:// or https:// URL with a host is exit 78, naming the variable.",
    ),
    (
        "AWS_ENDPOINT_URL_SSM",
        "The Parameter Store endpoint when --endpoint-url is not given, before AWS_ENDPOINT_URL; \
         checked the same way.",
    ),
    (
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "true: ignore the endpoint variables above and the profile's endpoint_url.",
    ),
    (
        "AWS_MAX_ATTEMPTS",
        "Attempts per AWS call when --max-attempts is not given: 1 to 20 (default 3); any other \
         value is exit 78.",
    ),
    (
        "AWS_RETRY_MODE",
        "standard (also for legacy) or adaptive; any other value is exit 78.",
    ),
    (
        "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE",
        "The AWS config and credentials files (default ~/.aws/config and ~/.aws/credentials); \
         profiles may use SSO, credential_process, role assumption and endpoint_url.",
    ),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME",
        "Web identity credentials (EKS IAM roles for service accounts).",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI, \
         AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "The container credentials endpoint (ECS task roles, EKS Pod Identity).",
    ),
    (
        "AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT, \
         AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "EC2 instance metadata (IMDSv2), the last link of the region and credential chains; asked \
         with a 300 ms connect and 500 ms read bound, once.",
    ),
    (
        "AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT",
        "Select the FIPS or dual-stack regional endpoint.",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "Root certificates for an https:// endpoint, instead of the system's.",
    ),
    (
        "ECS_CONTAINER_METADATA_URI_V4, KUBERNETES_SERVICE_HOST",
        "Only to recognise a container, for the IMDSv2 hop-limit hint when no credentials are \
         found.",
    ),
    (
        "SECRET_EXEC_AGENT",
        "The Secrets Manager Agent's URL (http://HOST[:PORT]) when --agent is not given: Secrets \
         Manager reads go through it. Not such a URL is exit 78.",
    ),
    (
        "AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "With --agent: the agent's SSRF token, the first one set (AWS_TOKEN=file://PATH reads it \
         from PATH), as the agent reads it; none is exit 78.",
    ),
    (
        "SECRET_EXEC_SECRETS",
        "More SPECs, separated by whitespace, each as --secret takes it, read after the --secret \
         flags: for launchers whose arguments are fixed, such as a Lambda AWS_LAMBDA_EXEC_WRAPPER \
         (see docs/lambda.md). A SPEC that does not parse is exit 64.",
    ),
    (
        "SECRET_EXEC_LOG_FORMAT",
        "text or json: the format of every stderr line when --log-format is not given; any other \
         value is exit 78 (see docs/logging.md).",
    ),
    (
        "LISTEN_PID, LISTEN_FDS",
        "Socket activation: when LISTEN_PID is secret-exec's own PID, descriptors 3 to \
         3+LISTEN_FDS-1 pass to COMMAND and --file descriptors follow them.",
    ),
    (
        "PATH",
        "Of the environment COMMAND will get (after -i and -u): where a COMMAND without a / is \
         searched (/bin:/usr/bin when unset).",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "~/.aws/config, ~/.aws/credentials",
        "The AWS config and credentials files, unless AWS_CONFIG_FILE and \
         AWS_SHARED_CREDENTIALS_FILE point elsewhere (~ is HOME).",
    ),
    (
        "~/.aws/sso/cache/",
        "Tokens of an SSO profile, as written by aws sso login.",
    ),
    (
        "/etc/ssl/certs/",
        "The system root certificates (e.g. /etc/ssl/certs/ca-certificates.crt), read only for an \
         https:// endpoint. A static binary in an empty image needs this file, and \
         /etc/resolv.conf for DNS.",
    ),
    (
        "/.dockerenv, /run/.containerenv, /proc/1/cgroup",
        "Only to recognise a container, for the IMDSv2 hop-limit hint.",
    ),
    (
        "/usr/share/doc/secret-exec/examples/",
        "With the Debian package: an example systemd unit and IAM policy.",
    ),
];

const SEE_ALSO: &str = "env(1), execve(2), environ(7), systemd.exec(5), aws(1); README.md and docs/ \
     in the source tree (the SPEC grammar, AWS behaviour, threat model, limits).";

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("usage: gen-docs OUT_DIR"))?;
    std::fs::create_dir_all(&out)?;
    let cmd = Cli::command();
    let name = cmd.get_name().to_string();
    std::fs::write(out.join(format!("{name}.1")), man_page(cmd.clone())?)?;

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

/// clap_mangen's sections in man-pages(7) order, with ours in between. clap's after_help is
/// not rendered as such (it would be an "EXTRA" section): its two parts become EXAMPLES and
/// EXIT STATUS, and the SPEC grammar that ends it goes into DESCRIPTION.
fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let (codes, grammar) = exit_codes();
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;

    let mut roff = Roff::new();
    roff.control("PP", []).text([roman(
        "secret-exec fetches every secret named by a --secret SPEC from AWS Secrets Manager, \
         turns it into environment variables, wipes every buffer that held a value and executes \
         COMMAND in its place: same PID, no shell, no process left behind. COMMAND starts only \
         when every secret was fetched and mapped; otherwise secret-exec exits with one line on \
         stderr and a code from EXIT STATUS.",
    )]);
    for line in &grammar {
        roff.control("PP", []).text([roman(line.as_str())]);
    }
    roff.to_writer(&mut page)?;
    man.render_options_section(&mut page)?;

    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in &codes {
        tagged(&mut roff, bold(code.as_str()), meaning);
    }
    roff.control("PP", []).text([roman(
        "Every error is one line on stderr: secret-exec: what, which secret, what to do.",
    )]);
    roff.control("SH", ["ENVIRONMENT"]);
    for (vars, meaning) in ENVIRONMENT {
        tagged(&mut roff, bold(*vars), meaning);
    }
    roff.control("SH", ["FILES"]);
    for (path, meaning) in FILES {
        tagged(&mut roff, italic(*path), meaning);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (command, effect) in examples() {
        roff.control("TP", []).text([bold(command)]);
        roff.text([roman(effect)]);
    }
    roff.control("PP", []).text([roman(
        "Quote every SPEC that contains *: unquoted, zsh stops with \"no matches found\" and \
         other shells may expand it to file names.",
    )]);
    roff.to_writer(&mut page)?;

    man.render_version_section(&mut page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]).text([roman(SEE_ALSO)]);
    roff.to_writer(&mut page)?;
    Ok(page)
}

fn tagged(roff: &mut Roff, tag: clap_mangen::roff::Inline, text: &str) {
    roff.control("TP", []).text([tag]).text([roman(text)]);
}

/// `cli::EXIT_CODES` as (code, meaning) rows, and the paragraph lines that follow the table.
fn exit_codes() -> (Vec<(String, String)>, Vec<String>) {
    let mut rows = Vec::new();
    let mut rest = Vec::new();
    let mut in_table = true;
    for line in EXIT_CODES.lines().skip(1) {
        if line.trim().is_empty() {
            in_table = false;
        } else if in_table {
            let line = line.trim();
            let (code, meaning) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("cli::EXIT_CODES row without two spaces: {line}"));
            rows.push((code.to_string(), meaning.trim().to_string()));
        } else {
            rest.push(line.trim().to_string());
        }
    }
    (rows, rest)
}

/// `cli::EXAMPLES` as (command, effect) pairs: a line indented by two spaces, then its effect
/// indented by six.
fn examples() -> Vec<(&'static str, &'static str)> {
    let lines: Vec<&str> = EXAMPLES.lines().skip(1).collect();
    lines
        .chunks(2)
        .map(|pair| match pair {
            [command, effect] if effect.starts_with("      ") => (command.trim(), effect.trim()),
            _ => panic!("cli::EXAMPLES must alternate a command and its indented effect"),
        })
        .collect()
}
