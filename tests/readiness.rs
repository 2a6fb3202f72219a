//! `/ready` follows the database without a restart: 503 while it is unreachable (or its
//! schema is behind), 200 again once it is back.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aro::store::migrations;
use common::{client, spawn_app_with, Kind, TestDb};
use serde_json::Value;

async fn ready_status(url: &str) -> (u16, Value) {
    let mut res = client().get(url).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls until `/ready` answers `want`, for up to `within`.
async fn wait_for_ready(url: &str, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = ready_status(url).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {status} (wanted {want}): {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP proxy to PostgreSQL that the test can cut and restore, standing in for a
/// network partition or a database restart.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut guard = conns2.lock().expect("lock");
                guard.push(client.try_clone().expect("clone"));
                guard.push(server.try_clone().expect("clone"));
                drop(guard);
                pipe(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                pipe(server, client);
            }
        });
        Proxy { addr, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().expect("lock").drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

#[actix_rt::test]
async fn postgres_outage_turns_ready_503_and_back_to_200() {
    let db = TestDb::new(Kind::Postgres);
    let upstream_url = url::Url::parse(&db.url).expect("url");
    let upstream: SocketAddr = format!(
        "{}:{}",
        upstream_url.host_str().unwrap_or("127.0.0.1"),
        upstream_url.port().unwrap_or(5432)
    )
    .parse()
    .expect("PG_TEST_URL host must be an IP address for this test");
    let proxy = Proxy::start(upstream);
    let mut via_proxy = upstream_url.clone();
    via_proxy.set_port(Some(proxy.addr.port())).expect("port");
    let via_proxy = via_proxy.to_string();
    let app = spawn_app_with(
        db,
        &[
            ("ARO_DATABASE_URL", via_proxy.as_str()),
            ("ARO_DATABASE_CONNECT_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let ready = app.url("/ready");
    wait_for_ready(&ready, 200, Duration::from_secs(5)).await;

    proxy.cut();
    let body = wait_for_ready(&ready, 503, Duration::from_secs(15)).await;
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert_eq!(body["error"]["retryable"], true);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not ready"));
    // The process stays up and keeps answering other routes meanwhile.
    let res = client()
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(res.status(), 200);

    proxy.restore();
    wait_for_ready(&ready, 200, Duration::from_secs(15)).await;
}

#[actix_rt::test]
async fn sqlite_file_gone_turns_ready_503_and_back_to_200() {
    let db = TestDb::new(Kind::Sqlite);
    let file = db.data_dir().join("aro.db");
    let moved = db.data_dir().join("aro.db.away");
    let app = spawn_app_with(db, &[]).await;
    let ready = app.url("/ready");
    wait_for_ready(&ready, 200, Duration::from_secs(5)).await;

    std::fs::rename(&file, &moved).expect("move database away");
    let body = wait_for_ready(&ready, 503, Duration::from_secs(5)).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{body}"
    );

    std::fs::rename(&moved, &file).expect("move database back");
    wait_for_ready(&ready, 200, Duration::from_secs(5)).await;
}

async fn pending_migration_turns_ready_503(kind: Kind) {
    let app = common::spawn_app(kind).await;
    let ready = app.url("/ready");
    wait_for_ready(&ready, 200, Duration::from_secs(5)).await;

    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    let mut conn = db.get().expect("conn");
    migrations::revert(&mut conn, 1).expect("revert newest");
    let body = wait_for_ready(&ready, 503, Duration::from_secs(5)).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{body}"
    );

    migrations::run_pending(&mut conn).expect("up");
    wait_for_ready(&ready, 200, Duration::from_secs(5)).await;
}

on_both_backends!(pending_migration_turns_ready_503);
