//! Small pieces every Admin API handler shares: running queries on the blocking pool,
//! page sizes and keyset cursors, the staff label recorded on engine events, phone
//! masking for list views, and parsing of instants and dates.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::error::AdminError;
use crate::audit::NewEntry;
use crate::auth::{Principal, PrincipalKind};
use crate::http::{ApiError, AppState};
use crate::store::DbConnection;

/// Rows a list answers when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most rows a list answers.
pub const MAX_LIMIT: i64 = 200;

/// Runs `work` with a pooled connection on the blocking pool.
pub async fn db<T, F>(state: &AppState, work: F) -> Result<T, AdminError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    state.db.run(move |conn| Ok(work(conn))).await?
}

/// The page size asked for, checked.
pub fn limit(asked: Option<i64>) -> Result<i64, AdminError> {
    let limit = asked.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AdminError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ))
    }
}

/// A keyset position: the sort instant and the id of the last row of a page. Opaque to
/// clients (base64url of `<instant with nanoseconds>|<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: NaiveDateTime,
    pub id: String,
}

const CURSOR_TIME: &str = "%Y-%m-%dT%H:%M:%S%.9f";

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.at.format(CURSOR_TIME), self.id))
    }

    pub fn decode(text: &str) -> Result<Self, AdminError> {
        let bad = || AdminError::invalid("cursor", "cursor is not one this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (at, id) = text.split_once('|').ok_or_else(bad)?;
        let at = NaiveDateTime::parse_from_str(at, CURSOR_TIME).map_err(|_| bad())?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(Cursor {
            at,
            id: id.to_string(),
        })
    }

    pub fn optional(text: Option<&str>) -> Result<Option<Self>, AdminError> {
        text.filter(|t| !t.trim().is_empty())
            .map(Cursor::decode)
            .transpose()
    }
}

/// How a person appears on engine events and `resolved_by` columns: the username of a
/// session, `token:<name>` for an API token.
pub fn staff_label(principal: &Principal) -> String {
    match &principal.kind {
        PrincipalKind::Session { username, .. } => username.clone(),
        PrincipalKind::Token { name, .. } => format!("token:{name}"),
    }
}

/// An audit entry by `principal` about one subject (details: pseudonymous ids only).
pub fn audit_entry(
    principal: &Principal,
    action: &str,
    subject_type: &str,
    subject_id: &str,
    details: serde_json::Value,
) -> NewEntry {
    NewEntry::new(&principal.tenant_id, principal.actor(), action)
        .subject(subject_type, subject_id)
        .details(details)
}

/// A phone number for list views: every digit but the last four replaced by `*`
/// (`+15559876543` → `*******6543`).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().min(4);
    let hidden = digits.len() - keep;
    let mut masked = "*".repeat(hidden);
    masked.extend(&digits[hidden..]);
    masked
}

/// An instant given as RFC 3339, or a date (`YYYY-MM-DD`) meaning the start of that day
/// in `zone`; with `end_of_day`, a date means the start of the next day (so `to=` a date
/// includes that whole day).
pub fn instant_or_date(
    field: &'static str,
    text: &str,
    zone: Tz,
    end_of_day: bool,
) -> Result<DateTime<Utc>, AdminError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        AdminError::invalid(
            field,
            format!("{field} must be an RFC 3339 instant or a date (YYYY-MM-DD)"),
        )
    })?;
    let date = if end_of_day {
        date.succ_opt()
            .ok_or_else(|| AdminError::invalid(field, format!("{field} is out of range")))?
    } else {
        date
    };
    Ok(local_midnight(date, zone))
}

/// The first instant of `date` in `zone` (midnight, or the first valid time after a
/// gap when a DST change skips midnight).
pub fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let mut at = date.and_time(chrono::NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(local) = zone.from_local_datetime(&at).earliest() {
            return local.with_timezone(&Utc);
        }
        at += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

/// The error handler of every Admin API query string: the envelope, naming the problem.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::validation(
            format!("invalid query string: {err}"),
            serde_json::json!({"reason": "invalid_query"}),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let at = NaiveDate::from_ymd_opt(2031, 3, 20)
            .and_then(|d| d.and_hms_nano_opt(15, 0, 0, 123_456_789))
            .expect("valid");
        let cursor = Cursor {
            at,
            id: "a|b".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).expect("decodes"), cursor);
        assert!(Cursor::decode("not a cursor").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("2031-01-01|")).is_err());
        assert_eq!(Cursor::optional(Some(" ")).expect("empty"), None);
    }

    #[test]
    fn phones_keep_only_the_last_four_digits() {
        assert_eq!(mask_phone("+15559876543"), "*******6543");
        assert_eq!(mask_phone("123"), "123");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn dates_are_read_in_the_business_zone() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let start = instant_or_date("from", "2026-03-08", zone, false).expect("date");
        assert_eq!(start.to_rfc3339(), "2026-03-08T05:00:00+00:00");
        // The day DST starts is 23 hours long: its end is the next local midnight.
        let end = instant_or_date("to", "2026-03-08", zone, true).expect("date");
        assert_eq!(end.to_rfc3339(), "2026-03-09T04:00:00+00:00");
        let exact =
            instant_or_date("from", "2026-03-08T12:00:00+01:00", zone, false).expect("instant");
        assert_eq!(exact.to_rfc3339(), "2026-03-08T11:00:00+00:00");
        assert!(instant_or_date("from", "yesterday", zone, false).is_err());
    }
}
