//! The rolling message cap of SPEC §5: at most 3 automated messages per customer in
//! any 24 h; opt-out confirmations and HELP replies are exempt.

use chrono::{DateTime, Duration, Utc};

/// Automated messages allowed per customer in the window.
pub const MAX_AUTOMATED_PER_WINDOW: usize = 3;

/// Message kinds that never count and are never held back by the cap.
pub const EXEMPT_KINDS: [&str; 2] = ["opt_out_confirmation", "help_reply"];

/// The window the cap looks back over.
pub fn window() -> Duration {
    Duration::hours(24)
}

/// Whether a message of `kind` may go out at `now`, given when earlier automated
/// messages to the same customer went out (any order, any age).
pub fn may_send(kind: &str, now: DateTime<Utc>, sent_at: &[DateTime<Utc>]) -> bool {
    if EXEMPT_KINDS.contains(&kind) {
        return true;
    }
    let since = now - window();
    sent_at
        .iter()
        .filter(|at| **at > since && **at <= now)
        .count()
        < MAX_AUTOMATED_PER_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::hours(hour)
    }

    #[test]
    fn the_fourth_in_a_day_is_held_back() {
        let sent = [at(1), at(5), at(9)];
        assert!(!may_send("reminder_24h", at(20), &sent));
        assert!(may_send("opt_out_confirmation", at(20), &sent));
        assert!(may_send("help_reply", at(20), &sent));
    }

    #[test]
    fn the_window_rolls() {
        let sent = [at(1), at(5), at(9)];
        assert!(
            may_send("reminder_24h", at(25), &sent),
            "24 h later the 01:00 message has left the window"
        );
        assert!(
            !may_send("reminder_24h", at(24), &sent),
            "23 h later the 01:00 message still counts"
        );
    }
}
