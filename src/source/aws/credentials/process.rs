//! `credential_process` helpers run by secret-exec itself, bounded. The SDK's provider buffers
//! all a helper prints, so one that floods stdout grows this process without bound until the
//! deadline. Here the profile chain is walked with the SDK's rules (its `repr.rs`, read and
//! restated, not copied) only far enough to see whether its base is a `credential_process`:
//! if so, the helper runs here (`sh -c CMD` in its own process group, stdout read up to
//! [`STDOUT_CAP`], stderr sent to /dev/null) and each `role_arn` hop above it is the SDK's public
//! `AssumeRoleProvider`; every other chain stays entirely the SDK's.
//!
//! Why a provider of our own rather than handing the SDK rewritten profile contents with the
//! helper's keys in place of its command: a profile that is its own `source_profile` keeps its
//! `credential_process` ahead of static keys, so no rewrite reaches it; the keys would sit in
//! profile text the SDK keeps and never wipes; and a value with a newline could inject settings.

use aws_config::profile::{Profile, ProfileSet};
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::date_time::{DateTime, Format};
use aws_types::region::Region;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// What is read of a helper's stdout. The Version 1 JSON holds four short strings: a session
/// token is at most a few KiB, the whole object well under 8 KiB. 64 KiB leaves ample room for
/// any real helper (pretty-printed, extra fields) while a runaway one costs at most this much.
pub const STDOUT_CAP: usize = 64 << 10;

/// One `role_arn` hop above the base, assumed with the previous hop's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

/// A profile chain whose base is a `credential_process`.
#[derive(Clone, PartialEq, Eq)]
pub struct Chain {
    /// The profile that names the helper (messages name it).
    pub profile: String,
    pub command: String,
    /// The profile's `aws_account_id`, used when the helper gives none.
    pub account_id: Option<String>,
    /// The hops, base first.
    pub hops: Vec<Hop>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The command line may carry a token or a password as an argument.
        f.debug_struct("Chain")
            .field("profile", &self.profile)
            .field("command", &"** redacted **")
            .field("hops", &self.hops)
            .finish()
    }
}

fn has_static_keys(p: &Profile) -> bool {
    // The SDK's rule: any of the three present makes static keys the source; both key halves
    // present makes them usable (a lone half is its error, which the SDK reports).
    let (id, secret, token) = (
        p.get("aws_access_key_id"),
        p.get("aws_secret_access_key"),
        p.get("aws_session_token"),
    );
    (id.is_some() || secret.is_some() || token.is_some()) && id.is_some() && secret.is_some()
}

/// The base of a profile with no `role_arn` (or one that is its own source), in the SDK's order:
/// `credential_source`, web identity, SSO, login session, then `credential_process`, then
/// static keys. Only the `credential_process` answer matters here.
fn process_base(p: &Profile) -> Option<(&str, Option<&str>)> {
    let other = p.get("credential_source").is_some()
        || p.get("web_identity_token_file").is_some()
        || [
            "sso_account_id",
            "sso_region",
            "sso_role_name",
            "sso_start_url",
            "sso_session",
        ]
        .iter()
        .any(|k| p.get(k).is_some())
        || p.get("login_session").is_some();
    if other {
        return None;
    }
    p.get("credential_process")
        .map(|c| (c, p.get("aws_account_id")))
}

/// Walks the chain from `selected` as the SDK does and returns it when its base is a
/// `credential_process`. `None` for every other chain and for every broken one (missing
/// profile, loop, both `source_profile` and `credential_source`…): the SDK's provider then
/// runs as before and reports the error in its own words.
pub fn chain(set: &ProfileSet, selected: &str) -> Option<Chain> {
    let mut name = selected;
    let mut visited: Vec<&str> = Vec::new();
    let mut hops = Vec::new();
    loop {
        let p = set.get_profile(name)?;
        if visited.contains(&name) {
            return None;
        }
        visited.push(name);
        // Past the first profile, static keys win over anything else the profile says.
        if visited.len() > 1 && has_static_keys(p) {
            return None;
        }
        // A web identity profile is a base even with a role_arn.
        let role = p
            .get("role_arn")
            .filter(|_| p.get("web_identity_token_file").is_none());
        let Some(role_arn) = role else {
            let (command, account) = process_base(p)?;
            return Some(finish(p, command, account, hops));
        };
        hops.push(Hop {
            role_arn: role_arn.to_string(),
            external_id: p.get("external_id").map(str::to_string),
            session_name: p.get("role_session_name").map(str::to_string),
        });
        match (p.get("source_profile"), p.get("credential_source")) {
            (Some(src), None) if src == p.name() => {
                let (command, account) = process_base(p)?;
                return Some(finish(p, command, account, hops));
            }
            (Some(src), None) => name = src,
            // credential_source names a built-in source (never a helper); the rest are errors.
            _ => return None,
        }
    }
}

