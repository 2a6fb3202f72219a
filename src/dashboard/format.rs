//! How values read on the dashboard: instants in the business time zone, money in
//! minor units, rates as percentages, JSON in one line with phone numbers masked.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::api::admin::queries::dead_letters::mask_phones;

/// `2031-03-20 11:00 EDT`.
pub fn when(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `11:00` (the day is known from the page).
pub fn clock(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%H:%M").to_string()
}

/// `Fri 20 Mar 2031`.
pub fn day(date: NaiveDate) -> String {
    date.format("%a %-d %b %Y").to_string()
}

/// `150.00 USD` from cents.
pub fn money(cents: i64, currency: Option<&str>) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", cents / 100, cents % 100);
    match currency {
        Some(code) => format!("{amount} {code}"),
        None => amount,
    }
}

/// `42.5 %`, or an em dash when there is no rate.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0))
}

/// A stored JSON document in one line, every E.164 number masked, cut at `max` chars.
pub fn json_line(value: &Value, max: usize) -> String {
    let mut value = value.clone();
    mask_phones(&mut value);
    let text = match &value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    truncate(&text, max)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A `datetime-local` value (`2031-03-20T15:00`, read in `zone`) or an RFC 3339 instant.
pub fn parse_local_instant(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    zone.from_local_datetime(&local)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// The `datetime-local` value of an instant in `zone`.
pub fn local_input(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_people_expect() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let at = Utc
            .with_ymd_and_hms(2031, 3, 20, 15, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(when(at, zone), "2031-03-20 11:00 EDT");
        assert_eq!(clock(at, zone), "11:00");
        assert_eq!(money(15_000, Some("USD")), "150.00 USD");
        assert_eq!(money(-5, None), "-0.05");
        assert_eq!(percent(Some(0.425)), "42.5 %");
        assert_eq!(percent(None), "—");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let line = json_line(&serde_json::json!({"to": "+15559876543"}), 100);
        assert!(
            line.contains("*******6543") && !line.contains("+1555"),
            "{line}"
        );
    }

    #[test]
    fn local_inputs_are_read_in_the_business_zone() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let at = parse_local_instant("2031-03-20T11:00", zone).expect("parses");
        assert_eq!(at.to_rfc3339(), "2031-03-20T15:00:00+00:00");
        assert_eq!(local_input(at, zone), "2031-03-20T11:00");
        let exact = parse_local_instant("2031-03-20T15:00:00Z", zone).expect("rfc 3339");
        assert_eq!(exact, at);
        assert!(parse_local_instant("tomorrow", zone).is_none());
    }
}
