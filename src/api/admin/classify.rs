//! `POST /v1/admin/classify {"text", "optedOut"?}` → `{intent, confidence, source}`:
//! tries a reply on the classifier chain the daemon runs on inbound messages — the
//! carrier keyword rules first (`source: "rules"`, intents `opt_out`, `opt_in`,
//! `help`), then the reply classifier chain — the LLM when one is configured and its
//! budget allows (`source: "llm"`; the request counts against the monthly budget like
//! any other), else the local intent classifier (`source: "local"`); intents `confirm`,
//! `reschedule`, `cancel`, `unclear`. Staff or above; nothing is stored or sent.

use actix_web::{web, HttpResponse};
use actors::classify::{keyword_action, KeywordAction};
use serde::Deserialize;
use serde_json::json;

use super::error::AdminError;
use crate::auth::StaffOrAbove;
use crate::http::{ApiError, AppState, JsonAfterAuth};

/// Longest text accepted (ten SMS segments).
const MAX_TEXT_CHARS: usize = 1600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassifyBody {
    text: String,
    /// Classify as if the sender were opted out (then a bare YES opts back in).
    #[serde(default)]
    opted_out: bool,
}

#[utoipa::path(
    post, path = "/v1/admin/classify", tag = "admin", operation_id = "classify", summary = "Try the reply classifier chain: {intent, confidence, source}", request_body(content = ClassifyBody), responses((status = 200, description = "The classification", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn classify(
    _staff: StaffOrAbove,
    state: web::Data<AppState>,
    body: JsonAfterAuth<ClassifyBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let chars = body.text.chars().count();
    if body.text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        return Err(AdminError::invalid(
            "text",
            format!("text is required (1 to {MAX_TEXT_CHARS} characters)"),
        )
        .into());
    }
    let answer = match keyword_action(&body.text, body.opted_out) {
        Some(KeywordAction::OptOut { bare_cancel }) => json!({
            "intent": "opt_out",
            "confidence": 1.0,
            "source": "rules",
            // A bare CANCEL also raises an escalation: it may mean the appointment.
            "escalates": bare_cancel,
        }),
        Some(KeywordAction::OptIn) => {
            json!({"intent": "opt_in", "confidence": 1.0, "source": "rules"})
        }
        Some(KeywordAction::Help) => {
            json!({"intent": "help", "confidence": 1.0, "source": "rules"})
        }
        None => {
            let c = state.classifier.classify(&body.text).await;
            json!({"intent": c.intent, "confidence": c.confidence, "source": c.source})
        }
    };
    Ok(HttpResponse::Ok().json(answer))
}
