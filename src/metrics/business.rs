//! The business metrics of SPEC §7 — no-show rate, confirmation rate, response rate,
//! messages sent, deposits, revenue protected — per day, ISO week or calendar month in
//! the business time zone, computed from the event log (`events`) and the message log
//! (`messages`). `docs/metrics.md` states every definition; in short:
//!
//! - **Cohort metrics** are about the appointments *scheduled to start* in the period
//!   (the appointment's current `starts_at`, read in the business zone), whatever day
//!   their events happened on: `appointments`, `confirmed`, `cancelled`, `completed`,
//!   `noShows`, `reminded`, `responded`, `depositsRequested`, `depositsPaid`,
//!   `depositsPaidCents`, `revenueProtectedCents`. What happened to each one is read
//!   from its events: `appointment.confirmed`, `appointment.cancelled`,
//!   `appointment.completed`, `appointment.no_show`, `message.sent` of a `reminder_*`
//!   kind, `message.received`, `deposit.requested`, `deposit.paid`.
//! - **Activity metrics** count what happened in the period: `messagesSent`, the
//!   outbound messages of the message log whose `sent_at` falls in it, by kind (the
//!   log also holds messages tied to no appointment, such as opt-out confirmations).
//!
//! Rates are fractions in [0, 1] rounded to four decimals, `null` when their
//! denominator is zero.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::store::schema::{appointments, events, messages, tenants};
use crate::store::DbConnection;

/// Appointments (and their events) read per query.
const CHUNK: usize = 500;

/// The event types the cohort metrics read.
const COHORT_EVENTS: [&str; 8] = [
    "appointment.confirmed",
    "appointment.cancelled",
    "appointment.completed",
    "appointment.no_show",
    "message.sent",
    "message.received",
    "deposit.requested",
    "deposit.paid",
];

/// Message kinds that are reminders (SPEC §4: `reminder_48h`, `reminder_24h`).
const REMINDER_PREFIX: &str = "reminder_";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The periods asked for are not a usable range.
    #[error("{0}")]
    InvalidRange(String),
}

/// How long one row of the report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Granularity {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// Most periods one report may hold.
    pub fn max_periods(self) -> usize {
        match self {
            Self::Day => 400,
            Self::Week => 260,
            Self::Month => 120,
        }
    }

    /// The first day of the period holding `date`.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => date,
            Self::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Self::Month => date.with_day(1).unwrap_or(date),
        }
    }

    /// The first day of the period after the one starting on `start`.
    pub fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Self::Day => start.succ_opt(),
            Self::Week => start.checked_add_signed(Duration::days(7)),
            Self::Month => start.checked_add_months(Months::new(1)),
        }
    }

    /// The default range ending on `today`: 30 days, 12 weeks or 12 months.
    pub fn default_from(self, today: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => today - Duration::days(29),
            Self::Week => self.start_of(today) - Duration::weeks(11),
            Self::Month => self
                .start_of(today)
                .checked_sub_months(Months::new(11))
                .unwrap_or(today),
        }
    }
}

/// What a report covers.
#[derive(Debug, Clone)]
pub struct MetricsQuery {
    pub tenant_id: String,
    /// The business time zone: periods are its calendar days, weeks and months.
    pub zone: Tz,
    pub granularity: Granularity,
    /// First and last day (inclusive, in `zone`); widened to whole periods.
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Counts of one period (or of the whole report, in `totals`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Appointments scheduled to start in the period.
    pub appointments: u64,
    /// … that were confirmed at some point (`appointment.confirmed`).
    pub confirmed: u64,
    /// … that were cancelled.
    pub cancelled: u64,
    /// … not cancelled and confirmed (the confirmation rate's numerator).
    pub confirmed_not_cancelled: u64,
    pub completed: u64,
    pub no_shows: u64,
    /// … sent at least one reminder (`message.sent` of a `reminder_*` kind).
    pub reminded: u64,
    /// … reminded, whose customer replied after the first reminder.
    pub responded: u64,
    /// … for which a deposit was asked (`deposit.requested`).
    pub deposits_requested: u64,
    /// … whose deposit was paid (`deposit.paid`).
    pub deposits_paid: u64,
    pub deposits_paid_cents: i64,
    /// … at risk (reminded or asked for a deposit) that ended completed.
    pub revenue_protected_appointments: u64,
    /// Their `service_cost_cents` summed (appointments without a known cost add 0).
    pub revenue_protected_cents: i64,
    /// Outbound messages sent in the period, by kind (`other` when the log has none).
    pub messages_sent: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.appointments += other.appointments;
        self.confirmed += other.confirmed;
        self.cancelled += other.cancelled;
        self.confirmed_not_cancelled += other.confirmed_not_cancelled;
        self.completed += other.completed;
        self.no_shows += other.no_shows;
        self.reminded += other.reminded;
        self.responded += other.responded;
        self.deposits_requested += other.deposits_requested;
        self.deposits_paid += other.deposits_paid;
        self.deposits_paid_cents += other.deposits_paid_cents;
        self.revenue_protected_appointments += other.revenue_protected_appointments;
        self.revenue_protected_cents += other.revenue_protected_cents;
        for (kind, n) in &other.messages_sent {
            *self.messages_sent.entry(kind.clone()).or_default() += n;
        }
    }

