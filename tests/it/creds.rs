//! Every credentials source a container or host uses, end to end: the real binary, moto for
//! Secrets Manager and STS (behind a recording relay, so the test sees which key signed the
//! fetch), and loopback fakes for the ECS/EKS container endpoint, IMDS and the SSO portal.
//! Also the error lines of those sources: class, no Debug dumps, no echoed credentials.

use crate::fakehttp::{FakeHttp, Reply, reply};
use crate::support::{Out, Run, TempDir, moto, se, unique};

const FAR: &str = "2099-01-01T00:00:00Z";

/// A secret to fetch, and a run with no credentials of its own, talking to moto via `relay`.
fn setup(relay: &FakeHttp) -> (String, Run) {
    let name = unique("creds/app");
    moto().create(&name, r#"{"k":"from-moto"}"#);
    let run = se()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL", &relay.endpoint);
    (name, run)
}

fn fetch(run: Run, name: &str) -> Out {
    run.run_env0(&format!("APP_*={name}"))
}

/// Fetches a fresh secret through a new moto relay, with the credentials `source` gives the
/// run; returns the run and the relay, whose log shows which key signed the fetch.
fn fetch_from(source: impl FnOnce(Run) -> Run) -> (Out, FakeHttp) {
    let relay = FakeHttp::moto_relay();
    let (name, run) = setup(&relay);
    let out = fetch(source(run), &name);
    (out, relay)
}

/// Exit 0, the value delivered, and the fetch signed by `key` (it came from the source).
fn assert_fetched_with(out: &Out, relay: &FakeHttp, key_prefix: &str) {
    out.assert_ok_vars(&[("APP_K", "from-moto")]);
    let signers = relay.secretsmanager_signers();
    assert!(!signers.is_empty(), "no Secrets Manager call seen");
    for s in &signers {
        assert!(
            s.starts_with(key_prefix),
            "signed by {s}, wanted {key_prefix}…"
        );
    }
}

/// One stderr line, no Rust Debug rendering, none of `canaries`.
fn assert_clean_error(out: &Out, canaries: &[&str]) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].starts_with("secret-exec: "), "{}", out.stderr);
    for debug in ["Error {", "Error(", "{ source", "Some(", "source:"] {
        assert!(
            !out.stderr.contains(debug),
            "Debug dump ({debug}): {}",
            out.stderr
        );
    }
    out.assert_no_leak(canaries);
}

fn creds_json(akid: &str) -> String {
    format!(
        r#"{{"AccessKeyId":"{akid}","SecretAccessKey":"secret-{akid}","Token":"token-{akid}","Expiration":"{FAR}"}}"#
    )
}

/// A container endpoint answering `body` at /creds when the Authorization header is `token`.
fn container_endpoint(token: &'static str, body: String) -> FakeHttp {
    FakeHttp::start(move |req, _| {
        Some(if req.header("authorization") == Some(token) {
            reply("200 OK", body.clone())
        } else {
            reply("401 Unauthorized", "{}")
        })
    })
}

/// `run` given credentials by `endpoint` (see `container_endpoint`), sending `token`.
fn with_container(run: Run, endpoint: &FakeHttp, token: &str) -> Run {
    run.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/creds", endpoint.endpoint),
    )
    .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
}

#[test]
fn ecs_task_role_full_uri_with_token() {
    let ecs = container_endpoint("ecs-token", creds_json("ASIAECSTASKROLE"));
    let (out, relay) = fetch_from(|run| with_container(run, &ecs, "ecs-token"));
    assert_fetched_with(&out, &relay, "ASIAECSTASKROLE");
    assert_eq!(ecs.count("GET", "/creds"), 1);
}

#[test]
fn eks_pod_identity_token_file_with_trailing_newline() {
    let eks = container_endpoint("pod-token", creds_json("ASIAPODIDENTITY"));
    let dir = TempDir::new("eks");
    let file = dir.path().join("token");
    std::fs::write(&file, "pod-token\n").unwrap();
    // The file wins over the variable, as in the SDKs.
    let (out, relay) = fetch_from(|run| {
        with_container(run, &eks, "stale").env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &file)
    });
    assert_fetched_with(&out, &relay, "ASIAPODIDENTITY");
}

