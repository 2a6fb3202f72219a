//! Twilio error classification: turns what Twilio answered (HTTP status, its error JSON
//! `{"code", "message", "more_info", "status"}`, `Retry-After`) into the engine's
//! [`ProviderError`], and recognises the outcomes callers act on (an opted-out
//! recipient). Pure: no I/O, no clock except the `now` callers pass in.
//!
//! Codes and meanings follow Twilio's error dictionary (twilio.com/docs/api/errors).
//! A code decides only 4xx answers: a 429 is always rate limiting and a 5xx is always a
//! server error, whatever code the body carries. Unknown codes fall back to the HTTP
//! status. The same table classifies the `ErrorCode` of a status callback (30xxx
//! delivery errors) through [`classify_code`].

use std::time::Duration;

use actors::ports::providers::ProviderError;
use actors::resilience::backoff::ErrorClass;
use serde::Deserialize;

/// Twilio's "Attempt to send to unsubscribed recipient": the recipient replied STOP.
pub const OPT_OUT_CODE: u32 = 21610;

/// The prefix of every [`ProviderError::message`] built from a Twilio error code;
/// [`twilio_code`] reads the code back from it.
const CODE_PREFIX: &str = "twilio error ";

/// Twilio's error body, as every REST error answer carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TwilioApiError {
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

impl TwilioApiError {
    /// Parses an error body; `None` when it is not Twilio's JSON.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// What a Twilio error code means for us, if we know the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Retrying this request cannot help, but a configuration change can.
    Client,
    /// This message to this recipient will never succeed.
    Final,
    /// Too many requests: wait and retry.
    RateLimited,
    /// Twilio or the carrier failed; retrying may help.
    Server,
}

/// The known codes: (code, kind, summary). Summaries contain no user data.
const CODES: &[(u32, Kind, &str)] = &[
    (
        20003,
        Kind::Client,
        "authentication failed (account SID / auth token)",
    ),
    (20404, Kind::Client, "resource not found"),
    (20429, Kind::RateLimited, "too many requests"),
    (20500, Kind::Server, "Twilio internal server error"),
    (20503, Kind::Server, "Twilio service unavailable"),
    (21211, Kind::Final, "invalid 'To' phone number"),
    (21401, Kind::Client, "invalid phone number or sender ID"),
    (
        21407,
        Kind::Final,
        "this phone number type does not support SMS",
    ),
    (
        21408,
        Kind::Client,
        "sending to this region is not enabled on the account",
    ),
    (21602, Kind::Client, "message body is required"),
    (21603, Kind::Client, "'From' phone number is required"),
    (21604, Kind::Client, "'To' phone number is required"),
    (
        21606,
        Kind::Client,
        "'From' number is not a message-capable Twilio number",
    ),
    (
        21608,
        Kind::Client,
        "'To' number is not verified (trial account)",
    ),
    (
        OPT_OUT_CODE,
        Kind::Final,
        "recipient opted out (unsubscribed: replied STOP)",
    ),
    (
        21612,
        Kind::Final,
        "'To' number cannot be reached from this 'From'",
    ),
    (
        21614,
        Kind::Final,
        "'To' number is not a valid mobile number",
    ),
    (21617, Kind::Client, "message body exceeds 1600 characters"),
    (21635, Kind::Final, "'To' number is a landline"),
    (21659, Kind::Client, "'From' is not a Twilio phone number"),
    (30001, Kind::RateLimited, "queue overflow"),
    (30002, Kind::Client, "account suspended"),
    (30003, Kind::Server, "unreachable destination handset"),
    (30004, Kind::Final, "message blocked"),
    (30005, Kind::Final, "unknown destination handset"),
    (30006, Kind::Final, "landline or unreachable carrier"),
    (30007, Kind::Final, "message filtered by the carrier"),
    (30008, Kind::Server, "unknown carrier error"),
    (30022, Kind::RateLimited, "A2P 10DLC rate limit exceeded"),
    (30034, Kind::Client, "sender not registered for A2P 10DLC"),
    (
        63014,
        Kind::Final,
        "recipient blocked the sender (WhatsApp)",
    ),
    (
        63016,
        Kind::Final,
        "outside the WhatsApp 24-hour window: free-form message not allowed",
    ),
    (63018, Kind::RateLimited, "WhatsApp rate limit exceeded"),
];

