//! The functional core of an appointment: given its committed state, a command and the
//! time, decide the new state and everything that must be committed with it — events,
//! timers set / moved / cancelled, side effects (outbox rows) and escalations.
//!
//! Pure and deterministic: no I/O, no clock reads, ids only from the given `IdGen`, and
//! idempotency keys derived from the appointment, the reminder kind and the start time
//! so a reminder can never be queued twice for the same time. The actor is a thin shell
//! around it, and property tests drive it directly.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::commands::{reply_excerpt, Actor, AppointmentCommand, Booking};
use super::deposit;
use super::error::EngineError;
use super::messages::{self, escalation, event, BusinessInfo, Outgoing, Queued, RESPONSE_KINDS};
use crate::domain::appointment_status::AppointmentStatus;
use crate::domain::quiet_hours::{schedule_outside_quiet_hours, QuietWindow, SendDecision};
use crate::ports::ids::IdGen;
use crate::ports::providers::Intent;
use crate::ports::store::{
    AppointmentRecord, Commit, CustomerRecord, CustomerWrite, TimerSpec, Versioned,
};
use crate::profile::{ProfilePack, Timings};

/// Timer kinds the engine owns.
pub const TIMER_START: &str = "lifecycle_start";
pub const TIMER_COMPLETE: &str = "lifecycle_complete";
/// Set when a replaced booking parks its appointment in `rescheduled`: if the
/// replacement's time has not arrived by then, staff are told.
pub const TIMER_RESCHEDULE_WAIT: &str = "reschedule_wait";
/// Some time after the 24 h reminder: still no confirmation → `no_customer_response`.
pub const TIMER_NO_RESPONSE: &str = "no_response_check";
/// Start − 6 h: still unconfirmed → a high escalation.
pub const TIMER_UNCONFIRMED: &str = "unconfirmed_check";
/// End + 6 h after a completed visit: the review request.
pub const TIMER_REVIEW: &str = "review_request";
/// A day after the review request: the rebooking offer.
pub const TIMER_REBOOK: &str = "rebook_offer";
/// Right after a no-show: risk, deposit flag and the rebooking offer.
pub const TIMER_NO_SHOW_RECOVERY: &str = "no_show_recovery";

/// Timers whose decision reads the customer's history, so the actor loads the customer
/// fresh before handling them (another appointment may have changed it).
pub const FRESH_CUSTOMER_TIMERS: [&str; 3] = [TIMER_REVIEW, TIMER_REBOOK, TIMER_NO_SHOW_RECOVERY];

/// Timers that still matter after the appointment is over.
const AFTER_VISIT_TIMERS: [&str; 3] = [TIMER_REVIEW, TIMER_REBOOK, TIMER_NO_SHOW_RECOVERY];

/// A booking from a customer at or above this risk is escalated at intake (SPEC §4).
const HIGH_RISK_AT_INTAKE: i32 = 80;

/// How long an appointment may wait in `rescheduled` for its new time.
fn reschedule_wait() -> Duration {
    Duration::hours(1)
}

/// A reminder before the start.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderRule {
    /// Also the message kind, e.g. `reminder_48h`.
    pub kind: String,
    pub before_start: Duration,
    /// Sent only while the appointment is still unconfirmed.
    pub only_unconfirmed: bool,
}

/// The engine's timings and guardrail settings (from configuration and the pack).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// The pack's name, recorded on events.
    pub profile: String,
    /// Templates, terminology and policy overlays.
    pub pack: Arc<ProfilePack>,
    pub business: BusinessInfo,
    pub business_timezone: Tz,
    pub quiet_hours: Option<QuietWindow>,
    pub reminders: Vec<ReminderRule>,
    /// No automated message later than this before the start (SPEC: 2 h).
    pub last_send_before_start: Duration,
    /// Completed at end + this, unless marked otherwise (SPEC: 2 h).
    pub completion_grace: Duration,
    /// Payments are configured: deposits are asked for where the pack's rules say.
    pub deposits_enabled: bool,
}

impl EngineSettings {
    /// Settings from a pack: its quiet hours (unless `quiet_hours` overrides them) and
    /// timings.
    pub fn from_pack(
        pack: ProfilePack,
        business: BusinessInfo,
        business_timezone: Tz,
        quiet_hours: Option<Option<QuietWindow>>,
    ) -> Self {
        let timings = pack.policy.timings;
        Self {
            profile: pack.name.clone(),
            business_timezone,
            quiet_hours: quiet_hours.unwrap_or(pack.policy.quiet_hours),
            reminders: vec![
                ReminderRule {
                    kind: "reminder_48h".to_string(),
                    before_start: timings.reminder_48h_before,
                    only_unconfirmed: false,
                },
                ReminderRule {
                    kind: "reminder_24h".to_string(),
                    before_start: timings.reminder_24h_before,
                    only_unconfirmed: true,
                },
            ],
            last_send_before_start: timings.last_send_before_start,
            completion_grace: timings.completion_grace,
            deposits_enabled: false,
            pack: Arc::new(pack),
            business,
        }
    }

    fn timings(&self) -> &Timings {
        &self.pack.policy.timings
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        let mut settings = Self::from_pack(
            ProfilePack::default_pack(),
            BusinessInfo::default(),
            Tz::UTC,
            None,
        );
        settings.quiet_hours = Some(QuietWindow {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        });
        settings
    }
}

/// Everything a decision may read besides the state and the command.
pub struct DecideContext<'a> {
    pub now: DateTime<Utc>,
    pub settings: &'a EngineSettings,
    pub ids: &'a dyn IdGen,
    /// The appointment's id (known before it exists: derived by the directory).
    pub appointment_id: &'a str,
    /// The request the command belongs to, and what caused it (event metadata).
    pub correlation_id: Option<&'a str>,
    pub causation_id: Option<&'a str>,
}

/// The outcome: the new state (if it changed) and the unit to commit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub record: Option<AppointmentRecord>,
    pub commit: Commit,
}

