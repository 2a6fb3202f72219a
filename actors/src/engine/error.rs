//! The engine's error type.

use crate::domain::appointment_status::InvalidTransition;
use crate::ports::store::StoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The lifecycle does not allow the requested move; nothing changed.
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The command refers to an appointment that does not exist.
    #[error("appointment {0} not found")]
    NotFound(String),
    /// The command itself is malformed.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// Storage failed; the change was not made.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor handling the appointment stopped before answering; retry.
    #[error("the appointment's actor is unavailable; retry")]
    ActorUnavailable,
}
