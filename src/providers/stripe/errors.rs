//! Stripe error classification: turns what Stripe answered (HTTP status, its error JSON
//! `{"error": {"type", "code", "message", "param", …}}`, `Retry-After` and
//! `Stripe-Should-Retry`) into the engine's [`ProviderError`]. Pure: no I/O.
//!
//! Per Stripe's error documentation (docs.stripe.com/api/errors, /error-low-level):
//! - 429: rate limited; retry later (honouring `Retry-After` when sent).
//! - 5xx: a problem on Stripe's side; retryable.
//! - 409 `lock_timeout` / `idempotency_key_in_use`: another request on the same object
//!   or with the same idempotency key is running; retryable. With
//!   `idempotency_key_in_use` the concurrent request is our own earlier attempt, which
//!   may still create the link: the outcome is unknown until a resend with the same key
//!   answers (which is safe, see the module docs of `stripe`).
//! - 402: the parameters were valid but the request failed: final.
//! - other 4xx (400 invalid or `idempotency_error`, 401 bad key, 403, 404): the request
//!   is wrong and retrying cannot help.
//! - `Stripe-Should-Retry: true|false`, when present, overrides the status: Stripe's
//!   own SDKs obey it.

use std::time::Duration;

use actors::ports::providers::ProviderError;
use actors::resilience::backoff::ErrorClass;
use serde::Deserialize;

/// The body of every Stripe error answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StripeErrorBody {
    pub error: StripeApiError,
}

/// Stripe's error object, the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StripeApiError {
    /// `api_error`, `card_error`, `idempotency_error`, `invalid_request_error`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

impl StripeApiError {
    /// Parses an error body; `None` when it is not Stripe's JSON.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<StripeErrorBody>(body)
            .ok()
            .map(|b| b.error)
    }
}

/// The class of an HTTP error answer (see the module docs).
pub fn classify(
    http_status: u16,
    error: Option<&StripeApiError>,
    retry_after: Option<Duration>,
    should_retry: Option<bool>,
) -> ErrorClass {
    if http_status == 429 {
        return ErrorClass::RateLimited { retry_after };
    }
    let code = error.and_then(|e| e.code.as_deref());
    let by_status = match http_status {
        500..=599 => ErrorClass::ServerError,
        409 if matches!(code, Some("lock_timeout" | "idempotency_key_in_use")) => {
            ErrorClass::ServerError
        }
        402 => ErrorClass::Final,
        _ => ErrorClass::ClientError,
    };
    match should_retry {
        Some(true) if !by_status.is_retryable() => ErrorClass::ServerError,
        Some(false) if by_status.is_retryable() => ErrorClass::Final,
        _ => by_status,
    }
}

/// The [`ProviderError`] for an HTTP error answer. Stripe answered, so the outcome is
/// known, except for `idempotency_key_in_use` (an earlier attempt is still running).
/// The message carries Stripe's type, code and text, which never contain the key.
pub fn from_response(
    http_status: u16,
    error: Option<&StripeApiError>,
    retry_after: Option<Duration>,
    should_retry: Option<bool>,
) -> ProviderError {
    let class = classify(http_status, error, retry_after, should_retry);
    let mut message = format!("stripe HTTP {http_status}");
    if let Some(e) = error {
        for part in [&e.kind, &e.code].into_iter().flatten() {
            message.push(' ');
            message.push_str(part);
        }
        if let Some(text) = &e.message {
            message.push_str(": ");
            message.push_str(text);
        }
    }
    let outcome_unknown = error.and_then(|e| e.code.as_deref()) == Some("idempotency_key_in_use");
    ProviderError {
        class,
        message,
        outcome_unknown,
    }
}

/// Reads `Stripe-Should-Retry`.
pub fn parse_should_retry(value: Option<&str>) -> Option<bool> {
    match value?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: &str, code: Option<&str>) -> StripeApiError {
        StripeApiError {
            kind: Some(kind.to_string()),
            code: code.map(str::to_string),
            message: Some("text".to_string()),
            param: None,
        }
    }

    #[test]
    fn parses_stripes_error_json() {
        let body = br#"{"error": {"code": "parameter_missing", "doc_url": "https://stripe.com/docs/error-codes/parameter-missing", "message": "Missing required param: line_items.", "param": "line_items", "request_log_url": "https://dashboard.stripe.com/test/logs/req_x", "type": "invalid_request_error"}}"#;
        let parsed = StripeApiError::parse(body).expect("parses");
        assert_eq!(parsed.kind.as_deref(), Some("invalid_request_error"));
        assert_eq!(parsed.code.as_deref(), Some("parameter_missing"));
        assert_eq!(parsed.param.as_deref(), Some("line_items"));
        assert!(StripeApiError::parse(b"<html>").is_none());
    }

    #[test]
    fn statuses_classify() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(
            classify(429, None, after, None),
            ErrorClass::RateLimited { retry_after: after }
        );
        assert_eq!(classify(500, None, None, None), ErrorClass::ServerError);
        assert_eq!(classify(503, None, None, None), ErrorClass::ServerError);
        let lock = err("invalid_request_error", Some("lock_timeout"));
        assert_eq!(
            classify(409, Some(&lock), None, None),
            ErrorClass::ServerError
        );
        assert_eq!(classify(409, None, None, None), ErrorClass::ClientError);
        let card = err("card_error", Some("card_declined"));
        assert_eq!(classify(402, Some(&card), None, None), ErrorClass::Final);
        for status in [400, 401, 403, 404] {
            assert_eq!(classify(status, None, None, None), ErrorClass::ClientError);
        }
        let idem = err("idempotency_error", None);
        assert_eq!(
            classify(400, Some(&idem), None, None),
            ErrorClass::ClientError
        );
    }

    #[test]
    fn should_retry_header_overrides_the_status() {
        assert_eq!(
            classify(400, None, None, Some(true)),
            ErrorClass::ServerError
        );
        assert_eq!(classify(500, None, None, Some(false)), ErrorClass::Final);
        assert_eq!(
            classify(429, None, None, Some(false)),
            ErrorClass::RateLimited { retry_after: None }
        );
        assert_eq!(parse_should_retry(Some("true")), Some(true));
        assert_eq!(parse_should_retry(Some("false ")), Some(false));
        assert_eq!(parse_should_retry(Some("maybe")), None);
        assert_eq!(parse_should_retry(None), None);
    }

    #[test]
    fn messages_carry_type_code_and_text() {
        let e = from_response(
            402,
            Some(&err("card_error", Some("card_declined"))),
            None,
            None,
        );
        assert_eq!(e.message, "stripe HTTP 402 card_error card_declined: text");
        assert!(!e.outcome_unknown);
        assert_eq!(
            from_response(502, None, None, None).message,
            "stripe HTTP 502"
        );
        let in_use = from_response(
            409,
            Some(&err("idempotency_error", Some("idempotency_key_in_use"))),
            None,
            None,
        );
        assert!(in_use.class.is_retryable());
        assert!(in_use.outcome_unknown);
    }
}
