//! The world a dashboard test runs in: the real daemon (`spawn_app`) with the booking
//! webhook on, quiet hours off and the business in New York; admin users of each role;
//! appointments booked through the signed webhook; escalations and dead letters inserted
//! as the engine writes them; and HTTP helpers that sign in through the dashboard's own
//! form and read pages without following redirects.

use std::time::Duration as StdDuration;

use actors::engine::appointment_id_for;
use aro::auth::Role;
use aro::store::schema::{appointments, audit_log, customers, dead_letters, escalations, outbox};
use aro::store::{Conn, Database};
use aro::webhooks::signed_header::sign;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::common::credentials::create_user;
use crate::common::{spawn_app_with, Kind, TestApp, TestDb};

pub const SECRET: &str = "dashboard-booking-secret";
pub use crate::common::credentials::PASSWORD;
pub const ZONE: &str = "America/New_York";

/// The daemon and a direct connection to its database.
pub struct Dash {
    pub app: TestApp,
    pub db: Database,
}

/// An HTTP client that does not follow redirects (the tests look at them).
pub fn http() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(StdDuration::from_secs(20))
        .finish()
}

/// An answer: status, headers of interest and the body as text.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub csp: Option<String>,
    pub set_cookie: Option<String>,
    pub body: String,
}

impl Page {
    /// The value of the first hidden `csrf_token` field.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf_token\" value=\"")?;
        let rest = &self.body[at + "name=\"csrf_token\" value=\"".len()..];
        rest.split('"').next().map(str::to_string)
    }
}

