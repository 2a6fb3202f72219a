//! The workflow instance state machine (ARCHITECTURE.md): pending, running, waiting,
//! retrying, and the terminal completed, failed and cancelled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    /// Created, not started yet.
    Pending,
    /// Executing a step.
    Running,
    /// Parked on a timer or an external event (a reply, a payment).
    Waiting,
    /// A step failed with a retryable error; a retry timer is set.
    Retrying,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move a workflow from {from} to {to}")]
pub struct InvalidWorkflowTransition {
    pub from: WorkflowState,
    pub to: WorkflowState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workflow state `{0}`")]
pub struct UnknownWorkflowState(pub String);

impl WorkflowState {
    pub const ALL: [WorkflowState; 7] = [
        Self::Pending,
        Self::Running,
        Self::Waiting,
        Self::Retrying,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Any live workflow may be cancelled; work only moves through `running`.
    pub fn can_transition_to(self, to: WorkflowState) -> bool {
        use WorkflowState::*;
        match self {
            Pending => matches!(to, Running | Cancelled),
            Running => matches!(to, Waiting | Retrying | Completed | Failed | Cancelled),
            Waiting => matches!(to, Running | Cancelled),
            Retrying => matches!(to, Running | Failed | Cancelled),
            Completed | Failed | Cancelled => false,
        }
    }

    pub fn transition(self, to: WorkflowState) -> Result<WorkflowState, InvalidWorkflowTransition> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(InvalidWorkflowTransition { from: self, to })
        }
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkflowState {
    type Err = UnknownWorkflowState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownWorkflowState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::WorkflowState::{self, *};

    const ALLOWED: &[(WorkflowState, WorkflowState)] = &[
        (Pending, Running),
        (Pending, Cancelled),
        (Running, Waiting),
        (Running, Retrying),
        (Running, Completed),
        (Running, Failed),
        (Running, Cancelled),
        (Waiting, Running),
        (Waiting, Cancelled),
        (Retrying, Running),
        (Retrying, Failed),
        (Retrying, Cancelled),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for from in WorkflowState::ALL {
            for to in WorkflowState::ALL {
                let allowed = ALLOWED.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for state in WorkflowState::ALL {
            assert_eq!(state.as_str().parse::<WorkflowState>(), Ok(state));
        }
    }
}
