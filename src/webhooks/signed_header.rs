//! The `t=<unix seconds>,v1=<hex>` signature scheme that Stripe, Calendly and ARO's own
//! booking webhook share: HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's secret,
//! hex-encoded, with a tolerance window around `t`.
//!
//! The header may carry several `v1=` values (a secret being rolled); any one matching
//! passes. Comparison is constant-time (`Mac::verify_slice`). Other schemes' entries
//! (`v0=`, unknown keys) are ignored, as the providers document.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. Each maps to a 4xx with the reason in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature timestamp is outside the allowed window")]
    Stale,
    #[error("no signature in the header matches the body")]
    Mismatch,
}

impl SignatureError {
    /// A short machine-readable reason for the error envelope's details.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// The parts of a `t=…,v1=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    pub timestamp: i64,
    pub signatures: Vec<Vec<u8>>,
}

/// Parses a header value; entries other than `t` and `v1` are ignored.
pub fn parse(header: &str) -> Result<SignedHeader, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed("an entry without '='"));
        };
        match key.trim() {
            "t" => {
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not a whole number"))?;
                timestamp = Some(t);
            }
            "v1" => {
                let bytes = hex::decode(value.trim())
                    .map_err(|_| SignatureError::Malformed("v1 is not hex"))?;
                signatures.push(bytes);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t="))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1="));
    }
    Ok(SignedHeader {
        timestamp,
        signatures,
    })
}

/// Verifies `header` for `body` under `secret`, accepting timestamps within
/// `tolerance_secs` of `now` (either side: a clock ahead of ours is as suspect as one
/// behind).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
    tolerance_secs: i64,
    now: DateTime<Utc>,
) -> Result<SignedHeader, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let parsed = parse(header)?;
    if (now.timestamp() - parsed.timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let mac = signed_mac(secret, parsed.timestamp, body)?;
    let matches = parsed
        .signatures
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(parsed)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header a sender would attach: `t={timestamp},v1={hex}`. Used by tests, the
/// documentation's example and outgoing subscription deliveries.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = signed_mac(secret, timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={timestamp},v1={digest}")
}

fn signed_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<HmacSha256, SignatureError> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| SignatureError::Malformed("unusable secret"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"event":"appointment.created"}"#;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn a_fresh_signature_over_the_body_passes() {
        let header = sign(SECRET, now().timestamp(), BODY);
        assert!(verify(Some(&header), BODY, SECRET, 300, now()).is_ok());
    }

    #[test]
    fn hmac_sha256_matches_a_known_vector() {
        // Computed independently: printf '1767225600.{"event":"appointment.created"}' |
        // openssl dgst -sha256 -hmac whsec_test_secret
        let header = sign(SECRET, 1_767_225_600, BODY);
        let expected = {
            let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
            mac.update(b"1767225600.{\"event\":\"appointment.created\"}");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(header, format!("t=1767225600,v1={expected}"));
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_fails() {
        let header = sign(SECRET, now().timestamp(), BODY);
        assert_eq!(
            verify(Some(&header), b"{\"event\":\"x\"}", SECRET, 300, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, b"other", 300, now()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let old = sign(SECRET, now().timestamp() - 301, BODY);
        let future = sign(SECRET, now().timestamp() + 301, BODY);
        let edge = sign(SECRET, now().timestamp() - 300, BODY);
        assert_eq!(
            verify(Some(&old), BODY, SECRET, 300, now()),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&future), BODY, SECRET, 300, now()),
            Err(SignatureError::Stale)
        );
        assert!(verify(Some(&edge), BODY, SECRET, 300, now()).is_ok());
    }

    #[test]
    fn missing_and_malformed_headers_fail() {
        assert_eq!(
            verify(None, BODY, SECRET, 300, now()),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1767225600",
            "t=1767225600,v1=zz",
            "garbage",
        ] {
            let err = verify(Some(bad), BODY, SECRET, 300, now()).expect_err(bad);
            assert!(
                matches!(err, SignatureError::Malformed(_)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn any_matching_v1_passes_and_other_schemes_are_ignored() {
        let good = sign(SECRET, now().timestamp(), BODY);
        let digest = good.split("v1=").nth(1).unwrap();
        let header = format!(
            "t={},v0=deadbeef,v1={},v1={digest}",
            now().timestamp(),
            "ab".repeat(32)
        );
        assert!(verify(Some(&header), BODY, SECRET, 300, now()).is_ok());
        let none_match = format!("t={},v1={}", now().timestamp(), "ab".repeat(32));
        assert_eq!(
            verify(Some(&none_match), BODY, SECRET, 300, now()),
            Err(SignatureError::Mismatch)
        );
    }
}
