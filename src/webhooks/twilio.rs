//! Twilio's webhooks, verified with `X-Twilio-Signature` over the public URL Twilio
//! called (`ARO_PUBLIC_URL` + path + query) and the sorted form parameters:
//!
//! - `POST /webhooks/twilio/status`: delivery status callbacks (the `StatusCallback`
//!   every outgoing message names), appended once to the message's status history (a
//!   repeat of a MessageSid + status is acknowledged and changes nothing).
//! - `POST /webhooks/twilio/sms`: inbound SMS / WhatsApp replies (SPEC §4), matched to
//!   the customer by phone and to the appointment messaged most recently. Keywords
//!   (opt-out, opt-in, help) are applied to the customer in the same transaction as the
//!   inbound message row; any other text is classified (the LLM when configured, else
//!   locally: `providers::llm::ReplyClassifier`) and, when an appointment
//!   matched, handed to its actor through the durable inbox (deduplicated by
//!   MessageSid). A repeat delivery of a MessageSid is acknowledged and does nothing.
//!   Answers an empty TwiML document: the automatic replies (opt-out confirmation,
//!   help text, thank-you, links) need the profile packs' templates (issue 5).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use actors::classify::{keyword_action, KeywordAction};
use actors::engine::commands::{reply_excerpt, AppointmentCommand};
use actors::engine::inbox::InboxWork;
use actors::engine::messages::keyword_answer;
use actors::engine::Origin;
use actors::ports::providers::Channel;

use crate::http::{ApiError, AppState};
use crate::providers::twilio::inbound::{
    parse_inbound, parse_status, InboundError, InboundMessage,
};
use crate::providers::twilio::signature;
use crate::store::message_queries::{record_status, StatusRecorded, StatusReport};
use crate::store::reply_queries::{
    is_recorded, match_reply, record_reply, InboundReply, ReplyMatch, ReplyRecorded,
};
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
#[utoipa::path(
    post, path = "/webhooks/twilio/status", tag = "webhooks", operation_id = "twilio_status_callback", summary = "Twilio delivery status callbacks", params(("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 of ARO_PUBLIC_URL + path + the sorted form parameters")), request_body(content = Object, content_type = "application/x-www-form-urlencoded", description = "Twilio's form"), responses((status = 200, description = "Recorded (or a duplicate)", body = Object), (status = 400, description = "VALIDATION_ERROR: malformed"), (status = 401, description = "UNAUTHORIZED: missing or wrong X-Twilio-Signature"), (status = 413, description = "PAYLOAD_TOO_LARGE"))
)]
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

/// The source name of Twilio replies in the inbox and the message log.
const PROVIDER: &str = "twilio";

/// The empty TwiML document Twilio expects in answer to an inbound message.
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// `POST /webhooks/twilio/sms`.
#[utoipa::path(
    post, path = "/webhooks/twilio/sms", tag = "webhooks", operation_id = "twilio_inbound", summary = "Inbound SMS and WhatsApp replies", params(("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 of ARO_PUBLIC_URL + path + the sorted form parameters")), request_body(content = Object, content_type = "application/x-www-form-urlencoded", description = "Twilio's form"), responses((status = 200, description = "Stored and handled; an empty TwiML document", content_type = "text/xml"), (status = 400, description = "VALIDATION_ERROR: malformed"), (status = 401, description = "UNAUTHORIZED: missing or wrong X-Twilio-Signature"), (status = 413, description = "PAYLOAD_TOO_LARGE"))
)]
pub async fn receive_inbound(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = verified_form(&req, &body, &state)?;
    let message = parse_inbound(&params).map_err(invalid)?;
    let answer = match handle_reply(&state, message).await? {
        ReplyRecorded::Recorded => "recorded",
        ReplyRecorded::Duplicate => "duplicate",
    };
    metrics::counter!("aro_webhooks_total", "source" => "twilio_sms", "result" => answer)
        .increment(1);
    Ok(HttpResponse::Ok()
        .content_type("text/xml")
        .body(EMPTY_TWIML))
}

