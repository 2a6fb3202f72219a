//! The HTTP layer's error type and the SPEC §7 envelope every error answers with:
//! `{"error":{"code","message","details","retryable"}}`.
//!
//! Handlers return [`ApiError`]; it is mapped to a status and envelope here, once.
//! Errors raised by actix itself (unknown route, wrong method, body too large, bad
//! JSON) are turned into the same envelope by [`envelope_for_status`] and the JSON
//! extractor's error handler.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::StoreError;

/// The public error codes (SPEC §7). The set is closed: integrators switch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidTransition,
    IdempotencyConflict,
    RateLimitExceeded,
    CircuitBreakerOpen,
    InternalError,
}

/// Everything an HTTP handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { message: String, details: Value },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("expected a body of type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("authentication required")]
    Unauthorized,
    /// A login with a wrong username or password.
    #[error("invalid username or password")]
    BadCredentials,
    /// A webhook's signature did not verify.
    #[error("{0}")]
    Signature(#[from] crate::webhooks::signed_header::SignatureError),
    #[error("{0}")]
    Forbidden(String),
    /// Authenticated but not allowed; `details.reason` says why (`role`, `csrf`,
    /// `tenant`).
    #[error("{message}")]
    Denied { message: String, details: Value },
    #[error("cannot move from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Refused for a while for a stated reason (e.g. `login_locked`).
    #[error("{message}")]
    Throttled {
        message: String,
        reason: &'static str,
        retry_after_secs: u64,
    },
    #[error("the {domain} provider is unavailable (circuit breaker open)")]
    CircuitOpen { domain: String },
    #[error("{message}")]
    Unavailable { message: String, details: Value },
    /// The message is logged, never sent to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn validation(message: impl Into<String>, details: Value) -> Self {
        ApiError::Validation {
            message: message.into(),
            details,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType { .. } => ErrorCode::ValidationError,
            ApiError::NotFound(_) | ApiError::MethodNotAllowed { .. } => ErrorCode::NotFound,
            ApiError::Unauthorized | ApiError::BadCredentials | ApiError::Signature(_) => {
                ErrorCode::Unauthorized
            }
            ApiError::Forbidden(_) | ApiError::Denied { .. } => ErrorCode::Forbidden,
            ApiError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            ApiError::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            ApiError::RateLimited { .. } | ApiError::Throttled { .. } => {
                ErrorCode::RateLimitExceeded
            }
            ApiError::CircuitOpen { .. } => ErrorCode::CircuitBreakerOpen,
            ApiError::Unavailable { .. } | ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Throttled { .. }
                | ApiError::CircuitOpen { .. }
                | ApiError::Unavailable { .. }
                | ApiError::Internal(_)
        )
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Validation { details, .. }
            | ApiError::Unavailable { details, .. }
            | ApiError::Denied { details, .. } => details.clone(),
            ApiError::BadCredentials => json!({"reason": "invalid_credentials"}),
            ApiError::RateLimited { retry_after_secs } => json!({"retryAfter": retry_after_secs}),
            ApiError::Throttled {
                reason,
                retry_after_secs,
                ..
            } => json!({"reason": reason, "retryAfter": retry_after_secs}),
            ApiError::PayloadTooLarge { limit } => {
                json!({"reason": "payload_too_large", "limitBytes": limit})
            }
            ApiError::UnsupportedMediaType { expected } => {
                json!({"reason": "unsupported_media_type", "expected": expected})
            }
            ApiError::MethodNotAllowed { method, .. } => {
                json!({"reason": "method_not_allowed", "method": method})
            }
            ApiError::InvalidTransition { from, to } => json!({"from": from, "to": to}),
            ApiError::CircuitOpen { domain } => json!({"domain": domain}),
            ApiError::Signature(err) => json!({"reason": err.reason()}),
            _ => json!({}),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized | ApiError::BadCredentials | ApiError::Signature(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::InvalidTransition { .. } | ApiError::IdempotencyConflict => {
                StatusCode::CONFLICT
            }
            ApiError::RateLimited { .. } | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::CircuitOpen { .. } | ApiError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        let mut body = json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "details": self.details(),
                "retryable": self.retryable(),
            }
        });
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::Throttled {
            retry_after_secs, ..
        } = self
        {
            body["error"]["retryAfter"] = json!(retry_after_secs);
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        response.json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => ApiError::Unavailable {
                message: "the database is unavailable; retry shortly".to_string(),
                details: json!({}),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        let message = err.to_string();
        match err {
            AuthError::Unauthenticated => ApiError::Unauthorized,
            AuthError::InvalidCredentials => ApiError::BadCredentials,
            AuthError::LockedOut { retry_after_secs } => ApiError::Throttled {
                message,
                reason: "login_locked",
                retry_after_secs,
            },
            AuthError::RoleTooLow { required, actual } => ApiError::Denied {
                message,
                details: json!({"reason": "role", "required": required, "role": actual}),
            },
            AuthError::Csrf => ApiError::Denied {
                message,
                details: json!({"reason": "csrf"}),
            },
            AuthError::WrongTenant(_) => ApiError::Denied {
                message,
                details: json!({"reason": "tenant"}),
            },
            AuthError::WeakPassword(problems) => ApiError::validation(
                message,
                json!({
                    "reason": "weak_password",
                    "problems": problems.iter().map(|p| p.code()).collect::<Vec<_>>(),
                }),
            ),
            AuthError::Invalid { field, .. } => {
                ApiError::validation(message, json!({"field": field}))
            }
            AuthError::Conflict(_) => {
                ApiError::validation(message, json!({"reason": "already_exists"}))
            }
            AuthError::NotFound(_) => ApiError::NotFound(message),
            AuthError::Store(store) => store.into(),
            AuthError::Hash(_) | AuthError::Audit(_) => ApiError::Internal(message),
        }
    }
}

impl From<actors::engine::EngineError> for ApiError {
    fn from(err: actors::engine::EngineError) -> Self {
        use actors::engine::EngineError;
        use actors::ports::store::StoreError as PortError;
        match err {
            EngineError::InvalidTransition(t) => ApiError::InvalidTransition {
                from: t.from.to_string(),
                to: t.to.to_string(),
            },
            EngineError::NotFound(id) => ApiError::NotFound(format!("appointment {id} not found")),
            EngineError::Invalid(reason) => ApiError::validation(reason, json!({})),
            EngineError::Store(PortError::Unavailable(_)) | EngineError::ActorUnavailable => {
                ApiError::Unavailable {
                    message: "temporarily unavailable; retry shortly".to_string(),
                    details: json!({}),
                }
            }
            EngineError::Store(other) => ApiError::Internal(other.to_string()),
        }
    }
}

/// The envelope for an error response actix produced without one, chosen by status.
pub fn envelope_for_status(status: StatusCode, method: &str, path: &str, text: &str) -> ApiError {
    let text = text.trim();
    let message = if text.is_empty() || text.len() > 200 {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.to_string()
    };
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(format!("no route for {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
        },
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::FORBIDDEN => ApiError::Forbidden(message),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::Validation {
            message,
            details: json!({"reason": "payload_too_large"}),
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::Validation {
            message,
            details: json!({"reason": "unsupported_media_type"}),
        },
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
            retry_after_secs: 1,
        },
        s if s.is_client_error() => ApiError::Validation {
            message,
            details: json!({}),
        },
        _ => ApiError::Internal(message),
    }
}