fn finish(p: &Profile, command: &str, account: Option<&str>, mut hops: Vec<Hop>) -> Chain {
    hops.reverse();
    Chain {
        profile: p.name().to_string(),
        command: command.to_string(),
        account_id: account.map(str::to_string),
        hops,
    }
}

/// Why a helper gave no credentials. Never holds anything it printed.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// `sh` could not be started.
    #[error("cannot start it with sh -c: {0}")]
    Spawn(std::io::Error),
    /// Its stdout went past [`STDOUT_CAP`]; it was killed.
    #[error(
        "it wrote more than {} KiB to stdout (the cap; credentials JSON is far smaller) and was \
         stopped; run the command by hand to check what it prints",
        STDOUT_CAP >> 10
    )]
    TooLarge,
    #[error("{}", ended(*.0))]
    Failed(ExitStatus),
    /// Its output is not Version 1 credentials (why, without content).
    #[error("its output is not credentials: {0}")]
    Malformed(String),
    #[error("reading its output failed: {0}")]
    Io(std::io::Error),
}

fn ended(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(code), _) => format!(
            "it exited with status {code} (its stderr is not shown; run the command by hand to \
             see it)"
        ),
        (None, Some(sig)) => format!("it was killed by signal {sig}"),
        _ => "it ended abnormally".into(),
    }
}

/// A helper's failure with the profile that names it.
#[derive(Debug, thiserror::Error)]
#[error("credential_process of profile '{profile}': {why}")]
pub struct ProcessError {
    pub profile: String,
    pub why: HelperError,
}

/// Kills the helper's process group when the run is abandoned (the deadline, a signal: the
/// future is dropped) or its output overflows, as long as `sh` has not been reaped: until then
/// its pid, and so the group id, cannot be reused.
struct Group {
    pgid: i32,
    reaped: Arc<Mutex<bool>>,
}

impl Group {
    fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // A group whose leader is our unreaped child; ESRCH (all gone) needs nothing more.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads up to `cap` + 1 bytes into a buffer allocated once (no reallocation leaves a copy).
fn read_capped(mut r: impl Read, cap: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; cap + 1]);
    let mut n = 0;
    while n <= cap {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// The blocking part, on a thread of its own: read stdout, kill the group on overflow, wait.
fn collect(
    mut child: std::process::Child,
    group: &Group,
) -> Result<Zeroizing<Vec<u8>>, HelperError> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let read = read_capped(stdout, STDOUT_CAP);
    let too_large = read.as_ref().is_ok_and(|b| b.len() > STDOUT_CAP);
    if too_large || read.is_err() {
        group.kill();
    }
    // Wait for the exit without reaping, note it, then reap: `Group::kill` never signals a
    // group id that could belong to someone else.
    {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        let pid = nix::unistd::Pid::from_raw(group.pgid);
        while waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            == Err(nix::errno::Errno::EINTR)
        {}
    }
    *group.reaped.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let status = child.wait().map_err(HelperError::Io)?;
    let out = read.map_err(HelperError::Io)?;
    if too_large {
        return Err(HelperError::TooLarge);
    }
    if !status.success() {
        return Err(HelperError::Failed(status));
    }
    Ok(out)
}

