//! Per-request context: a request id on every response, the caller's
//! `X-Correlation-Id` (or the request id) carried into every log line through a span,
//! one access-log line and the HTTP metrics per request, and the error envelope for
//! any error response that was produced without one.

use std::time::Instant;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};

use tracing::Instrument;
use uuid::Uuid;

use super::error::envelope_for_status;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// The ids of the request being handled, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub correlation_id: String,
}

impl RequestContext {
    /// The correlation id of the request `req` (`None` outside the middleware).
    pub fn correlation_of(req: &actix_web::HttpRequest) -> Option<String> {
        use actix_web::HttpMessage;
        req.extensions()
            .get::<RequestContext>()
            .map(|ctx| ctx.correlation_id.clone())
    }
}

/// A caller-supplied correlation id is kept when it is short and plain.
fn acceptable_correlation_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = Uuid::now_v7().to_string();
    let correlation_id = req
        .headers()
        .get(&CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_correlation_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let method = req.method().to_string();
    let path = req.path().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    req.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        correlation_id: correlation_id.clone(),
    });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        correlation_id = %correlation_id,
        method = %method,
        path = %path,
    );
    // Handler errors arrive here already rendered as responses; an `Err` comes only
    // from a failing middleware and is passed on for actix to render. (Cloning the
    // request to render it here would break routing, which needs it unshared.)
    let mut response = async {
        let response = next.call(req).await?.map_into_boxed_body();
        Ok::<_, actix_web::Error>(ensure_envelope(response, &method, &path).await)
    }
    .instrument(span.clone())
    .await?;

    let status = response.status();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        headers.insert(CORRELATION_ID, value);
    }
    let elapsed = started.elapsed();
    let labels = [
        ("method", method.clone()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request handled"
        );
    });
    Ok(response)
}

/// Rewrites an error response that is not JSON into the standard envelope, keeping
/// its status.
async fn ensure_envelope(
    response: ServiceResponse<BoxBody>,
    method: &str,
    path: &str,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (request, original) = response.into_parts();
    let text = body::to_bytes_limited(original.into_body(), 4096)
        .await
        .ok()
        .and_then(Result::ok)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let mut replacement = envelope_for_status(status, method, path, &text).error_response();
    *replacement.status_mut() = status;
    ServiceResponse::new(request, replacement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_kept_only_when_plain() {
        assert!(acceptable_correlation_id("order-123_abc.def:9"));
        assert!(!acceptable_correlation_id(""));
        assert!(!acceptable_correlation_id("has space"));
        assert!(!acceptable_correlation_id(&"x".repeat(129)));
        assert!(!acceptable_correlation_id("line\nbreak"));
    }
}
