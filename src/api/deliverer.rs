//! The subscription deliverer: POSTs each new event to each active subscription, in
//! order, at least once, signed; and the Command API's upkeep (expired idempotency keys
//! are forgotten hourly). A task on the daemon's actix system, started by
//! `app::Application::build`.
//!
//! For each subscription whose next attempt is due it reads the events after the
//! subscription's cursor (of its types), and POSTs them one at a time:
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Aro-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! X-Aro-Event-Id: <eventId>   X-Aro-Event-Type: <eventType>   X-Aro-Cursor: <seq>
//! X-Aro-Subscription-Id: <id>
//!
//! <the event's canonical envelope>
//! ```
//!
//! A 2xx moves the cursor past the event (a cursor moved meanwhile by a replay wins).
//! Anything else — another status, a timeout, a refused connection — leaves the cursor
//! where it is and retries the same event after 1 s, 2 s, 4 s … at most 5 min apart,
//! for as long as it takes. Later events wait: order is kept.
//!
//! It looks for due work every 500 ms while a subscription is active and every 30 s
//! otherwise, and at once when a subscription is created or replayed ([`wake`]).

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use chrono::Utc;
use futures_util::future::join_all;
use tokio::sync::Notify;

use super::command_queries;
use super::event_queries::{self, EventRow};
use super::subscription_queries::{self as queries, SubscriptionRow};
use crate::config::{Config, Secret};
use crate::crypto::{Key, MasterKey};
use crate::providers::http::http_client;
use crate::store::Database;
use crate::webhooks::signed_header;

/// Events read per subscription at a time.
const BATCH: i64 = 100;
/// How long one delivery may take.
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How often due work is looked for while a subscription is active.
const ACTIVE_POLL: StdDuration = StdDuration::from_millis(500);
/// … and while none is.
const IDLE_POLL: StdDuration = StdDuration::from_secs(30);
/// How often expired idempotency keys are removed…
const PRUNE_EVERY: StdDuration = StdDuration::from_secs(3600);
/// … the first time this long after the start.
const FIRST_PRUNE: StdDuration = StdDuration::from_secs(60);
/// The largest answer body read (and thrown away) from a receiver.
const MAX_ANSWER: usize = 64 * 1024;

fn signal() -> &'static Notify {
    static SIGNAL: OnceLock<Notify> = OnceLock::new();
    SIGNAL.get_or_init(Notify::new)
}

/// Tells the deliverer to look for work now (a subscription was created or replayed).
pub fn wake() {
    signal().notify_waiters();
}

/// Starts the deliverer on the current actix system.
pub fn start(config: std::sync::Arc<Config>, db: Database) {
    actix_web::rt::spawn(run(config, db));
}

async fn run(config: std::sync::Arc<Config>, db: Database) {
    let mut key: Option<Key> = None;
    // Not at once: the daemon has enough to do while it starts.
    let mut next_prune = tokio::time::Instant::now() + FIRST_PRUNE;
    loop {
        // Armed before looking, so a wake while we look is not lost.
        let woken = signal().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        if tokio::time::Instant::now() >= next_prune {
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
            prune(&db).await;
        }
        let now = Utc::now();
        let (due, any_active) = match db.run(move |conn| Ok(queries::due(conn, now))).await {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read subscriptions");
                (Vec::new(), true)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read subscriptions");
                (Vec::new(), true)
            }
        };
        let mut progressed = false;
        if !due.is_empty() {
            if key.is_none() {
                key = load_key(&config).await;
            }
            match &key {
                Some(master) => {
                    let results =
                        join_all(due.into_iter().map(|sub| deliver(&db, master, sub))).await;
                    progressed = results.iter().any(|r| matches!(r, Progress::Delivered));
                    if results
                        .iter()
                        .any(|r| matches!(r, Progress::SecretUnreadable))
                    {
                        // Perhaps the key was rotated underneath us: read it again.
                        key = None;
                    }
                }
                None => tracing::warn!("subscriptions are due but the master key cannot be read"),
            }
        }
        if progressed {
            continue;
        }
        let wait = if any_active { ACTIVE_POLL } else { IDLE_POLL };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn prune(db: &Database) {
    let now = Utc::now();
    match db
        .run(move |conn| Ok(command_queries::prune_keys(conn, now)))
        .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(removed)) => tracing::info!(removed, "expired idempotency keys removed"),
        Ok(Err(error)) => tracing::warn!(%error, "cannot prune idempotency keys"),
        Err(error) => tracing::warn!(%error, "cannot prune idempotency keys"),
    }
}

