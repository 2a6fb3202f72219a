//! A fake Calendly v2 API for tests, speaking Calendly's wire format over real HTTP, and
//! a builder of signed webhook deliveries.
//!
//! Use it from any test with `#[path = "fakes/calendly.rs"] mod fake_calendly;`. It runs
//! on its own OS thread with its own actix `System`, bound to `127.0.0.1:0`, so it
//! serves `#[actix_rt::test]` tests and plain `#[test]`s that run the daemon as a child
//! process alike; dropping the [`FakeCalendly`] stops it.
//!
//! It serves, for one token (`Authorization: Bearer <token>`; anything else gets 401
//! `Unauthenticated`) and one owner URI (`user=` or `organization=`, required; another
//! owner gets 403):
//! - `GET /scheduled_events?user|organization=&min_start_time=&max_start_time=&count=
//!   &sort=start_time:asc|desc&status=&page_token=`: events starting in
//!   `[min, max)`, `count` (default 20, at most 100) per page, with Calendly's
//!   `{"collection": […], "pagination": {"count", "next_page", "previous_page",
//!   "next_page_token", "previous_page_token"}}`; page tokens are opaque.
//! - `GET /scheduled_events/{uuid}`: `{"resource": event}`.
//! - `GET /scheduled_events/{uuid}/invitees?count=&page_token=`: the invitees.
//!
//! Resource URIs use the fake's own address. [`FakeCalendly::fail_next`] scripts the
//! next authenticated requests: a 429 with `X-RateLimit-*` headers, or a 500.
//!
//! [`signed_webhook`] builds a delivery as Calendly sends it (URIs on
//! `https://api.calendly.com`) with its `Calendly-Webhook-Signature` header.

#![allow(dead_code)]

#[path = "server.rs"]
mod server;

use server::FakeServer;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Calendly's production API base, used in webhook deliveries.
pub const CALENDLY_API: &str = "https://api.calendly.com";

/// An invitee of a fake event.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeInvitee {
    pub uuid: String,
    pub name: String,
    pub email: String,
    pub text_reminder_number: Option<String>,
    pub timezone: String,
    /// (question, answer) pairs.
    pub questions: Vec<(String, String)>,
    /// `active` or `canceled`.
    pub status: String,
    pub rescheduled: bool,
    /// The URI of the invitee this one replaces (a reschedule's new half).
    pub old_invitee: Option<String>,
    /// The URI of the invitee that replaced this one (a reschedule's old half).
    pub new_invitee: Option<String>,
    /// (canceled_by, canceler_type, reason) once canceled.
    pub cancellation: Option<(String, String, String)>,
}

impl FakeInvitee {
    /// An active invitee with a text-reminder number.
    pub fn new(uuid: &str, name: &str, phone: Option<&str>) -> Self {
        let email = format!(
            "{}@example.com",
            name.to_lowercase().replace(char::is_whitespace, ".")
        );
        Self {
            uuid: uuid.to_string(),
            name: name.to_string(),
            email,
            text_reminder_number: phone.map(str::to_string),
            timezone: "America/New_York".to_string(),
            questions: Vec::new(),
            status: "active".to_string(),
            rescheduled: false,
            old_invitee: None,
            new_invitee: None,
            cancellation: None,
        }
    }
}

/// A scheduled event of the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeEvent {
    pub uuid: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `active` or `canceled`.
    pub status: String,
    pub invitees: Vec<FakeInvitee>,
}

impl FakeEvent {
    /// An active 30-minute event with one invitee.
    pub fn new(uuid: &str, start: DateTime<Utc>, invitee: FakeInvitee) -> Self {
        Self {
            uuid: uuid.to_string(),
            name: "30 Minute Consultation".to_string(),
            start,
            end: start + Duration::minutes(30),
            status: "active".to_string(),
            invitees: vec![invitee],
        }
    }

    pub fn uri(&self, base: &str) -> String {
        format!("{base}/scheduled_events/{}", self.uuid)
    }