/// Decides what `command` does to the appointment in state `current`.
///
/// `customer` is the appointment's customer when it exists (for a new booking: the
/// customer found by phone, if any).
pub fn decide(
    current: Option<&AppointmentRecord>,
    customer: Option<&CustomerRecord>,
    command: AppointmentCommand,
    ctx: &DecideContext<'_>,
) -> Result<Decision, EngineError> {
    match (current, command) {
        (None, AppointmentCommand::Book(booking)) => Ok(create(booking, customer, ctx)),
        (Some(record), AppointmentCommand::Book(booking)) => update(record, booking, ctx),
        (
            Some(record),
            AppointmentCommand::Replaced {
                replaced,
                replacement,
                by,
            },
        ) => replaced_by(record, &replaced, replacement, by, ctx),
        (Some(record), AppointmentCommand::Transition { to, by, reason }) => {
            transition(record, to, by, reason, ctx)
        }
        (
            Some(record),
            AppointmentCommand::Reschedule {
                starts_at,
                ends_at,
                by,
            },
        ) => reschedule(record, starts_at, ends_at, by, ctx),
        (
            Some(record),
            AppointmentCommand::TimerFired {
                key,
                kind,
                due_at,
                payload,
                ..
            },
        ) => Ok(timer_fired(
            record, customer, &key, &kind, due_at, &payload, ctx,
        )),
        (
            Some(record),
            AppointmentCommand::SideEffectSettled {
                kind,
                idempotency_key,
                provider_ref,
                error,
            },
        ) => {
            let (event_type, payload) = match (&provider_ref, &error) {
                (Some(reference), _) => (
                    "message.sent",
                    json!({"kind": kind, "idempotencyKey": idempotency_key, "providerRef": reference}),
                ),
                (None, error) => (
                    "message.failed",
                    json!({"kind": kind, "idempotencyKey": idempotency_key, "error": error}),
                ),
            };
            Ok(Decision {
                record: None,
                commit: Commit {
                    events: vec![event(record, event_type, payload, ctx)],
                    ..Commit::default()
                },
            })
        }
        (
            Some(record),
            AppointmentCommand::ReplyReceived {
                intent,
                confidence,
                message_sid,
                excerpt,
            },
        ) => Ok(reply_received(
            record,
            customer,
            Reply {
                intent,
                confidence,
                message_sid: &message_sid,
                excerpt: &excerpt,
            },
            ctx,
        )),
        (Some(record), AppointmentCommand::DepositLinkCreated { url, .. }) => {
            Ok(deposit::link_created(record, customer, url, ctx))
        }
        (Some(record), AppointmentCommand::DepositPaid { payment_ref }) => {
            Ok(deposit::paid(record, customer, &payment_ref, ctx))
        }
        (None, AppointmentCommand::TimerFired { tenant_id, key, .. }) => {
            // A timer of an appointment that no longer exists: retire it.
            Ok(Decision {
                record: None,
                commit: Commit {
                    fired_timers: vec![(tenant_id, key)],
                    ..Commit::default()
                },
            })
        }
        (None, _) => Err(EngineError::NotFound(ctx.appointment_id.to_string())),
    }
}

/// The zone wall-clock rules use: appointment, then customer, then business, then UTC.
pub fn resolve_zone(
    appointment_zone: Option<&str>,
    customer: Option<&CustomerRecord>,
    settings: &EngineSettings,
) -> Tz {
    appointment_zone
        .and_then(|z| Tz::from_str(z).ok())
        .or_else(|| {
            customer
                .and_then(|c| c.timezone.as_deref())
                .and_then(|z| Tz::from_str(z).ok())
        })
        .unwrap_or(settings.business_timezone)
}

fn create(booking: Booking, found: Option<&CustomerRecord>, ctx: &DecideContext<'_>) -> Decision {
    let customer = CustomerRecord {
        id: found
            .map(|c| c.id.clone())
            .unwrap_or_else(|| ctx.ids.new_id()),
        tenant_id: booking.tenant_id.clone(),
        phone_e164: booking
            .customer
            .phone_e164
            .clone()
            .or_else(|| found.and_then(|c| c.phone_e164.clone())),
        name: booking
            .customer
            .name
            .clone()
            .or_else(|| found.and_then(|c| c.name.clone())),
        email: booking
            .customer
            .email
            .clone()
            .or_else(|| found.and_then(|c| c.email.clone())),
        timezone: booking
            .customer
            .timezone
            .clone()
            .or_else(|| found.and_then(|c| c.timezone.clone())),
        opted_out: found.is_some_and(|c| c.opted_out),
        history: found.map(|c| c.history.clone()).unwrap_or_default(),
    };
    let zone = resolve_zone(booking.timezone.as_deref(), Some(&customer), ctx.settings);
    let mut record = AppointmentRecord {
        id: ctx.appointment_id.to_string(),
        tenant_id: booking.tenant_id.clone(),
        customer_id: customer.id.clone(),
        source: booking.source,
        external_id: booking.external_id,
        status: AppointmentStatus::Booked,
        starts_at: booking.starts_at,
        ends_at: booking.ends_at,
        timezone: zone.name().to_string(),
        service_type: booking.service_type,
        cancel_url: booking.cancel_url,
        reschedule_url: booking.reschedule_url,
        service_cost_cents: booking.service_cost_cents,
        version: 1,
        created_at: ctx.now,
        updated_at: ctx.now,
        deposit: Default::default(),
    };
    let mut commit = Commit {
        customer: Some(CustomerWrite::Upsert(customer.clone())),
        ..Commit::default()
    };
    commit
        .events
        .push(event(&record, "appointment.booked", snapshot(&record), ctx));
    schedule_timers(&record, &mut commit, ctx);
    // The confirmation goes now, or when quiet hours end — and not at all once the
    // appointment has started.
    match schedule_outside_quiet_hours(
        ctx.now,
        ctx.now,
        record.starts_at,
        zone,
        ctx.settings.quiet_hours,
    ) {
        SendDecision::SendAt(at) => {
            messages::queue(
                &mut commit,
                &record,
                Some(&customer),
                zone,
                Outgoing {
                    kind: "booking_confirmation".to_string(),
                    idempotency_key: format!("{}:booking_confirmation", record.id),
                    not_before: at,
                    extra: Vec::new(),
                },
                ctx,
            );
        }
        SendDecision::Skip => commit.events.push(event(
            &record,
            "message.skipped",
            json!({"kind": "booking_confirmation", "reason": "quiet hours until the start"}),
            ctx,
        )),
    }
    if deposit::required(&customer, ctx) {
        deposit::start(&mut record, &customer, &mut commit, ctx);
    }
    if customer.history.risk_score >= HIGH_RISK_AT_INTAKE {
        commit.escalations.push(escalation(
            &record,
            "high_risk_booking",
            "medium",
            json!({"riskScore": customer.history.risk_score,
                   "noShows": customer.history.no_shows}),
            ctx,
        ));
    }
    Decision {
        commit: commit.with_appointment(record.clone(), None),
        record: Some(record),
    }
}

fn update(
    current: &AppointmentRecord,
    booking: Booking,
    ctx: &DecideContext<'_>,
) -> Result<Decision, EngineError> {
    if current.status.is_terminal() {
        return Ok(Decision::default());
    }
    if booking.external_id != current.external_id {
        // The booking system replaced this booking (a reschedule) and the replacement
        // was applied first: the stale booking must not move the appointment back.
        return Err(EngineError::Invalid(format!(
            "superseded: the appointment now follows {}",
            current.external_id
        )));
    }
    let mut next = current.clone();
    next.service_type = booking.service_type.or(next.service_type);
    next.cancel_url = booking.cancel_url.or(next.cancel_url);
    next.reschedule_url = booking.reschedule_url.or(next.reschedule_url);
    next.service_cost_cents = booking.service_cost_cents.or(next.service_cost_cents);
    let moved = booking.starts_at != current.starts_at || booking.ends_at != current.ends_at;
    if moved || current.status == AppointmentStatus::Rescheduled {
        // A new time, or the time of a booking that was waiting in `rescheduled`: the
        // appointment is booked again, with the booking's details.
        return Ok(reschedule(
            &next,
            booking.starts_at,
            booking.ends_at,
            Actor::BookingSystem,
            ctx,
        )
        .unwrap_or_default());
    }
    if next == *current {
        return Ok(Decision::default());
    }
    next.version += 1;
    next.updated_at = ctx.now;
    let mut commit = Commit::default();
    commit
        .events
        .push(event(&next, "appointment.updated", snapshot(&next), ctx));
    Ok(Decision {
        commit: commit.with_appointment(next.clone(), Some(current.version)),
        record: Some(next),
    })
}

