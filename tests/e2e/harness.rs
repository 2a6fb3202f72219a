//! The end-to-end harness (issue 5): the real daemon, built exactly as `aro serve`
//! builds it, on a fresh SQLite or PostgreSQL database, with its engine on a virtual
//! clock the test moves, Twilio faked at the HTTP boundary (the real adapter, basic
//! auth and form posts run), and real signed webhooks: normalized bookings signed
//! with `X-Aro-Signature`, customer replies signed as Twilio signs them.
//!
//! The daemon can be stopped and started again on the same database and clock at any
//! point; what it committed is all it keeps.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use actors::engine::{appointment_id_for, AppointmentCommand, ChangedBy, Engine};
use actors::ports::clock::{Clock, VirtualClock};
use actors::ports::store::{InboxStatus, OutboxStatus, TimerStatus};
use aro::app::Application;
use aro::providers::twilio::signature::expected_signature;
use aro::store::schema::{
    appointments, consents, customers, escalations, events, inbox, messages, outbox, timers,
};
use aro::store::Database;
use aro::webhooks::signed_header::sign;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::common::{client, Kind, TestDb};
use crate::fake_stripe::FakeStripe;
use crate::fake_twilio::FakeTwilio;

pub const SID: &str = "AC00000000000000000000000000000e2e";
pub const TOKEN: &str = "e2e-twilio-token";
pub const PUBLIC: &str = "https://aro.example.com";
pub const SECRET: &str = "e2e-booking-secret";
pub const OURS: &str = "+15550001111";
pub const REVIEW_URL: &str = "https://reviews.example.com/us";
pub const STRIPE_KEY: &str = "sk_test_e2e";
pub const CALENDLY_KEY: &str = "calendly-e2e-signing-key";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_e2e";

/// The `data` of a normalized booking event (SPEC §6) for a 30-minute checkup.
fn booking_data(
    external_id: &str,
    starts_at: DateTime<Utc>,
    zone: &str,
    phone: &str,
) -> serde_json::Value {
    json!({
        "appointment_id": external_id,
        "scheduled_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "duration": 30,
        "timezone": zone,
        "service_type": "Checkup",
        "customer": {"name": "Jane Smith", "phone": phone, "sms_consent": true},
    })
}

/// A running daemon.
struct Running {
    address: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    engine: Engine,
    stopped: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

/// One scenario's world: database, clock, fake Twilio and the daemon.
pub struct World {
    pub kind: Kind,
    pub db: TestDb,
    pub clock: VirtualClock,
    pub fake: FakeTwilio,
    pub stripe: FakeStripe,
    env: Vec<(String, String)>,
    running: Option<Running>,
    database: Database,
    replies: u32,
    deliveries: u32,
    /// No provider credentials: messages and deposit links stay in the sandbox.
    sandbox: bool,
}

impl World {
    /// A world whose clock starts at `start`, with the pack `profile` and extra
    /// configuration `extra` (e.g. quiet hours).
    pub async fn start(
        kind: Kind,
        start: DateTime<Utc>,
        profile: &str,
        extra: &[(&str, &str)],
    ) -> World {
        World::start_with(kind, start, profile, extra, false).await
    }

    /// A world on trial, as a new install runs: no Twilio or Stripe credentials, so
    /// messages and deposit links stay in the sandbox (the fakes get nothing).
    pub async fn start_sandbox(kind: Kind, start: DateTime<Utc>, profile: &str) -> World {
        World::start_with(kind, start, profile, &[], true).await
    }