#[test]
fn container_endpoint_refusal_is_77_and_malformed_reply_leaks_nothing() {
    let relay = FakeHttp::moto_relay();
    let (name, _) = setup(&relay);
    // Wrong token: the endpoint answers 401.
    let ecs = container_endpoint("right", creds_json("ASIAX"));
    let (_, run) = setup(&relay);
    let out = fetch(with_container(run, &ecs, "wrong"), &name);
    out.assert_code(77);
    assert_clean_error(&out, &["wrong", "/creds"]);

    // Cut-off and wrongly typed documents holding canary keys.
    for body in [
        r#"{"AccessKeyId":"CANARYAKID","SecretAccessKey":"CANARYSECRET","Token":"CANARYTOK"#,
        r#"{"AccessKeyId":"CANARYAKID","SecretAccessKey":["CANARYSECRET"]}"#,
        r#"{"AccessKeyId":"CANARYAKID","SecretAccessKey":"CANARYSECRET","Expiration":"CANARYDATE"}"#,
    ] {
        let ecs = container_endpoint("t", body.to_string());
        let (_, run) = setup(&relay);
        let out = fetch(with_container(run, &ecs, "t"), &name);
        assert_eq!(out.code(), Some(69), "{body}: {}", out.stderr);
        assert_clean_error(&out, &["CANARY"]);
    }
    assert!(relay.secretsmanager_signers().is_empty());
}

#[test]
fn eks_irsa_web_identity_through_sts() {
    let dir = TempDir::new("irsa");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln").unwrap();
    let (out, relay) = fetch_from(|run| {
        run.env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa-app")
            .env("AWS_ROLE_SESSION_NAME", "irsa-test")
    });
    // moto's STS issues temporary keys (ASIA…), distinct from any static test key.
    assert_fetched_with(&out, &relay, "ASIA");
    assert_eq!(relay.sts_actions(), ["AssumeRoleWithWebIdentity"]);
}

/// A fake IMDSv2: token on PUT, region, one role and its credentials; every GET must carry the
/// token. `fault(nth_request)` may replace any answer.
fn imds(
    creds: String,
    fault: impl Fn(&crate::fakehttp::Req, usize) -> Option<Reply> + Send + Sync + 'static,
) -> FakeHttp {
    FakeHttp::start(move |req, nth| {
        if let Some(r) = fault(req, nth) {
            return Some(r);
        }
        if req.method == "PUT" && req.path == "/latest/api/token" {
            let mut r = reply("200 OK", "imds-session-token");
            r.headers
                .push(("x-aws-ec2-metadata-token-ttl-seconds", "21600".into()));
            return Some(r);
        }
        if req.header("x-aws-ec2-metadata-token") != Some("imds-session-token") {
            return Some(reply("401 Unauthorized", ""));
        }
        Some(match req.path.as_str() {
            "/latest/meta-data/placement/region" => reply("200 OK", "us-east-1"),
            "/latest/meta-data/iam/security-credentials/" => reply("200 OK", "host-role"),
            "/latest/meta-data/iam/security-credentials/host-role" => {
                reply("200 OK", creds.clone())
            }
            _ => reply("404 Not Found", ""),
        })
    })
}

fn imds_creds(akid: &str) -> String {
    format!(
        r#"{{"Code":"Success","LastUpdated":"2026-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"{akid}","SecretAccessKey":"secret-{akid}","Token":"token-{akid}","Expiration":"{FAR}"}}"#
    )
}

fn with_imds(run: Run, imds: &FakeHttp) -> Run {
    run.env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint)
}

#[test]
fn ec2_imds_credentials_and_region_share_one_token() {
    let fake = imds(imds_creds("ASIAINSTANCEROLE"), |_, _| None);
    let (out, relay) = fetch_from(|run| {
        with_imds(run, &fake)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
    });
    assert_fetched_with(&out, &relay, "ASIAINSTANCEROLE");
    assert_eq!(fake.count("GET", "/latest/meta-data/placement/region"), 1);
    assert_eq!(
        fake.count("PUT", "/latest/api/token"),
        1,
        "{:?}",
        fake.requests()
    );
}

#[test]
fn imds_herd_throttled_once_is_retried() {
    // The first token request and the first credentials request are throttled.
    let fake = imds(imds_creds("ASIAHERD"), |req, _| {
        static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let key = format!("{} {}", req.method, req.path);
        let mut seen = SEEN.lock().unwrap();
        let first = !seen.contains(&key);
        seen.push(key);
        (first && (req.method == "PUT" || req.path.ends_with("/host-role")))
            .then(|| reply("429 Too Many Requests", ""))
    });
    let (out, relay) = fetch_from(|run| with_imds(run, &fake));
    assert_fetched_with(&out, &relay, "ASIAHERD");
    assert_eq!(fake.count("PUT", "/latest/api/token"), 2);
    assert_eq!(
        fake.count(
            "GET",
            "/latest/meta-data/iam/security-credentials/host-role"
        ),
        2
    );
}

