//! A fake Stripe API for tests, speaking Stripe's wire format over real HTTP.
//!
//! Use it from any test with `#[path = "fakes/stripe.rs"] mod fake_stripe;`. It runs on
//! its own OS thread with its own actix `System`, bound to `127.0.0.1:0`, so it serves
//! `#[actix_rt::test]` tests and plain `#[test]`s that run the daemon as a child
//! process alike; dropping the [`FakeStripe`] stops it.
//!
//! It implements, for one secret key (`Authorization: Bearer <key>`, or basic auth with
//! the key as user name, as Stripe accepts both; anything else gets 401 with Stripe's
//! error JSON):
//! - `POST /v1/payment_links`: form body; `line_items[0][price_data][currency]`,
//!   `[unit_amount]`, `[product_data][name]` and `line_items[0][quantity]` are required
//!   (400 `parameter_missing` naming the `param` otherwise); success is 200 with a
//!   PaymentLink object (`plink_…`, `url` on `buy.stripe.com`).
//! - `Idempotency-Key` as Stripe documents it: the first answer to a key is saved once
//!   the endpoint ran; a repeat with the same parameters gets the saved status and body
//!   and `Idempotent-Replayed: true`; a repeat with other parameters gets 400
//!   `idempotency_error`. Answers given before the endpoint ran (401, 400 for a missing
//!   parameter, a scripted 429, 500 or 409) are not saved, as at Stripe, where rate
//!   limiting and validation run before the idempotency layer.
//!
//! [`FakeStripe::fail_next`] scripts the next authenticated, well-formed requests that
//! are not idempotent replays: a 500 (`api_error`, `Stripe-Should-Retry: true`), a 429
//! with `Retry-After`, a 402 `card_error` (saved under the key: the endpoint ran), a 409
//! `lock_timeout`, or a `Hang` (the link is created and saved, the answer comes only
//! after a delay: "sent, but the answer was lost" for a client with a shorter timeout).

#![allow(dead_code)]

#[path = "server.rs"]
mod server;

use server::FakeServer;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

const CURRENCY: &str = "line_items[0][price_data][currency]";
const UNIT_AMOUNT: &str = "line_items[0][price_data][unit_amount]";
const PRODUCT_NAME: &str = "line_items[0][price_data][product_data][name]";
const QUANTITY: &str = "line_items[0][quantity]";

fn should_retry() -> HeaderName {
    HeaderName::from_static("stripe-should-retry")
}

/// A payment link the fake created.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeLink {
    pub id: String,
    pub url: String,
    pub currency: String,
    pub unit_amount: i64,
    pub product_name: String,
    pub quantity: i64,
    /// `metadata[…]` as posted.
    pub metadata: BTreeMap<String, String>,
    /// `payment_intent_data[metadata][…]` as posted.
    pub payment_intent_metadata: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
}

/// What the fake does with a scripted request instead of answering it normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 500 `api_error` with `Stripe-Should-Retry: true`; not saved under the key.
    Status500,
    /// 429 `rate_limit` with `Retry-After: <secs>`; not saved under the key.
    RateLimited { retry_after_secs: u64 },
    /// 402 `card_error` with `code`; saved under the key, as the endpoint ran.
    CardError { code: String },
    /// 409 `lock_timeout` with `Stripe-Should-Retry: true`; not saved.
    LockTimeout,
    /// Create and save the link, answer only after `secs`.
    Hang { secs: u64 },
}

/// One request the fake received, whatever became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The credentials named the configured secret key.
    pub authorized: bool,
    /// `Authorization` used the bearer scheme.
    pub bearer: bool,
    pub idempotency_key: Option<String>,
    /// The decoded form body, in order.
    pub form: Vec<(String, String)>,
    /// Answered from the idempotency store.
    pub replayed: bool,
}