/// Runs `command` as `sh -c` and returns what it printed, bounded.
async fn run(command: &str) -> Result<Zeroizing<Vec<u8>>, HelperError> {
    // Its own process group, so an overflow or the deadline kills whatever it started too.
    // stdin is closed, as in the SDK. Its stderr is never shown, so it is never read: /dev/null
    // never fills or blocks, and keeps whatever a helper logs out of this process's memory.
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(HelperError::Spawn)?;
    let group = Arc::new(Group {
        pgid: child.id() as i32,
        reaped: Arc::new(Mutex::new(false)),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let on_thread = group.clone();
    let spawned = crate::signals::spawn("credential-process", move || {
        let _ = tx.send(collect(child, &on_thread));
    });
    if let Err(e) = spawned {
        // The closure (and the child in it) is gone; the guard below kills the group.
        return Err(HelperError::Io(e));
    }
    // Dropping this future (deadline, signal) drops `group`: the helper's group is killed,
    // its stdout ends, and the thread reaps it and returns on its own.
    let result = rx.await;
    drop(group);
    result.unwrap_or_else(|_| Err(HelperError::Io(std::io::Error::other("the thread ended"))))
}

/// Parses Version 1 output as the SDK does: field names in any case, fields of another type
/// ignored, `SessionToken`, `Expiration` (RFC 3339) and `AccountId` optional. Errors name the
/// field or the position, never a value.
pub fn parse(out: &[u8], profile_account: Option<&str>) -> Result<Credentials, String> {
    use serde_json::Value;
    let map: serde_json::Map<String, Value> = serde_json::from_slice(out).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            "it is not a JSON object".to_string()
        } else {
            format!(
                "it is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        }
    })?;
    let mut version = None;
    let (mut id, mut secret, mut token, mut expiration, mut account) =
        (None, None, None, None, profile_account.map(str::to_string));
    for (key, value) in map {
        let key = key.to_ascii_lowercase();
        match (key.as_str(), value) {
            ("version", Value::Number(n)) => version = Some(n.as_i64()),
            // Moved, not copied, into wiped strings.
            ("accesskeyid", Value::String(s)) => id = Some(Zeroizing::new(s)),
            ("secretaccesskey", Value::String(s)) => secret = Some(Zeroizing::new(s)),
            ("sessiontoken", Value::String(s)) => token = Some(Zeroizing::new(s)),
            ("expiration", Value::String(s)) => expiration = Some(s),
            ("accountid", Value::String(s)) => account = Some(s),
            _ => {}
        }
    }
    match version {
        Some(Some(1)) => {}
        None => return Err("it has no Version (1 is required)".into()),
        Some(_) => return Err("its Version is not 1, the only one understood".into()),
    }
    let mut id = id.ok_or("it has no AccessKeyId")?;
    let mut secret = secret.ok_or("it has no SecretAccessKey")?;
    let mut b = Credentials::builder()
        .access_key_id(std::mem::take(&mut *id))
        .secret_access_key(std::mem::take(&mut *secret))
        .provider_name("CredentialProcess");
    b.set_session_token(token.as_mut().map(|t| std::mem::take(&mut **t)));
    if let Some(text) = expiration {
        let at = DateTime::from_str(&text, Format::DateTimeWithOffset)
            .ok()
            .and_then(|d| std::time::SystemTime::try_from(d).ok())
            .ok_or("its Expiration is not an RFC 3339 date-time")?;
        b = b.expiry(at);
    }
    if let Some(a) = account {
        b = b.account_id(a);
    }
    Ok(b.build())
}

/// The session name the SDK gives a profile's assume-role hop when the profile sets none.
fn default_session_name() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("assume-role-from-profile-{ms}")
}

/// The profile provider for a chain whose base is a `credential_process`.
#[derive(Debug)]
pub struct ProcessProvider {
    pub chain: Chain,
    /// What the STS client of each hop is built from, as the SDK's profile provider builds it.
    pub region: Region,
    pub http: SharedHttpClient,
    pub files: EnvConfigFiles,
    pub profile_name: String,
}

impl ProcessProvider {
    async fn credentials(&self) -> provider::Result {
        let failed = |why| {
            CredentialsError::provider_error(ProcessError {
                profile: self.chain.profile.clone(),
                why,
            })
        };
        let out = run(&self.chain.command).await.map_err(failed)?;
        let mut creds = parse(&out, self.chain.account_id.as_deref())
            .map_err(|why| failed(HelperError::Malformed(why)))?;
        drop(out);
        if self.chain.hops.is_empty() {
            return Ok(creds);
        }
        // Endpoint settings for STS (AWS_ENDPOINT_URL_STS, the profile's services section) are
        // read from the same environment and profile contents as the SDK's own chain.
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(self.region.clone())
            .http_client(self.http.clone())
            .profile_files(self.files.clone())
            .profile_name(&self.profile_name)
            .load()
            .await;
        for hop in &self.chain.hops {
            let mut b = AssumeRoleProvider::builder(&hop.role_arn)
                .configure(&sdk)
                .session_name(
                    hop.session_name
                        .clone()
                        .unwrap_or_else(default_session_name),
                );
            if let Some(id) = &hop.external_id {
                b = b.external_id(id);
            }
            creds = b
                .build_from_provider(creds)
                .await
                .provide_credentials()
                .await?;
        }
        Ok(creds)
    }
}

