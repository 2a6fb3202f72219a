//! The HTTP surface, kept thin: routes map requests to the domain and errors to the
//! envelope. `routes` wires everything; `request_context` wraps every request.

pub mod error;
pub mod event_stream;
pub(crate) mod health;
pub mod json_body;
pub(crate) mod metrics;
pub mod request_context;
pub mod security;
pub mod state;

use actix_web::{web, HttpRequest};

pub use error::{ApiError, ErrorCode};
pub use json_body::JsonAfterAuth;
pub use metrics::recorder as metrics_recorder;
pub use state::AppState;

/// Registers every route and the shared extractor configuration.
pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    configure_extractors(cfg, max_body_bytes);
    // Resources (not bare routes) so that a known path with the wrong method gets 405.
    cfg.service(web::resource("/health").route(web::get().to(health::health)))
        .service(web::resource("/ready").route(web::get().to(health::ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics::metrics)))
        .configure(crate::webhooks::routes)
        .configure(crate::auth::routes::configure)
        .configure(crate::api::admin::routes)
        .configure(crate::api::routes)
        .configure(crate::dashboard::routes);
}

/// Body limits and the error handlers that turn extractor failures into envelopes.
pub fn configure_extractors(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(|err, _req| json_error(err).into()),
    )
    .app_data(web::PayloadConfig::new(max_body_bytes))
    .app_data(
        web::FormConfig::default()
            .limit(max_body_bytes)
            .error_handler(|err, _req| {
                ApiError::validation(format!("invalid form body: {err}"), serde_json::json!({}))
                    .into()
            }),
    );
}

fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::{JsonPayloadError, PayloadError};
    match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit: 0 },
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType {
            expected: "application/json",
        },
        JsonPayloadError::Deserialize(e) => ApiError::validation(
            format!("malformed JSON: {e}"),
            serde_json::json!({"reason": "malformed_json", "line": e.line(), "column": e.column()}),
        ),
        other => ApiError::validation(format!("unreadable body: {other}"), serde_json::json!({})),
    }
}

/// Any path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