impl LoggedRequest {
    /// The value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A saved answer for an idempotency key.
struct Saved {
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

struct State {
    secret_key: String,
    links: Vec<FakeLink>,
    log: Vec<LoggedRequest>,
    script: VecDeque<Failure>,
    saved: HashMap<String, Saved>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock must not hide the state from others.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; stops when dropped.
pub struct FakeStripe {
    server: FakeServer,
    state: Shared,
}

impl FakeStripe {
    /// Starts the fake for one secret key and waits until it listens.
    pub fn start(secret_key: &str) -> FakeStripe {
        let state: Shared = Arc::new(Mutex::new(State {
            secret_key: secret_key.to_string(),
            links: Vec::new(),
            log: Vec::new(),
            script: VecDeque::new(),
            saved: HashMap::new(),
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = FakeServer::start(
            "fake-stripe",
            move |app: &mut web::ServiceConfig| {
                app.app_data(data.clone()).default_service(web::to(handle));
            },
            None,
        );
        FakeStripe { server, state }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Every link created, oldest first (each once, however often it was replayed).
    pub fn links(&self) -> Vec<FakeLink> {
        lock(&self.state).links.clone()
    }

    /// Every request received, oldest first, failed and replayed ones included.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// The next `n` authenticated, well-formed, non-replayed requests get `failure`,
    /// after any failures already scripted.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = lock(&self.state);
        for _ in 0..n {
            state.script.push_back(failure.clone());
        }
    }
}

fn stripe_error(status: StatusCode, error: Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Request-Id", request_id()))
        .json(json!({ "error": error }))
}

fn request_id() -> String {
    format!("req_{}", &uuid::Uuid::new_v4().simple().to_string()[..14])
}

fn masked(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}****{tail}", key.get(..8).unwrap_or(""))
}

/// The credentials: `(key named, bearer scheme)`.
fn credentials(req: &HttpRequest, secret_key: &str) -> (bool, bool) {
    let Some(header) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return (false, false);
    };
    if let Some(token) = header.strip_prefix("Bearer ") {
        return (token.trim() == secret_key, true);
    }
    let basic = header
        .strip_prefix("Basic ")
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .map(|decoded| String::from_utf8_lossy(&decoded).into_owned());
    let ok = basic
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(user, _)| user == secret_key);
    (ok, false)
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let state: Shared = Arc::clone(state.get_ref());
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let idempotency_key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (ok, index) = {
        let mut s = lock(&state);
        let (ok, bearer) = credentials(&req, &s.secret_key);
        s.log.push(LoggedRequest {
            method: req.method().to_string(),
            path: req.path().to_string(),
            content_type: req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            authorized: ok,
            bearer,
            idempotency_key: idempotency_key.clone(),
            form: form.clone(),
            replayed: false,
        });
        (ok, s.log.len() - 1)
    };
    if !ok {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.split_whitespace().nth(1))
            .unwrap_or("");
        let message = if presented.is_empty() {
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".to_string()
        } else {
            format!("Invalid API Key provided: {}", masked(presented))
        };
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            json!({"message": message, "type": "invalid_request_error"}),
        );
    }
    match (req.method(), req.path()) {
        (&Method::POST, "/v1/payment_links") => create(form, idempotency_key, index, &state).await,
        (_, "/v1/payment_links") => stripe_error(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"message": "Unrecognized request method", "type": "invalid_request_error"}),
        ),
        (method, path) => stripe_error(
            StatusCode::NOT_FOUND,
            json!({
                "message": format!("Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."),
                "type": "invalid_request_error",
            }),
        ),
    }
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// `prefix[key]` fields as a map.
fn bracketed(form: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(k, v)| {
            let key = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            (!key.contains('[')).then(|| (key.to_string(), v.clone()))
        })
        .collect()
}

fn missing(param: &str) -> HttpResponse {
    stripe_error(
        StatusCode::BAD_REQUEST,
        json!({
            "code": "parameter_missing",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
            "message": format!("Missing required param: {param}."),
            "param": param,
            "type": "invalid_request_error",
        }),
    )
}

fn saved_response(
    status: StatusCode,
    body: &Value,
    key: Option<&str>,
    replayed: bool,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header(("Request-Id", request_id()));
    if let Some(key) = key {
        response.insert_header(("Idempotency-Key", key));
    }
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(body)
}

