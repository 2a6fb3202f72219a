//! Dashboard page load times with 10,000 appointments (the dashboard's target: every
//! page under 1 s).
//!
//! The real daemon (`Application`, SQLite in a temporary directory) serves on a random
//! port over a database seeded with `BENCH_APPOINTMENTS` appointments (default 10,000;
//! `aro bench seed`: a customer and four timers each, all starting within one day three
//! days ahead — so the busiest business day holds thousands of them), plus what a busy
//! clinic's log holds: an `appointment.booked` event per appointment, a confirmation for
//! one in three, two messages each (the booking confirmation and a reminder, the first
//! thousand in the sandbox), 300 open escalations and 100 open dead letters. A staff
//! member signs in through the dashboard's login form; each page is then fetched
//! `BENCH_ITERATIONS` times (default 30, after 3 warm-up loads), one after another, and
//! its p50, p99 and slowest load are printed.
//!
//! `cargo bench --bench dashboard_pages`

use std::time::{Duration, Instant};

use aro::app::Application;
use aro::audit::Actor;
use aro::auth::{password, service, users, Role};
use aro::config::{Config, ConfigSources};
use aro::store::schema::{appointments, dead_letters, escalations, events, messages};
use aro::store::Database;
use chrono::{Duration as ChronoDuration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

const PASSWORD: &str = "Velvet-Harbor-42!";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Adds the event log, message log, escalations and dead letters of a busy clinic.
fn seed_history(db: &Database) -> anyhow::Result<()> {
    let mut conn = db.get()?;
    let rows: Vec<(String, String, NaiveDateTime)> = appointments::table
        .select((
            appointments::id,
            appointments::customer_id,
            appointments::starts_at,
        ))
        .order(appointments::starts_at.asc())
        .load(&mut *conn)?;
    let now = Utc::now().naive_utc();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for (i, (id, customer, starts_at)) in rows.iter().enumerate() {
            let mut kinds = vec![("appointment.booked", 1_i64)];
            if i % 3 == 0 {
                kinds.push(("appointment.confirmed", 2));
            }
            for (event_type, version) in kinds {
                diesel::insert_into(events::table)
                    .values((
                        events::event_id.eq(uuid::Uuid::now_v7().to_string()),
                        events::tenant_id.eq("default"),
                        events::event_type.eq(event_type),
                        events::aggregate_type.eq("appointment"),
                        events::aggregate_id.eq(id),
                        events::aggregate_version.eq(version),
                        events::occurred_at.eq(now),
                        events::recorded_at.eq(now),
                        events::profile.eq("healthcare"),
                        events::payload.eq(json!({"status": "booked"}).to_string()),
                    ))
                    .execute(conn)?;
            }
            for (n, kind) in ["booking_confirmation", "reminder_48h"]
                .into_iter()
                .enumerate()
            {
                let at = now - ChronoDuration::seconds((rows.len() * 2 - i * 2 - n) as i64);
                diesel::insert_into(messages::table)
                    .values((
                        messages::id.eq(uuid::Uuid::now_v7().to_string()),
                        messages::tenant_id.eq("default"),
                        messages::customer_id.eq(Some(customer)),
                        messages::appointment_id.eq(Some(id)),
                        messages::direction.eq("outbound"),
                        messages::channel.eq("sms"),
                        messages::kind.eq(Some(kind)),
                        messages::body.eq(format!(
                            "Reminder: your appointment on {starts_at} (reply YES to confirm)"
                        )),
                        messages::to_addr.eq(Some(aro::bench::bench_phone(i))),
                        messages::provider.eq(if i < 1000 { "sandbox" } else { "twilio" }),
                        messages::provider_message_id.eq(Some(format!("SM{i}x{n}"))),
                        messages::status.eq("delivered"),
                        messages::sandbox.eq(i < 1000),
                        messages::idempotency_key.eq(Some(format!("bench:{id}:{kind}"))),
                        messages::sent_at.eq(Some(at)),
                        messages::created_at.eq(at),
                        messages::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            if i % 33 == 0 && i / 33 < 300 {
                diesel::insert_into(escalations::table)
                    .values((
                        escalations::id.eq(format!("esc-{i}")),
                        escalations::tenant_id.eq("default"),
                        escalations::appointment_id.eq(Some(id)),
                        escalations::customer_id.eq(Some(customer)),
                        escalations::reason.eq("unclear_reply"),
                        escalations::priority.eq("medium"),
                        escalations::status.eq("open"),
                        escalations::details.eq(json!({"excerpt": "maybe?"}).to_string()),
                        escalations::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            if i % 97 == 0 && i / 97 < 100 {
                diesel::insert_into(dead_letters::table)
                    .values((
                        dead_letters::id.eq(format!("dl-{i}")),
                        dead_letters::tenant_id.eq("default"),
                        dead_letters::domain.eq("inbox"),
                        dead_letters::kind.eq("reply"),
                        dead_letters::payload
                            .eq(json!({"from": aro::bench::bench_phone(i)}).to_string()),
                        dead_letters::error.eq("unreadable"),
                        dead_letters::attempts.eq(5),
                        dead_letters::status.eq("open"),
                        dead_letters::created_at.eq(now),
                        dead_letters::expires_at.eq(now + ChronoDuration::days(30)),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let count: usize = env_or("BENCH_APPOINTMENTS", 10_000);
    let iterations: usize = env_or("BENCH_ITERATIONS", 30);
    let dir = tempfile::tempdir()?;
    let sources = ConfigSources {
        file: None,
        env: vec![
            ("ARO_LISTEN".into(), "127.0.0.1:0".into()),
            ("ARO_DATA_DIR".into(), dir.path().display().to_string()),
            ("ARO_LOG_LEVEL".into(), "warn".into()),
        ],
    };
    let config: Config = Config::load(&sources)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .config;
    actix_web::rt::System::new().block_on(async move {
        aro::bench::seed(&config, count).await?;
        let db = Database::open(&config.database)?;
        let started = Instant::now();
        seed_history(&db)?;
        println!(
            "seeded events, messages, escalations and dead letters in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let new_user = users::NewUser {
            tenant_id: "default".into(),
            username: "bench".into(),
            password_hash: password::hash(PASSWORD)?,
            role: Role::Staff,
        };
        service::run(&db, move |conn| {
            users::create(conn, &new_user, &Actor::cli(), Utc::now())
        })
        .await?;
        let (appointment, customer, busy_day): (String, String, NaiveDateTime) = {
            let mut conn = db.get()?;
            appointments::table
                .select((
                    appointments::id,
                    appointments::customer_id,
                    appointments::starts_at,
                ))
                .order(appointments::starts_at.asc())
                .first(&mut *conn)?
        };
        let busy_day = busy_day.date().format("%Y-%m-%d").to_string();

        let app = Application::build(config.clone()).await?;
        let base = format!("http://{}", app.address());
        let handle = app.handle();
        let running = actix_web::rt::spawn(app.run_until_stopped());
        let client = awc::Client::builder()
            .disable_redirects()
            .timeout(Duration::from_secs(30))
            .finish();
        let login = client
            .post(format!("{base}/dashboard/login"))
            .send_form(&[("username", "bench"), ("password", PASSWORD)])
            .await
            .map_err(|e| anyhow::anyhow!("login: {e}"))?;
        anyhow::ensure!(
            login.status().as_u16() == 303,
            "login answered {}",
            login.status()
        );
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
            .to_string();

        let pages = [
            format!("/dashboard/today?date={busy_day}"),
            format!("/dashboard/today/list?date={busy_day}"),
            "/dashboard/escalations".to_string(),
            "/dashboard/escalations/list?status=open".to_string(),
            format!("/dashboard/appointments/{appointment}"),
            "/dashboard/customers".to_string(),
            "/dashboard/customers?q=customer&risk=low".to_string(),
            "/dashboard/customers?q=0042".to_string(),
            format!("/dashboard/customers/{customer}"),
            "/dashboard/messages".to_string(),
            "/dashboard/messages?sandbox=1".to_string(),
            "/dashboard/dead-letters".to_string(),
            "/dashboard/supervisors".to_string(),
            "/dashboard/metrics".to_string(),
            format!("/dashboard/metrics?period=day&to={busy_day}"),
            format!("/dashboard/metrics?period=month&to={busy_day}"),
            "/dashboard/settings".to_string(),
        ];
        println!(
            "{count} appointments, SQLite; {iterations} loads per page after 3 warm-ups \
             (busy day {busy_day})"
        );
        println!(
            "{:<52} {:>9} {:>9} {:>9} {:>9}",
            "page", "p50 ms", "p99 ms", "max ms", "KiB"
        );
        let mut slowest = Duration::ZERO;
        for page in &pages {
            let mut times = Vec::with_capacity(iterations);
            let mut size = 0;
            for n in 0..iterations + 3 {
                let started = Instant::now();
                let mut response = client
                    .get(format!("{base}{page}"))
                    .insert_header(("Cookie", cookie.clone()))
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{page}: {e}"))?;
                let body = response
                    .body()
                    .limit(64 << 20)
                    .await
                    .map_err(|e| anyhow::anyhow!("{page}: {e}"))?;
                let took = started.elapsed();
                anyhow::ensure!(
                    response.status().as_u16() == 200,
                    "{page} answered {}",
                    response.status()
                );
                size = body.len();
                if n >= 3 {
                    times.push(took);
                }
            }
            times.sort();
            let (p50, p99, max) = (
                percentile(&times, 50.0),
                percentile(&times, 99.0),
                times.last().copied().unwrap_or_default(),
            );
            slowest = slowest.max(max);
            // Ids are long: the table names them.
            let shown = page
                .replace(appointment.as_str(), "{id}")
                .replace(customer.as_str(), "{id}");
            println!(
                "{shown:<52} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3,
                size as f64 / 1024.0
            );
        }
        println!(
            "slowest load: {:.1} ms ({} the 1 s target)",
            slowest.as_secs_f64() * 1e3,
            if slowest < Duration::from_secs(1) {
                "within"
            } else {
                "OVER"
            }
        );
        handle.stop(true).await;
        let _ = running.await;
        Ok::<(), anyhow::Error>(())
    })
}
