//! The appointment lifecycle of SPEC §3: its states and the only transitions allowed
//! between them. Everything else is rejected as an `InvalidTransition` and changes
//! nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Confirmed,
    /// Transient: between the booking system reporting a move and the new time.
    Rescheduled,
    InProgress,
    Completed,
    NoShow,
    Cancelled,
}

/// A move the lifecycle table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move an appointment from {from} to {to}")]
pub struct InvalidTransition {
    pub from: AppointmentStatus,
    pub to: AppointmentStatus,
}

/// A status name that is not one of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown appointment status `{0}`")]
pub struct UnknownStatus(pub String);

impl AppointmentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [AppointmentStatus; 7] = [
        Self::Booked,
        Self::Confirmed,
        Self::Rescheduled,
        Self::InProgress,
        Self::Completed,
        Self::NoShow,
        Self::Cancelled,
    ];

    /// The wire and storage name (`in_progress`, `no_show`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Confirmed => "confirmed",
            Self::Rescheduled => "rescheduled",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
        }
    }

    /// Completed, no-show and cancelled appointments never move again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::NoShow | Self::Cancelled)
    }

    /// The SPEC §3 table.
    pub fn can_transition_to(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus::*;
        match self {
            Booked => matches!(
                to,
                Confirmed | Rescheduled | Cancelled | NoShow | InProgress
            ),
            Confirmed => matches!(to, Rescheduled | Cancelled | InProgress | NoShow),
            Rescheduled => matches!(to, Booked),
            InProgress => matches!(to, Completed | NoShow),
            Completed | NoShow | Cancelled => false,
        }
    }

    /// The new status, or why the move is not allowed.
    pub fn transition(self, to: AppointmentStatus) -> Result<AppointmentStatus, InvalidTransition> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppointmentStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::AppointmentStatus::{self, *};

    /// The SPEC §3 table written out as pairs, independent of `can_transition_to`.
    const ALLOWED: &[(AppointmentStatus, AppointmentStatus)] = &[
        (Booked, Confirmed),
        (Booked, Rescheduled),
        (Booked, Cancelled),
        (Booked, NoShow),
        (Booked, InProgress),
        (Confirmed, Rescheduled),
        (Confirmed, Cancelled),
        (Confirmed, InProgress),
        (Confirmed, NoShow),
        (Rescheduled, Booked),
        (InProgress, Completed),
        (InProgress, NoShow),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                let allowed = ALLOWED.contains(&(from, to));
                match from.transition(to) {
                    Ok(next) => {
                        assert!(allowed, "{from} -> {to} must be rejected");
                        assert_eq!(next, to);
                    }
                    Err(err) => {
                        assert!(!allowed, "{from} -> {to} must be allowed");
                        assert_eq!((err.from, err.to), (from, to));
                    }
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in AppointmentStatus::ALL {
            assert_eq!(status.as_str().parse::<AppointmentStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::Value::String(status.as_str().into()))
            );
        }
        assert!("noshow".parse::<AppointmentStatus>().is_err());
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in AppointmentStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
        {
            assert!(AppointmentStatus::ALL
                .iter()
                .all(|to| !from.can_transition_to(*to)));
        }
    }
}