/// An IMDS that fails one request every time: the exit class, one clean line, and how often
/// that request was made (a 403 is final; a 5xx is retried once).
#[test]
fn imds_failing_every_time_ends_cleanly() {
    const TOKEN: &str = "/latest/api/token";
    const ROLE: &str = "/latest/meta-data/iam/security-credentials/host-role";
    // (label, failing request, its reply, exit code, stderr names, times asked)
    let rows: [(&str, _, _, _, &[&str], _); 2] = [
        (
            "IMDS turned off: 403 for the token",
            ("PUT", TOKEN),
            "403 Forbidden",
            78,
            &["no AWS credentials", "instance metadata"],
            1,
        ),
        (
            "503 for the credentials",
            ("GET", ROLE),
            "503 Service Unavailable",
            69,
            &[],
            2,
        ),
    ];
    for (label, (method, path), status, code, names, asked) in rows {
        let fake = imds(imds_creds("ASIAX"), move |req, _| {
            (req.method == method && req.path == path).then(|| reply(status, ""))
        });
        let (out, _) = fetch_from(|run| with_imds(run, &fake));
        assert_eq!(out.code(), Some(code), "{label}: {}", out.stderr);
        assert_clean_error(&out, &[]);
        for name in names {
            assert!(out.stderr.contains(name), "{label}: {name}: {}", out.stderr);
        }
        assert_eq!(
            fake.count(method, path),
            asked,
            "{label}: {:?}",
            fake.requests()
        );
    }
}

#[test]
fn imds_malformed_credentials_leak_nothing() {
    let fake = imds(
        r#"{"Code":"Success","AccessKeyId":"CANARYAKID","SecretAccessKey":"CANARYSECRET","Token":"CANARYTOK","Expiration":"CANARYDATE"}"#.into(),
        |_, _| None,
    );
    let (out, _) = fetch_from(|run| with_imds(run, &fake));
    out.assert_code(78);
    assert_clean_error(&out, &["CANARY"]);
}

/// A config directory: `config` holds `text`; HOME points at the directory.
fn config_home(stem: &str, text: &str) -> TempDir {
    let dir = TempDir::new(stem);
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(dir.path().join(".aws/config"), text).unwrap();
    dir
}

fn with_home(run: Run, home: &TempDir) -> Run {
    run.env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join(".aws/config"))
}

#[test]
fn shared_config_assume_role_chain_through_sts() {
    let home = config_home(
        "chain",
        "[profile base]\naws_access_key_id = AKIABASEPROFILE\naws_secret_access_key = base-secret\n\n\
         [profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n",
    );
    let (out, relay) = fetch_from(|run| with_home(run, &home).args(["--profile", "app"]));
    assert_fetched_with(&out, &relay, "ASIA");
    assert_eq!(relay.sts_actions(), ["AssumeRole"]);
    let sts: Vec<_> = relay
        .requests()
        .into_iter()
        .filter(|r| r.body.contains("Action=AssumeRole"))
        .collect();
    assert_eq!(sts[0].signed_by(), Some("AKIABASEPROFILE"));
}

#[test]
fn credential_process_profile() {
    let dir = TempDir::new("process");
    let script = dir.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS\", \"SecretAccessKey\": \"p\", \"Expiration\": \"{FAR}\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let home = config_home(
        "process",
        &format!(
            "[profile proc]\ncredential_process = {}\n",
            script.display()
        ),
    );
    let (out, relay) = fetch_from(|run| with_home(run, &home).env("AWS_PROFILE", "proc"));
    assert_fetched_with(&out, &relay, "AKIAPROCESS");
}

