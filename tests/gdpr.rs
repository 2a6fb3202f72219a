//! GDPR export / erase / rectify per customer (SPEC §7 Admin API) on the real daemon,
//! both backends. The customer's data comes in through the real routes — the signed
//! booking webhook, a signed Calendly delivery, signed Twilio replies and status
//! callbacks, the Command API, staff overrides and escalation notes — while the engine
//! (on a virtual clock) sends confirmations through a fake Twilio and dead-letters one.
//!
//! Checked: the export holds everything about the customer and nothing about another;
//! after an erasure a scan of every column of every table (enumerated from the
//! database's catalogue) finds none of their phone number, name, e-mail or message
//! texts, another customer's data is intact, the audit chain verifies, no live actor
//! holds them and nothing is sent to them as the clock runs on; a rectification is
//! validated (nothing changes on a bad field, another customer's number is a 409),
//! audited by field names, and the next reminder goes to the new number; who may do
//! what (viewer 403, staff cannot erase, CSRF for cookie sessions, unknown 404).

#![allow(clippy::duplicate_mod)]

mod common;
#[path = "fakes/calendly.rs"]
mod fake_calendly;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use actors::engine::{appointment_id_for, Engine, ListActors};
use actors::ports::clock::{Clock, VirtualClock};
use aro::app::Application;
use aro::auth::Role;
use aro::providers::twilio::signature::expected_signature;
use aro::store::schema::{
    appointments, audit_log, customers, escalations, events, inbox, messages, outbox, timers,
};
use aro::store::{Database, DbConnection};
use aro::webhooks::signed_header::sign;
use awc::http::Method;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use common::credentials::{create_token, create_user, sign_in};
use common::{client, Kind, TestDb};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use fake_twilio::{Failure, FakeTwilio};
use serde_json::{json, Value};

const SID: &str = "AC00000000000000000000000000000gd1";
const TWILIO_TOKEN: &str = "gdpr-twilio-token";
const PUBLIC: &str = "https://aro.example.com";
const SECRET: &str = "gdpr-booking-secret";
const CALENDLY_KEY: &str = "gdpr-calendly-signing-key";
const OURS: &str = "+15550001111";

const JANE_PHONE: &str = "+15557770001";
const JANE_NATIONAL: &str = "5557770001";
const JANE_NAME: &str = "Jane Erasmus";
const JANE_EMAIL: &str = "jane.erasmus@example.com";
const OMAR_PHONE: &str = "+15557770002";
const OMAR_NAME: &str = "Omar Keeper";
const OMAR_EMAIL: &str = "omar.keeper@example.com";

/// The daemon on a virtual clock, with fake Twilio and tokens of every role.
struct Ctx {
    _db: TestDb,
    database: Database,
    clock: VirtualClock,
    fake: FakeTwilio,
    address: std::net::SocketAddr,
    engine: Engine,
    handle: actix_web::dev::ServerHandle,
    owner: String,
    staff: String,
    viewer: String,
    deliveries: u32,
    replies: u32,
}

/// An answer: status and JSON body (`null` when it is not JSON).
struct Answer {
    status: u16,
    body: Value,
    disposition: Option<String>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str, Option<&'a str>),
}

