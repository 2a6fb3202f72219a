//! The deposit workflow (SPEC §4), decided for its appointment by the appointment's
//! actor, so that the workflow's steps commit in the same transactions as the
//! appointment they belong to (one writer per appointment).
//!
//! For a customer whose risk reaches the pack's threshold, or who has enough no-shows,
//! when payments are configured: create a payment link (through the payment
//! supervisor, with the appointment and customer ids as metadata), send it, wait for the
//! payment (24 h), send one reminder, wait again (12 h), then raise a high
//! `deposit_not_paid` escalation. Waits end no later than start − 2 h. A payment marks
//! the deposit paid and sends a receipt. Nothing is ever charged or cancelled here.
//!
//! Each step is recorded as the `deposit` workflow instance of the appointment
//! (`workflow_instances`, version = steps taken) and as the appointment's
//! `deposit` state.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::decide::{appointment_timer, resolve_zone, timer_key, DecideContext, Decision};
use super::messages::{self, escalation, event, format_amount, Outgoing};
use crate::domain::appointment_status::AppointmentStatus;
use crate::domain::workflow_state::WorkflowState;
use crate::ports::store::{
    AppointmentRecord, Commit, CustomerRecord, DepositStatus, NewOutbox, ProviderDomain, Versioned,
    WorkflowRecord,
};
use crate::profile::Variable;

/// The payment outbox kind: create the deposit's payment link.
pub const DEPOSIT_LINK: &str = "deposit_link";

/// The deposit workflow instance of an appointment (one at most).
pub fn workflow_id(appointment_id: &str) -> String {
    format!("{appointment_id}-deposit")
}

/// The wait for the payment before the reminder.
pub const TIMER_DEPOSIT_WAIT: &str = "deposit_wait";
/// The wait after the reminder before staff are told.
pub const TIMER_DEPOSIT_FINAL: &str = "deposit_final";
/// Deposit timers: they follow the link's time, not the appointment's start.
pub const DEPOSIT_TIMERS: [&str; 2] = [TIMER_DEPOSIT_WAIT, TIMER_DEPOSIT_FINAL];

/// Whether a new booking for `customer` asks for a deposit.
pub fn required(customer: &CustomerRecord, ctx: &DecideContext<'_>) -> bool {
    if !ctx.settings.deposits_enabled {
        return false;
    }
    let rules = ctx.settings.pack.policy.deposit;
    let history = &customer.history;
    history.requires_deposit
        || history.risk() >= rules.risk_threshold
        || u32::try_from(history.no_shows).unwrap_or(0) >= rules.no_show_threshold
}

/// The workflow row for the deposit's new step.
fn workflow(
    record: &AppointmentRecord,
    state: WorkflowState,
    step: &str,
    error: Option<String>,
    ctx: &DecideContext<'_>,
) -> Versioned<WorkflowRecord> {
    let steps = record.deposit.steps;
    Versioned {
        record: WorkflowRecord {
            id: workflow_id(&record.id),
            tenant_id: record.tenant_id.clone(),
            kind: "deposit".to_string(),
            appointment_id: Some(record.id.clone()),
            customer_id: Some(record.customer_id.clone()),
            state,
            step: step.to_string(),
            data: json!({
                "amountCents": record.deposit.amount_cents,
                "link": record.deposit.link,
                "status": record.deposit.status,
            }),
            retry_count: 0,
            last_error: error,
            version: steps,
            created_at: record.created_at,
            updated_at: ctx.now,
        },
        expected_version: (steps > 1).then_some(steps - 1),
    }
}

/// Starts the workflow on a new appointment (`record` is about to be inserted): the
/// payment link is asked for.
pub fn start(
    record: &mut AppointmentRecord,
    customer: &CustomerRecord,
    commit: &mut Commit,
    ctx: &DecideContext<'_>,
) {
    let amount = ctx.settings.pack.policy.deposit.amount_cents;
    record.deposit.status = DepositStatus::Requested;
    record.deposit.amount_cents = Some(amount);
    record.deposit.steps = 1;
    commit.workflows.push(workflow(
        record,
        WorkflowState::Running,
        "create_link",
        None,
        ctx,
    ));
    let currency = ctx.settings.business.currency.clone();
    commit.outbox.push(NewOutbox {
        id: ctx.ids.new_id(),
        tenant_id: record.tenant_id.clone(),
        domain: ProviderDomain::Payment,
        kind: DEPOSIT_LINK.to_string(),
        owner_type: "appointment".to_string(),
        owner_id: record.id.clone(),
        idempotency_key: format!("{}:{}", record.id, DEPOSIT_LINK),
        payload: json!({
            "amountCents": amount,
            "currency": currency,
            "description": format!(
                "Deposit for your {} at {}",
                ctx.settings.pack.terminology.appointment, ctx.settings.business.name
            ),
            "appointmentId": record.id,
            "customerId": customer.id,
        }),
        not_before: ctx.now,
    });
    commit.events.push(event(
        record,
        "deposit.requested",
        json!({"amountCents": amount, "currency": currency,
               "riskScore": customer.history.risk(), "noShows": customer.history.no_shows}),
        ctx,
    ));
}

/// The appointment with its deposit moved on one step.
fn stepped(
    current: &AppointmentRecord,
    status: DepositStatus,
    ctx: &DecideContext<'_>,
) -> AppointmentRecord {
    let mut next = current.clone();
    next.deposit.status = status;
    next.deposit.steps += 1;
    next.version += 1;
    next.updated_at = ctx.now;
    next
}

