//! `POST /sandbox/replies`: a typed inbound reply, for installs whose messaging runs in
//! the sandbox (SPEC §6: "inbound replies can be typed"). `aro sandbox reply` posts here.
//!
//! The route exists only while Twilio has no credentials — with them it answers 404,
//! as `/webhooks/twilio/sms` answers 404 without them, so exactly one inbound path is
//! open — and only to connections from the loopback interface (403 otherwise): the
//! sandbox is a local tool, not an unauthenticated way in.
//!
//! Body: `{"from": "+15551234567", "body": "yes"}`, optionally `"message_sid"` (letters
//! and digits; a repeat of one is a duplicate, as a Twilio retry would be). `from` may
//! carry a `whatsapp:` prefix. The reply then takes exactly the path of a real Twilio
//! reply — [`super::twilio::handle_reply`]: match by phone, keyword rules, the
//! classifier chain, the durable inbox, the message log — under a synthesized
//! MessageSid `SBX…`. Answers `{"status": "recorded" | "duplicate", "message_sid": …}`.

use actix_web::{web, HttpRequest, HttpResponse};
use actors::ports::providers::Channel;
use serde::Deserialize;
use serde_json::json;

use super::twilio::handle_reply;
use crate::config::values::is_e164;
use crate::http::{ApiError, AppState};
use crate::providers::twilio::inbound::InboundMessage;
use crate::store::reply_queries::ReplyRecorded;

/// The longest typed reply accepted (ten SMS segments).
const MAX_BODY_CHARS: usize = 1600;
/// The `To` of a typed reply when no sender number is configured.
const SANDBOX_NUMBER: &str = "sandbox";

/// What `aro sandbox reply` sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxReply {
    pub from: String,
    pub body: String,
    #[serde(default)]
    pub message_sid: Option<String>,
}

fn invalid(message: &str, field: &str) -> ApiError {
    ApiError::validation(
        message.to_string(),
        json!({"reason": "invalid_sandbox_reply", "field": field}),
    )
}

/// The inbound message a typed reply stands for.
fn inbound(reply: SandboxReply, ours: Option<&str>) -> Result<InboundMessage, ApiError> {
    let from = reply.from.trim();
    let (channel, from) = match from.strip_prefix("whatsapp:") {
        Some(bare) => (Channel::Whatsapp, bare),
        None => (Channel::Sms, from),
    };
    if !is_e164(from) {
        return Err(invalid(
            "from must be an E.164 number such as +15551234567",
            "from",
        ));
    }
    if reply.body.trim().is_empty() || reply.body.chars().count() > MAX_BODY_CHARS {
        return Err(invalid("body must be 1 to 1600 characters", "body"));
    }
    let message_sid = match reply.message_sid {
        Some(sid)
            if !sid.is_empty()
                && sid.len() <= 64
                && sid.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            sid
        }
        Some(_) => {
            return Err(invalid(
                "message_sid must be 1 to 64 letters and digits",
                "message_sid",
            ))
        }
        None => format!("SBX{}", uuid::Uuid::now_v7().simple()),
    };
    let to = ours
        .map(|number| number.strip_prefix("whatsapp:").unwrap_or(number))
        .unwrap_or(SANDBOX_NUMBER);
    Ok(InboundMessage {
        message_sid,
        channel,
        from: from.to_string(),
        to: to.to_string(),
        body: reply.body,
        num_media: 0,
    })
}

/// `POST /sandbox/replies`.
#[utoipa::path(
    post, path = "/sandbox/replies", tag = "sandbox", operation_id = "sandbox_reply", summary = "Type a customer's reply while messaging runs in the sandbox (from this machine only)", request_body(content = SandboxReply), responses((status = 200, description = "Handled as a Twilio reply would be", body = Object), (status = 400, description = "VALIDATION_ERROR"), (status = 403, description = "FORBIDDEN: not from this machine"), (status = 404, description = "NOT_FOUND: messaging is live (Twilio has credentials)"))
)]
pub async fn receive_reply(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    sandbox_only(&state)?;
    // This machine: loopback, or its own address when the daemon binds a specific one.
    let local = req.app_config().local_addr().ip();
    if !req
        .peer_addr()
        .is_some_and(|peer| peer.ip().is_loopback() || peer.ip() == local)
    {
        return Err(ApiError::Forbidden(
            "sandbox replies are accepted from this machine only".to_string(),
        ));
    }
    let reply: SandboxReply = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation(
            format!("malformed JSON: {e}"),
            json!({"reason": "malformed_json"}),
        )
    })?;
    let (status, message_sid) = record_typed_reply(&state, reply).await?;
    Ok(HttpResponse::Ok().json(json!({"status": status, "message_sid": message_sid})))
}

/// 404 unless messaging runs in the sandbox (Twilio without credentials).
fn sandbox_only(state: &AppState) -> Result<(), ApiError> {
    if state.config.twilio.auth_token.is_some() {
        return Err(ApiError::NotFound(
            "sandbox replies are off: Twilio has credentials, replies arrive at /webhooks/twilio/sms"
                .to_string(),
        ));
    }
    Ok(())
}

/// Takes a typed reply down the path of a real Twilio reply ([`handle_reply`]) while
/// messaging runs in the sandbox: `("recorded" | "duplicate", message sid)`. Shared by
/// `POST /sandbox/replies` and the dashboard's "simulate a reply" (whose callers are
/// authenticated staff, so it skips the loopback check of the route).
pub(crate) async fn record_typed_reply(
    state: &AppState,
    reply: SandboxReply,
) -> Result<(&'static str, String), ApiError> {
    sandbox_only(state)?;
    let message = inbound(reply, state.config.twilio.from.as_deref())?;
    let message_sid = message.message_sid.clone();
    let status = match handle_reply(state, message).await? {
        ReplyRecorded::Recorded => "recorded",
        ReplyRecorded::Duplicate => "duplicate",
    };
    tracing::info!(message_sid = %message_sid, status, "sandbox reply");
    Ok((status, message_sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(from: &str, body: &str, sid: Option<&str>) -> SandboxReply {
        SandboxReply {
            from: from.to_string(),
            body: body.to_string(),
            message_sid: sid.map(str::to_string),
        }
    }

    #[test]
    fn a_typed_reply_becomes_an_inbound_message() {
        let message = inbound(reply(" +15551234567 ", "yes", None), None).expect("valid");
        assert_eq!(message.from, "+15551234567");
        assert_eq!(message.to, SANDBOX_NUMBER);
        assert_eq!(message.channel, Channel::Sms);
        assert!(message.message_sid.starts_with("SBX"));
        assert_eq!(message.message_sid.len(), 35);
        let message = inbound(
            reply("whatsapp:+15551234567", "C", Some("SBX1")),
            Some("whatsapp:+15550001111"),
        )
        .expect("valid");
        assert_eq!(message.channel, Channel::Whatsapp);
        assert_eq!(message.to, "+15550001111");
        assert_eq!(message.message_sid, "SBX1");
    }

    #[test]
    fn bad_typed_replies_are_refused() {
        for (from, body, sid) in [
            ("5551234567", "yes", None),
            ("+15551234567", "  ", None),
            ("+15551234567", "yes", Some("SBX-1")),
            ("+15551234567", "yes", Some("")),
        ] {
            assert!(
                inbound(reply(from, body, sid), None).is_err(),
                "{from} {body}"
            );
        }
        assert!(inbound(reply("+15551234567", &"a".repeat(1601), None), None).is_err());
    }
}