fn lookup_code(code: u32) -> Option<(Kind, &'static str)> {
    CODES
        .iter()
        .find(|(known, _, _)| *known == code)
        .map(|(_, kind, summary)| (*kind, *summary))
}

fn class_of(kind: Kind, retry_after: Option<Duration>) -> ErrorClass {
    match kind {
        Kind::Client => ErrorClass::ClientError,
        Kind::Final => ErrorClass::Final,
        Kind::RateLimited => ErrorClass::RateLimited { retry_after },
        Kind::Server => ErrorClass::ServerError,
    }
}

/// The class of a Twilio error code on its own (e.g. a status callback's `ErrorCode`);
/// `None` for a code this table does not know.
pub fn classify_code(code: u32) -> Option<ErrorClass> {
    lookup_code(code).map(|(kind, _)| class_of(kind, None))
}

/// A short, data-free description of a known code.
pub fn describe_code(code: u32) -> Option<&'static str> {
    lookup_code(code).map(|(_, summary)| summary)
}

/// The class of an HTTP error answer: 429 → rate limited, 5xx → server error, other
/// 4xx → by Twilio's code when known, else client error.
pub fn classify(http_status: u16, code: Option<u32>, retry_after: Option<Duration>) -> ErrorClass {
    if http_status == 429 {
        return ErrorClass::RateLimited { retry_after };
    }
    if http_status >= 500 {
        return ErrorClass::ServerError;
    }
    match code.and_then(lookup_code) {
        Some((kind, _)) => class_of(kind, retry_after),
        None => ErrorClass::ClientError,
    }
}

/// The [`ProviderError`] for an HTTP error answer from Twilio. Twilio answered, so the
/// outcome is known (`outcome_unknown` is false). Phone numbers in Twilio's message are
/// masked to their last four digits.
pub fn from_response(
    http_status: u16,
    body: Option<&TwilioApiError>,
    retry_after: Option<Duration>,
) -> ProviderError {
    let code = body.and_then(|b| b.code);
    let class = classify(http_status, code, retry_after);
    let detail = body
        .and_then(|b| b.message.as_deref())
        .map(mask_numbers)
        .unwrap_or_default();
    let message = match code {
        Some(code) => {
            let summary = describe_code(code).unwrap_or("unrecognised Twilio error");
            format!("{CODE_PREFIX}{code} (HTTP {http_status}): {summary}: {detail}")
        }
        None => format!("twilio HTTP {http_status}: {detail}"),
    };
    ProviderError {
        class,
        message: message.trim_end_matches([' ', ':']).to_string(),
        outcome_unknown: false,
    }
}