/// Matches, classifies and records one inbound message; the engine work (if any) is
/// in the inbox before the message row commits, so a crash in between is repaired by
/// Twilio's retry (the inbox deduplicates it, the row is written then).
pub async fn handle_reply(
    state: &AppState,
    message: InboundMessage,
) -> Result<ReplyRecorded, ApiError> {
    let sid = message.message_sid.clone();
    let phone = message.from.clone();
    let (recorded, matched) = state
        .db
        .run(move |conn| {
            let recorded = is_recorded(conn, PROVIDER, &sid)?;
            let matched = if recorded {
                None
            } else {
                match_reply(conn, DEFAULT_TENANT, &phone)?
            };
            Ok((recorded, matched))
        })
        .await?;
    if recorded {
        return Ok(ReplyRecorded::Duplicate);
    }
    let opted_out = matched.as_ref().is_some_and(|m| m.opted_out);
    let keyword = keyword_action(&message.body, opted_out);
    if let (
        None,
        Some(ReplyMatch {
            appointment_id: Some(appointment_id),
            ..
        }),
    ) = (keyword, &matched)
    {
        // The classifier chain: the LLM when configured (4 s at most), else local.
        let classification = state.classifier.classify(&message.body).await;
        tracing::info!(
            message_sid = %message.message_sid,
            appointment_id = %appointment_id,
            intent = ?classification.intent,
            confidence = classification.confidence,
            source = %classification.source,
            "reply classified"
        );
        let work = InboxWork::new(
            appointment_id.clone(),
            AppointmentCommand::ReplyReceived {
                intent: classification.intent,
                confidence: classification.confidence,
                message_sid: message.message_sid.clone(),
                excerpt: reply_excerpt(&message.body),
            },
        )
        .with_origin(Origin::caused_by(format!(
            "{PROVIDER}:{}",
            message.message_sid
        )));
        state
            .engine
            .submit(DEFAULT_TENANT, PROVIDER, &message.message_sid, work)
            .await?;
    } else if let Some(action) = keyword {
        tracing::info!(message_sid = %message.message_sid, keyword = ?action, "keyword reply");
    }
    // STOP gets its one confirmation and HELP the business's name and phone (SPEC §4),
    // queued in the reply's own transaction.
    let answer_kind = match keyword {
        Some(KeywordAction::OptOut { .. }) => Some("opt_out_confirmation"),
        Some(KeywordAction::Help) => Some("help_reply"),
        _ => None,
    };
    let engine = &state.engine;
    let answer = answer_kind.and_then(|kind| {
        let customer = matched.as_ref().map(|m| m.customer_id.as_str());
        match keyword_answer(
            engine.settings(),
            DEFAULT_TENANT,
            kind,
            &message.from,
            customer,
            format!("{PROVIDER}:{}:{kind}", message.message_sid),
            engine.now(),
            engine.new_id(),
        ) {
            Ok(outbox) => Some(outbox),
            Err(rule) => {
                tracing::warn!(
                    kind,
                    rule,
                    "keyword answer blocked by the pack's content filter"
                );
                None
            }
        }
    });
    let answered = answer.is_some();
    let reply = InboundReply {
        tenant_id: DEFAULT_TENANT.to_string(),
        provider: PROVIDER.to_string(),
        provider_message_id: message.message_sid,
        channel: match message.channel {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
        .to_string(),
        from: message.from,
        to: message.to,
        body: message.body,
        matched,
        keyword,
    };
    let now = engine.now();
    let recorded = state
        .db
        .run(move |conn| {
            record_reply(conn, &reply, answer.as_ref(), now).map_err(crate::store::StoreError::from)
        })
        .await?;
    if answered && recorded == ReplyRecorded::Recorded {
        engine.outbox_changed();
    }
    Ok(recorded)
}