    pub fn invitee_uri(&self, base: &str, invitee: &FakeInvitee) -> String {
        format!("{}/invitees/{}", self.uri(base), invitee.uuid)
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The Scheduled Event resource.
pub fn event_json(base: &str, event: &FakeEvent) -> Value {
    let active = event
        .invitees
        .iter()
        .filter(|i| i.status == "active")
        .count();
    let created = time(event.start - Duration::days(7));
    json!({
        "uri": event.uri(base),
        "name": event.name,
        "meeting_notes_plain": null,
        "meeting_notes_html": null,
        "status": event.status,
        "start_time": time(event.start),
        "end_time": time(event.end),
        "event_type": format!("{base}/event_types/ETYPE0000000001"),
        "location": {"type": "physical", "location": "123 Main St, Springfield"},
        "invitees_counter": {"total": event.invitees.len(), "active": active, "limit": 1},
        "created_at": created,
        "updated_at": created,
        "event_memberships": [{"user": format!("{base}/users/HOST000000000001"), "user_email": "host@example.com", "user_name": "Dr. Host"}],
        "event_guests": [],
        "cancellation": if event.status == "canceled" {
            json!({"canceled_by": "Dr. Host", "reason": "Clinic closed", "canceler_type": "host", "created_at": created})
        } else {
            Value::Null
        },
    })
}

/// The Invitee resource (without the embedded event).
pub fn invitee_json(base: &str, event: &FakeEvent, invitee: &FakeInvitee) -> Value {
    let uri = event.invitee_uri(base, invitee);
    let created = time(event.start - Duration::days(7));
    let mut parts = invitee.name.splitn(2, ' ');
    let first = parts.next().unwrap_or_default();
    let last = parts.next().unwrap_or_default();
    let questions: Vec<Value> = invitee
        .questions
        .iter()
        .enumerate()
        .map(|(i, (q, a))| json!({"question": q, "answer": a, "position": i}))
        .collect();
    json!({
        "uri": uri,
        "email": invitee.email,
        "first_name": first,
        "last_name": last,
        "name": invitee.name,
        "status": invitee.status,
        "questions_and_answers": questions,
        "timezone": invitee.timezone,
        "event": event.uri(base),
        "created_at": created,
        "updated_at": created,
        "tracking": {"utm_campaign": null, "utm_source": null, "utm_medium": null, "utm_content": null, "utm_term": null, "salesforce_uuid": null},
        "text_reminder_number": invitee.text_reminder_number,
        "rescheduled": invitee.rescheduled,
        "old_invitee": invitee.old_invitee,
        "new_invitee": invitee.new_invitee,
        "cancel_url": format!("https://calendly.com/cancellations/{}", invitee.uuid),
        "reschedule_url": format!("https://calendly.com/reschedulings/{}", invitee.uuid),
        "routing_form_submission": null,
        "cancellation": invitee.cancellation.as_ref().map(|(by, kind, reason)| json!({
            "canceled_by": by, "canceler_type": kind, "reason": reason, "created_at": created,
        })),
        "payment": null,
        "no_show": null,
        "reconfirmation": null,
        "scheduling_method": null,
        "invitee_scheduled_by": null,
    })
}

/// A webhook body as Calendly sends it for `event_name` about `invitee` of `event`,
/// created at `at`. `invitee.created` / `invitee.canceled` carry the invitee with
/// the event embedded; `invitee_no_show.*` carry the no-show (`uri`, `invitee`).
pub fn webhook_body(
    event_name: &str,
    event: &FakeEvent,
    invitee: &FakeInvitee,
    at: DateTime<Utc>,
) -> Value {
    let payload = if event_name.starts_with("invitee_no_show.") {
        json!({
            "uri": format!("{CALENDLY_API}/invitee_no_shows/NS{}", invitee.uuid),
            "invitee": event.invitee_uri(CALENDLY_API, invitee),
            "created_at": time(at),
        })
    } else {
        let mut payload = invitee_json(CALENDLY_API, event, invitee);
        if let Value::Object(map) = &mut payload {
            map.insert(
                "scheduled_event".to_string(),
                event_json(CALENDLY_API, event),
            );
        }
        payload
    };
    json!({
        "event": event_name,
        "created_at": time(at),
        "created_by": format!("{CALENDLY_API}/users/HOST000000000001"),
        "payload": payload,
    })
}

/// A signed delivery: the body bytes and the `Calendly-Webhook-Signature` value, signed
/// at `at` with `signing_key`.
pub fn signed_webhook(
    event_name: &str,
    event: &FakeEvent,
    invitee: &FakeInvitee,
    signing_key: &str,
    at: DateTime<Utc>,
) -> (Vec<u8>, String) {
    let body = webhook_body(event_name, event, invitee, at)
        .to_string()
        .into_bytes();
    let header = aro::webhooks::signed_header::sign(signing_key.as_bytes(), at.timestamp(), &body);
    (body, header)
}

/// What the fake does with a scripted request instead of answering it.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset`.
    RateLimited { reset_secs: u64 },
    /// 500 with Calendly's error JSON.
    Status500,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The bearer token matched.
    pub authorized: bool,
}

impl LoggedRequest {
    pub fn param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

struct State {
    token: String,
    owner_uri: String,
    base: String,
    events: Vec<FakeEvent>,
    log: Vec<LoggedRequest>,
    script: VecDeque<Failure>,
    /// Opaque page token → offset.
    pages: HashMap<String, usize>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock must not hide the state from others.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; stops when dropped.
pub struct FakeCalendly {
    server: FakeServer,
    state: Shared,
}

impl FakeCalendly {
    /// Starts the fake for one token and owner (`…/users/…` or `…/organizations/…`)
    /// and waits until it listens. It has no events until [`Self::add_event`] or
    /// [`Self::seed`].
    pub fn start(token: &str, owner_uri: &str) -> FakeCalendly {
        let state: Shared = Arc::new(Mutex::new(State {
            token: token.to_string(),
            owner_uri: owner_uri.to_string(),
            base: String::new(),
            events: Vec::new(),
            log: Vec::new(),
            script: VecDeque::new(),
            pages: HashMap::new(),
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = FakeServer::start(
            "fake-calendly",
            move |app: &mut web::ServiceConfig| {
                app.app_data(data.clone()).default_service(web::to(handle));
            },
            None,
        );
        let addr = server.addr;
        lock(&state).base = format!("http://{addr}");
        FakeCalendly { server, state }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn add_event(&self, event: FakeEvent) {
        lock(&self.state).events.push(event);
    }

    /// Adds `n` events an hour apart from `first_start`, one invitee each (`EV0001` /
    /// `INV0001`, …); every fifth event is canceled. Returns them.
    pub fn seed(&self, n: usize, first_start: DateTime<Utc>) -> Vec<FakeEvent> {
        let events: Vec<FakeEvent> = (1..=n)
            .map(|i| {
                let phone = format!("+1555{:07}", 2_000_000 + i);
                let invitee =
                    FakeInvitee::new(&format!("INV{i:04}"), &format!("Client {i}"), Some(&phone));
                let mut event = FakeEvent::new(
                    &format!("EV{i:04}"),
                    first_start + Duration::hours(i as i64 - 1),
                    invitee,
                );
                if i % 5 == 0 {
                    event.status = "canceled".to_string();
                    event.invitees[0].status = "canceled".to_string();
                }
                event
            })
            .collect();
        lock(&self.state).events.extend(events.iter().cloned());
        events
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// The next `n` authenticated requests get `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = lock(&self.state);
        for _ in 0..n {
            state.script.push_back(failure.clone());
        }
    }
}

fn calendly_error(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"title": title, "message": message}))
}

fn invalid_argument(parameter: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "title": "Invalid Argument",
        "message": "The supplied parameters are invalid.",
        "details": [{"parameter": parameter, "message": message}],
    }))
}

async fn handle(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    let state: Shared = Arc::clone(state.get_ref());
    let scripted = {
        let mut s = lock(&state);
        let ok = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            == Some(s.token.as_str());
        s.log.push(LoggedRequest {
            method: req.method().to_string(),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
            authorized: ok,
        });
        if !ok {
            return calendly_error(
                StatusCode::UNAUTHORIZED,
                "Unauthenticated",
                "The access token is invalid",
            );
        }
        s.script.pop_front()
    };
    match scripted {
        Some(Failure::RateLimited { reset_secs }) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("X-RateLimit-Limit", "100"))
                .insert_header(("X-RateLimit-Remaining", "0"))
                .insert_header(("X-RateLimit-Reset", reset_secs.to_string()))
                .json(json!({"title": "Too Many Requests", "message": "You have exceeded the rate limit. Please try again later."}));
        }
        Some(Failure::Status500) => {
            return calendly_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "The server encountered an unexpected condition that prevented it from fulfilling the request.",
            );
        }
        None => {}
    }
    if req.method() != Method::GET {
        return calendly_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "The method is not allowed for this resource.",
        );
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let segments: Vec<&str> = req.path().trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["scheduled_events"] => list_events(&query, &state),
        ["scheduled_events", uuid] => {
            let s = lock(&state);
            match s.events.iter().find(|e| e.uuid == *uuid) {
                Some(event) => {
                    HttpResponse::Ok().json(json!({"resource": event_json(&s.base, event)}))
                }
                None => not_found(),
            }
        }
        ["scheduled_events", uuid, "invitees"] => list_invitees(uuid, &query, &state),
        _ => not_found(),
    }
}

