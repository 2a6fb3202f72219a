//! Shared test support: a fresh database per test on either backend, the real daemon
//! spawned on a random port, and the `aro` binary run as a child process.
//!
//! PostgreSQL tests need a server at `PG_TEST_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` starts one. When it is
//! missing they fail with a message saying so — they never skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod credentials;

use aro::app::Application;
use aro::config::{Config, ConfigSources};
use diesel::{Connection, PgConnection, RunQueryDsl};

/// The two storage backends every storage-facing test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("PG_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("aro.db").display());
                TestDb {
                    kind,
                    url,
                    dir,
                    pg_name: None,
                }
            }
            Kind::Postgres => {
                let name = format!("aro_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = pg_admin();
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create test database");
                let url = pg_url_for(&name);
                TestDb {
                    kind,
                    url,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The test configuration for this database: random port, one worker, quiet logs.
    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut env = vec![
            ("ARO_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            (
                "ARO_DATA_DIR".to_string(),
                self.data_dir().display().to_string(),
            ),
            ("ARO_DATABASE_URL".to_string(), self.url.clone()),
            ("ARO_HTTP_WORKERS".to_string(), "1".to_string()),
            ("ARO_DATABASE_POOL_SIZE".to_string(), "2".to_string()),
            ("ARO_LOG_LEVEL".to_string(), "warn".to_string()),
        ];
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        Config::load(&ConfigSources { file: None, env })
            .expect("test configuration is valid")
            .config
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            aro::store::init_postgres_client();
            if let Ok(mut admin) = PgConnection::establish(&pg_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

fn pg_admin() -> PgConnection {
    aro::store::init_postgres_client();
    let url = pg_admin_url();
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for this test and is not reachable at {url}: {e}. \
             Run scripts/test, which starts it, or set PG_TEST_URL."
        )
    })
}

/// The admin URL with its database name replaced by `name`.
pub fn pg_url_for(name: &str) -> String {
    let mut url = url::Url::parse(&pg_admin_url()).expect("PG_TEST_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The daemon running in this test's actix system.
pub struct TestApp {
    pub address: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
    pub db: TestDb,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }
}

/// Builds and starts the real application against a fresh database of `kind`.
pub async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(TestDb::new(kind), &[]).await
}

pub async fn spawn_app_with(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
    let app = Application::build(db.config(extra))
        .await
        .expect("application starts");
    let address = app.address();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        handle,
        db,
    }
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
}

/// Generates `sqlite` and `postgres` tests in a module named `$name` that run the
/// async function `$name(Kind)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[actix_rt::test]
                async fn sqlite() {
                    super::$name($crate::common::Kind::Sqlite).await
                }
                #[actix_rt::test]
                async fn postgres() {
                    super::$name($crate::common::Kind::Postgres).await
                }
            }
        )+
    };
}

/// The `aro` binary as a child process, its stderr (the log) read line by line.
pub struct Daemon {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

/// A command for the `aro` binary with a clean environment: no inherited `ARO_*`.
pub fn aro_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aro"));
    cmd.current_dir(cwd);
    for (name, _) in std::env::vars() {
        if name.starts_with("ARO_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

impl Daemon {
    /// Starts `aro serve` in `cwd` with `env`, and waits until it logs its address.
    pub fn start(cwd: &Path, env: &[(&str, &str)]) -> (Daemon, SocketAddr) {
        let mut cmd = aro_command(cwd);
        cmd.arg("serve")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn aro serve");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            lines: rx,
            log: Vec::new(),
        };
        let line = daemon
            .wait_for_line(
                |l| l.contains("\"message\":\"listening\""),
                Duration::from_secs(60),
            )
            .unwrap_or_else(|| {
                panic!(
                    "daemon never logged `listening`; log:\n{}",
                    daemon.log.join("\n")
                )
            });
        let json: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
        let addr = json["addr"]
            .as_str()
            .expect("listening line has addr")
            .parse()
            .expect("addr parses");
        (daemon, addr)
    }

    /// Waits up to `timeout` for a log line matching `pred`; keeps every line read.
    pub fn wait_for_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, up to `timeout`; kills it if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    /// Drains the remaining log lines after exit.
    pub fn drain_log(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        self.log.clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking GET returning (status, body); for tests without an async runtime.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A path inside a temp dir that does not exist yet.
pub fn fresh_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Opens `db`, applies every migration and creates the `default` tenant, as `serve`
/// does at start.
pub async fn migrated_database(db: &TestDb) -> aro::store::Database {
    let database = aro::store::Database::open(&db.config(&[]).database).expect("open database");
    database
        .run(aro::store::migrations::run_pending)
        .await
        .expect("migrations apply");
    let now = chrono::Utc::now().naive_utc();
    let tenant = aro::store::models::Tenant {
        tenant_id: "default".into(),
        name: "Test Clinic".into(),
        profile: "healthcare".into(),
        timezone: "UTC".into(),
        phone: None,
        country: "US".into(),
        currency: "USD".into(),
        created_at: now,
        updated_at: now,
    };
    database
        .run(move |conn| aro::store::tenant_queries::ensure(conn, &tenant))
        .await
        .expect("default tenant");
    database
}
