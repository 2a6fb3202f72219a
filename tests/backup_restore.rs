//! `aro backup`, `aro backup verify` and `aro restore` against the real daemon
//! (`aro serve` as a child process) on both backends.
//!
//! "The snapshot moment" is one commit: the snapshot holds every transaction committed
//! before it and none after. Bookings are posted one at a time, and each is in the
//! inbox before its 2xx, so the snapshot's inbox must be exactly the first k deliveries,
//! with k between the deliveries acknowledged before `aro backup` started and those
//! acknowledged when it returned (+1 in flight). The manifest's per-table counts and
//! checksums are computed from the snapshot, not from the live database (which has
//! moved on by then); after a restore the database must match them exactly.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aro::config::Secret;
use aro::crypto::{Key, MasterKey};
use aro::ops::backup::{
    open_backup, postgres_table_stats, sqlite_table_stats, Manifest, Progress, SnapshotBackend,
    TableStat,
};
use aro::webhooks::signed_header::sign;
use common::{aro_command, http_get, Daemon, Kind, TestDb};
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use sha2::{Digest, Sha256};

const SECRET: &str = "booking-secret-for-backup-tests";
const KEY_HEX: &str = "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b";

/// The environment shared by the daemon and the CLI runs of one test.
fn env(db: &TestDb, master_key: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("ARO_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "ARO_DATA_DIR".to_string(),
            db.data_dir().display().to_string(),
        ),
        ("ARO_DATABASE_URL".to_string(), db.url.clone()),
        ("ARO_BOOKING_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
        ("ARO_DATABASE_POOL_SIZE".to_string(), "4".to_string()),
    ];
    if let Some(key) = master_key {
        env.push(("ARO_MASTER_KEY".to_string(), key.to_string()));
    }
    env
}

fn start_daemon(db: &TestDb, env: &[(String, String)]) -> (Daemon, SocketAddr) {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start(db.data_dir(), &pairs)
}