/// The booking the appointment follows was replaced (see
/// [`AppointmentCommand::Replaced`]): follow the replacement, and wait in `rescheduled`
/// for its time.
fn replaced_by(
    current: &AppointmentRecord,
    replaced: &[String],
    replacement: Option<String>,
    by: Actor,
    ctx: &DecideContext<'_>,
) -> Result<Decision, EngineError> {
    if current.status.is_terminal() || !replaced.contains(&current.external_id) {
        return Ok(Decision::default());
    }
    let mut next = current.clone();
    if let Some(replacement) = replacement {
        next.external_id = replacement;
    }
    let park = matches!(
        current.status,
        AppointmentStatus::Booked | AppointmentStatus::Confirmed
    );
    if park {
        next.status = current.status.transition(AppointmentStatus::Rescheduled)?;
    }
    if next == *current {
        return Ok(Decision::default());
    }
    next.version += 1;
    next.updated_at = ctx.now;
    let mut commit = Commit::default();
    if park {
        // If the replacement's time never arrives, the appointment must not wait
        // silently without reminders.
        commit.set_timers.push(TimerSpec {
            tenant_id: next.tenant_id.clone(),
            key: timer_key(&next.id, TIMER_RESCHEDULE_WAIT),
            owner_type: "appointment".to_string(),
            owner_id: next.id.clone(),
            kind: TIMER_RESCHEDULE_WAIT.to_string(),
            due_at: ctx.now + reschedule_wait(),
            payload: json!({"startsAt": next.starts_at}),
        });
    }
    let change = if park {
        event(
            &next,
            "appointment.rescheduled",
            json!({
                "from": current.status,
                "to": next.status,
                "by": by,
                "reason": "replaced by a new booking; waiting for its time",
                "externalId": next.external_id,
            }),
            ctx,
        )
    } else {
        event(&next, "appointment.updated", snapshot(&next), ctx)
    };
    commit.events.push(change);
    Ok(Decision {
        commit: commit.with_appointment(next.clone(), Some(current.version)),
        record: Some(next),
    })
}

fn transition(
    current: &AppointmentRecord,
    to: AppointmentStatus,
    by: Actor,
    reason: Option<String>,
    ctx: &DecideContext<'_>,
) -> Result<Decision, EngineError> {
    let status = current.status.transition(to)?;
    let mut next = current.clone();
    next.status = status;
    next.version += 1;
    next.updated_at = ctx.now;
    let mut commit = Commit::default();
    commit.events.push(event(
        &next,
        &format!("appointment.{}", status.as_str()),
        json!({"from": current.status, "to": status, "by": by, "reason": reason}),
        ctx,
    ));
    // (appointments with an outcome, confirmed, no-shows)
    let mut counters = (0, 0, 0);
    match status {
        AppointmentStatus::Confirmed => {
            counters.1 = 1;
            let unconfirmed_only = ctx
                .settings
                .reminders
                .iter()
                .filter(|r| r.only_unconfirmed)
                .map(|r| r.kind.as_str())
                .chain([TIMER_NO_RESPONSE, TIMER_UNCONFIRMED]);
            for kind in unconfirmed_only {
                commit
                    .cancel_timers
                    .push((next.tenant_id.clone(), timer_key(&next.id, kind)));
            }
        }
        AppointmentStatus::NoShow => {
            counters = (1, 0, 1);
            cancel_all_timers(&next, &mut commit, ctx);
            // Recovery reads the customer's updated history, so it runs as its own
            // step once this commit (and its counters) is in.
            commit
                .set_timers
                .push(appointment_timer(&next, TIMER_NO_SHOW_RECOVERY, ctx.now));
        }
        AppointmentStatus::Completed => {
            counters.0 = 1;
            cancel_all_timers(&next, &mut commit, ctx);
            let review_at = (next.ends_at + ctx.settings.timings().review_after_end).max(ctx.now);
            commit
                .set_timers
                .push(appointment_timer(&next, TIMER_REVIEW, review_at));
        }
        AppointmentStatus::Cancelled => {
            cancel_all_timers(&next, &mut commit, ctx);
        }
        AppointmentStatus::InProgress => {
            let before_start = ctx
                .settings
                .reminders
                .iter()
                .map(|r| r.kind.as_str())
                .chain([TIMER_NO_RESPONSE, TIMER_UNCONFIRMED]);
            for kind in before_start {
                commit
                    .cancel_timers
                    .push((next.tenant_id.clone(), timer_key(&next.id, kind)));
            }
        }
        AppointmentStatus::Booked | AppointmentStatus::Rescheduled => {}
    }
    if counters != (0, 0, 0) {
        commit.customer = Some(CustomerWrite::Counters {
            customer_id: next.customer_id.clone(),
            appointments: counters.0,
            confirmed: counters.1,
            no_shows: counters.2,
            reschedules: 0,
        });
    }
    let set: Vec<String> = commit.set_timers.iter().map(|t| t.key.clone()).collect();
    commit.cancel_timers.retain(|(_, key)| !set.contains(key));
    Ok(Decision {
        commit: commit.with_appointment(next.clone(), Some(current.version)),
        record: Some(next),
    })
}

fn reschedule(
    current: &AppointmentRecord,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    by: Actor,
    ctx: &DecideContext<'_>,
) -> Result<Decision, EngineError> {
    if ends_at < starts_at {
        return Err(EngineError::Invalid(
            "the end is before the start".to_string(),
        ));
    }
    // booked/confirmed → rescheduled → booked, as one committed change. An appointment
    // already parked in `rescheduled` (by an explicit transition) only takes the second
    // step, rescheduled → booked: SPEC §3, "the booking system reports a new time, or
    // staff move it".
    if current.status != AppointmentStatus::Rescheduled {
        current.status.transition(AppointmentStatus::Rescheduled)?;
    }
    let mut next = current.clone();
    next.status = AppointmentStatus::Booked;
    next.starts_at = starts_at;
    next.ends_at = ends_at;
    next.version += 1;
    next.updated_at = ctx.now;
    let mut commit = Commit {
        customer: Some(CustomerWrite::Counters {
            customer_id: next.customer_id.clone(),
            appointments: 0,
            confirmed: 0,
            no_shows: 0,
            reschedules: 1,
        }),
        ..Commit::default()
    };
    commit.events.push(event(
        &next,
        "appointment.rescheduled",
        json!({
            "from": {"startsAt": current.starts_at, "endsAt": current.ends_at},
            "to": {"startsAt": starts_at, "endsAt": ends_at},
            "by": by,
        }),
        ctx,
    ));
    // Every timer is recomputed from the new time; keys are stable, so setting one
    // moves it, and reminders whose new moment has passed are cancelled.
    cancel_all_timers(&next, &mut commit, ctx);
    schedule_timers(&next, &mut commit, ctx);
    let set: Vec<String> = commit.set_timers.iter().map(|t| t.key.clone()).collect();
    commit.cancel_timers.retain(|(_, key)| !set.contains(key));
    Ok(Decision {
        commit: commit.with_appointment(next.clone(), Some(current.version)),
        record: Some(next),
    })
}