/// The Twilio error code a [`ProviderError`] from [`from_response`] carries.
pub fn twilio_code(error: &ProviderError) -> Option<u32> {
    let rest = error.message.strip_prefix(CODE_PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// True when Twilio refused the message because the recipient opted out (code 21610):
/// the engine must record the opt-out and never retry.
pub fn is_opt_out(error: &ProviderError) -> bool {
    error.class == ErrorClass::Final && twilio_code(error) == Some(OPT_OUT_CODE)
}

/// Masks every run of seven or more digits (optionally `+`-prefixed) to its last four:
/// `+15551234567` → `+…4567`. Used on any text that may quote a phone number.
pub fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let plus = chars[i] == '+';
        let start = if plus { i + 1 } else { i };
        let mut end = start;
        while end < chars.len() && chars[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits >= 7 {
            if plus {
                out.push('+');
            }
            out.push('…');
            out.extend(&chars[end - 4..end]);
            i = end;
        } else if digits > 0 || plus {
            out.extend(&chars[i..end.max(i + 1)]);
            i = end.max(i + 1);
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The last four digits of a phone number for logs: `+15551234567` → `…4567`.
pub fn mask_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u32, message: &str, status: u16) -> TwilioApiError {
        TwilioApiError {
            code: Some(code),
            message: Some(message.to_string()),
            more_info: Some(format!("https://www.twilio.com/docs/errors/{code}")),
            status: Some(status),
        }
    }

    #[test]
    fn parses_twilio_error_json() {
        let body = br#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#;
        let parsed = TwilioApiError::parse(body).expect("parses");
        assert_eq!(parsed.code, Some(21610));
        assert_eq!(parsed.status, Some(400));
        assert!(TwilioApiError::parse(b"<html>").is_none());
    }

    #[test]
    fn opt_out_is_final_and_recognised() {
        let body = api_error(21610, "Attempt to send to unsubscribed recipient", 400);
        let err = from_response(400, Some(&body), None);
        assert_eq!(err.class, ErrorClass::Final);
        assert!(!err.outcome_unknown);
        assert!(is_opt_out(&err));
        assert!(err.message.contains("opted out"));
        assert!(err.message.contains("unsubscribed"));
        assert_eq!(twilio_code(&err), Some(21610));
    }

    #[test]
    fn invalid_and_non_mobile_numbers_are_final() {
        for code in [21211, 21614, 21635, 21612] {
            assert_eq!(classify(400, Some(code), None), ErrorClass::Final, "{code}");
        }
        let err = from_response(400, Some(&api_error(21211, "bad", 400)), None);
        assert!(!is_opt_out(&err));
    }

    #[test]
    fn auth_failure_is_client_error_not_retryable() {
        let class = classify(401, Some(20003), None);
        assert_eq!(class, ErrorClass::ClientError);
        assert!(!class.is_retryable());
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            classify(429, Some(20429), after),
            ErrorClass::RateLimited { retry_after: after }
        );
        assert_eq!(
            classify(429, None, None),
            ErrorClass::RateLimited { retry_after: None }
        );
        // A 4xx carrying a rate-limit code is rate limiting too.
        assert_eq!(
            classify(400, Some(20429), after),
            ErrorClass::RateLimited { retry_after: after }
        );
    }

    #[test]
    fn status_decides_before_code_for_5xx() {
        assert_eq!(classify(500, Some(21610), None), ErrorClass::ServerError);
        assert_eq!(classify(503, None, None), ErrorClass::ServerError);
        let err = from_response(500, None, None);
        assert!(err.class.is_retryable());
        assert!(!err.outcome_unknown);
        assert_eq!(err.message, "twilio HTTP 500");
    }

    #[test]
    fn unknown_4xx_codes_are_client_errors() {
        assert_eq!(classify(400, Some(99999), None), ErrorClass::ClientError);
        assert_eq!(classify(404, None, None), ErrorClass::ClientError);
        let err = from_response(400, Some(&api_error(99999, "odd", 400)), None);
        assert!(err.message.contains("unrecognised"));
        assert_eq!(twilio_code(&err), Some(99999));
    }

    #[test]
    fn delivery_error_codes_classify() {
        assert_eq!(classify_code(30003), Some(ErrorClass::ServerError));
        assert_eq!(classify_code(30007), Some(ErrorClass::Final));
        assert_eq!(
            classify_code(30001),
            Some(ErrorClass::RateLimited { retry_after: None })
        );
        assert_eq!(classify_code(12345), None);
    }

    #[test]
    fn phone_numbers_are_masked_in_messages() {
        let body = api_error(21211, "The 'To' number +15551234567 is not valid", 400);
        let err = from_response(400, Some(&body), None);
        assert!(!err.message.contains("5551234567"), "{}", err.message);
        assert!(err.message.contains("+…4567"));
        assert_eq!(mask_numbers("code 21211, +1 x"), "code 21211, +1 x");
        assert_eq!(mask_numbers("call 4155551234 now"), "call …1234 now");
        assert_eq!(mask_number("whatsapp:+15551234567"), "…4567");
        assert_eq!(mask_number("12"), "…12");
    }
}