fn stop_daemon(mut daemon: Daemon) {
    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(20))
        .expect("daemon exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// Runs `aro ARGS` with `env` in the test's directory.
fn aro(db: &TestDb, env: &[(String, String)], args: &[&str]) -> Output {
    aro_command(db.data_dir())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .output()
        .expect("run aro")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn delivery_id(i: usize) -> String {
    format!("bk-{i:06}")
}

/// POSTs one signed booking; returns the HTTP status.
fn post_booking(addr: SocketAddr, i: usize) -> u16 {
    let body = serde_json::json!({
        "event": "appointment.created",
        "id": delivery_id(i),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {
            "appointment_id": format!("ext-{i}"),
            "scheduled_at": "2031-03-20T15:00:00Z",
            "duration": 30,
            "timezone": "America/New_York",
            "service_type": "Consultation",
            "service_cost": 150.0,
            "customer": {"name": "Jane Smith", "phone": format!("+1555{:07}", i),
                         "email": "jane@example.com", "sms_consent": true}
        }
    })
    .to_string();
    let signature = sign(
        SECRET.as_bytes(),
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST /webhooks/booking HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Aro-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    raw.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Posts bookings one after another until stopped (or 5000 of them, or 3 minutes).
struct Poster {
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<usize>,
}

impl Poster {
    fn start(addr: SocketAddr) -> Self {
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (acked.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            let mut i = 0;
            while !s.load(Ordering::SeqCst) && i < 5000 && Instant::now() < deadline {
                let status = post_booking(addr, i);
                assert_eq!(status, 200, "delivery {i} was not accepted");
                i += 1;
                a.store(i, Ordering::SeqCst);
            }
            i
        });
        Self {
            acked,
            stop,
            handle,
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.acked() < n {
            assert!(
                !self.handle.is_finished(),
                "the poster stopped at {}",
                self.acked()
            );
            assert!(Instant::now() < deadline, "only {} acked", self.acked());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("poster thread")
    }
}

/// Starts posting, takes `aro backup` once at least 15 deliveries are in, posts 10
/// more after it returns, then stops. Returns (backup file, acked before the backup
/// started, acked when it returned, total acked).
fn backup_while_streaming(
    db: &TestDb,
    env: &[(String, String)],
    addr: SocketAddr,
) -> (PathBuf, usize, usize, usize) {
    let poster = Poster::start(addr);
    poster.wait_for(15);
    let out_dir = db.data_dir().join("out");
    let before = poster.acked();
    let output = aro(
        db,
        env,
        &["backup", "--out", out_dir.to_str().expect("utf-8")],
    );
    let after = poster.acked();
    assert!(output.status.success(), "{}", text(&output));
    poster.wait_for(after + 10);
    let total = poster.stop();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("backup written: "), "{stdout}");
    let files = aro::ops::backup::list_backups(&out_dir).expect("list");
    assert_eq!(files.len(), 1, "{files:?}");
    (files[0].clone(), before, after, total)
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

fn master(hex_key: &str) -> MasterKey {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut bytes).expect("hex");
    MasterKey::from_key(Key::from_bytes(bytes))
}

/// Decrypts a backup with the library and returns its manifest and snapshot file.
fn decrypt(file: &Path, key: &MasterKey, dir: &Path) -> (Manifest, PathBuf) {
    let snapshot = dir.join(format!("snapshot-{}", uuid::Uuid::new_v4().simple()));
    let manifest = open_backup(file, key, &snapshot, &Progress::hidden()).expect("opens");
    (manifest, snapshot)
}

#[derive(QueryableByName)]
struct DedupKey {
    #[diesel(sql_type = Text)]
    dedup_key: String,
}

/// The delivery numbers present in an inbox, sorted.
fn delivery_numbers(keys: Vec<DedupKey>) -> Vec<usize> {
    let mut numbers: Vec<usize> = keys
        .iter()
        .map(|k| {
            let at = k
                .dedup_key
                .find("bk-")
                .expect("dedup key names the delivery");
            k.dedup_key[at + 3..at + 9].parse().expect("number")
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

fn sqlite_inbox(path: &Path) -> Vec<usize> {
    let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("open");
    delivery_numbers(
        diesel::sql_query("SELECT dedup_key FROM inbox")
            .load(&mut conn)
            .expect("inbox"),
    )
}

fn pg_inbox(url: &str) -> Vec<usize> {
    aro::store::init_postgres_client();
    let mut conn = PgConnection::establish(url).expect("connect");
    delivery_numbers(
        diesel::sql_query("SELECT dedup_key FROM inbox")
            .load(&mut conn)
            .expect("inbox"),
    )
}

/// Counts rows of every table the manifest names, by the test's own queries.
fn sqlite_counts(path: &Path, tables: &BTreeMap<String, TableStat>) -> BTreeMap<String, i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8")).expect("open");
    tables
        .keys()
        .map(|t| {
            let n: N = diesel::sql_query(format!("SELECT count(*) AS n FROM \"{t}\""))
                .get_result(&mut conn)
                .expect("count");
            (t.clone(), n.n)
        })
        .collect()
}

/// The snapshot is the first k deliveries, k within the window the backup ran in, and
/// fewer than the live database ended with.
fn assert_snapshot_moment(inbox: &[usize], before: usize, after: usize, total: usize) {
    let k = inbox.len();
    assert_eq!(
        inbox,
        (0..k).collect::<Vec<_>>(),
        "the snapshot holds exactly the first {k} deliveries"
    );
    assert!(
        before <= k && k <= after + 1,
        "snapshot has {k} deliveries; {before} were acknowledged before the backup started \
         and {after} when it returned"
    );
    assert!(k < total, "the live database moved on past the snapshot");
}

#[test]
fn sqlite_backup_while_webhooks_stream_restores_the_snapshot_moment() {
    let db = TestDb::new(Kind::Sqlite);
    let env = env(&db, Some(KEY_HEX));
    let live = db.data_dir().join("aro.db");
    let (daemon, addr) = start_daemon(&db, &env);
    let (file, before, after, total) = backup_while_streaming(&db, &env, addr);

    // The file on its own: decrypt it and check the manifest against the snapshot.
    let (manifest, snapshot) = decrypt(&file, &master(KEY_HEX), db.data_dir());
    assert_eq!(manifest.backend, SnapshotBackend::Sqlite);
    assert_eq!(manifest.snapshot.sha256, sha256_file(&snapshot));
    assert_eq!(
        sqlite_table_stats(&snapshot).expect("stats"),
        manifest.tables,
        "the manifest describes the snapshot"
    );
    let counts = sqlite_counts(&snapshot, &manifest.tables);
    for (table, stat) in &manifest.tables {
        assert_eq!(counts[table], stat.rows, "{table}");
    }
    assert!(manifest.tables.contains_key("__diesel_schema_migrations"));
    assert!(manifest.schema_version.is_some());
    let snap_inbox = sqlite_inbox(&snapshot);
    assert_eq!(snap_inbox.len() as i64, manifest.tables["inbox"].rows);
    assert_snapshot_moment(&snap_inbox, before, after, total);

    // Restoring while the daemon serves the database is refused and changes nothing.
    let refused = aro(
        &db,
        &env,
        &["restore", file.to_str().expect("utf-8"), "--yes"],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is open in another process"), "{stderr}");
    stop_daemon(daemon);
    assert_eq!(
        sqlite_inbox(&live).len(),
        total,
        "the live database kept everything"
    );

    // Without --yes and without a terminal: refused before anything happens.
    let unconfirmed = aro(&db, &env, &["restore", file.to_str().expect("utf-8")]);
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));

    let restored = aro(
        &db,
        &env,
        &["restore", file.to_str().expect("utf-8"), "--yes"],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    let stdout = String::from_utf8_lossy(&restored.stdout);
    assert!(stdout.contains("restored "), "{stdout}");
    assert!(stdout.contains("kept as"), "{stdout}");

    // Every table matches the snapshot moment: byte for byte, and table by table.
    assert_eq!(sha256_file(&live), manifest.snapshot.sha256);
    assert_eq!(sqlite_table_stats(&live).expect("stats"), manifest.tables);
    assert_eq!(sqlite_counts(&live, &manifest.tables), counts);
    assert_eq!(sqlite_inbox(&live), snap_inbox);
    for side in ["aro.db-wal", "aro.db-shm", "aro.db-journal"] {
        assert!(!db.data_dir().join(side).exists(), "{side} left behind");
    }
    // The replaced database is kept, complete.
    let kept: Vec<PathBuf> = std::fs::read_dir(db.data_dir())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("aro.db.pre-restore-"))
        .filter(|p| !p.to_string_lossy().ends_with("-wal"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(sqlite_inbox(&kept[0]).len(), total);

    // The daemon starts on the restored database and serves.
    let (daemon, addr) = start_daemon(&db, &env);
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 200, "{body}");
    assert_eq!(post_booking(addr, 90_000), 200);
    stop_daemon(daemon);
    assert_eq!(sqlite_inbox(&live).len(), snap_inbox.len() + 1);
}

/// Flips one byte of `file` at `at` into a new file.
fn flipped(file: &Path, at: usize, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[at] ^= 0x20;
    let out = dir.join(format!("flipped-{at}.arobak"));
    std::fs::write(&out, bytes).expect("write");
    out
}

fn data_dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_flipped_byte_anywhere_is_refused_by_verify_and_restore_and_changes_nothing() {
    let db = TestDb::new(Kind::Sqlite);
    // No ARO_MASTER_KEY: the first backup creates the key file, 0600.
    let env = env(&db, None);
    let (daemon, addr) = start_daemon(&db, &env);
    for i in 0..5 {
        assert_eq!(post_booking(addr, i), 200);
    }
    let good = db.data_dir().join("good.arobak");
    let output = aro(
        &db,
        &env,
        &["backup", "--out", good.to_str().expect("utf-8")],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("created a new master key"),
        "{}",
        text(&output)
    );
    let key_file = db.data_dir().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second backup to the same file name is refused, not overwritten.
    let again = aro(
        &db,
        &env,
        &["backup", "--out", good.to_str().expect("utf-8")],
    );
    assert!(!again.status.success(), "{}", text(&again));
    stop_daemon(daemon);

    let ok = aro(
        &db,
        &env,
        &["backup", "verify", good.to_str().expect("utf-8")],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": OK"));

    let live = db.data_dir().join("aro.db");
    let live_sha = sha256_file(&live);
    let len = std::fs::metadata(&good).expect("meta").len() as usize;
    let bad_dir = tempfile::tempdir().expect("tempdir");
    // Magic, version, flags, key id, file id, chunk size, first frame's kind, length,
    // seal version, nonce, ciphertext, the middle, the final tag, the last byte.
    let positions = [
        0,
        8,
        11,
        15,
        30,
        38,
        40,
        43,
        45,
        50,
        80,
        len / 2,
        len - 10,
        len - 1,
    ];
    let listing = data_dir_listing(db.data_dir());
    for at in positions {
        let bad = flipped(&good, at, bad_dir.path());
        let bad_arg = bad.to_str().expect("utf-8");
        let verify = aro(&db, &env, &["backup", "verify", bad_arg]);
        assert!(!verify.status.success(), "byte {at}: {}", text(&verify));
        let stderr = String::from_utf8_lossy(&verify.stderr);
        assert!(stderr.contains("is refused"), "byte {at}: {stderr}");

        let restore = aro(&db, &env, &["restore", bad_arg, "--yes"]);
        assert!(!restore.status.success(), "byte {at}: {}", text(&restore));
        let stderr = String::from_utf8_lossy(&restore.stderr);
        assert!(
            stderr.contains("is refused") && stderr.contains("nothing was changed"),
            "byte {at}: {stderr}"
        );
        assert_eq!(
            sha256_file(&live),
            live_sha,
            "byte {at}: live database changed"
        );
        assert_eq!(
            data_dir_listing(db.data_dir()),
            listing,
            "byte {at}: files left behind"
        );
    }

    // Truncated, and sealed under another key: refused with their own reasons.
    let bytes = std::fs::read(&good).expect("read");
    let short = bad_dir.path().join("short.arobak");
    std::fs::write(&short, &bytes[..bytes.len() - 100]).expect("write");
    let verify = aro(
        &db,
        &env,
        &["backup", "verify", short.to_str().expect("utf-8")],
    );
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stderr).contains("refused"));
    let other_key = env
        .iter()
        .cloned()
        .chain([("ARO_MASTER_KEY".to_string(), "11".repeat(32))])
        .collect::<Vec<_>>();
    let verify = aro(
        &db,
        &other_key,
        &["backup", "verify", good.to_str().expect("utf-8")],
    );
    assert!(!verify.status.success());
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("different master key"),
        "{}",
        text(&verify)
    );

    // The good file still restores.
    let restore = aro(
        &db,
        &env,
        &["restore", good.to_str().expect("utf-8"), "--yes"],
    );
    assert!(restore.status.success(), "{}", text(&restore));
}

#[test]
fn postgres_backup_while_webhooks_stream_round_trips() {
    let db = TestDb::new(Kind::Postgres);
    let env = env(&db, Some(KEY_HEX));
    let url = Secret::new(db.url.clone());
    let (daemon, addr) = start_daemon(&db, &env);
    let (file, before, after, total) = backup_while_streaming(&db, &env, addr);

    let (manifest, dump) = decrypt(&file, &master(KEY_HEX), db.data_dir());
    assert_eq!(manifest.backend, SnapshotBackend::Postgres);
    assert_eq!(manifest.snapshot.sha256, sha256_file(&dump));
    assert!(manifest
        .dump_tool
        .as_deref()
        .is_some_and(|t| t.starts_with("pg_dump ")));
    assert!(std::fs::read(&dump).expect("dump").starts_with(b"PGDMP"));
    let verify = aro(
        &db,
        &env,
        &["backup", "verify", file.to_str().expect("utf-8")],
    );
    assert!(verify.status.success(), "{}", text(&verify));

    // While the daemon is connected, restore is refused.
    let refused = aro(
        &db,
        &env,
        &["restore", file.to_str().expect("utf-8"), "--yes"],
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("other session(s)"),
        "{}",
        text(&refused)
    );
    stop_daemon(daemon);
    assert_eq!(pg_inbox(&db.url).len(), total);

    let restored = aro(
        &db,
        &env,
        &["restore", file.to_str().expect("utf-8"), "--yes"],
    );
    assert!(restored.status.success(), "{}", text(&restored));

    // Every table matches the snapshot moment the manifest was computed in.
    let inbox = pg_inbox(&db.url);
    assert_eq!(inbox.len() as i64, manifest.tables["inbox"].rows);
    assert_snapshot_moment(&inbox, before, after, total);
    assert_eq!(
        postgres_table_stats(&url).expect("stats"),
        manifest.tables,
        "counts and content checksums of every table"
    );

    // The daemon starts on the restored database and its identity columns go on.
    let (daemon, addr) = start_daemon(&db, &env);
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 200, "{body}");
    assert_eq!(post_booking(addr, 90_000), 200);
    stop_daemon(daemon);
    assert_eq!(pg_inbox(&db.url).len(), inbox.len() + 1);
}
