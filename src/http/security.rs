//! Security middleware (SPEC §8).
//!
//! - [`headers`]: on every response, `Content-Security-Policy` (`default-src 'self'`,
//!   `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `X-Content-Type-Options:
//!   nosniff`, `Referrer-Policy: no-referrer`, and `Strict-Transport-Security` when the
//!   public URL is https. A route that sets one of them itself keeps its own.
//! - [`admin_guard`]: on `/v1/admin/…` and `/v1/auth/…`, the inbound limit (100
//!   requests / 15 minutes per address → 429 `RATE_LIMIT_EXCEEDED` with `retryAfter`)
//!   and `Cache-Control: no-store`; on the dashboard (`/dashboard/…`), the same limit
//!   for state-changing requests (sign-in and actions; pages and live updates are
//!   reads, like the Event API) and `no-store` on everything but its static assets; on
//!   any cookie-authenticated form post without an `X-CSRF-Token` header, the form's
//!   `csrf_token` field is read (the body is put back for the handler) and handed to the
//!   `Principal` extractor.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpMessage};
use futures_util::StreamExt;

use super::{ApiError, AppState};
use crate::auth::principal::{PresentedCsrf, CSRF_FIELD, CSRF_HEADER};
use crate::auth::rate_limit::{InboundLimits, RateLimiter};
use crate::auth::sessions;
use crate::config::{Config, Secret};

/// The content security policy of every response.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// Body size read for a form's CSRF field when the configuration is not at hand.
const FALLBACK_BODY_LIMIT: usize = 256 * 1024;

/// The security headers for every response.
pub fn headers(config: &Config) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if config.public_url.scheme() == "https" {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
    } else {
        headers
    }
}

/// Whether `path` is an admin or auth route (rate limited, never cached).
pub fn is_admin_path(path: &str) -> bool {
    ["/v1/admin", "/v1/auth"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// Whether `path` is a dashboard route (`/dashboard` and below).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// Whether a request to `path` with `method` counts against the admin rate limit: any
/// admin or auth request, and the dashboard's state-changing ones.
pub fn is_rate_limited(method: &Method, path: &str) -> bool {
    is_admin_path(path) || (is_dashboard_path(path) && !is_safe(method))
}

/// Refuses a sign-in posted from another site (login CSRF: a page elsewhere signing the
/// victim's browser into the attacker's account). A browser says where a request comes
/// from in `Sec-Fetch-Site`: only `same-origin` (our own page) and `none` (typed by the
/// user) pass. A browser without it is judged by `Origin`, whose host and port must be
/// the request's own (`Host`) or the public URL's; `Origin: null` is what Chromium sends
/// from our own pages (their referrer policy is `no-referrer`), so it passes there. A
/// client that sends neither (curl, an integration) is not a browser that can be
/// tricked, and passes.
pub fn check_sign_in_origin(
    req: &actix_web::HttpRequest,
    public_url: &url::Url,
) -> Result<(), ApiError> {
    let header_text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let same_site = match (header_text("sec-fetch-site"), header_text("origin")) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, None | Some("null")) => true,
        (None, Some(origin)) => url::Url::parse(origin).is_ok_and(|origin| {
            let host = req.connection_info().host().to_string();
            let own = url::Url::parse(&format!("{}://{host}", origin.scheme()));
            own.is_ok_and(|own| same_authority(&origin, &own))
                || same_authority(&origin, public_url)
        }),
    };
    if same_site {
        Ok(())
    } else {
        Err(ApiError::Denied {
            message: "a sign-in must come from this site's own page".to_string(),
            details: serde_json::json!({"reason": "origin"}),
        })
    }
}

/// Whether two URLs name the same host and port.
fn same_authority(a: &url::Url, b: &url::Url) -> bool {
    a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether `path` is a provider webhook (`/webhooks/…`), limited per source address.
pub fn is_webhook_path(path: &str) -> bool {
    path.starts_with("/webhooks/")
}

/// Whether the answer to `path` must not be cached (everything admin, auth or
/// dashboard, but the dashboard's stylesheet and script).
pub fn is_no_store(path: &str) -> bool {
    is_admin_path(path) || (is_dashboard_path(path) && !path.starts_with("/dashboard/assets/"))
}

fn is_safe(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method)
}