#[allow(clippy::too_many_arguments)]
fn timer_fired(
    record: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    key: &str,
    kind: &str,
    due_at: DateTime<Utc>,
    payload: &Value,
    ctx: &DecideContext<'_>,
) -> Decision {
    let mut commit = Commit {
        fired_timers: vec![(record.tenant_id.clone(), key.to_string())],
        ..Commit::default()
    };
    if AFTER_VISIT_TIMERS.contains(&kind) {
        return after_visit(record, customer, kind, commit, ctx);
    }
    if deposit::DEPOSIT_TIMERS.contains(&kind) {
        return deposit::timer_fired(record, customer, kind, commit, ctx);
    }
    let scheduled_for_start = payload
        .get("startsAt")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    if scheduled_for_start != Some(record.starts_at) || record.status.is_terminal() {
        // Superseded by a reschedule, or the appointment is over: nothing to do.
        return Decision {
            record: None,
            commit,
        };
    }
    match kind {
        TIMER_START => {
            return transition_or_nothing(record, AppointmentStatus::InProgress, commit, ctx);
        }
        TIMER_COMPLETE => {
            return transition_or_nothing(record, AppointmentStatus::Completed, commit, ctx);
        }
        TIMER_NO_RESPONSE | TIMER_UNCONFIRMED => {
            if record.status == AppointmentStatus::Booked {
                let (reason, priority) = if kind == TIMER_NO_RESPONSE {
                    ("no_customer_response", "medium")
                } else {
                    ("unconfirmed_before_start", "high")
                };
                commit.escalations.push(escalation(
                    record,
                    reason,
                    priority,
                    json!({"startsAt": record.starts_at, "dueAt": due_at}),
                    ctx,
                ));
            }
            return Decision {
                record: None,
                commit,
            };
        }
        TIMER_RESCHEDULE_WAIT => {
            if record.status == AppointmentStatus::Rescheduled {
                commit.escalations.push(escalation(
                    record,
                    "reschedule_incomplete",
                    "medium",
                    json!({
                        "externalId": record.external_id,
                        "waitingSince": due_at - reschedule_wait(),
                    }),
                    ctx,
                ));
            }
            return Decision {
                record: None,
                commit,
            };
        }
        _ => {}
    }
    let Some(rule) = ctx.settings.reminders.iter().find(|r| r.kind == kind) else {
        return Decision {
            record: None,
            commit,
        };
    };
    if rule.only_unconfirmed && record.status != AppointmentStatus::Booked {
        return Decision {
            record: None,
            commit,
        };
    }
    if !matches!(
        record.status,
        AppointmentStatus::Booked | AppointmentStatus::Confirmed
    ) {
        return Decision {
            record: None,
            commit,
        };
    }
    let latest = record.starts_at - ctx.settings.last_send_before_start;
    let zone = resolve_zone(Some(&record.timezone), customer, ctx.settings);
    match schedule_outside_quiet_hours(ctx.now, ctx.now, latest, zone, ctx.settings.quiet_hours) {
        SendDecision::SendAt(at) if at > ctx.now => {
            // Inside quiet hours: move the timer, keep its payload.
            commit.fired_timers.clear();
            commit.set_timers.push(TimerSpec {
                tenant_id: record.tenant_id.clone(),
                key: key.to_string(),
                owner_type: "appointment".to_string(),
                owner_id: record.id.clone(),
                kind: kind.to_string(),
                due_at: at,
                payload: payload.clone(),
            });
        }
        SendDecision::SendAt(_) => {
            let queued = messages::queue(
                &mut commit,
                record,
                customer,
                zone,
                Outgoing {
                    kind: kind.to_string(),
                    idempotency_key: reminder_key(record, kind),
                    not_before: ctx.now,
                    extra: Vec::new(),
                },
                ctx,
            );
            if queued == Queued::Queued && rule.only_unconfirmed {
                // The last reminder: staff hear if it gets no answer.
                let check_at = ctx.now + ctx.settings.timings().no_response_after;
                if check_at < record.starts_at {
                    commit
                        .set_timers
                        .push(appointment_timer(record, TIMER_NO_RESPONSE, check_at));
                }
            }
        }
        SendDecision::Skip => {
            commit.fired_timers.clear();
            commit
                .missed_timers
                .push((record.tenant_id.clone(), key.to_string()));
            commit.escalations.push(escalation(
                record,
                "reminder_missed",
                "medium",
                json!({"kind": kind, "dueAt": due_at, "firedAt": ctx.now}),
                ctx,
            ));
            commit.events.push(event(
                record,
                "reminder.missed",
                json!({"kind": kind, "dueAt": due_at}),
                ctx,
            ));
        }
    }
    Decision {
        record: None,
        commit,
    }
}

/// The steps after the visit (SPEC §4): no-show recovery, the review request and the
/// rebooking offer. They read the customer's history, loaded fresh for them.
fn after_visit(
    record: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    kind: &str,
    mut commit: Commit,
    ctx: &DecideContext<'_>,
) -> Decision {
    let zone = resolve_zone(Some(&record.timezone), customer, ctx.settings);
    let timings = *ctx.settings.timings();
    let history = customer.map(|c| c.history.clone()).unwrap_or_default();
    // No start bounds these: only quiet hours move them.
    let send_at = match schedule_outside_quiet_hours(
        ctx.now,
        ctx.now,
        ctx.now + Duration::days(2),
        zone,
        ctx.settings.quiet_hours,
    ) {
        SendDecision::SendAt(at) => at,
        SendDecision::Skip => ctx.now,
    };
    let message = |kind: &str| Outgoing {
        kind: kind.to_string(),
        idempotency_key: format!("{}:{}", record.id, kind),
        not_before: send_at,
        extra: Vec::new(),
    };
    let nothing = |commit: Commit| Decision {
        record: None,
        commit,
    };
    match kind {
        TIMER_NO_SHOW_RECOVERY if record.status == AppointmentStatus::NoShow => {
            let rules = ctx.settings.pack.policy.deposit;
            let risk = history.risk();
            let no_shows = u32::try_from(history.no_shows).unwrap_or(0);
            let deposit_from_now =
                risk >= rules.risk_threshold || no_shows >= rules.no_show_threshold;
            commit.events.push(event(
                record,
                "customer.risk_recomputed",
                json!({"customerId": record.customer_id, "riskScore": risk,
                       "level": crate::domain::risk::RiskLevel::of(risk).as_str(),
                       "noShows": history.no_shows, "requiresDeposit": deposit_from_now}),
                ctx,
            ));
            let offer = if deposit_from_now {
                commit.customer = Some(CustomerWrite::Flags {
                    customer_id: record.customer_id.clone(),
                    requires_deposit: Some(true),
                    last_review_request_at: None,
                });
                commit.escalations.push(escalation(
                    record,
                    "deposit_required",
                    "low",
                    json!({"riskScore": risk, "noShows": history.no_shows}),
                    ctx,
                ));
                "rebook_with_deposit"
            } else {
                "rebook_offer"
            };
            messages::queue(&mut commit, record, customer, zone, message(offer), ctx);
            nothing(commit)
        }
        TIMER_REVIEW if record.status == AppointmentStatus::Completed => {
            let recently_asked = history
                .last_review_request_at
                .is_some_and(|at| at > ctx.now - timings.review_cooldown);
            let skip = if recently_asked {
                Some("asked for a review within the cooldown")
            } else if ctx.settings.business.review_url.is_none() {
                Some("no review link configured")
            } else {
                None
            };
            if let Some(reason) = skip {
                commit.events.push(event(
                    record,
                    "review.skipped",
                    json!({"reason": reason}),
                    ctx,
                ));
                if recently_asked {
                    // SPEC §4: both the review request and the rebooking offer.
                    return nothing(commit);
                }
            } else if messages::queue(
                &mut commit,
                record,
                customer,
                zone,
                message("review_request"),
                ctx,
            ) == Queued::Queued
            {
                commit.customer = Some(CustomerWrite::Flags {
                    customer_id: record.customer_id.clone(),
                    requires_deposit: None,
                    last_review_request_at: Some(send_at),
                });
            }
            commit.set_timers.push(appointment_timer(
                record,
                TIMER_REBOOK,
                send_at + timings.rebook_after_review,
            ));
            nothing(commit)
        }
        TIMER_REBOOK if record.status == AppointmentStatus::Completed => {
            let offer = if history.requires_deposit {
                "rebook_with_deposit"
            } else {
                "rebook_offer"
            };
            messages::queue(&mut commit, record, customer, zone, message(offer), ctx);
            nothing(commit)
        }
        _ => nothing(commit),
    }
}

