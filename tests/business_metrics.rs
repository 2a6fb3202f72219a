//! The business metrics (`aro::metrics::business`) on a hand-built event history, both
//! backends: two days in America/New_York — the second is the day DST starts — with
//! appointments and messages placed near the local midnights, so that reading a UTC
//! day instead of the business day would give other numbers. Every per-day number is
//! checked exactly, then the ISO week (which widens the range to Monday) and the same
//! history read in UTC.

mod common;

use aro::metrics::business::{self, Granularity, MetricsQuery, Report};
use aro::store::models::{NewCustomerRow, NewEventRow};
use aro::store::schema::{appointments, customers, events, messages};
use aro::store::Database;
use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use common::{migrated_database, Kind, TestDb};
use diesel::prelude::*;
use serde_json::{json, Value};

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("instant")
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

struct History {
    events: Vec<NewEventRow>,
}

impl History {
    fn event(&mut self, appointment: &str, event_type: &str, when: &str, payload: Value) {
        let n = self.events.len();
        self.events.push(NewEventRow {
            event_id: format!("ev-{n}"),
            tenant_id: "default".into(),
            event_type: event_type.into(),
            aggregate_type: "appointment".into(),
            aggregate_id: appointment.into(),
            aggregate_version: i64::try_from(n).expect("small"),
            occurred_at: at(when),
            recorded_at: at(when),
            profile: "healthcare".into(),
            payload: payload.to_string(),
            workflow_id: None,
            correlation_id: None,
            causation_id: None,
        });
    }

    fn reminder(&mut self, appointment: &str, kind: &str, when: &str) {
        self.event(appointment, "message.sent", when, json!({"kind": kind}));
    }
}

/// Appointments by start (UTC), with the local day each one belongs to in New York.
const APPOINTMENTS: &[(&str, &str, Option<i64>)] = &[
    // Local 2026-03-06 23:00 EST: the day before the range.
    ("a8", "2026-03-07 04:00", Some(9_900)),
    // Local 2026-03-07 (EST, UTC-5).
    ("a1", "2026-03-07 15:00", Some(10_000)),
    ("a3", "2026-03-07 19:00", Some(7_000)),
    ("a2", "2026-03-08 04:30", Some(5_000)), // 23:30 on the 7th
    // Local 2026-03-08 (DST starts at 02:00: EST before, EDT after).
    ("a4", "2026-03-08 05:30", Some(20_000)), // 00:30 EST
    ("a5", "2026-03-08 16:00", None),         // 12:00 EDT, no known cost
    ("a6", "2026-03-09 03:59", Some(1_000)),  // 23:59 EDT
    // Local 2026-03-09 00:30 EDT: the day after.
    ("a7", "2026-03-09 04:30", Some(3_000)),
];

