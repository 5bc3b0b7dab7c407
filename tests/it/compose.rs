//! `--db-url` and `--template` end to end against moto: the values the command gets, the order
//! templates see the environment in (`-i`, `-u`, mapped, inherited, earlier templates), the
//! refusals (64 with a position, 65 naming what is missing, collisions) with nothing started,
//! `--dry-run` rows, `--print-iam-policy`, `--file` paths in a template, and the JSON log lines —
//! never a value. The real-server logins are in `dburl.rs`.

use crate::support::*;

const ENV0: [&str; 2] = ["/usr/bin/env", "-0"];
const PW: &str = "p@ss:w/rd?#%&=+ é-canary-7c1d";
const PW_URL: &str = "p%40ss%3Aw%2Frd%3F%23%25%26%3D%2B%20%C3%A9-canary-7c1d";

fn rds_secret(stem: &str) -> String {
    let name = unique(stem);
    moto().create(
        &name,
        &serde_json::json!({
            "engine": "postgres", "host": "db.example.com", "port": 5432,
            "username": "app", "password": PW, "dbname": "app",
        })
        .to_string(),
    );
    name
}

fn refused(run: Run, args: &[&str], code: i32) -> Out {
    // A COMMAND that would leave a trace: nothing may start.
    let out = run.args(args).args(["--", "/bin/echo", "started"]).run();
    assert_eq!(out.code(), Some(code), "{args:?}: {}", out.stderr);
    assert_eq!(out.stdout, "", "COMMAND started: {args:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.assert_no_leak(&[PW, "inherited-canary"]);
    out
}

#[test]
fn db_url_and_templates_reach_the_command() {
    let name = rds_secret("compose/rds");
    let url = format!("postgresql://app:{PW_URL}@db.example.com:5432/app");
    let out = se()
        .env("PGAPPNAME", "inherited-canary")
        .args(["--db-url", &format!("DATABASE_URL={name}")])
        .args(["--secret", &format!("DB_*={name}")])
        .args([
            "--template",
            "WITH_SSL={{DATABASE_URL}}?sslmode=verify-full",
        ])
        .args([
            "--template",
            "JDBC=jdbc:postgresql://{{ DB_HOST }}:{{DB_PORT}}/{{DB_DBNAME}}",
        ])
        .args(["--template", "PW_JSON={\"password\":{{DB_PASSWORD|json}}}"])
        .args(["--template", "APP={{PGAPPNAME|url}}\\{{x\\}}"])
        .args(["--template", "CHAIN={{JDBC}}&user={{DB_USERNAME|url}}"])
        .args(["--"])
        .args(ENV0)
        .run();
    out.assert_ok_vars(&[
        ("DATABASE_URL", url.as_str()),
        ("WITH_SSL", format!("{url}?sslmode=verify-full").as_str()),
        ("JDBC", "jdbc:postgresql://db.example.com:5432/app"),
        (
            "PW_JSON",
            serde_json::json!({ "password": PW }).to_string().as_str(),
        ),
        ("APP", "inherited-canary{{x}}"),
        (
            "CHAIN",
            "jdbc:postgresql://db.example.com:5432/app&user=app",
        ),
    ]);
    assert_eq!(out.stderr, "");
}

#[test]
fn templates_see_the_environment_the_command_gets() {
    let name = rds_secret("compose/env");
    let spec = format!("DB_*={name}");
    // -u removes an inherited name, and -i all of them, so a template cannot read it either.
    let rows: [(&[&str], &str); 2] = [
        (&["-u", "HOME_DIR"], "it is not inherited);"),
        (&["-i"], "under -i"),
    ];
    for (drop, why) in rows {
        let mut args = drop.to_vec();
        args.extend(["--secret", &spec, "--template", "X={{HOME_DIR}}"]);
        let out = refused(se().env("HOME_DIR", "inherited-canary"), &args, 65);
        out.assert_stderr_has("HOME_DIR is not in the command's environment");
        out.assert_stderr_has(why);
    }

    // A later template is not seen by an earlier one.
    let out = refused(
        se(),
        &[
            "--secret",
            &spec,
            "--template",
            "A={{B}}",
            "--template",
            "B=b",
        ],
        65,
    );
    assert!(
        out.stderr
            .starts_with("secret-exec: --template 'A={{B}}': B is not"),
        "{}",
        out.stderr
    );

    // A mapped value wins over the inherited one, as it does in the command's environment.
    let out = se()
        .env("DB_USERNAME", "inherited-canary")
        .args(["--secret", &spec, "--template", "U={{DB_USERNAME}}", "--"])
        .args(ENV0)
        .run();
    out.assert_ok_vars(&[("U", "app")]);
}

#[test]
fn malformed_templates_are_64_with_a_position_before_any_fetch() {
    let rows: &[(&str, &str)] = &[
        ("X=ab{{C", "'{{' at character 3 is not closed"),
        ("X={{C|base64}}", "unknown filter 'base64' at character 1"),
        ("X=é{{1C}}", "at character 2 does not name a variable"),
        ("1X=a", "VAR is not a variable name"),
        ("X", "the form is VAR=TEXT"),
    ];
    for (t, want) in rows {
        // A secret that does not exist: 64 comes before anything is asked of AWS (66).
        let out = refused(se(), &["--secret", "no/such/secret", "--template", t], 64);
        assert!(out.stderr.contains(want), "{t}: {}", out.stderr);
        out.assert_stderr_has(&format!("invalid --template '{t}'"));
    }
    for (d, want) in [
        ("prod/db", "the form is VAR=REF"),
        ("X=ssm:/app/", "Parameter Store path"),
        ("9=prod/db", "not a variable name"),
    ] {
        let out = refused(se(), &["--db-url", d], 64);
        assert!(out.stderr.contains(want), "{d}: {}", out.stderr);
    }
}

#[test]
fn db_url_refusals_name_the_fields_and_engine_never_a_value() {
    let master = seed(
        "compose/master",
        &serde_json::json!({"username": "app", "password": PW}).to_string(),
    );
    let out = refused(se(), &["--db-url", &format!("U={master}")], 65);
    assert!(
        out.stderr.contains("has no engine, host, port, dbname")
            && out.stderr.contains("--template"),
        "{}",
        out.stderr
    );
    let oracle = unique("compose/oracle");
    moto().create(
        &oracle,
        &serde_json::json!({"engine": "oracle", "host": "h", "port": 1521, "username": "u",
            "password": PW, "dbname": "ORCL"})
        .to_string(),
    );
    let out = refused(se(), &["--db-url", &format!("U={oracle}")], 65);
    out.assert_stderr_has("engine 'oracle'");
}

#[test]
fn collisions_and_overrides_apply_to_built_variables() {
    let name = rds_secret("compose/collide");
    // A template on a name a --secret key sets: both named.
    let out = refused(
        se(),
        &["--secret", &name, "--template", "PASSWORD=x{{HOST}}"],
        65,
    );
    assert!(
        out.stderr.contains("variable PASSWORD would be set twice")
            && out.stderr.contains("--template 'PASSWORD=x{{HOST}}'"),
        "{}",
        out.stderr
    );
    // Two --db-url on one name.
    let d = format!("U={name}");
    let out = refused(se(), &["--db-url", &d, "--db-url", &d], 65);
    out.assert_stderr_has("variable U would be set twice");
    // An inherited name is overridden, or refused under --no-override.
    let out = se()
        .env("U", "inherited-canary")
        .args(["--db-url", &d, "--"])
        .args(ENV0)
        .run();
    out.assert_code(0);
    assert!(out.var("U").unwrap().starts_with("postgresql://app:"));
    let out = refused(
        se().env("T", "inherited-canary"),
        &["--no-override", "--db-url", &d, "--template", "T=t"],
        65,
    );
    out.assert_stderr_has("--no-override");
    // The operator names the variable: the refused-name policy is for names from content.
    let out = se()
        .args([
            "--db-url",
            &d,
            "--template",
            "NODE_OPTIONS=--max-old-space-size=64",
        ])
        .args(["--"])
        .args(ENV0)
        .run();
    out.assert_ok_vars(&[("NODE_OPTIONS", "--max-old-space-size=64")]);
}

#[test]
fn dry_run_rows_say_how_each_was_built() {
    let name = rds_secret("compose/dry");
    let out = se()
        .args(["--db-url", &format!("DATABASE_URL={name}")])
        .args(["--template", "X={{DATABASE_URL}}?a={{HOME|url}}"])
        .env("HOME", "/home/inherited-canary")
        .args(["--dry-run"])
        .run();
    out.assert_code(0);
    out.assert_no_leak(&[PW, PW_URL, "inherited-canary"]);
    let rows = out.dry_run_rows();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert_eq!(rows[0][0], "DATABASE_URL");
    assert_eq!(rows[0][1], name);
    assert_eq!(rows[0][2], "-");
    assert_eq!(rows[0][4], "AWSCURRENT");
    assert_eq!(rows[0][6], "db-url");
    assert_eq!(rows[1][..3], ["X", "-", "DATABASE_URL HOME|url"]);
    assert_eq!(rows[1][6], "template");

    let out = se()
        .args(["--db-url", &format!("DATABASE_URL={name}")])
        .args(["--template", "X={{DATABASE_URL}}"])
        .args(["--dry-run=json"])
        .run();
    out.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["via"], "db-url");
    assert_eq!(v[0]["secret"], name.as_str());
    assert_eq!(v[1]["via"], "template");
    assert_eq!(v[1]["secret"], serde_json::Value::Null);
    assert_eq!(v[1]["key"], "DATABASE_URL");
    assert_eq!(v[1]["explicit"], true);
    out.assert_no_leak(&[PW, PW_URL]);
}