/// One of the appointment's timers, due at `due_at`.
pub(crate) fn appointment_timer(
    record: &AppointmentRecord,
    kind: &str,
    due_at: DateTime<Utc>,
) -> TimerSpec {
    TimerSpec {
        tenant_id: record.tenant_id.clone(),
        key: timer_key(&record.id, kind),
        owner_type: "appointment".to_string(),
        owner_id: record.id.clone(),
        kind: kind.to_string(),
        due_at,
        payload: json!({"startsAt": record.starts_at.to_rfc3339()}),
    }
}

/// The minimum confidence for a reply to act on its intent (SPEC §4).
pub const REPLY_CONFIDENCE_FLOOR: f64 = 0.7;

/// A classified reply, as [`AppointmentCommand::ReplyReceived`] carries it.
struct Reply<'a> {
    intent: Intent,
    confidence: f64,
    message_sid: &'a str,
    excerpt: &'a str,
}

/// A customer's classified reply (SPEC §4): a confident `confirm` confirms a booked
/// appointment (and so cancels the 24 h reminder); `cancel` and `reschedule` are
/// escalated with the booking system's links — the appointment is never cancelled
/// (SPEC §3); anything unclear, and any reply to a finished appointment, is escalated
/// with its excerpt. Every reply is recorded as a `message.received` event (intent,
/// confidence and a short excerpt; never the phone number).
///
/// Each acted-on intent is answered: a thank-you for a confirmation, the booking
/// system's reschedule or cancel link (or the business phone) otherwise.
fn reply_received(
    record: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    reply: Reply<'_>,
    ctx: &DecideContext<'_>,
) -> Decision {
    let zone = resolve_zone(Some(&record.timezone), customer, ctx.settings);
    let answer = |kind: &str| Outgoing {
        kind: kind.to_string(),
        idempotency_key: format!("{}:{}:{}", record.id, kind, reply.message_sid),
        not_before: ctx.now,
        extra: Vec::new(),
    };
    let excerpt = reply_excerpt(reply.excerpt);
    let intent = if reply.confidence < REPLY_CONFIDENCE_FLOOR {
        Intent::Unclear
    } else {
        reply.intent
    };
    let received = |version_of: &AppointmentRecord| {
        event(
            version_of,
            "message.received",
            json!({
                "messageSid": reply.message_sid,
                "intent": intent,
                "classifiedIntent": reply.intent,
                "confidence": reply.confidence,
                "excerpt": excerpt,
            }),
            ctx,
        )
    };
    let mut commit = Commit::default();
    if record.status.is_terminal() {
        commit.events.push(received(record));
        commit.escalations.push(escalation(
            record,
            "reply_after_close",
            "medium",
            json!({"status": record.status, "intent": intent, "excerpt": excerpt,
                   "messageSid": reply.message_sid}),
            ctx,
        ));
        return Decision {
            record: None,
            commit,
        };
    }
    match intent {
        Intent::Confirm => {
            if record.status == AppointmentStatus::Booked {
                if let Ok(mut decision) = transition(
                    record,
                    AppointmentStatus::Confirmed,
                    Actor::Customer,
                    Some("customer replied".to_string()),
                    ctx,
                ) {
                    decision.commit.events.insert(0, received(record));
                    if let Some(confirmed) = &decision.record {
                        messages::queue(
                            &mut decision.commit,
                            confirmed,
                            customer,
                            zone,
                            answer("confirm_ack"),
                            ctx,
                        );
                    }
                    return decision;
                }
            }
            // Already confirmed, or waiting for a new time: nothing to change.
        }
        Intent::Cancel => {
            commit.escalations.push(escalation(
                record,
                "customer_wants_to_cancel",
                "high",
                json!({"cancelUrl": record.cancel_url, "excerpt": excerpt,
                       "confidence": reply.confidence, "messageSid": reply.message_sid}),
                ctx,
            ));
            messages::queue(
                &mut commit,
                record,
                customer,
                zone,
                answer("cancel_reply"),
                ctx,
            );
        }
        Intent::Reschedule => {
            commit.escalations.push(escalation(
                record,
                "customer_wants_to_reschedule",
                "low",
                json!({"rescheduleUrl": record.reschedule_url, "excerpt": excerpt,
                       "confidence": reply.confidence, "messageSid": reply.message_sid}),
                ctx,
            ));
            messages::queue(
                &mut commit,
                record,
                customer,
                zone,
                answer("reschedule_reply"),
                ctx,
            );
        }
        Intent::Unclear => commit.escalations.push(escalation(
            record,
            "unclear_reply",
            "medium",
            json!({"excerpt": excerpt, "classifiedIntent": reply.intent,
                   "confidence": reply.confidence, "messageSid": reply.message_sid}),
            ctx,
        )),
    }
    commit.events.insert(0, received(record));
    Decision {
        record: None,
        commit,
    }
}

/// What to do with a queued reminder when its turn to be sent comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxGate {
    /// Send it now.
    Send,
    /// Not yet (quiet hours in the appointment's zone): try again at this instant.
    Hold(DateTime<Utc>),
    /// Never: it no longer applies (the appointment was cancelled, confirmed, finished
    /// or moved to another time).
    Drop(String),
    /// Too late: no allowed instant is left before start − 2 h. Recorded as missed and
    /// escalated (SPEC §4).
    Missed(String),
}