/// A message-log row: (appointment, direction, kind, sent_at).
type LogRow = (
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

async fn seed(db: &Database) {
    let mut h = History { events: Vec::new() };
    // a1: reminded, replied, confirmed, completed → responded, protected.
    h.reminder("a1", "reminder_48h", "2026-03-05 15:00");
    h.event(
        "a1",
        "message.received",
        "2026-03-05 16:00",
        json!({"intent": "confirm"}),
    );
    h.event("a1", "appointment.confirmed", "2026-03-05 16:00", json!({}));
    h.event(
        "a1",
        "appointment.in_progress",
        "2026-03-07 15:00",
        json!({}),
    );
    h.event("a1", "appointment.completed", "2026-03-07 17:30", json!({}));
    // a2: reminded, no reply, deposit asked and paid, no-show.
    h.reminder("a2", "reminder_24h", "2026-03-07 04:30");
    h.event(
        "a2",
        "deposit.requested",
        "2026-03-05 04:30",
        json!({"amountCents": 2500}),
    );
    h.event(
        "a2",
        "deposit.paid",
        "2026-03-05 09:00",
        json!({"amountCents": 2500}),
    );
    h.event("a2", "appointment.no_show", "2026-03-08 07:00", json!({}));
    // a3: cancelled by the booking system, never reminded.
    h.event("a3", "appointment.cancelled", "2026-03-06 12:00", json!({}));
    // a4: reminded; the reply is a keyword (message log only); confirmed by staff;
    // deposit asked, not paid; completed → responded, protected.
    h.reminder("a4", "reminder_48h", "2026-03-06 05:30");
    h.event("a4", "deposit.requested", "2026-03-04 05:30", json!({}));
    h.event("a4", "appointment.confirmed", "2026-03-07 12:00", json!({}));
    h.event("a4", "appointment.completed", "2026-03-08 08:30", json!({}));
    // a5: replied *before* the reminder (does not count), completed → protected, 0.
    h.event("a5", "message.received", "2026-03-06 10:00", json!({}));
    h.reminder("a5", "reminder_48h", "2026-03-06 16:00");
    h.event("a5", "appointment.completed", "2026-03-08 19:00", json!({}));
    // a6: only a booking confirmation (not a reminder).
    h.reminder("a6", "booking_confirmation", "2026-03-01 12:00");
    // Outside the range.
    h.event("a7", "appointment.confirmed", "2026-03-08 12:00", json!({}));
    h.event("a8", "appointment.confirmed", "2026-03-05 12:00", json!({}));
    let events_rows = h.events;

    db.run(move |conn| {
        let now = at("2026-03-01 00:00");
        diesel::insert_into(customers::table)
            .values(NewCustomerRow {
                id: "c1".into(),
                tenant_id: "default".into(),
                pseudonym: "C-1".into(),
                phone_e164: Some("+15559876543".into()),
                name: Some("Jane".into()),
                email: None,
                timezone: None,
                created_at: now,
                updated_at: now,
            })
            .execute(conn)?;
        for (id, starts, cost) in APPOINTMENTS {
            let starts_at = at(starts);
            diesel::insert_into(appointments::table)
                .values((
                    appointments::id.eq(*id),
                    appointments::tenant_id.eq("default"),
                    appointments::customer_id.eq("c1"),
                    appointments::source.eq("booking"),
                    appointments::external_id.eq(format!("ext-{id}")),
                    appointments::status.eq("booked"),
                    appointments::starts_at.eq(starts_at),
                    appointments::ends_at.eq(starts_at + chrono::Duration::minutes(30)),
                    appointments::timezone.eq("America/New_York"),
                    appointments::service_cost_cents.eq(*cost),
                    appointments::created_at.eq(now),
                    appointments::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        for row in &events_rows {
            diesel::insert_into(events::table)
                .values(row)
                .execute(conn)?;
        }
        let log: &[LogRow] = &[
            (
                Some("a8"),
                "outbound",
                Some("reminder_48h"),
                Some("2026-03-07 04:30"),
            ), // 6th
            (
                Some("a2"),
                "outbound",
                Some("reminder_24h"),
                Some("2026-03-07 15:00"),
            ), // 7th
            (
                None,
                "outbound",
                Some("booking_confirmation"),
                Some("2026-03-08 03:00"),
            ), // 7th
            (
                Some("a4"),
                "outbound",
                Some("reminder_48h"),
                Some("2026-03-08 06:00"),
            ), // 8th
            (None, "outbound", None, Some("2026-03-08 12:00")), // 8th
            (
                Some("a6"),
                "outbound",
                Some("reminder_48h"),
                Some("2026-03-09 03:30"),
            ), // 8th
            (
                Some("a7"),
                "outbound",
                Some("reminder_48h"),
                Some("2026-03-09 04:30"),
            ), // 9th
            (Some("a1"), "outbound", Some("reminder_24h"), None), // never sent
            (Some("a4"), "inbound", None, None),                // STOP, after a4's reminder
        ];
        for (n, (appointment, direction, kind, sent)) in log.iter().enumerate() {
            let created = sent.map_or_else(|| at("2026-03-06 06:00"), at);
            diesel::insert_into(messages::table)
                .values((
                    messages::id.eq(format!("m{n}")),
                    messages::tenant_id.eq("default"),
                    messages::customer_id.eq("c1"),
                    messages::appointment_id.eq(*appointment),
                    messages::direction.eq(*direction),
                    messages::channel.eq("sms"),
                    messages::kind.eq(*kind),
                    messages::body.eq(if *direction == "inbound" {
                        "STOP"
                    } else {
                        "hi"
                    }),
                    messages::provider.eq("sandbox"),
                    messages::provider_message_id.eq(format!("p{n}")),
                    messages::status.eq("sent"),
                    messages::sandbox.eq(true),
                    messages::sent_at.eq(sent.map(at)),
                    messages::created_at.eq(created),
                    messages::updated_at.eq(created),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
    .await
    .expect("seeded");
}

async fn report(db: &Database, zone: &str, granularity: Granularity) -> Report {
    let query = MetricsQuery {
        tenant_id: "default".into(),
        zone: zone.parse::<Tz>().expect("zone"),
        granularity,
        from: date("2026-03-07"),
        to: date("2026-03-08"),
    };
    db.run(move |conn| Ok(business::compute(conn, &query)))
        .await
        .expect("ran")
        .expect("computed")
}

fn sent(pairs: &[(&str, u64)]) -> Value {
    json!(pairs
        .iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect::<serde_json::Map<_, _>>())
}

async fn per_day_numbers_in_the_business_zone(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = migrated_database(&test_db).await;
    seed(&db).await;

    let daily = report(&db, "America/New_York", Granularity::Day).await;
    let json = serde_json::to_value(&daily).expect("serializes");
    assert_eq!(json["timezone"], "America/New_York");
    assert_eq!(json["currency"], "USD");
    assert_eq!(json["from"], "2026-03-07");
    assert_eq!(json["to"], "2026-03-08");
    let days = json["periods"].as_array().expect("periods");
    assert_eq!(days.len(), 2);

    let day7 = json!({
        "start": "2026-03-07", "end": "2026-03-07",
        "appointments": 3, "confirmed": 1, "cancelled": 1, "confirmedNotCancelled": 1,
        "completed": 1, "noShows": 1, "reminded": 2, "responded": 1,
        "depositsRequested": 1, "depositsPaid": 1, "depositsPaidCents": 2500,
        "revenueProtectedAppointments": 1, "revenueProtectedCents": 10_000,
        "noShowRate": 0.5, "confirmationRate": 0.5, "responseRate": 0.5,
        "messagesSent": sent(&[("booking_confirmation", 1), ("reminder_24h", 1)]),
        "messagesSentTotal": 2,
    });
    assert_eq!(days[0], day7, "2026-03-07");

    let day8 = json!({
        "start": "2026-03-08", "end": "2026-03-08",
        "appointments": 3, "confirmed": 1, "cancelled": 0, "confirmedNotCancelled": 1,
        "completed": 2, "noShows": 0, "reminded": 2, "responded": 1,
        "depositsRequested": 1, "depositsPaid": 0, "depositsPaidCents": 0,
        "revenueProtectedAppointments": 2, "revenueProtectedCents": 20_000,
        "noShowRate": 0.0, "confirmationRate": 0.3333, "responseRate": 0.5,
        "messagesSent": sent(&[("other", 1), ("reminder_48h", 2)]),
        "messagesSentTotal": 3,
    });
    assert_eq!(days[1], day8, "2026-03-08");

    let totals = &json["totals"];
    assert_eq!(totals["appointments"], 6);
    assert_eq!(totals["noShowRate"], 0.25); // 1 of 4 with an outcome
    assert_eq!(totals["confirmationRate"], 0.4); // 2 of 5 not cancelled
    assert_eq!(totals["responseRate"], 0.5);
    assert_eq!(totals["revenueProtectedCents"], 30_000);
    assert_eq!(totals["messagesSentTotal"], 5);

    // The ISO week holding both days runs Monday 2 to Sunday 8 March: a8 (local 6th)
    // and the message sent on the 6th join.
    let week = report(&db, "America/New_York", Granularity::Week).await;
    assert_eq!(week.periods.len(), 1);
    let w = &week.periods[0];
    assert_eq!((w.start, w.end), (date("2026-03-02"), date("2026-03-08")));
    assert_eq!(w.counts.appointments, 7);
    assert_eq!(w.counts.confirmed, 3);
    assert_eq!(w.counts.messages_sent.values().sum::<u64>(), 6);

    // Read in UTC the days split differently: a8 (04:00Z on the 7th) is in, a2 (04:30Z
    // on the 8th) moves to the 8th and a6 (03:59Z on the 9th) is out.
    let utc = report(&db, "UTC", Granularity::Day).await;
    assert_eq!(utc.periods[0].counts.appointments, 3);
    assert_eq!(utc.periods[0].counts.confirmed, 2); // a8 and a1
    assert_eq!(utc.periods[0].counts.no_shows, 0);
    assert_eq!(utc.periods[1].counts.no_shows, 1); // a2
    assert_eq!(utc.periods[1].counts.appointments, 3);
}

async fn an_empty_range_has_null_rates(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = migrated_database(&test_db).await;
    let report = report(&db, "Europe/Berlin", Granularity::Month).await;
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["periods"][0]["start"], "2026-03-01");
    assert_eq!(json["periods"][0]["end"], "2026-03-31");
    assert_eq!(json["periods"][0]["appointments"], 0);
    assert_eq!(json["periods"][0]["noShowRate"], Value::Null);
    assert_eq!(json["periods"][0]["confirmationRate"], Value::Null);
    assert_eq!(json["periods"][0]["responseRate"], Value::Null);
}

on_both_backends!(
    per_day_numbers_in_the_business_zone,
    an_empty_range_has_null_rates
);
