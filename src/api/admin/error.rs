//! The Admin API's error type, mapped once to the SPEC §7 envelope (through
//! [`ApiError`]).

use actors::engine::EngineError;
use serde_json::json;

use crate::audit::AuditError;
use crate::http::ApiError;
use crate::metrics::business::MetricsError;
use crate::store::StoreError;

/// Everything an Admin API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The thing named does not exist (in the caller's tenant).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A parameter or body field is wrong.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The thing exists but is not in a state that allows the change (e.g. an
    /// escalation already resolved, a dead letter already archived).
    #[error("cannot move {what} from {from} to {to}")]
    State {
        what: &'static str,
        from: String,
        to: String,
    },
    /// The engine refused or failed (an invalid lifecycle move is a 409).
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// An engine actor did not answer (it stopped, e.g. during shutdown).
    #[error("the {0} is unavailable")]
    Unavailable(&'static str),
}

impl AdminError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        AdminError::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        let message = err.to_string();
        match err {
            AdminError::NotFound { .. } => ApiError::NotFound(message),
            AdminError::Invalid { field, .. } => {
                ApiError::validation(message, json!({"field": field}))
            }
            AdminError::State { from, to, .. } => ApiError::InvalidTransition { from, to },
            AdminError::Engine(engine) => engine.into(),
            AdminError::Store(store) => store.into(),
            AdminError::Metrics(MetricsError::InvalidRange(reason)) => {
                ApiError::validation(reason, json!({"field": "range"}))
            }
            AdminError::Unavailable(_) => ApiError::Unavailable {
                message,
                details: json!({}),
            },
            AdminError::Query(_) | AdminError::Audit(_) | AdminError::Metrics(_) => {
                ApiError::Internal(message)
            }
        }
    }
}