/// Whether a queued message of `kind` is re-checked against its appointment at send
/// time (see [`gate_outbox`]). Answers to the customer go as they are.
pub fn is_gated(kind: &str) -> bool {
    !RESPONSE_KINDS.contains(&kind)
}

/// Re-checks a message queued earlier, at the moment it would go to the provider.
///
/// Between queueing and sending — retries, an open breaker, downtime — the appointment
/// may have been cancelled, confirmed or moved, and the clock may have entered quiet
/// hours or passed the message's last allowed instant. For reminders the rules are the
/// ones `timer_fired` applied when it queued them, applied again to the committed state
/// of `now`. The booking confirmation must still be about an open appointment, before
/// its start; messages after the visit only wait out quiet hours. Answers to the
/// customer ([`RESPONSE_KINDS`]) pass unchanged.
pub fn gate_outbox(
    record: Option<&AppointmentRecord>,
    kind: &str,
    idempotency_key: &str,
    now: DateTime<Utc>,
    settings: &EngineSettings,
) -> OutboxGate {
    if !is_gated(kind) {
        return OutboxGate::Send;
    }
    let Some(record) = record else {
        return OutboxGate::Drop("the appointment no longer exists".to_string());
    };
    let latest = if let Some(rule) = settings.reminders.iter().find(|r| r.kind == kind) {
        if reminder_key(record, kind) != idempotency_key {
            return OutboxGate::Drop(format!(
                "superseded: the appointment now starts at {}",
                record.starts_at.to_rfc3339()
            ));
        }
        match record.status {
            AppointmentStatus::Booked => {}
            AppointmentStatus::Confirmed if !rule.only_unconfirmed => {}
            status => return OutboxGate::Drop(format!("the appointment is {status}")),
        }
        record.starts_at - settings.last_send_before_start
    } else if kind == "booking_confirmation" {
        match record.status {
            AppointmentStatus::Booked
            | AppointmentStatus::Confirmed
            | AppointmentStatus::Rescheduled => {}
            status => return OutboxGate::Drop(format!("the appointment is {status}")),
        }
        record.starts_at
    } else {
        // After the visit: no start bounds it, only quiet hours hold it.
        now + Duration::days(2)
    };
    let zone = resolve_zone(Some(&record.timezone), None, settings);
    match schedule_outside_quiet_hours(now, now, latest, zone, settings.quiet_hours) {
        SendDecision::SendAt(at) if at > now => OutboxGate::Hold(at),
        SendDecision::SendAt(_) => OutboxGate::Send,
        SendDecision::Skip => OutboxGate::Missed(format!(
            "no allowed time left before {}",
            latest.to_rfc3339()
        )),
    }
}

fn transition_or_nothing(
    record: &AppointmentRecord,
    to: AppointmentStatus,
    fired: Commit,
    ctx: &DecideContext<'_>,
) -> Decision {
    match transition(record, to, Actor::System, None, ctx) {
        Ok(mut decision) => {
            decision.commit.fired_timers = fired.fired_timers;
            decision
        }
        Err(_) => Decision {
            record: None,
            commit: fired,
        },
    }
}

/// The durable-timer key of one of an appointment's timers.
pub fn timer_key(appointment_id: &str, kind: &str) -> String {
    format!("appointment:{appointment_id}:{kind}")
}

/// The idempotency key of a reminder: one per appointment, kind and start time.
pub fn reminder_key(record: &AppointmentRecord, kind: &str) -> String {
    format!("{}:{}:{}", record.id, kind, record.starts_at.timestamp())
}

fn schedule_timers(record: &AppointmentRecord, commit: &mut Commit, ctx: &DecideContext<'_>) {
    let mut set = |kind: &str, due_at: DateTime<Utc>| {
        commit
            .set_timers
            .push(appointment_timer(record, kind, due_at));
    };
    for rule in &ctx.settings.reminders {
        let due = record.starts_at - rule.before_start;
        // A booking made after a reminder's time skips that reminder.
        if due > ctx.now {
            set(&rule.kind, due);
        }
    }
    let unconfirmed_check = record.starts_at - ctx.settings.timings().unconfirmed_escalation_before;
    if unconfirmed_check > ctx.now {
        set(TIMER_UNCONFIRMED, unconfirmed_check);
    }
    set(TIMER_START, record.starts_at);
    set(
        TIMER_COMPLETE,
        record.ends_at + ctx.settings.completion_grace,
    );
}

fn cancel_all_timers(record: &AppointmentRecord, commit: &mut Commit, ctx: &DecideContext<'_>) {
    let kinds = ctx
        .settings
        .reminders
        .iter()
        .map(|r| r.kind.as_str())
        .chain([
            TIMER_START,
            TIMER_COMPLETE,
            TIMER_RESCHEDULE_WAIT,
            TIMER_NO_RESPONSE,
            TIMER_UNCONFIRMED,
        ]);
    for kind in kinds {
        commit
            .cancel_timers
            .push((record.tenant_id.clone(), timer_key(&record.id, kind)));
    }
}

fn snapshot(record: &AppointmentRecord) -> Value {
    json!({
        "status": record.status,
        "startsAt": record.starts_at,
        "endsAt": record.ends_at,
        "timezone": record.timezone,
        "customerId": record.customer_id,
        "source": record.source,
        "externalId": record.external_id,
        "serviceType": record.service_type,
    })
}

