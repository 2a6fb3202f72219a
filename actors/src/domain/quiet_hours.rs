//! Quiet hours (SPEC §5): no automated message inside the business's quiet window in
//! the appointment's zone. A message due inside it moves to the nearest allowed instant
//! that is not after its latest allowed time (start − 2 h), or is skipped when there is
//! none. Wall-clock reasoning happens in the zone, so it holds across DST changes.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The quiet window in local wall-clock time, e.g. 21:00 → 08:00 (it may wrap midnight).
/// Quiet from `start` inclusive to `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietWindow {
    /// Whether this local time of day is quiet.
    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// Whether the instant is quiet in `zone`.
    pub fn contains_instant(&self, at: DateTime<Utc>, zone: Tz) -> bool {
        self.contains(at.with_timezone(&zone).time())
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendDecision {
    /// Send at this instant (which may be `due` itself).
    SendAt(DateTime<Utc>),
    /// No allowed instant exists between now and the latest allowed time.
    Skip,
}

/// Decides when a message due at `due` may go out.
///
/// The earliest it can go is `max(due, now)`. Outside quiet hours that is the answer.
/// Inside them, the candidates are the last allowed minute before the quiet window
/// began (only if not before `now`) and the instant it ends; the nearer one wins, ties
/// go to the earlier. Candidates after `latest` are dropped; none left means `Skip`.
pub fn schedule_outside_quiet_hours(
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    latest: DateTime<Utc>,
    zone: Tz,
    window: Option<QuietWindow>,
) -> SendDecision {
    let earliest = due.max(now);
    if earliest > latest {
        return SendDecision::Skip;
    }
    let Some(window) = window else {
        return SendDecision::SendAt(earliest);
    };
    if window.start == window.end || !window.contains_instant(earliest, zone) {
        return SendDecision::SendAt(earliest);
    }
    let local_date = earliest.with_timezone(&zone).date_naive();
    let dates = [
        local_date.pred_opt(),
        Some(local_date),
        local_date.succ_opt(),
    ];
    let instants = |time: NaiveTime| -> Vec<DateTime<Utc>> {
        dates
            .iter()
            .flatten()
            .filter_map(|date| local_instant(zone, *date, time))
            .collect()
    };
    // The quiet period containing `earliest` began at the last start ≤ earliest and ends
    // at the first end > earliest.
    let before = instants(window.start)
        .into_iter()
        .filter(|start| *start <= earliest)
        .max()
        .map(|start| start - Duration::minutes(1))
        .filter(|at| *at >= now && *at <= latest);
    let after = instants(window.end)
        .into_iter()
        .filter(|end| *end > earliest)
        .min()
        .filter(|at| *at <= latest);
    match (before, after) {
        (Some(b), Some(a)) => {
            if earliest - b <= a - earliest {
                SendDecision::SendAt(b)
            } else {
                SendDecision::SendAt(a)
            }
        }
        (Some(at), None) | (None, Some(at)) => SendDecision::SendAt(at),
        (None, None) => SendDecision::Skip,
    }
}

/// The instant a local wall-clock time occurs on a date: the earlier of two when the
/// clocks fall back, the first valid minute after the gap when they spring forward.
fn local_instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => (1..=180).find_map(|minutes| {
            zone.from_local_datetime(&(naive + Duration::minutes(minutes)))
                .earliest()
                .map(|at| at.with_timezone(&Utc))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Option<QuietWindow> {
        Some(QuietWindow {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        })
    }

    fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::America::New_York
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    const NY: Tz = chrono_tz::America::New_York;

    #[test]
    fn outside_quiet_hours_it_goes_when_due() {
        let due = ny(2026, 3, 3, 10, 0);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 3, 5, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(due));
    }

    #[test]
    fn early_morning_moves_to_the_end_of_quiet_hours() {
        let due = ny(2026, 3, 3, 7, 0);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 3, 5, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(ny(2026, 3, 3, 8, 0)));
    }

    #[test]
    fn late_evening_moves_back_when_it_is_nearer_and_still_ahead() {
        let due = ny(2026, 3, 3, 21, 30);
        let now = ny(2026, 3, 1, 12, 0);
        let decision = schedule_outside_quiet_hours(due, now, ny(2026, 3, 5, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(ny(2026, 3, 3, 20, 59)));
    }

    #[test]
    fn late_evening_goes_forward_when_the_evening_has_passed() {
        let due = ny(2026, 3, 3, 21, 30);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 3, 5, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(ny(2026, 3, 4, 8, 0)));
    }

    #[test]
    fn skipped_when_the_next_allowed_time_is_too_late() {
        let due = ny(2026, 3, 3, 23, 0);
        let latest = ny(2026, 3, 4, 7, 0); // start 09:00 − 2 h
        let decision = schedule_outside_quiet_hours(due, due, latest, NY, window());
        assert_eq!(decision, SendDecision::Skip);
    }

    #[test]
    fn quiet_hours_follow_the_zone_across_spring_forward() {
        // 2026-03-08: New York springs forward at 02:00. 07:30 local is quiet; 08:00
        // local that day is 12:00 UTC (EDT), not 13:00.
        let due = ny(2026, 3, 8, 7, 30);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 3, 9, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(ny(2026, 3, 8, 8, 0)));
        assert_eq!(ny(2026, 3, 8, 8, 0).format("%H:%M").to_string(), "12:00");
    }

    #[test]
    fn quiet_hours_follow_the_zone_across_fall_back() {
        let due = ny(2026, 11, 1, 6, 0);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 11, 2, 0, 0), NY, window());
        assert_eq!(decision, SendDecision::SendAt(ny(2026, 11, 1, 8, 0)));
        assert_eq!(ny(2026, 11, 1, 8, 0).format("%H:%M").to_string(), "13:00");
    }

    #[test]
    fn no_window_means_no_quiet_hours() {
        let due = ny(2026, 3, 3, 23, 0);
        let decision = schedule_outside_quiet_hours(due, due, ny(2026, 3, 5, 0, 0), NY, None);
        assert_eq!(decision, SendDecision::SendAt(due));
    }
}
