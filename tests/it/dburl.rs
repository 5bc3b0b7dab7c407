//! `--db-url` and `--template` against real database servers: a private PostgreSQL cluster
//! (initdb, `pg_ctl start` on a free loopback port, SCRAM) and a private MariaDB (`mariadbd
//! --datadir` on a free loopback port), each with a user whose password holds every printable
//! ASCII character, a space, quotes and non-ASCII, created from SQL. The URL secret-exec builds
//! is handed to the real clients (`psql "$DATABASE_URL"`; SQLAlchemy with MySQL Connector/Python
//! from the test venv) and must log in. Without the servers the tests skip with a line, except
//! under CI=true (scripts/dbservers installs them; scripts/test runs it).

use crate::support::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every printable ASCII character (space, `"`, `'`, `/`, `@`, `:`, `%`, `\`… included) and
/// non-ASCII from three UTF-8 lengths.
fn hostile_password() -> String {
    let ascii: String = (0x20u8..0x7f).map(char::from).collect();
    format!("{ascii}é日🔑")
}

/// Whether a test that needs `what` may go on: skipped with a line outside CI, a failure under
/// CI=true (scripts/dbservers installs what is missing).
fn have(test: &str, what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    skip(&format!(
        "{test} needs {what} (scripts/dbservers installs it)"
    ));
    false
}

/// The newest PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/N/bin).
fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

/// As root the servers run as an unprivileged account (PostgreSQL refuses root): its uid/gid.
fn server_user(name: &str) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let u = nix::unistd::User::from_name(name).ok().flatten()?;
    Some((u.uid.as_raw(), u.gid.as_raw()))
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn check(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private PostgreSQL cluster, stopped on drop.
struct Pg {
    bin: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    _dir: TempDir,
}

impl Pg {
    fn start(bin: PathBuf) -> Pg {
        let dir = TempDir::new("pg");
        let user = server_user("postgres");
        if let Some((uid, gid)) = user {
            nix::unistd::chown(dir.path(), Some(uid.into()), Some(gid.into())).unwrap();
        }
        let data = dir.path().join("data");
        let sock = dir.path().to_path_buf();
        check(
            as_user(&mut Command::new(bin.join("initdb")), user)
                .args(["-U", "admin", "-E", "UTF8", "--locale=C"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-D"])
                .arg(&data),
            "initdb",
        );
        // A port taken between free_port and the bind fails pg_ctl; try another.
        for _ in 0..5 {
            let port = free_port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} \
                 -c password_encryption=scram-sha-256",
                sock.display()
            );
            let st = as_user(&mut Command::new(bin.join("pg_ctl")), user)
                .args(["-w", "-t", "60", "-l"])
                .arg(dir.path().join("log"))
                .args(["-o", &opts, "-D"])
                .arg(&data)
                .arg("start")
                .stdout(Stdio::null())
                .status()
                .expect("pg_ctl");
            if st.success() {
                return Pg {
                    bin,
                    data,
                    sock,
                    port,
                    user,
                    _dir: dir,
                };
            }
        }
        panic!("PostgreSQL did not start");
    }

    /// Runs SQL as the superuser over the private socket (trust).
    fn sql(&self, sql: &str) {
        check(
            Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "admin",
                    "-d",
                    "postgres",
                ])
                .arg("-h")
                .arg(&self.sock)
                .args(["-p", &self.port.to_string(), "-c", sql])
                .env("PGCLIENTENCODING", "UTF8"),
            "psql as admin",
        );
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_user(&mut Command::new(self.bin.join("pg_ctl")), self.user)
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A SQL string literal: `'` doubled (PostgreSQL, standard strings).
fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

const PSQL_WHO: &str = r#"exec psql "$DATABASE_URL" -X -tA -c "select current_user || '|' || current_database() || '|' || current_setting('application_name')""#;

#[test]
fn postgres_logs_in_with_the_db_url_of_a_hostile_password() {
    let test = "postgres_logs_in_with_the_db_url_of_a_hostile_password";
    let bin = postgres_bin();
    if !have(test, "PostgreSQL (initdb, pg_ctl)", bin.is_some()) {
        return;
    }
    let pg = Pg::start(bin.unwrap());
    let password = hostile_password();
    let (user, db) = ("app user@x:y", "app db/é?#");
    pg.sql(&format!(
        "CREATE ROLE {} LOGIN PASSWORD {}",
        pg_ident(user),
        pg_literal(&password)
    ));
    pg.sql(&format!(
        "CREATE DATABASE {} OWNER {}",
        pg_ident(db),
        pg_ident(user)
    ));
    let secret = serde_json::json!({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port,
        "username": user, "password": password, "dbname": db,
    });
    let name = unique("db/pg");
    moto().create(&name, &secret.to_string());
    let path = format!("{}:/usr/bin:/bin", pg.bin.display());
    // One run whose COMMAND asks psql who it logged in as.
    let psql = |args: &[&str]| {
        se().env("PATH", &path)
            .args(args)
            .args(["--", "/bin/sh", "-c", PSQL_WHO])
            .run()
    };

    // The URL as built, read by psql from the environment.
    let out = psql(&["--db-url", &format!("DATABASE_URL={name}")]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), format!("{user}|{db}|psql"));
    out.assert_no_leak(&[&password]);

    // Connection options are query parameters a --template adds to the URL.
    let out = psql(&[
        "--db-url",
        &format!("PG_URL={name}"),
        "--template",
        "DATABASE_URL={{PG_URL}}?application_name=se-test",
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), format!("{user}|{db}|se-test"));

    // An RDS-managed master-user secret (username and password only): --db-url refuses it and
    // names the missing fields; the URL is then built with --template and |url.
    let master = seed(
        "db/pg-master",
        &serde_json::json!({"username": user, "password": password}).to_string(),
    );
    let out = se()
        .env("PATH", &path)
        .args([
            "--db-url",
            &format!("DATABASE_URL={master}"),
            "--",
            "/bin/true",
        ])
        .run();
    assert_eq!(out.code(), Some(65), "{}", out.stderr);
    out.assert_stderr_has("has no engine, host, port, dbname");
    out.assert_stderr_has("--template");
    out.assert_no_leak(&[&password]);
    let template = format!(
        "DATABASE_URL=postgres://{{{{DB_USERNAME|url}}}}:{{{{DB_PASSWORD|url}}}}@127.0.0.1:{}/{}",
        pg.port, "app%20db%2F%C3%A9%3F%23"
    );
    let out = psql(&[
        "--secret",
        &format!("DB_*={master}"),
        "--template",
        &template,
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), format!("{user}|{db}|psql"));

    // The same URL without the encoding does not log in: the test can fail.
    let raw = format!(
        "DATABASE_URL=postgres://{{{{DB_USERNAME}}}}:{{{{DB_PASSWORD}}}}@127.0.0.1:{}/x",
        pg.port
    );
    let out = psql(&["--secret", &format!("DB_*={master}"), "--template", &raw]);
    assert_ne!(out.code(), Some(0), "an unencoded URL logged in");
}