/// An executable helper script in `dir` with `body` after the shebang.
fn helper(dir: &TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let script = dir.path().join(name);
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// What a helper prints when it works.
fn process_json(akid: &str) -> String {
    format!(
        "echo '{{\"Version\": 1, \"AccessKeyId\": \"{akid}\", \"SecretAccessKey\": \"p\", \"Expiration\": \"{FAR}\"}}'"
    )
}

/// Runs to completion like `Run::run`, and also returns the peak RSS of the secret-exec
/// process in KiB (wait4's rusage: the process and the children it reaped).
fn run_measured(run: Run) -> (Out, i64) {
    run.run_waiting(|child| {
        let pid = child.id() as i32;
        let start = std::time::Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: zeroed rusage is a valid out-parameter; wait4 on our own child, which
            // it reaps, giving the rusage `Child::wait` would discard.
            let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above; WNOHANG so the HANG bound below holds.
            let got = unsafe { nix::libc::wait4(pid, &mut status, nix::libc::WNOHANG, &mut usage) };
            if got == pid {
                let status = std::os::unix::process::ExitStatusExt::from_raw(status);
                break (status, usage.ru_maxrss);
            }
            assert!(got == 0, "wait4: {}", std::io::Error::last_os_error());
            assert!(start.elapsed() < crate::support::HANG, "secret-exec hung");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })
}

/// Far above secret-exec's own peak (about 10 MiB) and far below the 50 MB the helpers print.
const RSS_BOUND_KIB: i64 = 48 << 10;

/// A helper that floods stdout is stopped at the cap: one line naming the profile and the
/// cap, the credentials class (77), and memory never near what it printed.
#[test]
fn credential_process_stdout_flood_is_capped() {
    let dir = TempDir::new("flood");
    for (stem, body) in [
        ("zeros", "head -c 50000000 /dev/zero"),
        ("yes", "exec yes CANARY-FLOOD"),
    ] {
        let script = helper(&dir, stem, body);
        let home = config_home(
            "flood",
            &format!(
                "[profile flood]\ncredential_process = {}\n",
                script.display()
            ),
        );
        let run = with_home(se(), &home)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_PROFILE", "flood")
            // The deadline is far: the cap, not the deadline, must end it (a timeout is 69).
            .args(["--timeout", "60s"])
            .fetch_only("creds/flood");
        let (out, rss) = run_measured(run);
        assert_eq!(out.code(), Some(77), "{stem}: {}", out.stderr);
        assert_clean_error(&out, &["CANARY-FLOOD"]);
        for want in ["credential_process of profile 'flood'", "64 KiB"] {
            assert!(out.stderr.contains(want), "{stem}: {}", out.stderr);
        }
        assert!(rss < RSS_BOUND_KIB, "{stem}: peak RSS {rss} KiB");
    }
}

/// A helper's stderr is never read: a flood there costs nothing, and the exit status alone
/// decides (the credentials are used, or a failure that never quotes it).
#[test]
fn credential_process_stderr_flood_is_discarded() {
    let relay = FakeHttp::moto_relay();
    let dir = TempDir::new("errflood");
    let flood = "head -c 50000000 /dev/zero >&2";
    let good = helper(
        &dir,
        "good",
        &format!("{flood}\n{}", process_json("AKIAERRFLOOD")),
    );
    let bad = helper(
        &dir,
        "bad",
        &format!("{flood}\necho CANARY-ERR >&2\nexit 3"),
    );
    let home = config_home(
        "errflood",
        &format!(
            "[profile good]\ncredential_process = {}\n[profile bad]\ncredential_process = {}\n",
            good.display(),
            bad.display()
        ),
    );
    let (name, run) = setup(&relay);
    let run = with_home(run, &home).env("AWS_PROFILE", "good").args([
        "--secret",
        &format!("APP_*={name}"),
        "--",
        "/usr/bin/env",
        "-0",
    ]);
    let (out, rss) = run_measured(run);
    assert_fetched_with(&out, &relay, "AKIAERRFLOOD");
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");

    let run = with_home(se(), &home)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "bad")
        .fetch_only("creds/x");
    let (out, rss) = run_measured(run);
    assert_eq!(out.code(), Some(77), "{}", out.stderr);
    assert_clean_error(&out, &["CANARY-ERR"]);
    out.assert_stderr_has("status 3");
    out.assert_stderr_has("profile 'bad'");
    assert!(rss < RSS_BOUND_KIB, "peak RSS {rss} KiB");
}

