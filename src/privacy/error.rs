//! What a GDPR export, erasure or rectification can fail with, and how each failure
//! reaches the caller (the SPEC §7 envelope, through [`ApiError`]).

use serde_json::json;

use crate::audit::AuditError;
use crate::http::ApiError;
use crate::store::StoreError;

/// Everything the privacy operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// No such customer in the caller's tenant.
    #[error("customer {0} not found")]
    NotFound(String),
    /// A field of the request is wrong; nothing was changed.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The phone number asked for belongs to another customer of the tenant.
    #[error("the phone number is already used by another customer")]
    PhoneInUse,
    /// The customer was erased: there is nothing left to rectify.
    #[error("customer {0} was erased")]
    Erased(String),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl PrivacyError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        PrivacyError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A failure worth trying again at once: a deadlock (PostgreSQL) or a busy database
    /// (SQLite) made the transaction give up, and it changed nothing.
    pub fn is_transient(&self) -> bool {
        let message = match self {
            PrivacyError::Query(err) => err.to_string(),
            PrivacyError::Store(StoreError::Query(err)) => err.to_string(),
            PrivacyError::Audit(AuditError::Query(err)) => err.to_string(),
            _ => return false,
        };
        [
            "deadlock detected",
            "database is locked",
            "could not serialize",
        ]
        .iter()
        .any(|m| message.contains(m))
    }
}

impl From<PrivacyError> for ApiError {
    fn from(err: PrivacyError) -> Self {
        let message = err.to_string();
        match err {
            PrivacyError::NotFound(_) => ApiError::NotFound(message),
            PrivacyError::Invalid { field, .. } => {
                ApiError::validation(message, json!({"field": field}))
            }
            // Answered as 409 by the handler; this is the fallback shape.
            PrivacyError::PhoneInUse => {
                ApiError::validation(message, json!({"field": "phone", "reason": "phone_in_use"}))
            }
            PrivacyError::Erased(_) => ApiError::InvalidTransition {
                from: "erased".to_string(),
                to: "rectified".to_string(),
            },
            PrivacyError::Store(store) => store.into(),
            PrivacyError::Query(_) | PrivacyError::Audit(_) => ApiError::Internal(message),
        }
    }
}