fn not_found() -> HttpResponse {
    calendly_error(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The server could not find the requested resource.",
    )
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_time(value: Option<&str>) -> Result<Option<DateTime<Utc>>, ()> {
    match value {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ()),
    }
}

/// A query parameter refused: (parameter, message) for [`invalid_argument`].
struct BadParam(&'static str, &'static str);

/// The page size, offset and page token handling shared by both lists.
fn paginate(
    query: &[(String, String)],
    total: usize,
    path_and_query: impl Fn(&str) -> String,
    state: &Shared,
) -> Result<(usize, usize, Value), BadParam> {
    let count = match param(query, "count").map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(BadParam("count", "must be between 1 and 100")),
    };
    let mut s = lock(state);
    let offset = match param(query, "page_token") {
        None => 0,
        Some(token) => match s.pages.get(token) {
            Some(offset) => *offset,
            None => return Err(BadParam("page_token", "is invalid")),
        },
    };
    let mut token_for = |offset: usize| {
        let token = format!("{}", uuid::Uuid::new_v4().simple());
        s.pages.insert(token.clone(), offset);
        token
    };
    let next = (offset + count < total).then(|| token_for(offset + count));
    let previous = (offset > 0).then(|| token_for(offset.saturating_sub(count)));
    let base = s.base.clone();
    let link = |token: &Option<String>| match token {
        Some(t) => json!(format!("{base}{}", path_and_query(t))),
        None => Value::Null,
    };
    let pagination = json!({
        "count": count.min(total.saturating_sub(offset)),
        "next_page": link(&next),
        "previous_page": link(&previous),
        "next_page_token": next,
        "previous_page_token": previous,
    });
    Ok((offset, count, pagination))
}