/// A role assumed through STS on top of a helper's keys: from a `source_profile`, and from a
/// profile that is its own source (its helper, not static keys, is the base).
#[test]
fn credential_process_base_of_an_assume_role_chain() {
    let dir = TempDir::new("procchain");
    let script = helper(&dir, "creds", &process_json("AKIAPROCBASE"));
    for (profile, text) in [
        (
            "app",
            format!(
                "[profile base]\ncredential_process = {}\n\n\
                 [profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n",
                script.display()
            ),
        ),
        (
            "own",
            format!(
                "[profile own]\nrole_arn = arn:aws:iam::123456789012:role/own\nsource_profile = own\n\
                 credential_process = {}\naws_access_key_id = AKIASTATICNOTUSED\naws_secret_access_key = x\n",
                script.display()
            ),
        ),
    ] {
        let relay = FakeHttp::moto_relay();
        let home = config_home("procchain", &text);
        let (name, run) = setup(&relay);
        let out = fetch(with_home(run, &home).args(["--profile", profile]), &name);
        assert_fetched_with(&out, &relay, "ASIA");
        assert_eq!(relay.sts_actions(), ["AssumeRole"], "{profile}");
        let sts: Vec<_> = relay
            .requests()
            .into_iter()
            .filter(|r| r.body.contains("Action=AssumeRole"))
            .collect();
        assert_eq!(sts[0].signed_by(), Some("AKIAPROCBASE"), "{profile}");
    }
}

fn sha1_hex(text: &str) -> String {
    let out = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha1sum");
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

#[test]
fn sso_profile_with_cached_token() {
    let portal = FakeHttp::start(|req, _| {
        let ok = req.path.starts_with("/federation/credentials")
            && req.path.contains("account_id=123456789012")
            && req.path.contains("role_name=Dev")
            && req.header("x-amz-sso_bearer_token") == Some("cached-sso-token");
        Some(if ok {
            reply(
                "200 OK",
                r#"{"roleCredentials":{"accessKeyId":"ASIASSOROLE","secretAccessKey":"s","sessionToken":"t","expiration":4102444800000}}"#,
            )
        } else {
            reply("401 Unauthorized", r#"{"message":"bad token"}"#)
        })
    });
    let start_url = "https://example-sso.awsapps.com/start";
    let home = config_home(
        "sso",
        &format!(
            "[profile dev]\nsso_start_url = {start_url}\nsso_region = us-east-1\n\
             sso_account_id = 123456789012\nsso_role_name = Dev\n"
        ),
    );
    let cache = home.path().join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join(format!("{}.json", sha1_hex(start_url))),
        format!(
            r#"{{"startUrl":"{start_url}","region":"us-east-1","accessToken":"cached-sso-token","expiresAt":"{FAR}"}}"#
        ),
    )
    .unwrap();
    let (out, relay) = fetch_from(|run| {
        with_home(run, &home)
            .env("AWS_ENDPOINT_URL_SSO", &portal.endpoint)
            .args(["--profile", "dev"])
    });
    assert_fetched_with(&out, &relay, "ASIASSOROLE");
    assert_eq!(portal.count("GET", "/federation/credentials"), 1);
}

#[test]
fn profile_flag_wins_over_key_variables() {
    let relay = FakeHttp::moto_relay();
    let home = config_home(
        "flagwins",
        "[profile other]\naws_access_key_id = AKIAFROMPROFILE\naws_secret_access_key = x\n",
    );
    let (name, run) = setup(&relay);
    let run = with_home(run, &home)
        .env("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "y");
    let out = fetch(run.args(["--profile", "other"]), &name);
    assert_fetched_with(&out, &relay, "AKIAFROMPROFILE");

    // Without the flag the variables win (AWS_PROFILE does not override them either).
    let relay2 = FakeHttp::moto_relay();
    let (_, run) = setup(&relay2);
    let run = with_home(run, &home)
        .env("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_PROFILE", "other");
    let out = fetch(run, &name);
    assert_fetched_with(&out, &relay2, "AKIAFROMENV");
}

#[test]
fn missing_profile_is_78_by_name() {
    let home = config_home(
        "missing",
        "[profile present]\naws_access_key_id = A\naws_secret_access_key = x\n",
    );
    for run in [
        with_home(se(), &home).args(["--profile", "absent-profile"]),
        with_home(se(), &home)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("AWS_PROFILE", "absent-profile"),
    ] {
        let out = run.fetch_only("x").run();
        out.assert_code(78);
        assert_clean_error(&out, &[]);
        out.assert_stderr_has("'absent-profile'");
    }
}

#[test]
fn no_credentials_lists_only_what_was_tried() {
    let out = se()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .fetch_only("x")
        .run();
    out.assert_code(78);
    assert_clean_error(&out, &[]);
    out.assert_stderr_has("no AWS credentials");
    out.assert_stderr_has("web identity");
    // AWS_EC2_METADATA_DISABLED=true: IMDS was not asked, so it is not listed or advised on.
    assert!(!out.stderr.contains("instance metadata"), "{}", out.stderr);
    assert!(!out.stderr.contains("hop-limit"), "{}", out.stderr);
}
