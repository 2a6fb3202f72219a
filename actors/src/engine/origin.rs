//! What caused a command: the ids its events carry in their metadata (SPEC §7 event
//! envelope `metadata: {workflowId, correlationId, causationId}`).
//!
//! - `correlation_id` ties together everything one outside request set off — the
//!   `X-Correlation-Id` of the webhook delivery or Command API call (or the one the
//!   daemon gave it), carried through the durable inbox.
//! - `causation_id` names the one thing that caused this command: the Command API's
//!   command id, a provider's delivery or event id, the timer that fired, the outbox
//!   row whose side effect settled.
//!
//! `workflowId` is not here: an event knows it from what it is about (the deposit
//! workflow's events carry its instance id).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
}

impl Origin {
    /// Caused by `causation_id`, within the request `correlation_id`.
    pub fn new(correlation_id: Option<String>, causation_id: impl Into<String>) -> Self {
        Self {
            correlation_id,
            causation_id: Some(causation_id.into()),
        }
    }

    /// Caused by `causation_id`, outside any request (a timer, a settled side effect).
    pub fn caused_by(causation_id: impl Into<String>) -> Self {
        Self::new(None, causation_id)
    }

    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none() && self.causation_id.is_none()
    }
}
