//! Inbound webhooks: each route verifies the sender's signature over the raw bytes,
//! turns the delivery into engine work, records it durably in the inbox (deduplicated
//! by the sender's delivery id) and only then answers 2xx. Anything unsigned, stale,
//! tampered, oversized or malformed gets a 4xx envelope and changes nothing.

pub mod booking;
pub mod calendly;
pub mod local_only;
pub mod sandbox;
pub mod sandbox_payments;
pub mod signed_header;
pub mod stripe;
pub mod twilio;

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::engine::Origin;
use actors::ports::store::InboxAccept;
use chrono::Utc;
use serde_json::json;

use crate::http::request_context::RequestContext;
use crate::http::{ApiError, AppState};
use crate::store::tenant_queries::DEFAULT_TENANT;

/// The booking webhook's signature window (SPEC §6: 5 minutes).
const BOOKING_TOLERANCE_SECS: i64 = 300;

/// Registers the webhook routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks/booking").route(web::post().to(receive_booking)))
        .service(web::resource("/webhooks/calendly").route(web::post().to(calendly::receive)))
        .service(
            web::resource("/webhooks/twilio/status").route(web::post().to(twilio::receive_status)),
        )
        .service(
            web::resource("/webhooks/twilio/sms").route(web::post().to(twilio::receive_inbound)),
        )
        .service(web::resource("/webhooks/stripe").route(web::post().to(stripe::receive)))
        // Typed replies while messaging is in the sandbox (404 once Twilio has credentials).
        .service(web::resource("/sandbox/replies").route(web::post().to(sandbox::receive_reply)))
        // Sandbox deposit links (404 unless payments run in the sandbox).
        .service(
            web::resource("/sandbox/pay/{appointment}")
                .route(web::get().to(sandbox_payments::show))
                .route(web::post().to(sandbox_payments::pay)),
        );
}

/// `POST /webhooks/booking`: the normalized booking webhook, signed with
/// `X-Aro-Signature: t=…,v1=…`. Disabled (404) until a secret is configured.
#[utoipa::path(
    post, path = "/webhooks/booking", tag = "webhooks", operation_id = "booking_webhook", summary = "The normalized booking webhook (SPEC §6)", params(("X-Aro-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>`; 5-minute window")), request_body(content = crate::api::openapi::schemas::BookingWebhook, description = "Signed over the raw bytes"), responses((status = 200, description = "Stored durably (or a duplicate, which causes nothing)", body = Object), (status = 400, description = "VALIDATION_ERROR: malformed"), (status = 401, description = "UNAUTHORIZED: unsigned, tampered, stale or wrongly signed"), (status = 404, description = "NOT_FOUND: the route is off until its secret is configured"), (status = 413, description = "PAYLOAD_TOO_LARGE"))
)]
async fn receive_booking(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let Some(secret) = state.config.booking.webhook_secret.as_ref() else {
        return Err(ApiError::NotFound(
            "the booking webhook is disabled: set ARO_BOOKING_WEBHOOK_SECRET".to_string(),
        ));
    };
    let header = req
        .headers()
        .get("X-Aro-Signature")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    signed_header::verify(
        header,
        &body,
        secret.expose().as_bytes(),
        BOOKING_TOLERANCE_SECS,
        Utc::now(),
    )?;
    let delivery = booking::parse(DEFAULT_TENANT, &body)
        .map_err(|invalid| ApiError::validation(invalid.to_string(), invalid.details()))?;
    let accepted = state
        .engine
        .submit(
            DEFAULT_TENANT,
            booking::SOURCE,
            &delivery.delivery_id,
            delivery.work.with_origin(Origin::new(
                RequestContext::correlation_of(&req),
                format!("{}:{}", booking::SOURCE, delivery.delivery_id),
            )),
        )
        .await?;
    let status = match accepted {
        InboxAccept::Accepted => "accepted",
        InboxAccept::Duplicate => "duplicate",
    };
    metrics::histogram!("aro_webhook_ack_seconds", "source" => booking::SOURCE)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("aro_webhooks_total", "source" => booking::SOURCE, "result" => status)
        .increment(1);
    Ok(HttpResponse::Ok().json(json!({"status": status, "id": delivery.delivery_id})))
}