async fn read<S>(mut response: awc::ClientResponse<S>) -> Page
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = response.status().as_u16();
    let location = header("location");
    let content_type = header("content-type");
    let cache_control = header("cache-control");
    let csp = header("content-security-policy");
    let set_cookie = header("set-cookie");
    let bytes = response.body().limit(16 << 20).await.expect("body");
    Page {
        status,
        location,
        content_type,
        cache_control,
        csp,
        set_cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Dash {
    pub async fn start(kind: Kind) -> Dash {
        let app = spawn_app_with(
            TestDb::new(kind),
            &[
                ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
                ("ARO_QUIET_HOURS", "off"),
                ("ARO_TIMEZONE", ZONE),
                ("ARO_DATABASE_POOL_SIZE", "4"),
            ],
        )
        .await;
        let db = Database::open(&app.db.config(&[]).database).expect("open database");
        Dash { app, db }
    }

    pub fn conn(&self) -> Conn {
        self.db.get().expect("connection")
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// Creates the admin user `name` with `role` and the test password.
    pub async fn user(&self, name: &str, role: Role) {
        create_user(&self.db, name, role).await;
    }

    /// Posts a signed booking webhook; the HTTP status.
    pub async fn post_booking(&self, external: &str, start: &str, name: &str, phone: &str) -> u16 {
        let body = json!({
            "event": "appointment.created",
            "id": format!("delivery-{external}"),
            "timestamp": Utc::now().to_rfc3339(),
            "data": {
                "appointment_id": external,
                "scheduled_at": start,
                "duration": 30,
                "timezone": ZONE,
                "service_type": "Consultation",
                "service_cost": 150.0,
                "customer": {"name": name, "phone": phone,
                             "email": "jane@example.com", "sms_consent": true}
            }
        })
        .to_string();
        for _ in 0..50 {
            let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
            let response = crate::common::client()
                .post(self.url("/webhooks/booking"))
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("X-Aro-Signature", signature))
                .send_body(body.clone())
                .await
                .expect("sent");
            match response.status().as_u16() {
                503 => actix_web::rt::time::sleep(StdDuration::from_millis(50)).await,
                other => return other,
            }
        }
        panic!("the booking webhook kept answering 503");
    }

    /// Books through the webhook and waits until the engine applied it: its id.
    pub async fn book(&self, external: &str, start: &str, name: &str, phone: &str) -> String {
        let status = self.post_booking(external, start, name, phone).await;
        assert_eq!(status, 200, "the booking webhook answered {status}");
        let id = appointment_id_for("default", "booking", external);
        for _ in 0..1000 {
            if self.status_of(&id).is_some() {
                return id;
            }
            actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
        }
        panic!("the booking {external} was never applied");
    }

    pub fn status_of(&self, appointment: &str) -> Option<String> {
        appointments::table
            .find(appointment)
            .select(appointments::status)
            .first(&mut *self.conn())
            .optional()
            .expect("read appointment")
    }

    pub fn customer_of(&self, appointment: &str) -> String {
        appointments::table
            .find(appointment)
            .select(appointments::customer_id)
            .first(&mut *self.conn())
            .expect("appointment")
    }

    /// An open escalation about `appointment`, as the engine raises one.
    pub fn escalation(&self, id: &str, appointment: &str, reason: &str, excerpt: &str) {
        let customer = self.customer_of(appointment);
        diesel::insert_into(escalations::table)
            .values((
                escalations::id.eq(id),
                escalations::tenant_id.eq("default"),
                escalations::appointment_id.eq(Some(appointment)),
                escalations::customer_id.eq(Some(customer)),
                escalations::reason.eq(reason),
                escalations::priority.eq("high"),
                escalations::status.eq("open"),
                escalations::details.eq(json!({"excerpt": excerpt}).to_string()),
                escalations::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut *self.conn())
            .expect("escalation");
    }

    pub fn escalation_state(&self, id: &str) -> (String, Option<String>) {
        escalations::table
            .find(id)
            .select((escalations::status, escalations::resolution))
            .first(&mut *self.conn())
            .expect("escalation")
    }

    /// A dead-lettered outbox row of `domain` about `appointment` and its open dead
    /// letter: a message to the customer (`messaging`, which the sandbox can send) or a
    /// deposit link (`payment`).
    pub fn dead_letter(&self, id: &str, appointment: &str, domain: &str) {
        let now = Utc::now().naive_utc();
        let customer = self.customer_of(appointment);
        let phone: Option<String> = customers::table
            .find(&customer)
            .select(customers::phone_e164)
            .first(&mut *self.conn())
            .expect("customer");
        let (kind, payload) = match domain {
            "messaging" => (
                "rebook_offer",
                json!({"to": phone, "body": "We would love to see you again: book at example.com",
                       "customerId": customer, "appointmentId": appointment}),
            ),
            _ => (
                "deposit_link",
                json!({"to": "+15550001111", "body": "Deposit link", "appointmentId": appointment}),
            ),
        };
        let payload = payload.to_string();
        let outbox_id = format!("ob-{id}");
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(&outbox_id),
                outbox::tenant_id.eq("default"),
                outbox::domain.eq(domain),
                outbox::kind.eq(kind),
                outbox::owner_type.eq("appointment"),
                outbox::owner_id.eq(appointment),
                outbox::idempotency_key.eq(format!("key-{id}")),
                outbox::payload.eq(&payload),
                outbox::status.eq("dead"),
                outbox::attempts.eq(5),
                outbox::next_attempt_at.eq(now),
                outbox::last_error.eq(Some("HTTP 503")),
                outbox::created_at.eq(now),
                outbox::updated_at.eq(now),
            ))
            .execute(&mut *self.conn())
            .expect("outbox");
        diesel::insert_into(dead_letters::table)
            .values((
                dead_letters::id.eq(id),
                dead_letters::tenant_id.eq("default"),
                dead_letters::outbox_id.eq(Some(&outbox_id)),
                dead_letters::domain.eq(domain),
                dead_letters::kind.eq(kind),
                dead_letters::payload.eq(&payload),
                dead_letters::error.eq("HTTP 503"),
                dead_letters::attempts.eq(5),
                dead_letters::status.eq("open"),
                dead_letters::created_at.eq(now),
                dead_letters::expires_at.eq(now + Duration::days(30)),
            ))
            .execute(&mut *self.conn())
            .expect("dead letter");
    }

    /// The dead letter's status and its outbox row's status.
    pub fn dead_letter_state(&self, id: &str) -> (String, String) {
        let mut conn = self.conn();
        let status: String = dead_letters::table
            .find(id)
            .select(dead_letters::status)
            .first(&mut *conn)
            .expect("dead letter");
        let row: String = outbox::table
            .find(format!("ob-{id}"))
            .select(outbox::status)
            .first(&mut *conn)
            .expect("outbox row");
        (status, row)
    }

    /// `(action, subject id)` of every audit entry, oldest first.
    pub fn audit(&self) -> Vec<(String, Option<String>)> {
        audit_log::table
            .order(audit_log::seq.asc())
            .select((audit_log::action, audit_log::subject_id))
            .load(&mut *self.conn())
            .expect("audit")
    }

    /// GET `path` with the session cookie (if any).
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut request = http().get(self.url(path));
        if let Some(cookie) = cookie {
            request = request.insert_header(("Cookie", format!("aro_session={cookie}")));
        }
        read(request.send().await.expect("request")).await
    }

    /// POSTs a form to `path` with the session cookie (if any).
    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut request = http().post(self.url(path));
        if let Some(cookie) = cookie {
            request = request.insert_header(("Cookie", format!("aro_session={cookie}")));
        }
        read(request.send_form(&fields).await.expect("request")).await
    }

    /// Signs in through the dashboard's form: the session cookie's value.
    pub async fn login(&self, username: &str) -> String {
        let page = self
            .post_form(
                "/dashboard/login",
                None,
                &[
                    ("username", username),
                    ("password", PASSWORD),
                    ("next", "/dashboard/today"),
                ],
            )
            .await;
        assert_eq!(
            page.status, 303,
            "login answered {}: {}",
            page.status, page.body
        );
        page.set_cookie
            .as_deref()
            .and_then(|v| v.strip_prefix("aro_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
            .expect("session cookie")
    }
}