/// The limits used when the application registered none (one set per process).
fn fallback_limits() -> &'static InboundLimits {
    static LIMITS: OnceLock<InboundLimits> = OnceLock::new();
    LIMITS.get_or_init(|| InboundLimits::new(0))
}

/// The limiter that counts a request to `path` with `method`, and its name for the log.
fn limiter_for<'a>(
    limits: &'a InboundLimits,
    method: &Method,
    path: &str,
) -> Option<(&'a RateLimiter, &'static str)> {
    if is_rate_limited(method, path) {
        Some((&limits.admin, "admin"))
    } else if is_webhook_path(path) {
        limits.webhooks.as_ref().map(|limiter| (limiter, "webhook"))
    } else {
        None
    }
}

/// Rate limits (admin and auth routes; webhooks per source when configured) and
/// `no-store` for admin and auth routes; a form's CSRF field for the `Principal`
/// extractor. Register the limits as `web::Data<InboundLimits>` app data, created once
/// for all workers.
pub async fn admin_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let no_store = is_no_store(req.path());
    let registered = req.app_data::<web::Data<InboundLimits>>().cloned();
    let limits: &InboundLimits = match &registered {
        Some(data) => data,
        None => fallback_limits(),
    };
    if let Some((limiter, which)) = limiter_for(limits, req.method(), req.path()) {
        let address = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip());
        if let Err(wait) = limiter.check(address, Instant::now()) {
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::warn!(address = %address, limit = which, "inbound rate limit exceeded");
            return Ok(req
                .error_response(ApiError::RateLimited { retry_after_secs })
                .map_into_boxed_body());
        }
    }
    if carries_form_csrf(&req) {
        if let Err(err) = read_form_csrf(&mut req).await {
            return Ok(req.error_response(err).map_into_boxed_body());
        }
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    if no_store {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// A state-changing form post authenticated by the session cookie alone, without the
/// CSRF header: its token may be in the body.
fn carries_form_csrf(req: &ServiceRequest) -> bool {
    let safe = is_safe(req.method());
    let headers = req.headers();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    !safe
        && is_form
        && !headers.contains_key(CSRF_HEADER)
        && !headers.contains_key(header::AUTHORIZATION)
        && sessions::cookie_value(headers).is_some()
}

/// Reads the body, notes its `csrf_token` field, and puts the body back.
async fn read_form_csrf(req: &mut ServiceRequest) -> Result<(), ApiError> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(FALLBACK_BODY_LIMIT, |state| {
            state.config.http.max_body_bytes
        });
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::validation(format!("unreadable body: {e}"), serde_json::json!({}))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    if let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) {
        if let Some((_, token)) = fields.into_iter().find(|(name, _)| name == CSRF_FIELD) {
            req.extensions_mut()
                .insert(PresentedCsrf(Secret::new(token)));
        }
    }
    req.set_payload(Payload::from(body));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_recognised() {
        assert!(is_admin_path("/v1/admin"));
        assert!(is_admin_path("/v1/admin/audit"));
        assert!(is_admin_path("/v1/auth/login"));
        assert!(!is_admin_path("/v1/administrator"));
        assert!(!is_admin_path("/v1/commands"));
        assert!(!is_admin_path("/health"));
    }

    #[test]
    fn dashboard_actions_are_limited_and_pages_never_cached() {
        assert!(is_dashboard_path("/dashboard"));
        assert!(is_dashboard_path("/dashboard/today"));
        assert!(!is_dashboard_path("/dashboards"));
        assert!(is_rate_limited(&Method::POST, "/dashboard/login"));
        assert!(is_rate_limited(
            &Method::POST,
            "/dashboard/escalations/e1/resolve"
        ));
        assert!(!is_rate_limited(&Method::GET, "/dashboard/today"));
        assert!(!is_rate_limited(&Method::GET, "/dashboard/live"));
        assert!(is_rate_limited(&Method::GET, "/v1/admin/audit"));
        assert!(!is_rate_limited(&Method::POST, "/v1/commands"));
        assert!(is_no_store("/dashboard/today"));
        assert!(is_no_store("/v1/auth/me"));
        assert!(!is_no_store("/dashboard/assets/dashboard.css"));
        assert!(!is_no_store("/health"));
    }
}
