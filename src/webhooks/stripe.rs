//! `POST /webhooks/stripe`: Stripe's payment events (SPEC §6). The `Stripe-Signature`
//! is verified over the raw body (HMAC-SHA256 of `t.body`, 300 s tolerance); a paid
//! `checkout.session.completed` or a `payment_intent.succeeded` whose metadata names one
//! of our appointments becomes a `DepositPaid` for it in the durable inbox, deduplicated
//! by the Event id; then 200. Other event types, unpaid sessions and payments that name
//! no appointment are acknowledged and change nothing. Disabled (404) until
//! `ARO_STRIPE_WEBHOOK_SECRET` is set.

use actix_web::{web, HttpRequest, HttpResponse};
use actors::engine::commands::AppointmentCommand;
use actors::engine::inbox::InboxWork;
use actors::engine::Origin;
use actors::ports::store::InboxAccept;
use chrono::Utc;
use serde_json::json;

use crate::http::{ApiError, AppState};
use crate::providers::stripe::{parse_event, verify_signature, StripeEvent};
use crate::store::tenant_queries::DEFAULT_TENANT;

/// The inbox `source` of Stripe deliveries.
pub const SOURCE: &str = "stripe";

/// What the event asks of which appointment, if anything.
fn deposit_paid(event: &StripeEvent) -> Option<InboxWork> {
    let (appointment_id, payment_ref) = match event {
        StripeEvent::CheckoutCompleted(session) if session.is_paid() => (
            session.metadata.appointment_id.clone()?,
            session.session_id.clone(),
        ),
        StripeEvent::PaymentSucceeded(intent) => (
            intent.metadata.appointment_id.clone()?,
            intent.payment_intent.clone(),
        ),
        _ => return None,
    };
    Some(
        InboxWork::new(
            appointment_id,
            AppointmentCommand::DepositPaid { payment_ref },
        )
        .with_origin(Origin::caused_by(format!("{SOURCE}:{}", event.id()))),
    )
}

#[utoipa::path(
    post, path = "/webhooks/stripe", tag = "webhooks", operation_id = "stripe_webhook", summary = "Stripe events (checkout.session.completed, payment_intent.succeeded)", params(("Stripe-Signature" = String, Header, description = "`t=…,v1=…`, HMAC-SHA256 of `t.body`; 300 s tolerance")), request_body(content = Object, description = "Stripe's event object"), responses((status = 200, description = "Stored durably (or a duplicate, which causes nothing)", body = Object), (status = 400, description = "VALIDATION_ERROR: malformed"), (status = 401, description = "UNAUTHORIZED: unsigned, tampered, stale or wrongly signed"), (status = 404, description = "NOT_FOUND: the route is off until its secret is configured"), (status = 413, description = "PAYLOAD_TOO_LARGE"))
)]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = state.config.stripe.webhook_secret.as_ref() else {
        return Err(ApiError::NotFound(
            "the Stripe webhook is disabled: set ARO_STRIPE_WEBHOOK_SECRET".to_string(),
        ));
    };
    let header = req
        .headers()
        .get("Stripe-Signature")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    verify_signature(header, &body, secret.expose(), Utc::now())?;
    let event = parse_event(&body)
        .map_err(|e| ApiError::validation(e.to_string(), json!({"reason": "malformed_event"})))?;
    let result = match deposit_paid(&event) {
        Some(work) => match state
            .engine
            .submit(DEFAULT_TENANT, SOURCE, event.id(), work)
            .await?
        {
            InboxAccept::Accepted => "accepted",
            InboxAccept::Duplicate => "duplicate",
        },
        None => "ignored",
    };
    metrics::counter!("aro_webhooks_total", "source" => SOURCE, "result" => result).increment(1);
    Ok(HttpResponse::Ok().json(json!({"status": result, "id": event.id()})))
}