fn link_json(link: &FakeLink) -> Value {
    json!({
        "id": link.id,
        "object": "payment_link",
        "active": true,
        "after_completion": {"hosted_confirmation": {"custom_message": null}, "type": "hosted_confirmation"},
        "allow_promotion_codes": false,
        "application_fee_amount": null,
        "billing_address_collection": "auto",
        "currency": link.currency,
        "customer_creation": "if_required",
        "livemode": false,
        "metadata": link.metadata,
        "payment_intent_data": {"metadata": link.payment_intent_metadata},
        "payment_method_types": null,
        "url": link.url,
    })
}

async fn create(
    form: Vec<(String, String)>,
    key: Option<String>,
    index: usize,
    state: &Shared,
) -> HttpResponse {
    let mut params = form.clone();
    params.sort();
    // A key seen before: replay, or refuse a different request.
    if let Some(key) = &key {
        let mut s = lock(state);
        if let Some(saved) = s.saved.get(key) {
            if saved.params != params {
                let message = format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.");
                drop(s);
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    json!({"message": message, "type": "idempotency_error"}),
                );
            }
            let (status, body) = (saved.status, saved.body.clone());
            s.log[index].replayed = true;
            return saved_response(status, &body, Some(key), true);
        }
    }
    let Some(currency) = field(&form, CURRENCY) else {
        return missing(CURRENCY);
    };
    let Some(unit_amount) = field(&form, UNIT_AMOUNT) else {
        return missing(UNIT_AMOUNT);
    };
    let Some(product_name) = field(&form, PRODUCT_NAME) else {
        return missing(PRODUCT_NAME);
    };
    let Some(quantity) = field(&form, QUANTITY) else {
        return missing(QUANTITY);
    };
    let (Ok(unit_amount), Ok(quantity)) = (unit_amount.parse::<i64>(), quantity.parse::<i64>())
    else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"code": "parameter_invalid_integer", "message": "Invalid integer", "param": UNIT_AMOUNT, "type": "invalid_request_error"}),
        );
    };
    let scripted = lock(state).script.pop_front();
    let hang = match scripted {
        None => None,
        Some(Failure::Hang { secs }) => Some(secs),
        Some(Failure::Status500) => {
            let mut response = stripe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "An unknown error occurred", "type": "api_error"}),
            );
            response
                .headers_mut()
                .insert(should_retry(), HeaderValue::from_static("true"));
            return response;
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            let mut response = stripe_error(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"code": "rate_limit", "doc_url": "https://stripe.com/docs/error-codes/rate-limit", "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.", "type": "invalid_request_error"}),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Some(Failure::LockTimeout) => {
            let mut response = stripe_error(
                StatusCode::CONFLICT,
                json!({"code": "lock_timeout", "doc_url": "https://stripe.com/docs/error-codes/lock-timeout", "message": "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request.", "type": "invalid_request_error"}),
            );
            response
                .headers_mut()
                .insert(should_retry(), HeaderValue::from_static("true"));
            return response;
        }
        Some(Failure::CardError { code }) => {
            let body = json!({"error": {"code": code, "message": "Your card was declined.", "type": "card_error"}});
            if let Some(key) = &key {
                lock(state).saved.insert(
                    key.clone(),
                    Saved {
                        params,
                        status: StatusCode::PAYMENT_REQUIRED,
                        body: body.clone(),
                    },
                );
            }
            return saved_response(StatusCode::PAYMENT_REQUIRED, &body, key.as_deref(), false);
        }
    };
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let link = FakeLink {
        id: format!("plink_{}", &suffix[..24]),
        url: format!("https://buy.stripe.com/test_{}", &suffix[..20]),
        currency,
        unit_amount,
        product_name,
        quantity,
        metadata: bracketed(&form, "metadata"),
        payment_intent_metadata: bracketed(&form, "payment_intent_data[metadata]"),
        idempotency_key: key.clone(),
    };
    let body = link_json(&link);
    {
        let mut s = lock(state);
        s.links.push(link);
        if let Some(key) = &key {
            s.saved.insert(
                key.clone(),
                Saved {
                    params,
                    status: StatusCode::OK,
                    body: body.clone(),
                },
            );
        }
    }
    if let Some(secs) = hang {
        actix_rt::time::sleep(Duration::from_secs(secs)).await;
    }
    saved_response(StatusCode::OK, &body, key.as_deref(), false)
}
