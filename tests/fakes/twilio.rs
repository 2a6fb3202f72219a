//! A fake Twilio REST API for tests, speaking Twilio's wire format over real HTTP.
//!
//! Use it from any test with `#[path = "fakes/twilio.rs"] mod fake_twilio;`. It runs on
//! its own OS thread with its own actix `System`, bound to `127.0.0.1:0`, so it serves
//! `#[actix_rt::test]` tests and plain `#[test]`s that run the daemon as a child
//! process alike; dropping the [`FakeTwilio`] stops it.
//!
//! It implements, for one account (basic auth `account_sid:auth_token`; a wrong
//! credential gets 401 with Twilio's error JSON, code 20003):
//! - `GET /2010-04-01/Accounts/{sid}.json` — the Account resource (credential checks).
//! - `POST /2010-04-01/Accounts/{sid}/Messages.json` — form `To`, `From` (or
//!   `MessagingServiceSid`), `Body`, optional `StatusCallback`; a missing field gets 400
//!   with code 21604 / 21603 / 21602; success is 201 with a Message resource, `queued`.
//! - `GET …/Messages/{sid}.json` — the Message resource, or 404 (code 20404).
//! - `GET …/Messages.json?To=&From=&PageSize=&Page=` — newest first, Twilio's list
//!   shape (`messages`, `page`, `page_size`, `next_page_uri`, …).
//!
//! [`FakeTwilio::fail_next`] scripts the next authenticated, well-formed send requests:
//! a 500, a 429 with `Retry-After`, a Twilio error code, a `Hang` (recorded as accepted,
//! answered only after a delay: "sent, but the answer was lost" for a client with a
//! shorter timeout) or a `Drop` (request read, nothing recorded, connection closed). A
//! message is recorded as accepted exactly once per send answered 201 or hung.

#![allow(dead_code)]

#[path = "server.rs"]
mod server;

use server::FakeServer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const API_VERSION: &str = "2010-04-01";

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub sid: String,
    /// As posted, `whatsapp:` prefix included.
    pub to: String,
    /// `From` as posted, or the `MessagingServiceSid` when that was sent instead.
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
    /// `queued` until [`FakeTwilio::set_status`] changes it.
    pub status: String,
    pub received_at: DateTime<Utc>,
}

/// What the fake does with a scripted send request instead of accepting it.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 500 with Twilio's error JSON (code 20500).
    Status500,
    /// 429 with `Retry-After: <secs>` and code 20429.
    RateLimited { retry_after_secs: u64 },
    /// `http_status` with Twilio's error JSON carrying `code`.
    TwilioError { http_status: u16, code: u32 },
    /// Accept and record the message, then answer 201 only after `secs`.
    Hang { secs: u64 },
    /// Read the request, record nothing, close the connection without answering.
    Drop,
}

/// One request the fake received, whatever became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    /// The basic-auth credentials matched.
    pub authorized: bool,
}

struct State {
    account_sid: String,
    auth_token: String,
    accepted: Vec<FakeMessage>,
    log: Vec<LoggedRequest>,
    script: VecDeque<Failure>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock must not hide the state from others.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; stops when dropped.
pub struct FakeTwilio {
    server: FakeServer,
    state: Shared,
}

impl FakeTwilio {
    /// Starts the fake for one account and waits until it listens.
    pub fn start(account_sid: &str, auth_token: &str) -> FakeTwilio {
        let state: Shared = Arc::new(Mutex::new(State {
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
            accepted: Vec::new(),
            log: Vec::new(),
            script: VecDeque::new(),
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = FakeServer::start(
            "fake-twilio",
            move |app: &mut web::ServiceConfig| {
                app.app_data(data.clone()).default_service(web::to(handle));
            },
            Some(remember_socket),
        );
        FakeTwilio { server, state }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Every message accepted, oldest first.
    pub fn accepted(&self) -> Vec<FakeMessage> {
        lock(&self.state).accepted.clone()
    }

    /// Every request received, failed ones included.
    pub fn requests(&self) -> usize {
        lock(&self.state).log.len()
    }

    /// Every request received, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// The next `n` authenticated, well-formed send requests get `failure`, after any
    /// failures already scripted.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = lock(&self.state);
        for _ in 0..n {
            state.script.push_back(failure.clone());
        }
    }

    /// Changes an accepted message's status (e.g. to `delivered` or `failed`).
    pub fn set_status(&self, sid: &str, status: &str) {
        let mut state = lock(&self.state);
        if let Some(message) = state.accepted.iter_mut().find(|m| m.sid == sid) {
            message.status = status.to_string();
        }
    }
}

/// The connection's socket, kept so `Failure::Drop` can cut it.
#[derive(Clone, Copy)]
struct SocketFd(std::os::fd::RawFd);

fn remember_socket(connection: &dyn std::any::Any, data: &mut Extensions) {
    use std::os::fd::AsRawFd;
    if let Some(socket) = connection.downcast_ref::<actix_rt::net::TcpStream>() {
        data.insert(SocketFd(socket.as_raw_fd()));
    }
}

/// Shuts the request's connection down in both directions: the client sees it closed
/// without an answer.
fn cut_connection(req: &HttpRequest) {
    use std::os::fd::FromRawFd;
    if let Some(SocketFd(fd)) = req.conn_data::<SocketFd>().copied() {
        // SAFETY: `fd` is the live socket of the connection this request arrived on,
        // owned by actix for as long as the request is being handled. `ManuallyDrop`
        // keeps the borrowed std handle from closing it; `shutdown` only changes the
        // socket's state, which actix then sees as a closed connection.
        let socket = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    }))
}

fn not_found(path: &str) -> HttpResponse {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn message_json(account_sid: &str, m: &FakeMessage) -> Value {
    let uri = format!(
        "/{API_VERSION}/Accounts/{account_sid}/Messages/{}.json",
        m.sid
    );
    let date = m.received_at.to_rfc2822();
    let service = m.from.starts_with("MG").then(|| m.from.clone());
    json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": date,
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": if service.is_some() { Value::Null } else { json!(m.from) },
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{}/Media.json", m.sid),
        },
        "to": m.to,
        "uri": uri,
    })
}

