//! Signed bookings per second through `POST /webhooks/booking`, and the acknowledgement
//! latency (SPEC §10: ack after fsync, p99 ≤ 20 ms; ≥ 10,000 signed bookings/s on 2
//! cores with SQLite, load generator included).
//!
//! The real daemon (`Application`, SQLite in a temporary directory, WAL with
//! `synchronous=FULL`, group commit) serves on a random port; `BENCH_CLIENTS` threads
//! (default 64) each keep one HTTP/1.1 connection open and post signed, distinct bookings
//! back to back for `BENCH_SECONDS` (default 10). Every answer must be 200 `accepted`.
//! The load generator runs in the same process, on the same two cores.
//!
//! `cargo bench --bench webhook_http`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aro::app::Application;
use aro::config::{Config, ConfigSources};
use aro::webhooks::signed_header::sign;
use chrono::Utc;

const SECRET: &str = "bench-booking-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn body(client: usize, n: usize) -> String {
    format!(
        concat!(
            r#"{{"event":"appointment.created","id":"bench-{c}-{n}","timestamp":"2026-11-25T00:00:00Z","#,
            r#""data":{{"appointment_id":"ext-{c}-{n}","scheduled_at":"2031-03-20T15:00:00Z","duration":30,"#,
            r#""timezone":"America/New_York","service_type":"Consultation","#,
            r#""customer":{{"name":"Bench {c}","phone":"+1555{c:03}{n:04}","sms_consent":true}}}}}}"#
        ),
        c = client,
        n = n % 10_000
    )
}

/// Posts one signed booking on an open keep-alive connection; the HTTP status.
fn post(stream: &mut BufReader<TcpStream>, addr: SocketAddr, body: &str) -> std::io::Result<u16> {
    let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    write!(
        stream.get_mut(),
        "POST /webhooks/booking HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Aro-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut status_line = String::new();
    stream.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut rest = vec![0; length];
    stream.read_exact(&mut rest)?;
    Ok(status)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let clients: usize = env_or("BENCH_CLIENTS", 64);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let dir = tempfile::tempdir()?;
    let config: Config = Config::load(&ConfigSources {
        file: None,
        env: vec![
            ("ARO_DATA_DIR".into(), dir.path().display().to_string()),
            ("ARO_LISTEN".into(), "127.0.0.1:0".into()),
            ("ARO_LOG_LEVEL".into(), "warn".into()),
            ("ARO_BOOKING_WEBHOOK_SECRET".into(), SECRET.into()),
        ],
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .config;

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match Application::build(config).await {
                Ok(app) => {
                    let _ = tx.send(Ok(app.address()));
                    let _ = app.run_until_stopped().await;
                }
                Err(error) => {
                    let _ = tx.send(Err(error.to_string()));
                }
            }
        })
    });
    let addr = rx.recv()?.map_err(|e| anyhow::anyhow!(e))?;

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let stop = Arc::clone(&stop);
            let refused = Arc::clone(&refused);
            std::thread::spawn(move || -> std::io::Result<Vec<Duration>> {
                let mut stream = BufReader::new(TcpStream::connect(addr)?);
                stream.get_mut().set_nodelay(true)?;
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = body(c, n);
                    let sent = Instant::now();
                    let status = post(&mut stream, addr, &body)?;
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                Ok(latencies)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        let mut own = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        latencies.append(&mut own);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "webhook: {} signed bookings acknowledged in {elapsed:.1} s = {:.0}/s with {clients} clients; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} not 200",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        refused.load(Ordering::Relaxed),
    );
    Ok(())
}