#[test]
fn file_paths_and_iam_policy() {
    let name = rds_secret("compose/file");
    let ca = unique("compose/ca");
    moto().create(&ca, "-----BEGIN CERTIFICATE-----\n");
    let out = se()
        .args(["--file", &format!("CA_FILE={ca}")])
        .args(["--db-url", &format!("U={name}")])
        .args(["--template", "OPTS=sslrootcert={{CA_FILE|url}}"])
        .args(["--"])
        .args(ENV0)
        .run();
    out.assert_ok_vars(&[("OPTS", "sslrootcert=%2Fdev%2Ffd%2F3")]);

    // A Parameter Store parameter holding the RDS JSON.
    let param = format!("/{}", unique("compose/rds-param"));
    moto().put_parameter(
        &param,
        "SecureString",
        &serde_json::json!({"engine": "mariadb", "host": "::1", "port": 3306,
            "username": "u", "password": PW, "dbname": "d"})
        .to_string(),
    );
    let out = se()
        .args(["--db-url", &format!("U=ssm:{param}"), "--"])
        .args(ENV0)
        .run();
    out.assert_ok_vars(&[("U", format!("mysql://u:{PW_URL}@[::1]:3306/d").as_str())]);

    let out = se()
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--print-iam-policy", "--region", "eu-west-1"])
        .args(["--db-url", "U=prod/rds", "--template", "X={{U}}"])
        .run();
    out.assert_code(0);
    out.assert_stdout_has("secret:prod/rds-??????");
}

#[test]
fn json_logs_name_what_was_built_never_a_value() {
    let name = rds_secret("compose/log");
    let out = se()
        .args(["-v", "--log-format", "json"])
        .args(["--db-url", &format!("DATABASE_URL={name}")])
        .args(["--template", "X={{DATABASE_URL|url}}"])
        .args(["--", "/bin/true"])
        .run();
    out.assert_code(0);
    out.assert_no_leak(&[PW, PW_URL, "canary"]);
    let lines = crate::logging::json_lines(&out.stderr);
    let built: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("built "))
        })
        .collect();
    assert_eq!(built.len(), 2, "{}", out.stderr);
    assert_eq!(
        built[0]["message"],
        format!("built DATABASE_URL from --db-url 'DATABASE_URL={name}'")
    );
    assert_eq!(built[0]["secret"], name.as_str());
    assert_eq!(
        built[1]["message"],
        "built X from --template (reads DATABASE_URL|url)"
    );
}