fn authorized(req: &HttpRequest, state: &State) -> bool {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return false;
    };
    let Some(encoded) = header.to_str().ok().and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let credentials = String::from_utf8_lossy(&decoded);
    credentials.split_once(':') == Some((state.account_sid.as_str(), state.auth_token.as_str()))
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let state: Shared = Arc::clone(state.get_ref());
    let path = req.path().to_string();
    let (account_sid, ok) = {
        let mut s = lock(&state);
        let ok = authorized(&req, &s);
        s.log.push(LoggedRequest {
            method: req.method().to_string(),
            path: path.clone(),
            query: req.query_string().to_string(),
            content_type: req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            authorized: ok,
        });
        (s.account_sid.clone(), ok)
    };
    if !ok {
        return twilio_error(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authentication Error - invalid username or password",
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [API_VERSION, "Accounts", file]
            if req.method() == Method::GET
                && file.strip_suffix(".json") == Some(account_sid.as_str()) =>
        {
            HttpResponse::Ok().json(serde_json::json!({
                "sid": account_sid,
                "friendly_name": "Fake Twilio account",
                "status": "active",
                "type": "Full",
                "uri": path,
            }))
        }
        [API_VERSION, "Accounts", sid, rest @ ..] if *sid == account_sid => {
            match (req.method(), rest) {
                (&Method::POST, ["Messages.json"]) => create(&req, &body, &state).await,
                (&Method::GET, ["Messages.json"]) => list(&req, &state),
                (&Method::GET, ["Messages", file]) => match file.strip_suffix(".json") {
                    Some(sid) => fetch(sid, &path, &state),
                    None => not_found(&path),
                },
                (_, ["Messages.json"]) | (_, ["Messages", _]) => {
                    twilio_error(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed")
                }
                _ => not_found(&path),
            }
        }
        _ => not_found(&path),
    }
}

fn form_value(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

async fn create(req: &HttpRequest, body: &[u8], state: &Shared) -> HttpResponse {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let Some(to) = form_value(&form, "To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(from) = form_value(&form, "From").or_else(|| form_value(&form, "MessagingServiceSid"))
    else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(text) = form_value(&form, "Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let (scripted, account_sid) = {
        let mut s = lock(state);
        (s.script.pop_front(), s.account_sid.clone())
    };
    let hang = match scripted {
        None => None,
        Some(Failure::Hang { secs }) => Some(secs),
        Some(Failure::Status500) => {
            return twilio_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "Internal Server Error",
            )
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            let mut response =
                twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_secs),
            );
            return response;
        }
        Some(Failure::TwilioError { http_status, code }) => {
            let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST);
            let message = match code {
                21610 => "Attempt to send to unsubscribed recipient".to_string(),
                21211 => format!("The 'To' number {to} is not a valid phone number."),
                21614 => format!("'To' number {to} is not a valid mobile number"),
                _ => format!("Fake Twilio error {code}"),
            };
            return twilio_error(status, code, &message);
        }
        Some(Failure::Drop) => {
            cut_connection(req);
            return HttpResponse::InternalServerError().finish();
        }
    };
    let message = FakeMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        to,
        from,
        body: text,
        status_callback: form_value(&form, "StatusCallback"),
        status: "queued".to_string(),
        received_at: Utc::now(),
    };
    let json = message_json(&account_sid, &message);
    lock(state).accepted.push(message);
    if let Some(secs) = hang {
        actix_rt::time::sleep(Duration::from_secs(secs)).await;
    }
    HttpResponse::Created().json(json)
}

fn fetch(sid: &str, path: &str, state: &Shared) -> HttpResponse {
    let s = lock(state);
    match s.accepted.iter().find(|m| m.sid == sid) {
        Some(m) => HttpResponse::Ok().json(message_json(&s.account_sid, m)),
        None => not_found(path),
    }
}

fn list(req: &HttpRequest, state: &Shared) -> HttpResponse {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let to = form_value(&query, "To");
    let from = form_value(&query, "From");
    let page_size = form_value(&query, "PageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let page = form_value(&query, "Page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let s = lock(state);
    let matching: Vec<&FakeMessage> = s
        .accepted
        .iter()
        .rev()
        .filter(|m| to.as_deref().is_none_or(|t| m.to == t))
        .filter(|m| from.as_deref().is_none_or(|f| m.from == f))
        .collect();
    let start = page * page_size;
    let messages: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .map(|m| message_json(&s.account_sid, m))
        .collect();
    let base = format!("/{API_VERSION}/Accounts/{}/Messages.json", s.account_sid);
    let page_uri = |p: usize| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(t) = &to {
            pairs.push(("To", t.clone()));
        }
        if let Some(f) = &from {
            pairs.push(("From", f.clone()));
        }
        pairs.push(("PageSize", page_size.to_string()));
        pairs.push(("Page", p.to_string()));
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let has_next = matching.len() > start + page_size;
    HttpResponse::Ok().json(json!({
        "end": start + messages.len().saturating_sub(1),
        "first_page_uri": page_uri(0),
        "next_page_uri": if has_next { json!(page_uri(page + 1)) } else { Value::Null },
        "page": page,
        "page_size": page_size,
        "previous_page_uri": if page > 0 { json!(page_uri(page - 1)) } else { Value::Null },
        "start": start,
        "uri": page_uri(page),
        "messages": messages,
    }))
}