fn list_events(query: &[(String, String)], state: &Shared) -> HttpResponse {
    let (owner, base) = {
        let s = lock(state);
        (s.owner_uri.clone(), s.base.clone())
    };
    let scope = param(query, "organization").or_else(|| param(query, "user"));
    let Some(scope) = scope else {
        return invalid_argument("user", "one of user, organization or group is required");
    };
    if scope != owner {
        return calendly_error(
            StatusCode::FORBIDDEN,
            "Permission Denied",
            "You do not have permission to access this resource.",
        );
    }
    let (Ok(min), Ok(max)) = (
        parse_time(param(query, "min_start_time")),
        parse_time(param(query, "max_start_time")),
    ) else {
        return invalid_argument("min_start_time", "must be a valid ISO 8601 time");
    };
    let status = param(query, "status");
    let descending = param(query, "sort") == Some("start_time:desc");
    let mut matching: Vec<FakeEvent> = lock(state)
        .events
        .iter()
        .filter(|e| min.is_none_or(|m| e.start >= m))
        .filter(|e| max.is_none_or(|m| e.start < m))
        .filter(|e| status.is_none_or(|s| e.status == s))
        .cloned()
        .collect();
    matching.sort_by_key(|e| e.start);
    if descending {
        matching.reverse();
    }
    let own_query: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "page_token")
        .cloned()
        .collect();
    let page_link = |token: &str| {
        let mut pairs = own_query.clone();
        pairs.push(("page_token".to_string(), token.to_string()));
        format!(
            "/scheduled_events?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let (offset, count, pagination) = match paginate(query, matching.len(), page_link, state) {
        Ok(page) => page,
        Err(BadParam(parameter, message)) => return invalid_argument(parameter, message),
    };
    let collection: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|e| event_json(&base, e))
        .collect();
    HttpResponse::Ok().json(json!({"collection": collection, "pagination": pagination}))
}

fn list_invitees(uuid: &str, query: &[(String, String)], state: &Shared) -> HttpResponse {
    let (event, base) = {
        let s = lock(state);
        (
            s.events.iter().find(|e| e.uuid == uuid).cloned(),
            s.base.clone(),
        )
    };
    let Some(event) = event else {
        return not_found();
    };
    let path = format!("/scheduled_events/{uuid}/invitees");
    let page_link = |token: &str| format!("{path}?page_token={token}");
    let (offset, count, pagination) = match paginate(query, event.invitees.len(), page_link, state)
    {
        Ok(page) => page,
        Err(BadParam(parameter, message)) => return invalid_argument(parameter, message),
    };
    let collection: Vec<Value> = event
        .invitees
        .iter()
        .skip(offset)
        .take(count)
        .map(|i| invitee_json(&base, &event, i))
        .collect();
    HttpResponse::Ok().json(json!({"collection": collection, "pagination": pagination}))
}