async fn setup(kind: Kind) -> Ctx {
    let fake = FakeTwilio::start(SID, TWILIO_TOKEN);
    let base = fake.base_url();
    let env = [
        ("ARO_PUBLIC_URL", PUBLIC),
        ("ARO_TWILIO_ACCOUNT_SID", SID),
        ("ARO_TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("ARO_TWILIO_FROM", OURS),
        ("ARO_TWILIO_API_BASE", base.as_str()),
        ("ARO_TWILIO_RATE", "100"),
        ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
        ("ARO_CALENDLY_SIGNING_KEY", CALENDLY_KEY),
        ("ARO_QUIET_HOURS", "off"),
        ("ARO_TIMEZONE", "America/New_York"),
        ("ARO_DATABASE_POOL_SIZE", "4"),
    ];
    let db = TestDb::new(kind);
    let config = db.config(&env);
    let database = Database::open(&config.database).expect("open database");
    // Monday 2031-06-02, 10:00 in New York.
    let clock = VirtualClock::new(
        Utc.with_ymd_and_hms(2031, 6, 2, 14, 0, 0)
            .single()
            .expect("start"),
    );
    let app = Application::build_with_clock(config, Arc::new(clock.clone()))
        .await
        .expect("the daemon starts");
    let address = app.address();
    let handle = app.handle();
    let engine = app.engine().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let mut ctx = Ctx {
        _db: db,
        database,
        clock,
        fake,
        address,
        engine,
        handle,
        owner: String::new(),
        staff: String::new(),
        viewer: String::new(),
        deliveries: 0,
        replies: 0,
    };
    ctx.owner = ctx.token(Role::Owner).await;
    ctx.staff = ctx.token(Role::Staff).await;
    ctx.viewer = ctx.token(Role::Viewer).await;
    ctx
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    fn conn(&self) -> aro::store::Conn {
        self.database.get().expect("connection")
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }

    async fn token(&self, role: Role) -> String {
        create_token(&self.database, role, None).await.1
    }

    /// A browser session of a new user with `role`: (cookie, CSRF token).
    async fn session(&self, username: &str, role: Role) -> (String, String) {
        create_user(&self.database, username, role).await;
        sign_in(&self.url("/v1/auth/login"), username).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = client().request(method, self.url(path));
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                request = request.insert_header(("Authorization", format!("Bearer {token}")));
            }
            Auth::Cookie(cookie, csrf) => {
                request = request.insert_header(("Cookie", format!("aro_session={cookie}")));
                if let Some(csrf) = csrf {
                    request = request.insert_header(("X-CSRF-Token", csrf.to_string()));
                }
            }
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request");
        let disposition = response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.body().limit(16 << 20).await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            disposition,
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Auth::Bearer(token), Some(body), &[])
            .await
    }

    async fn export(&self, customer: &str) -> Answer {
        self.send(
            Method::GET,
            &format!("/v1/admin/customers/{customer}/export"),
            Auth::Bearer(&self.staff),
            None,
            &[],
        )
        .await
    }

    async fn erase(&self, customer: &str) -> Answer {
        self.post(
            &format!("/v1/admin/customers/{customer}/erase"),
            &self.owner,
            json!({}),
        )
        .await
    }

    async fn rectify(&self, customer: &str, body: Value) -> Answer {
        self.post(
            &format!("/v1/admin/customers/{customer}/rectify"),
            &self.staff,
            body,
        )
        .await
    }

    /// Waits (real time, bounded) until nothing due by the virtual now is left: no
    /// pending inbox work, no scheduled timer or sendable outbox row due.
    async fn settle(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(30);
        let mut calm = 0;
        while calm < 3 {
            let now = self.clock.now().naive_utc();
            let busy: i64 = self
                .database
                .run(move |conn| {
                    let inbox: i64 = inbox::table
                        .filter(inbox::status.eq("pending"))
                        .count()
                        .get_result(conn)?;
                    let timers: i64 = timers::table
                        .filter(timers::status.eq("scheduled"))
                        .filter(timers::due_at.le(now))
                        .count()
                        .get_result(conn)?;
                    let outbox: i64 = outbox::table
                        .filter(
                            outbox::status.eq("in_flight").or(outbox::status
                                .eq("pending")
                                .and(outbox::next_attempt_at.le(now))),
                        )
                        .count()
                        .get_result(conn)?;
                    Ok(inbox + timers + outbox)
                })
                .await
                .expect("read");
            calm = if busy == 0 { calm + 1 } else { 0 };
            assert!(Instant::now() < deadline, "the daemon did not settle");
            actix_web::rt::time::sleep(StdDuration::from_millis(25)).await;
        }
    }

    /// Moves the clock to `at` in steps of `step`, settling after each.
    async fn walk_to(&self, at: DateTime<Utc>, step: Duration) {
        while self.clock.now() + step < at {
            self.clock.set(self.clock.now() + step);
            self.settle().await;
        }
        self.clock.set(at);
        self.settle().await;
    }

    /// The signed normalized booking webhook for `external`, then settles.
    async fn book(&mut self, external: &str, starts_at: DateTime<Utc>, who: (&str, &str, &str)) {
        let (name, phone, email) = who;
        self.deliveries += 1;
        let body = json!({
            "event": "appointment.created",
            "id": format!("delivery-{}", self.deliveries),
            "timestamp": self.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": {
                "appointment_id": external,
                "scheduled_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "duration": 30,
                "timezone": "America/New_York",
                "service_type": "Checkup",
                "service_cost": 120.0,
                "customer": {"name": name, "phone": phone, "email": email, "sms_consent": true}
            }
        })
        .to_string();
        let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
        let mut response = client()
            .post(self.url("/webhooks/booking"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Aro-Signature", signature))
            .send_body(body)
            .await
            .expect("booking sent");
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{:?}", response.body().await);
        self.settle().await;
    }

    /// A signed Calendly `invitee.created` for a new invitee `uuid`, then settles.
    async fn calendly(&self, uuid: &str, start: DateTime<Utc>, name: &str, phone: &str) {
        let invitee = fake_calendly::FakeInvitee::new(uuid, name, Some(phone));
        let event = fake_calendly::FakeEvent::new(&format!("EV{uuid}"), start, invitee.clone());
        let (body, header) = fake_calendly::signed_webhook(
            "invitee.created",
            &event,
            &invitee,
            CALENDLY_KEY,
            Utc::now(),
        );
        let mut response = client()
            .post(self.url("/webhooks/calendly"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Calendly-Webhook-Signature", header))
            .send_body(body)
            .await
            .expect("calendly sent");
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{:?}", response.body().await);
        self.settle().await;
    }

    /// The customer at `phone` texts `body`; Twilio posts it, signed. Then settles.
    async fn reply(&mut self, phone: &str, body: &str) {
        self.replies += 1;
        let sid = format!("SMgdpr{:026}", self.replies);
        let form = form(&[
            ("AccountSid", SID),
            ("MessageSid", &sid),
            ("From", phone),
            ("To", OURS),
            ("Body", body),
            ("NumMedia", "0"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let signature = expected_signature(
            TWILIO_TOKEN,
            &format!("{PUBLIC}/webhooks/twilio/sms"),
            &form,
        );
        let mut response = client()
            .post(self.url("/webhooks/twilio/sms"))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("X-Twilio-Signature", signature))
            .send_body(serde_urlencoded::to_string(&form).expect("form"))
            .await
            .expect("reply sent");
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{:?}", response.body().await);
        self.settle().await;
    }

    /// Twilio reports every message it accepted as `delivered`, signed.
    async fn all_delivered(&self) {
        for message in self.fake.accepted() {
            let form = form(&[
                ("AccountSid", SID),
                ("MessageSid", &message.sid),
                ("MessageStatus", "delivered"),
                ("To", &message.to),
                ("From", OURS),
                ("ApiVersion", "2010-04-01"),
            ]);
            let signature = expected_signature(
                TWILIO_TOKEN,
                &format!("{PUBLIC}/webhooks/twilio/status"),
                &form,
            );
            let mut response = client()
                .post(self.url("/webhooks/twilio/status"))
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .insert_header(("X-Twilio-Signature", signature))
                .send_body(serde_urlencoded::to_string(&form).expect("form"))
                .await
                .expect("status sent");
            let status = response.status().as_u16();
            assert_eq!(status, 200, "{:?}", response.body().await);
        }
    }

    /// A Command API command (staff token), then settles.
    async fn command(&self, key: &str, command: Value) -> Answer {
        let answer = self
            .send(
                Method::POST,
                "/v1/commands",
                Auth::Bearer(&self.staff),
                Some(command),
                &[("Idempotency-Key", key)],
            )
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        self.settle().await;
        answer
    }

    fn customer_by_phone(&self, phone: &str) -> String {
        customers::table
            .filter(customers::phone_e164.eq(phone))
            .select(customers::id)
            .first(&mut *self.conn())
            .expect("customer")
    }

    fn appointments_of(&self, customer: &str) -> Vec<String> {
        appointments::table
            .filter(appointments::customer_id.eq(customer))
            .order(appointments::id.asc())
            .select(appointments::id)
            .load(&mut *self.conn())
            .expect("appointments")
    }

    /// The texts of the messages exchanged with `customer` (by customer or appointment),
    /// and of those meant for them that were not sent (dead-lettered, waiting).
    fn texts_of(&self, customer: &str) -> Vec<String> {
        let appointments = self.appointments_of(customer);
        let mut texts: Vec<String> = messages::table
            .filter(
                messages::customer_id
                    .eq(customer)
                    .or(messages::appointment_id.eq_any(&appointments)),
            )
            .select(messages::body)
            .load(&mut *self.conn())
            .expect("texts");
        let queued: Vec<String> = outbox::table
            .filter(outbox::owner_id.eq_any(&appointments))
            .select(outbox::payload)
            .load(&mut *self.conn())
            .expect("outbox");
        for payload in queued {
            let payload: Value = serde_json::from_str(&payload).expect("json");
            if let Some(body) = payload["body"].as_str() {
                texts.push(body.to_string());
            }
        }
        texts.sort();
        texts.dedup();
        texts
    }

    fn audit(&self) -> Vec<(String, Option<String>, String)> {
        audit_log::table
            .order(audit_log::seq.asc())
            .select((audit_log::action, audit_log::subject_id, audit_log::details))
            .load(&mut *self.conn())
            .expect("audit")
    }

    async fn live_actors(&self) -> Vec<String> {
        self.engine
            .directory
            .send(ListActors)
            .await
            .expect("directory")
            .into_iter()
            .map(|a| a.appointment_id)
            .collect()
    }

    /// Messages fake Twilio accepted for `phone`.
    fn sent_to(&self, phone: &str) -> usize {
        self.fake
            .accepted()
            .iter()
            .filter(|m| m.to == phone)
            .count()
    }
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

/// One stored value: where, and its text (binary columns as lower-case hex).
struct Cell {
    table: String,
    column: String,
    text: String,
    hex: bool,
}

/// Every value of every column of every table, the tables and columns read from the
/// database's own catalogue (not a list kept in this test).
fn every_cell(conn: &mut DbConnection) -> Vec<Cell> {
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    let tables: Vec<Named> = if sqlite {
        diesel::sql_query(
            "SELECT name, 'table' AS kind FROM sqlite_master WHERE type = 'table' ORDER BY name",
        )
        .load(conn)
    } else {
        diesel::sql_query(
            "SELECT table_name::text AS name, 'table' AS kind FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
        .load(conn)
    }
    .expect("tables");
    assert!(
        tables.len() > 20,
        "every table is enumerated: {}",
        tables.len()
    );
    let mut cells = Vec::new();
    for table in tables.into_iter().map(|t| t.name) {
        let columns: Vec<Named> = if sqlite {
            diesel::sql_query(format!(
                "SELECT name, type AS kind FROM pragma_table_info('{table}')"
            ))
            .load(conn)
        } else {
            diesel::sql_query(format!(
                "SELECT column_name::text AS name, data_type::text AS kind \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}'"
            ))
            .load(conn)
        }
        .expect("columns");
        for column in columns {
            let hex = matches!(
                column.kind.to_ascii_lowercase().as_str(),
                "blob" | "bytea" | "binary"
            );
            let value = match (sqlite, hex) {
                (true, true) => format!("lower(hex(\"{}\"))", column.name),
                (false, true) => format!("encode(\"{}\", 'hex')", column.name),
                _ => format!("CAST(\"{}\" AS TEXT)", column.name),
            };
            let values: Vec<TextValue> =
                diesel::sql_query(format!("SELECT {value} AS v FROM \"{table}\""))
                    .load(conn)
                    .unwrap_or_else(|e| panic!("read {table}.{}: {e}", column.name));
            cells.extend(values.into_iter().filter_map(|v| v.v).map(|text| Cell {
                table: table.clone(),
                column: column.name.clone(),
                text: text.to_lowercase(),
                hex,
            }));
        }
    }
    cells
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Where each of `needles` occurs (case-insensitive), as `table.column: needle`.
async fn find(database: &Database, needles: &[String]) -> Vec<String> {
    let needles: Vec<String> = needles.iter().map(|n| n.to_lowercase()).collect();
    database
        .run(move |conn| {
            let cells = every_cell(conn);
            let mut found = Vec::new();
            for needle in &needles {
                let hexed = hex_of(needle);
                for cell in &cells {
                    let hit = if cell.hex {
                        cell.text.contains(&hexed)
                    } else {
                        cell.text.contains(needle.as_str())
                    };
                    if hit {
                        found.push(format!("{}.{}: {needle}", cell.table, cell.column));
                    }
                }
            }
            found.sort();
            found.dedup();
            Ok(found)
        })
        .await
        .expect("scan")
}

/// Which of `needles` occur nowhere.
async fn missing(database: &Database, needles: &[String]) -> Vec<String> {
    let mut absent = Vec::new();
    for needle in needles {
        if find(database, std::slice::from_ref(needle))
            .await
            .is_empty()
        {
            absent.push(needle.clone());
        }
    }
    absent
}

fn jane() -> (&'static str, &'static str, &'static str) {
    (JANE_NAME, JANE_PHONE, JANE_EMAIL)
}

fn omar() -> (&'static str, &'static str, &'static str) {
    (OMAR_NAME, OMAR_PHONE, OMAR_EMAIL)
}

/// Jane's and Omar's data through every route that stores some: bookings (webhook,
/// Calendly, Command API), confirmations sent and delivered, replies (Twilio and the
/// Command API), a dead-lettered send, a send waiting for its retry, a staff override
/// and an escalation note.
/// Answers (Jane's customer id, Omar's).
async fn populate(ctx: &mut Ctx) -> (String, String) {
    let start = ctx.clock.now() + Duration::days(2);
    ctx.book("ext-jane-1", start, jane()).await;
    ctx.book("ext-omar-1", start + Duration::hours(1), omar())
        .await;
    ctx.calendly(
        "JANEINVITEE00001",
        start + Duration::days(3),
        JANE_NAME,
        JANE_PHONE,
    )
    .await;
    ctx.all_delivered().await;
    let jane_id = ctx.customer_by_phone(JANE_PHONE);
    let omar_id = ctx.customer_by_phone(OMAR_PHONE);
    // The answer to Jane's reschedule request fails for good: a dead letter.
    ctx.fake.fail_next(
        1,
        Failure::TwilioError {
            http_status: 400,
            code: 21211,
        },
    );
    ctx.reply(
        JANE_PHONE,
        "Could we move it to Friday afternoon? Jane Erasmus here",
    )
    .await;
    ctx.reply(OMAR_PHONE, "Yes, see you then, Omar").await;
    ctx.command(
        "jane-inbound-1",
        json!({"commandType": "message.inbound",
               "payload": {"from": JANE_PHONE, "body": "Running late, Jane E. on 555-777-0001"}}),
    )
    .await;
    // The Command API books her again; the confirmation meets a Twilio outage and
    // waits for its retry.
    ctx.fake.fail_next(1, Failure::Status500);
    ctx.command(
        "jane-upsert-1",
        json!({"commandType": "appointment.upsert",
               "payload": {"appointment_id": "ext-jane-2",
                           "scheduled_at": (start + Duration::days(1))
                               .to_rfc3339_opts(SecondsFormat::Secs, true),
                           "duration": 30, "timezone": "America/New_York",
                           "customer": {"name": JANE_NAME, "phone": JANE_PHONE,
                                        "email": JANE_EMAIL, "sms_consent": true}}}),
    )
    .await;
    let first = appointment_id_for("default", "booking", "ext-jane-1");
    let answer = ctx
        .post(
            &format!("/v1/admin/appointments/{first}/override"),
            &ctx.staff,
            json!({"action": "confirm", "reason": "Jane Erasmus confirmed by phone"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let escalation: String = escalations::table
        .filter(escalations::customer_id.eq(&jane_id))
        .filter(escalations::reason.eq("customer_wants_to_reschedule"))
        .select(escalations::id)
        .first(&mut *ctx.conn())
        .expect("the reschedule request was escalated");
    let answer = ctx
        .post(
            &format!("/v1/admin/escalations/{escalation}/resolve"),
            &ctx.staff,
            json!({"resolution": "contacted_customer",
                   "note": "called Jane Erasmus back on 5557770001"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    ctx.settle().await;
    (jane_id, omar_id)
}

async fn erasure_leaves_no_trace(kind: Kind) {
    let mut ctx = setup(kind).await;
    let (jane_id, omar_id) = populate(&mut ctx).await;
    let jane_appointments = ctx.appointments_of(&jane_id);
    assert_eq!(jane_appointments.len(), 3, "{jane_appointments:?}");
    // A message to Jane is waiting for its retry when she is erased.
    let waiting: i64 = outbox::table
        .filter(outbox::owner_id.eq_any(&jane_appointments))
        .filter(outbox::status.eq("pending"))
        .count()
        .get_result(&mut *ctx.conn())
        .expect("outbox");
    assert_eq!(waiting, 1, "a send to Jane waits for a retry");
    let dead: i64 = aro::store::schema::dead_letters::table
        .count()
        .get_result(&mut *ctx.conn())
        .expect("dead letters");
    assert!(dead >= 1, "a send to Jane was dead-lettered");

    // What must go: her number (both forms), name, e-mail and every text exchanged with
    // her (the texts also sent to Omar, if any, are template text, not hers).
    let omar_texts = ctx.texts_of(&omar_id);
    let jane_texts: Vec<String> = ctx
        .texts_of(&jane_id)
        .into_iter()
        .filter(|t| !omar_texts.contains(t))
        .collect();
    assert!(jane_texts.len() >= 5, "{jane_texts:?}");
    let mut gone: Vec<String> = [JANE_PHONE, JANE_NATIONAL, JANE_NAME, "Erasmus", JANE_EMAIL]
        .map(String::from)
        .to_vec();
    gone.extend(jane_texts.iter().cloned());
    let mut kept: Vec<String> = [OMAR_PHONE, OMAR_NAME, OMAR_EMAIL]
        .map(String::from)
        .to_vec();
    kept.extend(omar_texts.iter().cloned());
    // The scan can fail: everything is there before the erasure.
    assert_eq!(missing(&ctx.database, &gone).await, Vec::<String>::new());
    assert_eq!(missing(&ctx.database, &kept).await, Vec::<String>::new());
    let live = ctx.live_actors().await;
    assert!(
        jane_appointments.iter().any(|a| live.contains(a)),
        "Jane's actors are live before: {live:?}"
    );
    let sent_to_jane = ctx.sent_to(JANE_PHONE);
    let sent_to_omar = ctx.sent_to(OMAR_PHONE);
    assert!(sent_to_jane >= 2 && sent_to_omar >= 1);

    let answer = ctx.erase(&jane_id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["customerId"], json!(jane_id));
    assert_eq!(answer.body["alreadyErased"], json!(false));
    assert!(answer.body["actorsEvicted"]
        .as_u64()
        .is_some_and(|n| n >= 1));
    for (table, least) in [
        ("customers", 1),
        ("consents", 1),
        ("messages", 4),
        ("events", 3),
        ("inbox", 3),
        ("commands", 2),
        ("outbox", 3),
        ("dead_letters", 1),
        ("escalations", 2),
    ] {
        let changed = answer.body["changed"][table].as_u64().unwrap_or(0);
        assert!(
            changed >= least,
            "{table}: {changed} < {least}: {}",
            answer.body
        );
    }
    assert_eq!(answer.body["changed"]["customers"], 1);
    assert!(answer.body["timersCancelled"]
        .as_u64()
        .is_some_and(|n| n >= 4));

    // THE scan: every column of every table.
    assert_eq!(find(&ctx.database, &gone).await, Vec::<String>::new());
    assert_eq!(missing(&ctx.database, &kept).await, Vec::<String>::new());

    // Facts and ids inside documents stay whole: the booking event still names its
    // booking and its service.
    let first = appointment_id_for("default", "booking", "ext-jane-1");
    let booked: String = events::table
        .filter(events::aggregate_id.eq(&first))
        .filter(events::event_type.eq("appointment.booked"))
        .select(events::payload)
        .first(&mut *ctx.conn())
        .expect("booked event");
    let booked: Value = serde_json::from_str(&booked).expect("json");
    assert_eq!(booked["externalId"], "ext-jane-1");
    assert_eq!(booked["serviceType"], "Checkup");

    // The chain still verifies, and says who erased whom — by id only.
    let report = aro::audit::verify(&mut ctx.conn(), None).expect("verify");
    assert!(report.is_ok(), "{:?}", report.first_bad);
    let erased: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "customer.erased")
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].1.as_deref(), Some(jane_id.as_str()));

    // Counts and ids stay: her rows are there under her random id.
    let (phone, erased_at, opted_out, pseudonym): (Option<String>, Option<_>, bool, String) =
        customers::table
            .find(&jane_id)
            .select((
                customers::phone_e164,
                customers::erased_at,
                customers::opted_out,
                customers::pseudonym,
            ))
            .first::<(Option<String>, Option<chrono::NaiveDateTime>, bool, String)>(
                &mut *ctx.conn(),
            )
            .expect("the customer row stays");
    assert_eq!(phone, None);
    assert!(erased_at.is_some() && opted_out && pseudonym.starts_with("C-"));
    assert_eq!(ctx.appointments_of(&jane_id), jane_appointments);

    // No live actor holds her; nothing is pending or scheduled for her.
    let live = ctx.live_actors().await;
    assert!(
        jane_appointments.iter().all(|a| !live.contains(a)),
        "{live:?}"
    );
    let (pending, scheduled): (i64, i64) = {
        let mut conn = ctx.conn();
        (
            outbox::table
                .filter(outbox::owner_id.eq_any(&jane_appointments))
                .filter(outbox::status.eq_any(["pending", "in_flight"]))
                .count()
                .get_result(&mut *conn)
                .expect("outbox"),
            timers::table
                .filter(timers::owner_id.eq_any(&jane_appointments))
                .filter(timers::status.eq("scheduled"))
                .count()
                .get_result(&mut *conn)
                .expect("timers"),
        )
    };
    assert_eq!((pending, scheduled), (0, 0));

    // The days go by: Omar is reminded, Jane is sent nothing, and nothing of hers
    // comes back.
    let until = ctx.clock.now() + Duration::days(6);
    ctx.walk_to(until, Duration::hours(3)).await;
    assert_eq!(
        ctx.sent_to(JANE_PHONE),
        sent_to_jane,
        "nothing sent to Jane"
    );
    assert!(ctx.sent_to(OMAR_PHONE) > sent_to_omar, "Omar was reminded");
    assert_eq!(find(&ctx.database, &gone).await, Vec::<String>::new());

    // A second erasure is harmless; the export shows what is left.
    let again = ctx.erase(&jane_id).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["alreadyErased"], json!(true));
    let export = ctx.export(&jane_id).await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(export.body["customer"]["phoneE164"], Value::Null);
    assert!(export.body["customer"]["erasedAt"].is_string());
    let text = export.body.to_string().to_lowercase();
    for needle in &gone {
        assert!(
            !text.contains(&needle.to_lowercase()),
            "{needle} in the export"
        );
    }
    let report = aro::audit::verify(&mut ctx.conn(), None).expect("verify");
    assert!(report.is_ok(), "{:?}", report.first_bad);
    ctx.stop().await;
}

async fn export_holds_everything_about_one_customer(kind: Kind) {
    let mut ctx = setup(kind).await;
    let (jane_id, _omar_id) = populate(&mut ctx).await;

    let answer = ctx.export(&jane_id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer
        .disposition
        .as_deref()
        .is_some_and(|d| d.contains("attachment") && d.contains(&jane_id)));
    let bundle = &answer.body;
    assert_eq!(bundle["format"], "aro.customer-export.v1");
    assert_eq!(bundle["customer"]["id"], json!(jane_id));
    assert_eq!(bundle["customer"]["phoneE164"], JANE_PHONE);
    assert_eq!(bundle["customer"]["name"], JANE_NAME);
    assert_eq!(bundle["customer"]["email"], JANE_EMAIL);
    let list = |key: &str| bundle[key].as_array().cloned().unwrap_or_default();
    assert!(!list("consents").is_empty());
    assert_eq!(list("appointments").len(), 3);
    assert!(list("appointments").iter().any(|a| a["cancelUrl"]
        .as_str()
        .is_some_and(|u| u.contains("JANEINVITEE"))));
    assert!(!list("appointmentAliases").is_empty() || list("appointments").len() == 3);
    let messages = list("messages");
    assert!(messages.iter().any(|m| m["direction"] == "inbound"
        && m["body"] == "Could we move it to Friday afternoon? Jane Erasmus here"));
    assert!(messages.iter().any(|m| m["statusHistory"]
        .as_array()
        .is_some_and(|h| h.iter().any(|s| s["status"] == "delivered"))));
    let events = list("events");
    for kind in [
        "appointment.booked",
        "message.received",
        "appointment.confirmed",
    ] {
        assert!(events.iter().any(|e| e["eventType"] == kind), "{kind}");
    }
    assert!(events.iter().all(|e| e["payload"].is_object()));
    let escalations = list("escalations");
    assert!(escalations
        .iter()
        .any(|e| e["details"]["resolutionNote"] == "called Jane Erasmus back on 5557770001"));
    assert!(list("inbox")
        .iter()
        .any(|i| i["payload"]["command"]["customer"]["name"] == JANE_NAME));
    let commands = list("commands");
    for kind in ["message.inbound", "appointment.upsert"] {
        assert!(commands.iter().any(|c| c["commandType"] == kind), "{kind}");
    }
    assert_eq!(list("idempotencyKeys").len(), 2);
    assert!(!list("timers").is_empty());
    assert!(list("outbox")
        .iter()
        .any(|o| o["payload"]["to"] == JANE_PHONE));
    assert!(!list("deadLetters").is_empty());
    assert!(bundle["workflows"].is_array());

    // Nothing of Omar's.
    let text = bundle.to_string();
    for other in [OMAR_PHONE, OMAR_NAME, OMAR_EMAIL, "Yes, see you then"] {
        assert!(!text.contains(other), "{other} in Jane's export");
    }

    // Audited, by id and counts only.
    let entries: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "customer.exported")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.as_deref(), Some(jane_id.as_str()));
    let details: Value = serde_json::from_str(&entries[0].2).expect("details");
    assert_eq!(details["appointments"], 3);
    for personal in [JANE_PHONE, JANE_NATIONAL, JANE_NAME, JANE_EMAIL] {
        assert!(!entries[0].2.contains(personal));
    }
    ctx.stop().await;
}

async fn rectification_is_checked_audited_and_used(kind: Kind) {
    let mut ctx = setup(kind).await;
    let start = ctx.clock.now() + Duration::days(2);
    ctx.book("ext-jane-1", start, jane()).await;
    ctx.book("ext-omar-1", start + Duration::hours(1), omar())
        .await;
    let jane_id = ctx.customer_by_phone(JANE_PHONE);
    let appointment = appointment_id_for("default", "booking", "ext-jane-1");
    assert!(ctx.live_actors().await.contains(&appointment));
    let contact = |ctx: &Ctx| -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        customers::table
            .find(&jane_id)
            .select((
                customers::name,
                customers::phone_e164,
                customers::email,
                customers::language,
            ))
            .first(&mut *ctx.conn())
            .expect("customer")
    };
    let before = contact(&ctx);
    assert_eq!(before.1.as_deref(), Some(JANE_PHONE));

    // Bad input: a validation error naming the field; nothing changes.
    for (body, field) in [
        (json!({"phone": "555-CALL-NOW"}), "phone"),
        (
            json!({"name": "Jane Q", "email": "not an address"}),
            "email",
        ),
        (json!({"name": "Jane Q", "phone": null}), "phone"),
        (json!({"language": "english"}), "language"),
        (json!({}), "body"),
    ] {
        let answer = ctx.rectify(&jane_id, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_ERROR");
        assert_eq!(answer.body["error"]["details"]["field"], field, "{body}");
    }
    let unknown = ctx.rectify(&jane_id, json!({"nickname": "JJ"})).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.code(), "VALIDATION_ERROR");
    // Omar's number, typed nationally: a conflict, nothing changes.
    let taken = ctx
        .rectify(
            &jane_id,
            json!({"name": "Jane Q", "phone": "(555) 777-0002"}),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(taken.code(), "VALIDATION_ERROR");
    assert_eq!(taken.body["error"]["details"]["reason"], "phone_in_use");
    assert_eq!(contact(&ctx), before);
    assert!(!ctx
        .audit()
        .iter()
        .any(|(action, _, _)| action == "customer.rectified"));

    let answer = ctx
        .rectify(
            &jane_id,
            json!({"name": "Jane Q. Erasmus-Smith", "phone": "555 777 0009",
                   "email": "JQ@Example.ORG", "language": "es"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["phoneE164"], "+15557770009");
    assert_eq!(
        answer.body["updatedFields"],
        json!(["name", "phone", "email", "language"])
    );
    assert_eq!(
        contact(&ctx),
        (
            Some("Jane Q. Erasmus-Smith".into()),
            Some("+15557770009".into()),
            Some("JQ@example.org".into()),
            Some("es".into())
        )
    );
    let entries: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "customer.rectified")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.as_deref(), Some(jane_id.as_str()));
    let details: Value = serde_json::from_str(&entries[0].2).expect("details");
    assert_eq!(
        details["fields"],
        json!(["name", "phone", "email", "language"])
    );
    for value in [
        "+15557770009",
        "5557770009",
        "Erasmus-Smith",
        "example.org",
        "\"es\"",
    ] {
        assert!(!entries[0].2.contains(value), "{value} in the audit entry");
    }
    // The actor that held the old number is gone: the reminder goes to the new one.
    assert!(!ctx.live_actors().await.contains(&appointment));
    let to_old = ctx.sent_to(JANE_PHONE);
    ctx.walk_to(start - Duration::hours(20), Duration::hours(4))
        .await;
    assert_eq!(ctx.sent_to(JANE_PHONE), to_old, "nothing to the old number");
    assert!(
        ctx.sent_to("+15557770009") >= 1,
        "the reminder went to the new number"
    );

    // An erased customer has nothing left to rectify.
    let erased = ctx.erase(&jane_id).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    let refused = ctx.rectify(&jane_id, json!({"name": "Jane"})).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let report = aro::audit::verify(&mut ctx.conn(), None).expect("verify");
    assert!(report.is_ok(), "{:?}", report.first_bad);
    ctx.stop().await;
}

async fn only_the_right_people_may(kind: Kind) {
    let mut ctx = setup(kind).await;
    let start = ctx.clock.now() + Duration::days(2);
    ctx.book("ext-jane-1", start, jane()).await;
    let jane_id = ctx.customer_by_phone(JANE_PHONE);
    let export = format!("/v1/admin/customers/{jane_id}/export");
    let erase = format!("/v1/admin/customers/{jane_id}/erase");
    let rectify = format!("/v1/admin/customers/{jane_id}/rectify");
    let fix = json!({"name": "Jane Q"});

    for (method, path, body) in [
        (Method::GET, &export, None),
        (Method::POST, &erase, Some(json!({}))),
        (Method::POST, &rectify, Some(fix.clone())),
    ] {
        let answer = ctx
            .send(method.clone(), path, Auth::None, body.clone(), &[])
            .await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        assert_eq!(answer.code(), "UNAUTHORIZED");
        let answer = ctx
            .send(method.clone(), path, Auth::Bearer(&ctx.viewer), body, &[])
            .await;
        assert_eq!(answer.status, 403, "viewer {path}: {}", answer.body);
        assert_eq!(answer.code(), "FORBIDDEN");
        assert_eq!(answer.body["error"]["details"]["reason"], "role");
    }
    // Staff export and rectify, but only an owner erases.
    let answer = ctx.post(&erase, &ctx.staff, json!({})).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["error"]["details"]["required"], "owner");

    // Unknown customers: 404 in the envelope.
    for (method, path, body) in [
        (Method::GET, "/v1/admin/customers/nobody/export", None),
        (
            Method::POST,
            "/v1/admin/customers/nobody/erase",
            Some(json!({})),
        ),
        (
            Method::POST,
            "/v1/admin/customers/nobody/rectify",
            Some(fix.clone()),
        ),
    ] {
        let answer = ctx
            .send(method, path, Auth::Bearer(&ctx.owner), body, &[])
            .await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert_eq!(answer.code(), "NOT_FOUND");
    }

    // A browser session needs its CSRF token to change anything.
    let (cookie, csrf) = ctx.session("olga", Role::Owner).await;
    for (path, body) in [(&erase, json!({})), (&rectify, fix.clone())] {
        let answer = ctx
            .send(
                Method::POST,
                path,
                Auth::Cookie(&cookie, None),
                Some(body),
                &[],
            )
            .await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert_eq!(answer.body["error"]["details"]["reason"], "csrf");
    }
    let phone: Option<String> = customers::table
        .find(&jane_id)
        .select(customers::phone_e164)
        .first(&mut *ctx.conn())
        .expect("customer");
    assert_eq!(phone.as_deref(), Some(JANE_PHONE), "nothing was erased");
    let actions: Vec<String> = ctx.audit().into_iter().map(|a| a.0).collect();
    assert!(!actions
        .iter()
        .any(|a| a == "customer.erased" || a == "customer.rectified"));
    let answer = ctx
        .send(
            Method::POST,
            &rectify,
            Auth::Cookie(&cookie, Some(&csrf)),
            Some(fix),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = ctx
        .send(Method::GET, &export, Auth::Cookie(&cookie, None), None, &[])
        .await;
    assert_eq!(
        answer.status, 200,
        "a read needs no CSRF token: {}",
        answer.body
    );
    ctx.stop().await;
}

on_both_backends!(
    erasure_leaves_no_trace,
    export_holds_everything_about_one_customer,
    rectification_is_checked_audited_and_used,
    only_the_right_people_may,
);
