//! A fake OpenAI-compatible chat-completions API for tests, over real HTTP.
//!
//! Use it with `#[path = "fakes/llm.rs"] mod fake_llm;`. Like the other fakes it runs on
//! its own OS thread with its own actix `System` (see `server.rs`); dropping the
//! [`FakeLlm`] stops it.
//!
//! It serves `POST /v1/chat/completions` (so the `api_base` to configure is
//! [`FakeLlm::base_url`], ending in `/v1`) and checks every request the way the real API
//! would, recording what it found: the method and path, `Authorization: Bearer <key>`
//! (a wrong or missing key gets 401 with OpenAI's error JSON), and the body's shape —
//! the configured `model`, `temperature` 0, `response_format` `{"type":"json_object"}`,
//! exactly a `system` then a `user` message with string contents (anything else gets
//! 400). A well-formed request gets the scripted [`Reply`] (default: `confirm` at 0.95),
//! wrapped in a chat-completion object. Every request is counted and logged.

#![allow(dead_code)]

#[path = "server.rs"]
mod server;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use server::FakeServer;

/// What the fake answers a well-formed request with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A completion whose content is `{"intent": …, "confidence": …}`.
    Intent { intent: String, confidence: f64 },
    /// A completion whose content is this text verbatim (e.g. not JSON).
    Content(String),
    /// This HTTP status with OpenAI's error JSON.
    Status(u16),
    /// A valid `confirm` completion, but only after this long.
    Hang(Duration),
}

impl Reply {
    pub fn intent(intent: &str, confidence: f64) -> Reply {
        Reply::Intent {
            intent: intent.to_string(),
            confidence,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The bearer key matched.
    pub authorized: bool,
    /// The parsed body (`Null` when it was not JSON).
    pub body: Value,
    /// What was wrong with the request's shape; empty when it was well-formed.
    pub problems: Vec<String>,
}

impl LoggedRequest {
    /// The user message's content: the text being classified.
    pub fn user_text(&self) -> Option<&str> {
        self.body["messages"][1]["content"].as_str()
    }
}

struct State {
    key: String,
    model: String,
    reply: Reply,
    log: Vec<LoggedRequest>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running fake; stops when dropped.
pub struct FakeLlm {
    server: FakeServer,
    state: Shared,
}

impl FakeLlm {
    /// Starts the fake for one API key and model, answering `confirm` at 0.95.
    pub fn start(key: &str, model: &str) -> FakeLlm {
        let state: Shared = Arc::new(Mutex::new(State {
            key: key.to_string(),
            model: model.to_string(),
            reply: Reply::intent("confirm", 0.95),
            log: Vec::new(),
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = FakeServer::start(
            "fake-llm",
            move |app: &mut web::ServiceConfig| {
                app.app_data(data.clone()).default_service(web::to(handle));
            },
            None,
        );
        FakeLlm { server, state }
    }

    /// `http://127.0.0.1:<port>/v1`: the `api_base` to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr)
    }

    /// What every following well-formed request is answered with.
    pub fn answer_with(&self, reply: Reply) {
        lock(&self.state).reply = reply;
    }

    /// How many requests arrived, whatever became of them.
    pub fn requests(&self) -> usize {
        lock(&self.state).log.len()
    }

    /// Every request, oldest first.
    pub fn log(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }
}

fn error(status: StatusCode, message: &str, kind: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {"message": message, "type": kind, "param": null, "code": null}
    }))
}

/// What is wrong with a chat-completions body for `model`.
fn shape_problems(body: &Value, model: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if body["model"] != json!(model) {
        problems.push(format!("model is {}, not {model}", body["model"]));
    }
    if body["temperature"].as_f64() != Some(0.0) {
        problems.push(format!("temperature is {}", body["temperature"]));
    }
    if body["response_format"] != json!({"type": "json_object"}) {
        problems.push(format!("response_format is {}", body["response_format"]));
    }
    match body["messages"].as_array() {
        Some(messages) if messages.len() == 2 => {
            for (message, role) in messages.iter().zip(["system", "user"]) {
                if message["role"] != json!(role) {
                    problems.push(format!(
                        "a message's role is {}, not {role}",
                        message["role"]
                    ));
                }
                if !message["content"].is_string() {
                    problems.push(format!("the {role} message has no text content"));
                }
            }
        }
        _ => problems.push("messages is not [system, user]".to_string()),
    }
    problems
}

fn completion(content: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "fake",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72}
    }))
}

fn intent_content(intent: &str, confidence: f64) -> String {
    json!({"intent": intent, "confidence": confidence}).to_string()
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (authorized, mut problems, reply) = {
        let s = lock(&state);
        let expected = format!("Bearer {}", s.key);
        let authorized = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(expected.as_str());
        (
            authorized,
            shape_problems(&parsed, &s.model),
            s.reply.clone(),
        )
    };
    if req.method() != actix_web::http::Method::POST {
        problems.push(format!("method is {}", req.method()));
    }
    if req.path() != "/v1/chat/completions" {
        problems.push(format!("path is {}", req.path()));
    }
    lock(&state).log.push(LoggedRequest {
        method: req.method().to_string(),
        path: req.path().to_string(),
        authorized,
        body: parsed,
        problems: problems.clone(),
    });
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
        );
    }
    if !problems.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            &problems.join("; "),
            "invalid_request_error",
        );
    }
    match reply {
        Reply::Intent { intent, confidence } => completion(&intent_content(&intent, confidence)),
        Reply::Content(content) => completion(&content),
        Reply::Status(code) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "The server had an error while processing your request.",
            "server_error",
        ),
        Reply::Hang(delay) => {
            actix_rt::time::sleep(delay).await;
            completion(&intent_content("confirm", 0.95))
        }
    }
}