async fn load_key(config: &std::sync::Arc<Config>) -> Option<Key> {
    let config = config.clone();
    match tokio::task::spawn_blocking(move || MasterKey::load(&config)).await {
        Ok(Ok(master)) => Some(master.key().clone()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot load the master key for subscription secrets");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "cannot load the master key for subscription secrets");
            None
        }
    }
}

/// How one subscription's turn went.
enum Progress {
    /// Nothing to deliver, or a delivery failed (it waits for its backoff).
    Idle,
    /// At least one event delivered, or the cursor moved: look again at once.
    Delivered,
    /// Its signing secret could not be opened.
    SecretUnreadable,
}

async fn deliver(db: &Database, master: &Key, sub: SubscriptionRow) -> Progress {
    let types = sub.types();
    let (tenant_id, after) = (sub.tenant_id.clone(), sub.cursor);
    let events = match db
        .run(move |conn| {
            Ok(event_queries::after(
                conn, &tenant_id, after, BATCH, &types,
            )?)
        })
        .await
    {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, subscription = %sub.id, "cannot read events to deliver");
            return Progress::Idle;
        }
    };
    if events.is_empty() {
        return Progress::Idle;
    }
    let (key, tenant_id, id) = (master.clone(), sub.tenant_id.clone(), sub.id.clone());
    let secret = db
        .run(move |conn| Ok(queries::signing_secret(conn, &key, &tenant_id, &id)))
        .await;
    let secret = match secret {
        Ok(Ok(Some(secret))) => secret,
        other => {
            let reason = match other {
                Ok(Ok(None)) => "the signing secret is missing".to_string(),
                Ok(Err(error)) => format!("the signing secret cannot be read: {error}"),
                Err(error) => format!("the signing secret cannot be read: {error}"),
                Ok(Ok(Some(_))) => String::new(),
            };
            tracing::error!(subscription = %sub.id, reason = %reason, "subscription delivery held");
            record_failure(db, &sub.id, sub.cursor, reason).await;
            return Progress::SecretUnreadable;
        }
    };
    let mut cursor = sub.cursor;
    let mut progress = Progress::Idle;
    for event in events {
        match post(&sub, &secret, &event).await {
            Ok(()) => {
                let (id, from, to) = (sub.id.clone(), cursor, event.seq);
                let now = Utc::now();
                match db
                    .run(move |conn| Ok(queries::advance(conn, &id, from, to, now)))
                    .await
                {
                    Ok(Ok(true)) => {
                        cursor = event.seq;
                        progress = Progress::Delivered;
                    }
                    // Replayed meanwhile (or the write failed: the event is delivered
                    // again, which at-least-once allows): start over from the table.
                    _ => return Progress::Delivered,
                }
            }
            Err(reason) => {
                tracing::warn!(subscription = %sub.id, cursor = event.seq, reason = %reason, "event delivery failed; will retry");
                record_failure(db, &sub.id, cursor, reason).await;
                return progress;
            }
        }
    }
    progress
}

async fn record_failure(db: &Database, id: &str, cursor: i64, reason: String) {
    let id = id.to_string();
    let now = Utc::now();
    if let Err(error) = db
        .run(move |conn| Ok(queries::failed(conn, &id, cursor, &reason, now)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::warn!(%error, "cannot record a failed delivery");
    }
}

/// POSTs one event; `Err` says why it did not count as delivered.
async fn post(
    sub: &SubscriptionRow,
    secret: &Secret<String>,
    event: &EventRow,
) -> Result<(), String> {
    let body = serde_json::to_vec(&event.envelope()).map_err(|e| e.to_string())?;
    let signature = signed_header::sign(secret.expose().as_bytes(), Utc::now().timestamp(), &body);
    let sent = http_client(DELIVERY_TIMEOUT)
        .post(&sub.url)
        .timeout(DELIVERY_TIMEOUT)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("User-Agent", "aro-events/1"))
        .insert_header(("X-Aro-Signature", signature))
        .insert_header(("X-Aro-Event-Id", event.event_id.as_str()))
        .insert_header(("X-Aro-Event-Type", event.event_type.as_str()))
        .insert_header(("X-Aro-Cursor", event.seq.to_string()))
        .insert_header(("X-Aro-Subscription-Id", sub.id.as_str()))
        .send_body(body)
        .await;
    match sent {
        Ok(mut answer) => {
            let status = answer.status();
            // Read (and drop) the answer so the connection can be reused.
            let _ = answer.body().limit(MAX_ANSWER).await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", status.as_u16()))
            }
        }
        Err(error) => Err(format!("request failed: {error}")),
    }
}