    async fn start_with(
        kind: Kind,
        start: DateTime<Utc>,
        profile: &str,
        extra: &[(&str, &str)],
        sandbox: bool,
    ) -> World {
        let fake = FakeTwilio::start(SID, TOKEN);
        let base = fake.base_url();
        let stripe = FakeStripe::start(STRIPE_KEY);
        let stripe_base = stripe.base_url();
        let mut env: Vec<(String, String)> = [
            ("ARO_PUBLIC_URL", PUBLIC),
            ("ARO_TWILIO_ACCOUNT_SID", SID),
            ("ARO_TWILIO_AUTH_TOKEN", TOKEN),
            ("ARO_TWILIO_FROM", OURS),
            ("ARO_TWILIO_API_BASE", base.as_str()),
            ("ARO_TWILIO_RATE", "100"),
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
            ("ARO_BUSINESS_NAME", "Bright Smiles"),
            ("ARO_BUSINESS_PHONE", "+15550009999"),
            ("ARO_BUSINESS_REVIEW_URL", REVIEW_URL),
            ("ARO_PROFILE", profile),
            ("ARO_STRIPE_SECRET_KEY", STRIPE_KEY),
            ("ARO_CALENDLY_SIGNING_KEY", CALENDLY_KEY),
            ("ARO_STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
            ("ARO_STRIPE_API_BASE", stripe_base.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if sandbox {
            env.retain(|(k, _)| !k.starts_with("ARO_TWILIO_") && !k.starts_with("ARO_STRIPE_"));
        }
        let db = TestDb::new(kind);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let database = Database::open(&db.config(&pairs).database).expect("open database");
        let mut world = World {
            kind,
            db,
            clock: VirtualClock::new(start),
            fake,
            stripe,
            env,
            running: None,
            database,
            replies: 0,
            deliveries: 0,
            sandbox,
        };
        world.boot().await;
        world
    }

    fn env_pairs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    async fn boot(&mut self) {
        let config = self.db.config(&self.env_pairs());
        let app = Application::build_with_clock(config, Arc::new(self.clock.clone()))
            .await
            .expect("the daemon starts");
        let address = app.address();
        let handle = app.handle();
        let engine = app.engine().clone();
        let stopped = actix_web::rt::spawn(app.run_until_stopped());
        self.running = Some(Running {
            address,
            handle,
            engine,
            stopped,
        });
    }

    /// Stops the daemon gracefully and starts it again on the same database and clock.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.handle.stop(true).await;
            let _ = running.stopped.await;
        }
        self.boot().await;
        self.settle().await;
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the daemon is running")
    }

    /// `path` on the running daemon.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.running().address, path)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock to `at`, then waits until the daemon has done everything due.
    pub async fn advance_to(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.settle().await;
    }

    /// Moves the clock forward in steps no longer than `step`, settling after each, so
    /// that work the engine schedules on the way (retries, follow-ups) happens on time.
    pub async fn walk_to(&self, at: DateTime<Utc>, step: Duration) {
        while self.now() + step < at {
            self.advance_to(self.now() + step).await;
        }
        self.advance_to(at).await;
    }

    /// Waits (real time, bounded) until nothing due is left: no pending inbox work, no
    /// pending timer or outbox row due by the virtual now — and it stays so a moment.
    pub async fn settle(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(20);
        let mut calm = 0;
        while calm < 3 {
            let busy = self.due_work().await;
            if busy == 0 {
                calm += 1;
            } else {
                calm = 0;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not settle: {busy} items due at {}",
                self.now()
            );
            actix_web::rt::time::sleep(StdDuration::from_millis(25)).await;
        }
    }

    async fn due_work(&self) -> i64 {
        let now = self.now().naive_utc();
        self.database
            .run(move |conn| {
                let inbox: i64 = inbox::table
                    .filter(inbox::status.eq(InboxStatus::Pending.as_str()))
                    .count()
                    .get_result(conn)?;
                let timers: i64 = timers::table
                    .filter(timers::status.eq(TimerStatus::Scheduled.as_str()))
                    .filter(timers::due_at.le(now))
                    .count()
                    .get_result(conn)?;
                let outbox: i64 = outbox::table
                    .filter(
                        outbox::status
                            .eq(OutboxStatus::InFlight.as_str())
                            .or(outbox::status
                                .eq(OutboxStatus::Pending.as_str())
                                .and(outbox::next_attempt_at.le(now))),
                    )
                    .count()
                    .get_result(conn)?;
                Ok(inbox + timers + outbox)
            })
            .await
            .expect("read")
    }

    /// Posts a signed normalized booking webhook and expects a 2xx.
    pub async fn booking_event(&mut self, event: &str, data: serde_json::Value) {
        self.deliveries += 1;
        let body = json!({
            "event": event,
            "id": format!("delivery-{}", self.deliveries),
            "timestamp": self.now().to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": data,
        })
        .to_string();
        // The signature window is checked against the wall clock, as a booking system
        // would sign now.
        let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
        let mut response = client()
            .post(self.url("/webhooks/booking"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Aro-Signature", signature))
            .send_body(body)
            .await
            .expect("booking webhook sent");
        let status = response.status().as_u16();
        let text = response.body().await.unwrap_or_default();
        assert!(
            (200..300).contains(&status),
            "booking webhook answered {status}: {text:?}"
        );
        self.settle().await;
    }

    /// Books `external_id` for `phone` at `starts_at` (30 minutes) in `zone`.
    pub async fn book(
        &mut self,
        external_id: &str,
        starts_at: DateTime<Utc>,
        zone: &str,
        phone: &str,
    ) {
        let data = booking_data(external_id, starts_at, zone, phone);
        self.booking_event("appointment.created", data).await;
    }

    /// The booking system moves `external_id` to `starts_at`.
    pub async fn move_booking(
        &mut self,
        external_id: &str,
        starts_at: DateTime<Utc>,
        zone: &str,
        phone: &str,
    ) {
        let data = booking_data(external_id, starts_at, zone, phone);
        self.booking_event("appointment.updated", data).await;
    }

    /// The customer at `phone` texts `body`; Twilio posts it, signed.
    pub async fn reply(&mut self, phone: &str, body: &str) {
        self.replies += 1;
        let sid = format!("SMe2e{:028}", self.replies);
        let form: Vec<(String, String)> = [
            ("AccountSid", SID),
            ("MessageSid", sid.as_str()),
            ("From", phone),
            ("To", OURS),
            ("Body", body),
            ("NumMedia", "0"),
            ("ApiVersion", "2010-04-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = expected_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio/sms"), &form);
        let mut response = client()
            .post(self.url("/webhooks/twilio/sms"))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("X-Twilio-Signature", signature))
            .send_body(serde_urlencoded::to_string(&form).expect("form"))
            .await
            .expect("reply sent");
        let status = response.status().as_u16();
        let text = response.body().await.unwrap_or_default();
        assert_eq!(status, 200, "inbound SMS answered {status}: {text:?}");
        self.settle().await;
    }

    /// Calendly posts `event_name` about `invitee` of `event`, signed now.
    pub async fn calendly(
        &mut self,
        event_name: &str,
        event: &crate::fake_calendly::FakeEvent,
        invitee: &crate::fake_calendly::FakeInvitee,
    ) {
        let (body, header) = crate::fake_calendly::signed_webhook(
            event_name,
            event,
            invitee,
            CALENDLY_KEY,
            Utc::now(),
        );
        let mut response = client()
            .post(self.url("/webhooks/calendly"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Calendly-Webhook-Signature", header))
            .send_body(body)
            .await
            .expect("calendly webhook sent");
        let status = response.status().as_u16();
        let text = response.body().await.unwrap_or_default();
        assert_eq!(status, 200, "calendly webhook answered {status}: {text:?}");
        self.settle().await;
    }

    /// The customer pays the deposit link created for `external_id`: Stripe posts a
    /// signed `checkout.session.completed` carrying the link's metadata.
    pub async fn pay(&mut self, external_id: &str) {
        let id = appointment_id_for("default", "booking", external_id);
        let link = self
            .stripe
            .links()
            .into_iter()
            .find(|l| l.metadata.get("appointment_id") == Some(&id))
            .expect("a payment link for the appointment");
        self.deliveries += 1;
        let metadata = serde_json::to_value(&link.metadata).expect("metadata");
        let body = json!({
            "id": format!("evt_e2e_{}", self.deliveries),
            "object": "event",
            "type": "checkout.session.completed",
            "created": Utc::now().timestamp(),
            "data": {"object": {
                "id": format!("cs_e2e_{}", self.deliveries),
                "object": "checkout.session",
                "payment_link": link.id,
                "payment_status": "paid",
                "amount_total": link.unit_amount,
                "currency": link.currency,
                "payment_intent": format!("pi_e2e_{}", self.deliveries),
                "metadata": metadata,
            }},
        })
        .to_string();
        let signature = sign(
            STRIPE_WEBHOOK_SECRET.as_bytes(),
            Utc::now().timestamp(),
            body.as_bytes(),
        );
        let mut response = client()
            .post(self.url("/webhooks/stripe"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Stripe-Signature", signature))
            .send_body(body)
            .await
            .expect("stripe webhook sent");
        let status = response.status().as_u16();
        let text = response.body().await.unwrap_or_default();
        assert_eq!(status, 200, "stripe webhook answered {status}: {text:?}");
        self.settle().await;
    }

    /// The appointment's deposit status.
    pub async fn deposit(&self, external_id: &str) -> String {
        let id = appointment_id_for("default", "booking", external_id);
        self.database
            .run(move |conn| {
                Ok(appointments::table
                    .find(&id)
                    .select(appointments::deposit_status)
                    .first(conn)?)
            })
            .await
            .expect("read")
    }

    /// Staff mark the appointment (the Command API is not built yet: through the
    /// engine, as the API will).
    pub async fn staff_marks(
        &self,
        external_id: &str,
        to: actors::domain::appointment_status::AppointmentStatus,
    ) {
        let id = appointment_id_for("default", "booking", external_id);
        self.running()
            .engine
            .route(
                id,
                AppointmentCommand::Transition {
                    to,
                    by: ChangedBy::Staff("e2e".to_string()),
                    reason: None,
                },
            )
            .await
            .expect("the transition is accepted");
        self.settle().await;
    }

    /// The kinds of the automated messages sent to `phone` (by the provider's
    /// acceptance), oldest first, with when they were sent.
    pub async fn sent_to(&self, phone: &str) -> Vec<(String, DateTime<Utc>)> {
        let phone = phone.to_string();
        let rows: Vec<(Option<String>, Option<chrono::NaiveDateTime>)> = self
            .database
            .run(move |conn| {
                Ok(messages::table
                    .filter(messages::direction.eq("outbound"))
                    .filter(messages::to_addr.eq(&phone))
                    .filter(messages::sent_at.is_not_null())
                    .order((messages::sent_at.asc(), messages::created_at.asc()))
                    .select((messages::kind, messages::sent_at))
                    .load(conn)?)
            })
            .await
            .expect("read");
        rows.into_iter()
            .map(|(kind, at)| {
                (
                    kind.unwrap_or_default(),
                    at.map(|t| t.and_utc()).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Just the kinds of [`World::sent_to`].
    pub async fn kinds_to(&self, phone: &str) -> Vec<String> {
        self.sent_to(phone)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// The bodies the fake Twilio accepted for `phone`, in order.
    pub fn bodies_to(&self, phone: &str) -> Vec<String> {
        self.fake
            .accepted()
            .into_iter()
            .filter(|m| m.to == phone)
            .map(|m| m.body)
            .collect()
    }

    /// The bodies of the messages recorded for `phone` (sent or sandbox), in order.
    pub async fn stored_bodies_to(&self, phone: &str) -> Vec<String> {
        let phone = phone.to_string();
        self.database
            .run(move |conn| {
                Ok(messages::table
                    .filter(messages::direction.eq("outbound"))
                    .filter(messages::to_addr.eq(&phone))
                    .order(messages::created_at.asc())
                    .select(messages::body)
                    .load(conn)?)
            })
            .await
            .expect("read")
    }

    /// The workflow id of each event whose type starts with `prefix`, oldest first.
    pub async fn workflow_ids_of(&self, prefix: &str) -> Vec<Option<String>> {
        let pattern = format!("{prefix}%");
        self.database
            .run(move |conn| {
                Ok(events::table
                    .filter(events::event_type.like(&pattern))
                    .order(events::seq.asc())
                    .select(events::workflow_id)
                    .load(conn)?)
            })
            .await
            .expect("read")
    }

    /// The sources of the consents recorded for the customer at `phone`, oldest first.
    pub async fn consent_sources(&self, phone: &str) -> Vec<String> {
        let phone = phone.to_string();
        self.database
            .run(move |conn| {
                Ok(consents::table
                    .inner_join(customers::table)
                    .filter(customers::phone_e164.eq(&phone))
                    .order(consents::recorded_at.asc())
                    .select(consents::source)
                    .load(conn)?)
            })
            .await
            .expect("read")
    }

    /// Escalations (reason, priority), oldest first.
    pub async fn escalations(&self) -> Vec<(String, String)> {
        self.database
            .run(|conn| {
                Ok(escalations::table
                    .order((escalations::created_at.asc(), escalations::id.asc()))
                    .select((escalations::reason, escalations::priority))
                    .load(conn)?)
            })
            .await
            .expect("read")
    }

    pub async fn reasons(&self) -> Vec<String> {
        self.escalations()
            .await
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// The appointment's stored status.
    pub async fn status(&self, external_id: &str) -> String {
        let id = appointment_id_for("default", "booking", external_id);
        self.database
            .run(move |conn| {
                Ok(appointments::table
                    .find(&id)
                    .select(appointments::status)
                    .first(conn)?)
            })
            .await
            .expect("read")
    }

    /// (opted out, no-shows, risk score, requires deposit) of the customer at `phone`.
    pub async fn customer(&self, phone: &str) -> (bool, i32, i32, bool) {
        let phone = phone.to_string();
        self.database
            .run(move |conn| {
                Ok(customers::table
                    .filter(customers::phone_e164.eq(&phone))
                    .select((
                        customers::opted_out,
                        customers::no_show_count,
                        customers::risk_score,
                        customers::requires_deposit,
                    ))
                    .first(conn)?)
            })
            .await
            .expect("read")
    }

    /// Checks no idempotency key reached the provider twice, and every message the
    /// provider accepted is in the message log.
    pub async fn assert_nothing_twice(&self) {
        let keys: Vec<Option<String>> = self
            .database
            .run(|conn| {
                Ok(messages::table
                    .filter(messages::direction.eq("outbound"))
                    .select(messages::idempotency_key)
                    .load(conn)?)
            })
            .await
            .expect("read");
        let mut sorted: Vec<String> = keys.into_iter().flatten().collect();
        let total = sorted.len();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), total, "an idempotency key was logged twice");
        // On trial nothing reaches the provider; every message stays in the sandbox.
        let expected_at_provider = if self.sandbox { 0 } else { total };
        assert_eq!(
            self.fake.accepted().len(),
            expected_at_provider,
            "the provider accepted exactly the logged messages"
        );
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.handle.stop(true).await;
            let _ = running.stopped.await;
        }
    }
}
