//! The OpenAPI 3.1 document of the HTTP API, served at `GET /v1/openapi.json`.
//!
//! It is generated from the code: every JSON route's handler carries a
//! `#[utoipa::path]` annotation (method, path, parameters, bodies, answers and the role
//! it needs) next to its own code, and [`ApiDoc`] lists those handlers. The role an
//! operation needs is its security requirement's scope (`viewer`, `staff` or `owner`),
//! with an API token (`Authorization: Bearer`) or the dashboard's session cookie.
//! [`StandardAnswers`] adds what every secured operation can answer (401, 403, 429) and
//! the error envelope to every operation, so the annotations name only their own
//! answers. `tests/openapi.rs` checks the document against the routes the application
//! registers and the roles it enforces.
//!
//! Not in the document: the dashboard's HTML pages (`/dashboard/…`, `/`) and the
//! sandbox pay page (`/sandbox/pay/{appointment}`), which are for browsers.

pub mod schemas;

use std::sync::OnceLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use schemas::{ErrorBody, ErrorEnvelope};

/// The document: every annotated handler, the shared schemas, the security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ARO",
        description = "The appointment no-show reducer's HTTP API: health, webhooks, the \
                       Command, Event and Admin APIs (SPEC §6–§8). Errors always use the \
                       envelope `{\"error\":{\"code\",\"message\",\"details\",\"retryable\"}}`."
    ),
    paths(
        crate::http::health::health,
        crate::http::health::ready,
        crate::http::metrics::metrics,
        openapi_json,
        crate::webhooks::receive_booking,
        crate::webhooks::calendly::receive,
        crate::webhooks::twilio::receive_status,
        crate::webhooks::twilio::receive_inbound,
        crate::webhooks::stripe::receive,
        crate::webhooks::sandbox::receive_reply,
        crate::auth::routes::login,
        crate::auth::routes::logout,
        crate::auth::routes::me,
        crate::auth::routes::audit_log,
        crate::auth::routes::list_users,
        crate::auth::routes::create_user,
        crate::auth::routes::list_tokens,
        crate::auth::routes::create_token,
        crate::auth::routes::revoke_token,
        crate::api::commands::submit,
        crate::api::commands::status_of,
        crate::api::events::list,
        crate::api::events::stream,
        crate::api::subscriptions::list,
        crate::api::subscriptions::create,
        crate::api::subscriptions::replay,
        crate::api::admin::appointments::list,
        crate::api::admin::appointments::detail,
        crate::api::admin::appointments::override_status,
        crate::api::admin::customers::list,
        crate::api::admin::customers::detail,
        crate::api::admin::gdpr::export,
        crate::api::admin::gdpr::erase,
        crate::api::admin::gdpr::rectify,
        crate::api::admin::escalations::list,
        crate::api::admin::escalations::resolve,
        crate::api::admin::dead_letters::list,
        crate::api::admin::dead_letters::replay,
        crate::api::admin::dead_letters::archive,
        crate::api::admin::engine::supervisors,
        crate::api::admin::engine::actors,
        crate::api::admin::engine::inspect,
        crate::api::admin::classify::classify,
        crate::api::admin::metrics::metrics,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&StandardAnswers),
    tags(
        (name = "health", description = "Liveness, readiness, Prometheus metrics"),
        (name = "webhooks", description = "Signed provider deliveries (SPEC §6)"),
        (name = "sandbox", description = "Typing a customer's reply while messaging runs in the sandbox"),
        (name = "auth", description = "Sign-in, users, API tokens, the audit log"),
        (name = "commands", description = "The Command API (SPEC §7)"),
        (name = "events", description = "The Event API and subscriptions (SPEC §7)"),
        (name = "admin", description = "The Admin API (SPEC §7)"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes, the answers every secured operation can give, and the
/// error envelope as the body of every error answer that names none.
pub struct StandardAnswers;

impl Modify for StandardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `aro admin create-token` or POST /v1/admin/tokens, \
                         scoped to a tenant and role",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "aro_session",
                "The session cookie of POST /v1/auth/login; a state-changing request also \
                 needs the session's CSRF token in X-CSRF-Token",
            ))),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let answers = &mut operation.responses.responses;
                if secured {
                    for (status, description) in [
                        ("401", "UNAUTHORIZED: no credential, or an expired, revoked or unknown one"),
                        ("403", "FORBIDDEN: the credential's role is below the one this operation needs, or a cookie request without its CSRF token"),
                        ("429", "RATE_LIMIT_EXCEEDED (admin and auth routes: 100 requests / 15 min per address), with retryAfter"),
                    ] {
                        answers
                            .entry(status.to_string())
                            .or_insert_with(|| RefOr::T(error_answer(description)));
                    }
                }
                answers
                    .entry("500".to_string())
                    .or_insert_with(|| RefOr::T(error_answer("INTERNAL_ERROR")));
                for (status, answer) in answers.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(answer)) = (is_error, answer) {
                        if answer.content.is_empty() {
                            *answer = error_answer(&answer.description);
                        }
                    }
                }
            }
        }
    }
}

/// An error answer carrying the standard envelope.
fn error_answer(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
}

/// The document as JSON, built once.
fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        // Serializing a document built from static annotations cannot fail.
        doc.to_pretty_json().unwrap_or_else(|_| "{}".to_string())
    })
}

/// `GET /v1/openapi.json`: this document (no credential needed).
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "health", operation_id = "openapi",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// Registers `GET /v1/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/openapi.json").route(web::get().to(openapi_json)));
}