provide_from_credentials_fn!(ProcessProvider);

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, selected: &str) -> ProfileSet {
        crate::source::aws::files::parsed(text, selected)
    }

    fn hop(role: &str) -> Hop {
        Hop {
            role_arn: role.into(),
            external_id: None,
            session_name: None,
        }
    }

    #[test]
    fn chain_rules_follow_the_sdk() {
        let proc_ = |profile: &str, hops: Vec<Hop>| {
            Some(Chain {
                profile: profile.into(),
                command: "helper".into(),
                account_id: None,
                hops,
            })
        };
        let rows: Vec<(&str, &str, Option<Chain>)> = vec![
            (
                "[default]\ncredential_process = helper\n",
                "default",
                proc_("default", vec![]),
            ),
            // In the selected profile the helper wins over static keys…
            (
                "[profile a]\ncredential_process = helper\naws_access_key_id = A\naws_secret_access_key = S\n",
                "a",
                proc_("a", vec![]),
            ),
            // …in a source profile static keys win.
            (
                "[profile a]\nrole_arn = r\nsource_profile = b\n[profile b]\ncredential_process = helper\naws_access_key_id = A\naws_secret_access_key = S\n",
                "a",
                None,
            ),
            (
                "[profile a]\nrole_arn = r1\nsource_profile = b\nexternal_id = x\n[profile b]\nrole_arn = r2\nsource_profile = c\nrole_session_name = s\n[profile c]\ncredential_process = helper\n",
                "a",
                proc_(
                    "c",
                    vec![
                        Hop {
                            session_name: Some("s".into()),
                            ..hop("r2")
                        },
                        Hop {
                            external_id: Some("x".into()),
                            ..hop("r1")
                        },
                    ],
                ),
            ),
            // Its own source: the role over its own helper.
            (
                "[profile a]\nrole_arn = r\nsource_profile = a\ncredential_process = helper\n",
                "a",
                proc_("a", vec![hop("r")]),
            ),
            // SSO, web identity and credential_source come before a helper.
            (
                "[profile a]\nsso_session = s\ncredential_process = helper\n",
                "a",
                None,
            ),
            (
                "[profile a]\nrole_arn = r\nweb_identity_token_file = /t\ncredential_process = helper\n",
                "a",
                None,
            ),
            (
                "[profile a]\nrole_arn = r\ncredential_source = Environment\ncredential_process = helper\n",
                "a",
                None,
            ),
            // Broken chains are left to the SDK's messages.
            ("[profile a]\nrole_arn = r\nsource_profile = b\n", "a", None),
            (
                "[profile a]\nrole_arn = r\nsource_profile = b\n[profile b]\nrole_arn = r\nsource_profile = a\n",
                "a",
                None,
            ),
            (
                "[profile a]\nrole_arn = r\nsource_profile = b\ncredential_source = Environment\n[profile b]\ncredential_process = helper\n",
                "a",
                None,
            ),
            (
                "[profile a]\naws_access_key_id = A\naws_secret_access_key = S\n",
                "a",
                None,
            ),
            ("[profile a]\ncredential_process = helper\n", "b", None),
        ];
        for (text, selected, want) in rows {
            assert_eq!(chain(&set(text, selected), selected), want, "{text}");
        }
    }

    #[test]
    fn output_rules() {
        let ok = parse(
            br#"{"Version": 1, "accesskeyid": "AKIA", "SecretAccessKey": "s", "SessionToken": "t",
                "Expiration": "2099-01-01T00:00:00+00:00", "Other": [1]}"#,
            Some("111122223333"),
        )
        .unwrap();
        assert_eq!(ok.access_key_id(), "AKIA");
        assert_eq!(ok.secret_access_key(), "s");
        assert_eq!(ok.session_token(), Some("t"));
        assert!(ok.expiry().is_some());
        assert_eq!(ok.account_id().unwrap().as_str(), "111122223333");
        let no_expiry = parse(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","SessionToken":null}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            (no_expiry.expiry(), no_expiry.session_token()),
            (None, None)
        );

        let rows: &[(&[u8], &str)] = &[
            (
                br#"{"AccessKeyId":"A","SecretAccessKey":"s"}"#,
                "no Version",
            ),
            (
                br#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"s"}"#,
                "not 1",
            ),
            (
                br#"{"Version":1,"SecretAccessKey":"CANARY"}"#,
                "no AccessKeyId",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"CANARY"}"#,
                "no SecretAccessKey",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"CANARY"}"#,
                "Expiration",
            ),
            (br#""CANARY""#, "not a JSON object"),
            (b"{\"Version\":1,\"AccessKeyId\":\"CANARY", "line 1"),
            (b"", "not valid JSON"),
        ];
        for (out, want) in rows {
            let why = parse(out, None).unwrap_err();
            assert!(why.contains(want), "{why}");
            assert!(!why.contains("CANARY"), "{why}");
        }
    }

    #[test]
    fn reads_stop_past_the_cap() {
        let big = [b'y'; 100];
        assert_eq!(read_capped(&big[..], 10).unwrap().len(), 11);
        assert_eq!(read_capped(&big[..10], 10).unwrap().len(), 10);
        assert_eq!(read_capped(&[][..], 10).unwrap().len(), 0);
    }

    #[test]
    fn the_command_never_shows_in_debug() {
        let c = Chain {
            profile: "p".into(),
            command: "helper --password CANARY".into(),
            account_id: None,
            hops: vec![],
        };
        assert!(!format!("{c:?}").contains("CANARY"));
    }
}