    /// `noShows / (completed + noShows)`: of the appointments with an outcome.
    pub fn no_show_rate(&self) -> Option<f64> {
        rate(self.no_shows, self.completed + self.no_shows)
    }

    /// Confirmed ones among those not cancelled.
    pub fn confirmation_rate(&self) -> Option<f64> {
        rate(
            self.confirmed_not_cancelled,
            self.appointments - self.cancelled,
        )
    }

    /// `responded / reminded`.
    pub fn response_rate(&self) -> Option<f64> {
        rate(self.responded, self.reminded)
    }

    pub fn messages_sent_total(&self) -> u64 {
        self.messages_sent.values().sum()
    }
}

fn rate(numerator: u64, denominator: u64) -> Option<f64> {
    if denominator == 0 {
        return None;
    }
    // Counts stay far below 2^52: the conversion is exact.
    let value = numerator as f64 / denominator as f64;
    Some((value * 10_000.0).round() / 10_000.0)
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodMetrics {
    /// First and last day of the period (inclusive, business zone).
    pub start: NaiveDate,
    pub end: NaiveDate,
    #[serde(flatten)]
    pub rates: Rates,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The rates of a [`Counts`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub no_show_rate: Option<f64>,
    pub confirmation_rate: Option<f64>,
    pub response_rate: Option<f64>,
    pub messages_sent_total: u64,
}

impl From<&Counts> for Rates {
    fn from(c: &Counts) -> Self {
        Rates {
            no_show_rate: c.no_show_rate(),
            confirmation_rate: c.confirmation_rate(),
            response_rate: c.response_rate(),
            messages_sent_total: c.messages_sent_total(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub period: Granularity,
    pub timezone: String,
    /// The business currency (of `depositsPaidCents` and `revenueProtectedCents`).
    pub currency: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub periods: Vec<PeriodMetrics>,
    pub totals: PeriodMetrics,
}

/// The periods covering `[from, to]`, as `(first day, first day of the next)`.
pub fn periods(
    granularity: Granularity,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, NaiveDate)>, MetricsError> {
    if to < from {
        return Err(MetricsError::InvalidRange(format!(
            "to ({to}) is before from ({from})"
        )));
    }
    let mut out = Vec::new();
    let mut start = granularity.start_of(from);
    while start <= to {
        let next = granularity
            .next(start)
            .ok_or_else(|| MetricsError::InvalidRange("the range is out of bounds".into()))?;
        out.push((start, next));
        if out.len() > granularity.max_periods() {
            return Err(MetricsError::InvalidRange(format!(
                "at most {} periods per report; narrow from/to or use a longer period",
                granularity.max_periods()
            )));
        }
        start = next;
    }
    Ok(out)
}

/// Where an instant falls: the index of its period, if any.
struct Buckets {
    zone: Tz,
    starts: Vec<NaiveDate>,
    end: NaiveDate,
}

impl Buckets {
    fn index(&self, at: NaiveDateTime) -> Option<usize> {
        let date = at.and_utc().with_timezone(&self.zone).date_naive();
        if date >= self.end {
            return None;
        }
        match self.starts.binary_search(&date) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        }
    }
}

/// What the event log says about one appointment.
#[derive(Debug, Default)]
struct Facts {
    confirmed: bool,
    cancelled: bool,
    completed: bool,
    no_show: bool,
    first_reminder: Option<NaiveDateTime>,
    replies: Vec<NaiveDateTime>,
    deposit_requested: bool,
    deposit_paid_cents: Option<i64>,
}

impl Facts {
    fn responded(&self) -> bool {
        self.first_reminder
            .is_some_and(|first| self.replies.iter().any(|at| *at >= first))
    }
}

fn payload_kind(payload: &str) -> Option<String> {
    serde_json::from_str::<Value>(payload)
        .ok()?
        .get("kind")?
        .as_str()
        .map(str::to_string)
}

fn payload_cents(payload: &str) -> Option<i64> {
    serde_json::from_str::<Value>(payload)
        .ok()?
        .get("amountCents")?
        .as_i64()
}

/// Computes the report (read-only; a consistent snapshot is not needed for metrics).
pub fn compute(conn: &mut DbConnection, query: &MetricsQuery) -> Result<Report, MetricsError> {
    let ranges = periods(query.granularity, query.from, query.to)?;
    let (first, last) = match (ranges.first(), ranges.last()) {
        (Some(first), Some(last)) => (first.0, last.1),
        _ => return Err(MetricsError::InvalidRange("no period in the range".into())),
    };
    let buckets = Buckets {
        zone: query.zone,
        starts: ranges.iter().map(|r| r.0).collect(),
        end: last,
    };
    // Read a day more on each side of the UTC range: the zone's offset moves the
    // boundaries by up to a day; `Buckets` keeps exactly the local days asked for.
    let lower = (first - Duration::days(1)).and_time(chrono::NaiveTime::MIN);
    let upper = (last + Duration::days(1)).and_time(chrono::NaiveTime::MIN);
    let mut counts = vec![Counts::default(); ranges.len()];

    cohort(conn, query, &buckets, lower, upper, &mut counts)?;
    messages_sent(conn, query, &buckets, lower, upper, &mut counts)?;

    let mut total = Counts::default();
    for c in &counts {
        total.add(c);
    }
    let periods = ranges
        .iter()
        .zip(counts)
        .map(|((start, next), counts)| PeriodMetrics {
            start: *start,
            end: *next - Duration::days(1),
            rates: Rates::from(&counts),
            counts,
        })
        .collect();
    Ok(Report {
        period: query.granularity,
        timezone: query.zone.name().to_string(),
        currency: tenants::table
            .find(&query.tenant_id)
            .select(tenants::currency)
            .first(conn)
            .optional()?,
        from: first,
        to: last - Duration::days(1),
        periods,
        totals: PeriodMetrics {
            start: first,
            end: last - Duration::days(1),
            rates: Rates::from(&total),
            counts: total,
        },
    })
}

/// The cohort metrics: appointments by start, their facts from the event log.
fn cohort(
    conn: &mut DbConnection,
    query: &MetricsQuery,
    buckets: &Buckets,
    lower: NaiveDateTime,
    upper: NaiveDateTime,
    counts: &mut [Counts],
) -> Result<(), MetricsError> {
    let rows: Vec<(String, NaiveDateTime, Option<i64>)> = appointments::table
        .filter(appointments::tenant_id.eq(&query.tenant_id))
        .filter(appointments::starts_at.ge(lower))
        .filter(appointments::starts_at.lt(upper))
        .select((
            appointments::id,
            appointments::starts_at,
            appointments::service_cost_cents,
        ))
        .load(conn)?;
    let cohort: Vec<(String, usize, Option<i64>)> = rows
        .into_iter()
        .filter_map(|(id, starts_at, cost)| buckets.index(starts_at).map(|i| (id, i, cost)))
        .collect();
    let mut facts: HashMap<String, Facts> = HashMap::with_capacity(cohort.len());
    let ids: Vec<String> = cohort.iter().map(|(id, _, _)| id.clone()).collect();
    for chunk in ids.chunks(CHUNK) {
        let events: Vec<(String, String, NaiveDateTime, String)> = events::table
            .filter(events::aggregate_type.eq("appointment"))
            .filter(events::aggregate_id.eq_any(chunk))
            .filter(events::tenant_id.eq(&query.tenant_id))
            .filter(events::event_type.eq_any(COHORT_EVENTS))
            .select((
                events::aggregate_id,
                events::event_type,
                events::occurred_at,
                events::payload,
            ))
            .load(conn)?;
        for (id, event_type, at, payload) in events {
            let f = facts.entry(id).or_default();
            match event_type.as_str() {
                "appointment.confirmed" => f.confirmed = true,
                "appointment.cancelled" => f.cancelled = true,
                "appointment.completed" => f.completed = true,
                "appointment.no_show" => f.no_show = true,
                "message.sent"
                    if payload_kind(&payload).is_some_and(|k| k.starts_with(REMINDER_PREFIX)) =>
                {
                    f.first_reminder = Some(f.first_reminder.map_or(at, |t| t.min(at)));
                }
                "message.received" => f.replies.push(at),
                "deposit.requested" => f.deposit_requested = true,
                "deposit.paid" => {
                    let cents = payload_cents(&payload).unwrap_or(0);
                    f.deposit_paid_cents = Some(f.deposit_paid_cents.unwrap_or(0).max(cents));
                }
                _ => {}
            }
        }
        // Keyword replies (STOP, HELP, …) reach the message log, not the appointment's
        // events: they count as responses too.
        let inbound: Vec<(Option<String>, NaiveDateTime)> = messages::table
            .filter(messages::appointment_id.eq_any(chunk))
            .filter(messages::tenant_id.eq(&query.tenant_id))
            .filter(messages::direction.eq("inbound"))
            .select((messages::appointment_id, messages::created_at))
            .load(conn)?;
        for (id, at) in inbound {
            if let Some(id) = id {
                facts.entry(id).or_default().replies.push(at);
            }
        }
    }
    let none = Facts::default();
    for (id, i, cost) in cohort {
        let f = facts.get(&id).unwrap_or(&none);
        let c = &mut counts[i];
        c.appointments += 1;
        c.confirmed += u64::from(f.confirmed);
        c.cancelled += u64::from(f.cancelled);
        c.confirmed_not_cancelled += u64::from(f.confirmed && !f.cancelled);
        c.completed += u64::from(f.completed);
        c.no_shows += u64::from(f.no_show);
        c.reminded += u64::from(f.first_reminder.is_some());
        c.responded += u64::from(f.responded());
        c.deposits_requested += u64::from(f.deposit_requested);
        if let Some(cents) = f.deposit_paid_cents {
            c.deposits_paid += 1;
            c.deposits_paid_cents += cents;
        }
        let at_risk = f.first_reminder.is_some() || f.deposit_requested;
        if at_risk && f.completed {
            c.revenue_protected_appointments += 1;
            c.revenue_protected_cents += cost.unwrap_or(0);
        }
    }
    Ok(())
}

/// The activity metric: outbound messages by the day they were sent.
fn messages_sent(
    conn: &mut DbConnection,
    query: &MetricsQuery,
    buckets: &Buckets,
    lower: NaiveDateTime,
    upper: NaiveDateTime,
    counts: &mut [Counts],
) -> Result<(), MetricsError> {
    let sent: Vec<(Option<String>, Option<NaiveDateTime>)> = messages::table
        .filter(messages::tenant_id.eq(&query.tenant_id))
        .filter(messages::direction.eq("outbound"))
        .filter(messages::sent_at.ge(lower))
        .filter(messages::sent_at.lt(upper))
        .select((messages::kind, messages::sent_at))
        .load(conn)?;
    for (kind, at) in sent {
        let Some(i) = at.and_then(|at| buckets.index(at)) else {
            continue;
        };
        let kind = kind.unwrap_or_else(|| "other".to_string());
        *counts[i].messages_sent.entry(kind).or_default() += 1;
    }
    Ok(())
}

/// Today's date in `zone` at `now`.
pub fn today(zone: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn periods_cover_the_range_in_whole_units() {
        let days = periods(Granularity::Day, date("2026-03-07"), date("2026-03-09")).expect("ok");
        assert_eq!(days.len(), 3);
        assert_eq!(days[0], (date("2026-03-07"), date("2026-03-08")));

        // 2026-03-11 is a Wednesday: its week starts Monday the 9th.
        let weeks = periods(Granularity::Week, date("2026-03-11"), date("2026-03-16")).expect("ok");
        assert_eq!(
            weeks,
            vec![
                (date("2026-03-09"), date("2026-03-16")),
                (date("2026-03-16"), date("2026-03-23"))
            ]
        );
        let months =
            periods(Granularity::Month, date("2026-01-31"), date("2026-02-01")).expect("ok");
        assert_eq!(
            months,
            vec![
                (date("2026-01-01"), date("2026-02-01")),
                (date("2026-02-01"), date("2026-03-01"))
            ]
        );
        assert!(periods(Granularity::Day, date("2026-03-09"), date("2026-03-08")).is_err());
        assert!(periods(Granularity::Day, date("2020-01-01"), date("2026-01-01")).is_err());
    }

    #[test]
    fn instants_fall_in_the_local_day() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        let buckets = Buckets {
            zone,
            starts: vec![date("2026-03-07"), date("2026-03-08")],
            end: date("2026-03-09"),
        };
        let at =
            |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("instant");
        // 03:00 UTC on the 8th is 22:00 on the 7th in New York.
        assert_eq!(buckets.index(at("2026-03-08 03:00:00")), Some(0));
        assert_eq!(buckets.index(at("2026-03-08 05:00:00")), Some(1));
        // 04:30 UTC on the 9th is 00:30 EDT on the 9th: outside.
        assert_eq!(buckets.index(at("2026-03-09 04:30:00")), None);
        assert_eq!(buckets.index(at("2026-03-07 04:59:59")), None);
    }

    #[test]
    fn rates_are_rounded_and_null_without_a_denominator() {
        let counts = Counts {
            appointments: 4,
            cancelled: 1,
            confirmed_not_cancelled: 2,
            completed: 2,
            no_shows: 1,
            ..Counts::default()
        };
        assert_eq!(counts.no_show_rate(), Some(0.3333));
        assert_eq!(counts.confirmation_rate(), Some(0.6667));
        assert_eq!(counts.response_rate(), None);
    }
}
