//! Calendly error classification: turns what Calendly's API answered (HTTP status, its
//! error JSON `{"title", "message", "details": [{"parameter", "message"}]}`, and the
//! rate-limit headers) into the engine's [`ProviderError`]. Pure: no I/O, the clock is
//! passed in.
//!
//! Only reads go to Calendly, so the outcome of a failed call is always known. 429 is
//! rate limiting; the wait is `X-RateLimit-Reset` (seconds until the window resets; a
//! value that looks like a Unix time is read as one) or else `Retry-After`. 5xx is a
//! server error; any other 4xx (401 bad token, 403, 404, 400) is a client error.

use std::time::Duration;

use actors::ports::providers::ProviderError;
use actors::resilience::backoff::ErrorClass;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Calendly's error body, the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CalendlyApiError {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl CalendlyApiError {
    /// Parses an error body; `None` when it is not Calendly's JSON.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// Values of `X-RateLimit-Reset` above this are Unix times, not delays.
const EPOCH_THRESHOLD: i64 = 1_000_000_000;

/// Reads `X-RateLimit-Reset`: seconds until the window resets, or a Unix time.
pub fn parse_rate_limit_reset(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let n: i64 = value.trim().parse().ok()?;
    let secs = if n >= EPOCH_THRESHOLD {
        n - now.timestamp()
    } else {
        n
    };
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// The [`ProviderError`] for an HTTP error answer.
pub fn from_response(
    http_status: u16,
    body: Option<&CalendlyApiError>,
    retry_after: Option<Duration>,
) -> ProviderError {
    let class = match http_status {
        429 => ErrorClass::RateLimited { retry_after },
        500..=599 => ErrorClass::ServerError,
        _ => ErrorClass::ClientError,
    };
    let mut message = format!("calendly HTTP {http_status}");
    if let Some(body) = body {
        for part in [&body.title, &body.message].into_iter().flatten() {
            message.push_str(": ");
            message.push_str(part);
        }
    }
    ProviderError {
        class,
        message,
        outcome_unknown: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn reset_is_seconds_or_a_unix_time() {
        assert_eq!(
            parse_rate_limit_reset("42", now()),
            Some(Duration::from_secs(42))
        );
        let at = (now().timestamp() + 30).to_string();
        assert_eq!(
            parse_rate_limit_reset(&at, now()),
            Some(Duration::from_secs(30))
        );
        let past = (now().timestamp() - 30).to_string();
        assert_eq!(parse_rate_limit_reset(&past, now()), Some(Duration::ZERO));
        assert_eq!(parse_rate_limit_reset("soon", now()), None);
    }

    #[test]
    fn statuses_classify() {
        let body = CalendlyApiError::parse(
            br#"{"title": "Unauthenticated", "message": "The access token is invalid"}"#,
        );
        let unauth = from_response(401, body.as_ref(), None);
        assert_eq!(unauth.class, ErrorClass::ClientError);
        assert_eq!(
            unauth.message,
            "calendly HTTP 401: Unauthenticated: The access token is invalid"
        );
        assert!(!unauth.outcome_unknown);
        let after = Some(Duration::from_secs(9));
        assert_eq!(
            from_response(429, None, after).class,
            ErrorClass::RateLimited { retry_after: after }
        );
        assert_eq!(
            from_response(503, None, None).class,
            ErrorClass::ServerError
        );
        assert_eq!(
            from_response(404, None, None).class,
            ErrorClass::ClientError
        );
    }
}