impl Commit {
    fn with_appointment(
        mut self,
        record: AppointmentRecord,
        expected_version: Option<i64>,
    ) -> Self {
        self.appointment = Some(Versioned {
            record,
            expected_version,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ids::UuidV7;
    use crate::testing::fixtures::sample_booking;

    const ID: &str = "appointment-1";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn now() -> DateTime<Utc> {
        at("2031-03-01T10:00:00Z")
    }

    /// Applies `command` to `current` the way the actor does (state only).
    fn apply(
        current: Option<&AppointmentRecord>,
        command: AppointmentCommand,
    ) -> Result<Decision, EngineError> {
        apply_for(current, None, command)
    }

    fn apply_for(
        current: Option<&AppointmentRecord>,
        customer: Option<&CustomerRecord>,
        command: AppointmentCommand,
    ) -> Result<Decision, EngineError> {
        let settings = EngineSettings::default();
        let ctx = DecideContext {
            now: now(),
            settings: &settings,
            ids: &UuidV7,
            appointment_id: ID,
            correlation_id: Some(CORRELATION),
            causation_id: Some(CAUSATION),
        };
        decide(current, customer, command, &ctx)
    }

    const CORRELATION: &str = "req-7f3a";
    const CAUSATION: &str = "cmd-0192";

    #[test]
    fn every_event_carries_what_caused_it() {
        let decision = apply_for(
            None,
            None,
            AppointmentCommand::Book(sample_booking("inv-9", at("2031-03-20T15:00:00Z"))),
        )
        .expect("booked");
        assert!(!decision.commit.events.is_empty());
        for event in &decision.commit.events {
            assert_eq!(
                event.correlation_id.as_deref(),
                Some(CORRELATION),
                "{}",
                event.event_type
            );
            assert_eq!(
                event.causation_id.as_deref(),
                Some(CAUSATION),
                "{}",
                event.event_type
            );
        }
    }

    /// The appointment's customer, reachable by SMS.
    fn texting_customer(record: &AppointmentRecord) -> CustomerRecord {
        CustomerRecord {
            id: record.customer_id.clone(),
            tenant_id: record.tenant_id.clone(),
            phone_e164: Some("+15550001111".into()),
            name: Some("Jane Smith".into()),
            email: None,
            timezone: None,
            opted_out: false,
            history: Default::default(),
        }
    }

    fn outbox_kinds(decision: &Decision) -> Vec<&str> {
        decision
            .commit
            .outbox
            .iter()
            .map(|o| o.kind.as_str())
            .collect()
    }

    fn booked(external_id: &str, starts_at: &str) -> AppointmentRecord {
        let decision = apply(
            None,
            AppointmentCommand::Book(sample_booking(external_id, at(starts_at))),
        )
        .expect("created");
        decision.record.expect("a record")
    }

    fn replaced(replaced: &[&str], replacement: &str) -> AppointmentCommand {
        AppointmentCommand::Replaced {
            replaced: replaced.iter().map(|s| s.to_string()).collect(),
            replacement: Some(replacement.to_string()),
            by: Actor::BookingSystem,
        }
    }

    fn event_types(decision: &Decision) -> Vec<&str> {
        decision
            .commit
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect()
    }

    #[test]
    fn an_appointment_left_waiting_in_rescheduled_is_escalated() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let parked = apply(Some(&current), replaced(&["inv-1"], "inv-2"))
            .expect("applied")
            .record
            .expect("parked");
        let wait = |record: &AppointmentRecord| AppointmentCommand::TimerFired {
            tenant_id: record.tenant_id.clone(),
            key: timer_key(&record.id, TIMER_RESCHEDULE_WAIT),
            kind: TIMER_RESCHEDULE_WAIT.to_string(),
            due_at: now() + reschedule_wait(),
            payload: json!({"startsAt": record.starts_at}),
        };
        let decision = apply(Some(&parked), wait(&parked)).expect("fired");
        let reasons: Vec<&str> = decision
            .commit
            .escalations
            .iter()
            .map(|e| e.reason.as_str())
            .collect();
        assert_eq!(reasons, ["reschedule_incomplete"]);
        assert_eq!(
            decision.record, None,
            "the appointment itself does not change"
        );

        // Booked again in time: the wait timer is cancelled, and a late firing is quiet.
        let booking = sample_booking("inv-2", at("2031-03-22T16:00:00Z"));
        let decision = apply(Some(&parked), AppointmentCommand::Book(booking)).expect("moved");
        let key = timer_key(ID, TIMER_RESCHEDULE_WAIT);
        assert!(decision.commit.cancel_timers.iter().any(|(_, k)| *k == key));
        let moved = decision.record.expect("moved");
        let late = apply(Some(&moved), wait(&parked)).expect("fired late");
        assert!(late.commit.escalations.is_empty());
    }

    #[test]
    fn a_replaced_booking_waits_in_rescheduled_under_its_replacement() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let decision = apply(Some(&current), replaced(&["inv-1"], "inv-2")).expect("applied");
        let next = decision.record.clone().expect("changed");
        assert_eq!(next.status, AppointmentStatus::Rescheduled);
        assert_eq!(next.external_id, "inv-2");
        assert_eq!(
            next.starts_at, current.starts_at,
            "the time waits for the Book"
        );
        assert_eq!(event_types(&decision), ["appointment.rescheduled"]);
        assert!(decision.commit.cancel_timers.is_empty());
        let wait = decision
            .commit
            .set_timers
            .iter()
            .find(|t| t.kind == TIMER_RESCHEDULE_WAIT)
            .expect("a wait timer while parked");
        assert_eq!(wait.due_at, now() + reschedule_wait());

        // The replacement's time arrives: booked again at the new time, timers moved.
        let mut booking = sample_booking("inv-2", at("2031-03-22T16:00:00Z"));
        booking.cancel_url = Some("https://calendly.com/cancellations/inv-2".into());
        let decision = apply(Some(&next), AppointmentCommand::Book(booking)).expect("moved");
        let moved = decision.record.clone().expect("changed");
        assert_eq!(moved.status, AppointmentStatus::Booked);
        assert_eq!(moved.starts_at, at("2031-03-22T16:00:00Z"));
        assert_eq!(
            moved.cancel_url.as_deref(),
            Some("https://calendly.com/cancellations/inv-2"),
            "the replacement's links are adopted"
        );
        assert_eq!(event_types(&decision), ["appointment.rescheduled"]);
        let reminder = decision
            .commit
            .set_timers
            .iter()
            .find(|t| t.kind == "reminder_48h")
            .expect("the 48 h reminder is set again");
        assert_eq!(reminder.due_at, at("2031-03-20T16:00:00Z"));
    }

    #[test]
    fn the_replacement_may_arrive_before_the_cancellation() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        // Create half first: relabel, then the Book moves it.
        let parked = apply(Some(&current), replaced(&["inv-1"], "inv-2"))
            .expect("applied")
            .record
            .expect("changed");
        let moved = apply(
            Some(&parked),
            AppointmentCommand::Book(sample_booking("inv-2", at("2031-03-22T16:00:00Z"))),
        )
        .expect("moved")
        .record
        .expect("changed");
        // The cancel half comes last: the appointment follows inv-2 already.
        let late = apply(Some(&moved), replaced(&["inv-1"], "inv-2")).expect("no-op");
        assert_eq!(late, Decision::default());
    }