/// A private MariaDB, killed on drop.
struct Maria {
    _child: Reaped,
    port: u16,
    _dir: TempDir,
}

/// A MariaDB string literal: `\` and `'` escaped.
fn my_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn which(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

impl Maria {
    /// Starts mariadbd on a free loopback port; `init` runs at start-up (before it listens).
    fn start(mariadbd: &Path, install_db: &Path, init: &str) -> Maria {
        let dir = TempDir::new("maria");
        let data = dir.path().join("data");
        let root = nix::unistd::geteuid().is_root();
        let mut install = Command::new(install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--skip-test-db", "--auth-root-authentication-method=socket"]);
        if root {
            install.arg("--user=root");
        }
        check(&mut install, "mariadb-install-db");
        let init_file = dir.path().join("init.sql");
        std::fs::write(&init_file, init).unwrap();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(mariadbd);
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.path().join("sock").display()))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--log-error={}", dir.path().join("err").display()))
                .arg(format!("--init-file={}", init_file.display()))
                .arg(format!("--port={port}"))
                .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
                .args(["--character-set-server=utf8mb4"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if root {
                cmd.arg("--user=root");
            }
            // SAFETY: one prctl syscall between fork and exec, async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let mut child = Reaped(cmd.spawn().expect("spawn mariadbd"));
            // Ready when it accepts on the port (the init file has run by then).
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Maria {
                        _child: child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let log = std::fs::read_to_string(dir.path().join("err")).unwrap_or_default();
        panic!("mariadbd did not start: {log}");
    }
}

/// Logs in with SQLAlchemy from $DATABASE_URL as the application would: the URL unchanged but
/// for the driver SQLAlchemy is told to use (MySQL Connector/Python).
const SQLALCHEMY_WHO: &str = r#"
import os, sqlalchemy
url = sqlalchemy.engine.make_url(os.environ["DATABASE_URL"]).set(drivername="mysql+mysqlconnector")
with sqlalchemy.create_engine(url).connect() as c:
    print(c.exec_driver_sql("select concat(current_user(), '|', database())").scalar())
"#;

#[test]
fn mariadb_logs_in_with_the_db_url_of_a_hostile_password() {
    let test = "mariadb_logs_in_with_the_db_url_of_a_hostile_password";
    let mariadbd = which("mariadbd", &["/usr/sbin", "/usr/bin"]);
    let install = which("mariadb-install-db", &["/usr/bin", "/usr/sbin"]);
    if !have(
        test,
        "MariaDB (mariadbd, mariadb-install-db)",
        mariadbd.is_some() && install.is_some(),
    ) {
        return;
    }
    let python = venv_python();
    if !have(
        test,
        "SQLAlchemy and mysql-connector-python in the test venv",
        venv_imports("sqlalchemy, mysql.connector"),
    ) {
        return;
    }
    let password = hostile_password();
    let (user, db) = ("app user@x:y", "app db?#");
    let init = format!(
        "SET NAMES utf8mb4;\nCREATE DATABASE `{db}`;\nCREATE USER {u}@'127.0.0.1' IDENTIFIED BY {p};\n\
         GRANT ALL ON `{db}`.* TO {u}@'127.0.0.1';\n",
        u = my_literal(user),
        p = my_literal(&password),
    );
    let maria = Maria::start(&mariadbd.unwrap(), &install.unwrap(), &init);
    let secret = serde_json::json!({
        "engine": "mariadb", "host": "127.0.0.1", "port": maria.port.to_string(),
        "username": user, "password": password, "dbname": db,
    });
    let name = unique("db/maria");
    moto().create(&name, &secret.to_string());
    // One run whose COMMAND asks SQLAlchemy who it logged in as, with the URL built from `name`.
    let login = |name: &str| {
        se().args(["--db-url", &format!("DATABASE_URL={name}"), "--"])
            .arg_path(&python)
            .args(["-c", SQLALCHEMY_WHO])
            .run()
    };
    let out = login(&name);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim_end(), format!("{user}@127.0.0.1|{db}"));
    out.assert_no_leak(&[&password]);

    // A wrong password is refused by the same client: the login above is the server's word.
    let wrong = unique("db/maria-wrong");
    let mut bad = secret.clone();
    bad["password"] = serde_json::Value::String(format!("{password}x"));
    moto().create(&wrong, &bad.to_string());
    let out = login(&wrong);
    assert_ne!(out.code(), Some(0), "a wrong password logged in");
}
