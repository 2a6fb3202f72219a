//! `POST /webhooks/twilio/status`: Twilio's delivery status callbacks (the
//! `StatusCallback` every outgoing message names). Verified with `X-Twilio-Signature`
//! over the public URL Twilio called (`ARO_PUBLIC_URL` + path + query) and the sorted
//! form parameters, then appended once to the message's status history (a repeat of a
//! MessageSid + status is acknowledged and changes nothing).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use crate::http::{ApiError, AppState};
use crate::providers::twilio::inbound::{parse_status, InboundError};
use crate::providers::twilio::signature;
use crate::store::message_queries::{record_status, StatusRecorded, StatusReport};
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::webhooks::signed_header::SignatureError;

/// The URL Twilio signed: the public URL of this route, with the request's query.
fn signed_url(public_url: &url::Url, req: &HttpRequest) -> String {
    let mut url = public_url
        .join(req.path().trim_start_matches('/'))
        .map(|u| u.to_string())
        .unwrap_or_default();
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    url
}

fn invalid(error: InboundError) -> ApiError {
    ApiError::validation(error.to_string(), json!({"reason": "malformed_callback"}))
}

/// Verifies a Twilio form post; the form's parameters when it is Twilio's.
pub fn verified_form(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(token) = state.config.twilio.auth_token.as_ref() else {
        return Err(ApiError::NotFound(
            "Twilio callbacks are disabled: set the Twilio credentials".to_string(),
        ));
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::validation(
            format!("not a form body: {e}"),
            json!({"reason": "malformed_form"}),
        )
    })?;
    let header = req
        .headers()
        .get("X-Twilio-Signature")
        .map(|v| v.to_str().unwrap_or(""));
    let Some(header) = header else {
        return Err(SignatureError::Missing.into());
    };
    let url = signed_url(&state.config.public_url, req);
    if !signature::verify(token.expose(), &url, &params, Some(header)) {
        return Err(SignatureError::Mismatch.into());
    }
    Ok(params)
}

/// `POST /webhooks/twilio/status`.
pub async fn receive_status(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = verified_form(&req, &body, &state)?;
    let callback = parse_status(&params).map_err(invalid)?;
    let channel = params
        .iter()
        .find(|(name, _)| name == "To")
        .map_or("sms", |(_, to)| {
            if to.starts_with("whatsapp:") {
                "whatsapp"
            } else {
                "sms"
            }
        });
    let status = callback.status.as_str().to_string();
    let report = StatusReport {
        tenant_id: DEFAULT_TENANT.to_string(),
        provider: "twilio".to_string(),
        event_id: format!("twilio:{}:{status}", callback.message_sid),
        provider_message_id: callback.message_sid,
        status,
        error_code: callback.error_code.map(|c| c.to_string()),
        channel: channel.to_string(),
    };
    let recorded = state
        .db
        .run(move |conn| {
            record_status(conn, &report, Utc::now()).map_err(crate::store::StoreError::from)
        })
        .await?;
    let answer = match recorded {
        StatusRecorded::Recorded => "recorded",
        StatusRecorded::Duplicate => "duplicate",
    };
    metrics::counter!("aro_webhooks_total", "source" => "twilio_status", "result" => answer)
        .increment(1);
    Ok(HttpResponse::Ok().json(json!({"status": answer})))
}