/// A wait of `length` from now, ending no later than start − 2 h (SPEC §4).
fn wait_until(
    record: &AppointmentRecord,
    length: chrono::Duration,
    ctx: &DecideContext<'_>,
) -> DateTime<Utc> {
    (ctx.now + length)
        .min(record.starts_at - ctx.settings.last_send_before_start)
        .max(ctx.now)
}

fn done(next: AppointmentRecord, mut commit: Commit, current: &AppointmentRecord) -> Decision {
    commit.appointment = Some(Versioned {
        record: next.clone(),
        expected_version: Some(current.version),
    });
    Decision {
        record: Some(next),
        commit,
    }
}

/// The payment supervisor created the link: send it and wait for the payment.
pub fn link_created(
    current: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    url: String,
    ctx: &DecideContext<'_>,
) -> Decision {
    if current.deposit.status != DepositStatus::Requested || current.status.is_terminal() {
        return Decision::default();
    }
    let mut next = stepped(current, DepositStatus::AwaitingPayment, ctx);
    next.deposit.link = Some(url.clone());
    let mut commit = Commit::default();
    commit.workflows.push(workflow(
        &next,
        WorkflowState::Waiting,
        "awaiting_payment",
        None,
        ctx,
    ));
    let zone = resolve_zone(Some(&next.timezone), customer, ctx.settings);
    messages::queue(
        &mut commit,
        &next,
        customer,
        zone,
        Outgoing {
            kind: "deposit_request".to_string(),
            idempotency_key: format!("{}:deposit_request", next.id),
            not_before: ctx.now,
            extra: vec![(Variable::PaymentLink, url)],
        },
        ctx,
    );
    let due = wait_until(
        &next,
        ctx.settings.pack.policy.timings.deposit_payment_wait,
        ctx,
    );
    commit
        .set_timers
        .push(appointment_timer(&next, TIMER_DEPOSIT_WAIT, due));
    commit.events.push(event(
        &next,
        "deposit.link_sent",
        json!({"waitUntil": due}),
        ctx,
    ));
    done(next, commit, current)
}

/// A deposit timer came due: the reminder, or staff are told it was not paid.
pub fn timer_fired(
    current: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    kind: &str,
    mut commit: Commit,
    ctx: &DecideContext<'_>,
) -> Decision {
    let open_appointment = matches!(
        current.status,
        AppointmentStatus::Booked | AppointmentStatus::Confirmed | AppointmentStatus::Rescheduled
    );
    match (kind, current.deposit.status) {
        (TIMER_DEPOSIT_WAIT, DepositStatus::AwaitingPayment) if open_appointment => {
            let next = stepped(current, DepositStatus::Reminded, ctx);
            commit.workflows.push(workflow(
                &next,
                WorkflowState::Waiting,
                "reminded",
                None,
                ctx,
            ));
            let zone = resolve_zone(Some(&next.timezone), customer, ctx.settings);
            let link = next.deposit.link.clone().unwrap_or_default();
            messages::queue(
                &mut commit,
                &next,
                customer,
                zone,
                Outgoing {
                    kind: "deposit_reminder".to_string(),
                    idempotency_key: format!("{}:deposit_reminder", next.id),
                    not_before: ctx.now,
                    extra: vec![(Variable::PaymentLink, link)],
                },
                ctx,
            );
            let due = wait_until(
                &next,
                ctx.settings.pack.policy.timings.deposit_reminder_wait,
                ctx,
            );
            commit
                .set_timers
                .push(appointment_timer(&next, TIMER_DEPOSIT_FINAL, due));
            done(next, commit, current)
        }
        (TIMER_DEPOSIT_FINAL, DepositStatus::Reminded) if open_appointment => {
            let next = stepped(current, DepositStatus::NotPaid, ctx);
            commit.workflows.push(workflow(
                &next,
                WorkflowState::Failed,
                "not_paid",
                Some("the deposit was not paid in time".to_string()),
                ctx,
            ));
            let amount = next.deposit.amount_cents.unwrap_or_default();
            commit.escalations.push(escalation(
                &next,
                "deposit_not_paid",
                "high",
                json!({"amount": format_amount(amount, &ctx.settings.business.currency),
                       "startsAt": next.starts_at}),
                ctx,
            ));
            commit
                .events
                .push(event(&next, "deposit.not_paid", json!({}), ctx));
            done(next, commit, current)
        }
        _ => Decision {
            record: None,
            commit,
        },
    }
}

/// The payment provider reports the deposit paid: record it, stop the waits, send the
/// receipt. A payment after the deadline still counts.
pub fn paid(
    current: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    payment_ref: &str,
    ctx: &DecideContext<'_>,
) -> Decision {
    if !(current.deposit.status.is_open() || current.deposit.status == DepositStatus::NotPaid) {
        return Decision::default();
    }
    let next = stepped(current, DepositStatus::Paid, ctx);
    let mut commit = Commit::default();
    commit
        .workflows
        .push(workflow(&next, WorkflowState::Completed, "paid", None, ctx));
    for kind in DEPOSIT_TIMERS {
        commit
            .cancel_timers
            .push((next.tenant_id.clone(), timer_key(&next.id, kind)));
    }
    commit.events.push(event(
        &next,
        "deposit.paid",
        json!({"paymentRef": payment_ref, "amountCents": next.deposit.amount_cents}),
        ctx,
    ));
    let zone = resolve_zone(Some(&next.timezone), customer, ctx.settings);
    messages::queue(
        &mut commit,
        &next,
        customer,
        zone,
        Outgoing {
            kind: "deposit_receipt".to_string(),
            idempotency_key: format!("{}:deposit_receipt", next.id),
            not_before: ctx.now,
            extra: Vec::new(),
        },
        ctx,
    );
    done(next, commit, current)
}