    #[test]
    fn a_stale_booking_is_refused_and_changes_nothing() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let moved = apply(Some(&current), replaced(&["inv-1"], "inv-2"))
            .expect("applied")
            .record
            .expect("changed");
        let stale = apply(
            Some(&moved),
            AppointmentCommand::Book(sample_booking("inv-1", at("2031-03-20T15:00:00Z"))),
        );
        assert!(matches!(stale, Err(EngineError::Invalid(_))), "{stale:?}");
    }

    #[test]
    fn replacement_of_another_booking_or_a_finished_appointment_is_nothing() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let other = apply(Some(&current), replaced(&["inv-0"], "inv-9")).expect("no-op");
        assert_eq!(other, Decision::default());

        let mut cancelled = current.clone();
        cancelled.status = AppointmentStatus::Cancelled;
        let over = apply(Some(&cancelled), replaced(&["inv-1"], "inv-2")).expect("no-op");
        assert_eq!(over, Decision::default());

        // Older links of the chain count: inv-1 replaced inv-0, which this follows.
        let mut older = current.clone();
        older.external_id = "inv-0".into();
        let chained = apply(Some(&older), replaced(&["inv-1", "inv-0"], "inv-2"))
            .expect("applied")
            .record
            .expect("changed");
        assert_eq!(chained.external_id, "inv-2");
    }

    #[test]
    fn an_appointment_already_waiting_only_follows_the_replacement() {
        let mut current = booked("inv-1", "2031-03-20T15:00:00Z");
        current.status = AppointmentStatus::Rescheduled;
        let decision = apply(Some(&current), replaced(&["inv-1"], "inv-2")).expect("applied");
        let next = decision.record.clone().expect("changed");
        assert_eq!(next.status, AppointmentStatus::Rescheduled);
        assert_eq!(next.external_id, "inv-2");
        assert_eq!(event_types(&decision), ["appointment.updated"]);
    }

    #[test]
    fn a_replacement_of_an_unknown_appointment_is_not_found() {
        let missing = apply(None, replaced(&["inv-1"], "inv-2"));
        assert!(
            matches!(missing, Err(EngineError::NotFound(_))),
            "{missing:?}"
        );
    }

    #[test]
    fn a_book_at_the_same_time_ends_the_wait_in_rescheduled() {
        let mut current = booked("inv-1", "2031-03-20T15:00:00Z");
        current.status = AppointmentStatus::Rescheduled;
        let decision = apply(
            Some(&current),
            AppointmentCommand::Book(sample_booking("inv-1", current.starts_at)),
        )
        .expect("applied");
        let next = decision.record.expect("changed");
        assert_eq!(next.status, AppointmentStatus::Booked);
        assert!(!decision.commit.set_timers.is_empty(), "timers recomputed");
    }

    fn reply(intent: Intent, confidence: f64, text: &str) -> AppointmentCommand {
        AppointmentCommand::ReplyReceived {
            intent,
            confidence,
            message_sid: "SM1".to_string(),
            excerpt: text.to_string(),
        }
    }

    fn reasons(decision: &Decision) -> Vec<(&str, &str)> {
        decision
            .commit
            .escalations
            .iter()
            .map(|e| (e.reason.as_str(), e.priority.as_str()))
            .collect()
    }

    #[test]
    fn a_confident_confirm_confirms_and_cancels_the_24h_reminder() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let jane = texting_customer(&current);
        let decision = apply_for(
            Some(&current),
            Some(&jane),
            reply(Intent::Confirm, 0.95, "yes 👍"),
        )
        .expect("ok");
        let next = decision.record.clone().expect("changed");
        assert_eq!(next.status, AppointmentStatus::Confirmed);
        assert_eq!(
            event_types(&decision),
            [
                "message.received",
                "appointment.confirmed",
                "message.queued"
            ]
        );
        let cancelled: Vec<&str> = decision
            .commit
            .cancel_timers
            .iter()
            .map(|(_, key)| key.as_str())
            .collect();
        assert_eq!(
            cancelled,
            [
                timer_key(ID, "reminder_24h"),
                timer_key(ID, TIMER_NO_RESPONSE),
                timer_key(ID, TIMER_UNCONFIRMED)
            ]
        );
        assert!(decision.commit.escalations.is_empty());
        assert_eq!(outbox_kinds(&decision), ["confirm_ack"], "a thank-you");
        let ack = &decision.commit.outbox[0];
        assert!(ack.payload["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Jane"));
        assert_eq!(ack.idempotency_key, format!("{ID}:confirm_ack:SM1"));
        let payload = &decision.commit.events[0].payload;
        assert_eq!(payload["intent"], "confirm");
        assert_eq!(payload["excerpt"], "yes 👍");

        // Confirmed already: only the event.
        let again = apply(Some(&next), reply(Intent::Confirm, 0.95, "yes")).expect("ok");
        assert!(again.record.is_none());
        assert_eq!(event_types(&again), ["message.received"]);
        assert!(again.commit.escalations.is_empty() && again.commit.cancel_timers.is_empty());
    }

    #[test]
    fn cancel_and_reschedule_are_escalated_never_applied() {
        let mut current = booked("inv-1", "2031-03-20T15:00:00Z");
        current.cancel_url = Some("https://example.com/c".into());
        current.reschedule_url = Some("https://example.com/r".into());
        let cancel = apply(
            Some(&current),
            reply(Intent::Cancel, 0.9, "I need to cancel"),
        )
        .expect("ok");
        assert!(cancel.record.is_none(), "never cancels");
        assert!(cancel.commit.appointment.is_none());
        assert_eq!(
            reasons(&cancel),
            [
                ("customer_wants_to_cancel", "high"),
                ("no_contact", "medium")
            ],
            "no number to answer on: staff are told"
        );
        let jane = texting_customer(&current);
        let answered = apply_for(
            Some(&current),
            Some(&jane),
            reply(Intent::Cancel, 0.9, "I need to cancel"),
        )
        .expect("ok");
        assert_eq!(reasons(&answered), [("customer_wants_to_cancel", "high")]);
        assert_eq!(outbox_kinds(&answered), ["cancel_reply"]);
        assert!(answered.commit.outbox[0].payload["body"]
            .as_str()
            .unwrap_or_default()
            .contains("https://example.com/c"));
        assert_eq!(
            cancel.commit.escalations[0].details["cancelUrl"],
            "https://example.com/c"
        );
        let moved = apply(
            Some(&current),
            reply(Intent::Reschedule, 0.9, "can we move it"),
        )
        .expect("ok");
        assert!(moved.record.is_none());
        assert_eq!(reasons(&moved)[0], ("customer_wants_to_reschedule", "low"));
        let moved = apply_for(
            Some(&current),
            Some(&jane),
            reply(Intent::Reschedule, 0.9, "can we move it"),
        )
        .expect("ok");
        assert_eq!(outbox_kinds(&moved), ["reschedule_reply"]);
        assert!(moved.commit.outbox[0].payload["body"]
            .as_str()
            .unwrap_or_default()
            .contains("https://example.com/r"));
        assert_eq!(
            moved.commit.escalations[0].details["rescheduleUrl"],
            "https://example.com/r"
        );
    }

    #[test]
    fn unclear_or_unconfident_replies_escalate_with_a_short_excerpt() {
        let current = booked("inv-1", "2031-03-20T15:00:00Z");
        let long = "x".repeat(500);
        let decision = apply(Some(&current), reply(Intent::Confirm, 0.5, &long)).expect("ok");
        assert!(decision.record.is_none(), "below 0.7 nothing is confirmed");
        assert_eq!(reasons(&decision), [("unclear_reply", "medium")]);
        let excerpt = decision.commit.escalations[0].details["excerpt"]
            .as_str()
            .expect("excerpt");
        assert_eq!(excerpt.chars().count(), 160);
        assert_eq!(event_types(&decision), ["message.received"]);
        assert_eq!(decision.commit.events[0].payload["intent"], "unclear");
    }

    #[test]
    fn a_reply_after_close_is_escalated() {
        let mut current = booked("inv-1", "2031-03-20T15:00:00Z");
        current.status = AppointmentStatus::Cancelled;
        let decision = apply(Some(&current), reply(Intent::Confirm, 0.99, "yes")).expect("ok");
        assert!(decision.record.is_none());
        assert_eq!(reasons(&decision), [("reply_after_close", "medium")]);
        assert_eq!(event_types(&decision), ["message.received"]);
    }

    #[test]
    fn a_reply_command_round_trips_through_json() {
        let command = reply(Intent::Reschedule, 0.8, "later?");
        let json = serde_json::to_string(&command).expect("json");
        let back: AppointmentCommand = serde_json::from_str(&json).expect("back");
        assert_eq!(back, command);
    }
}
