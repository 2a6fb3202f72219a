//! One appointment: its facts, the customer, and the timeline — events in log order,
//! messages with their delivery history, timers, workflows and escalations — plus, for
//! staff, the override form, which does exactly what `POST
//! /v1/admin/appointments/{id}/override` does (the same function, through the engine,
//! audited), and a simulated customer reply while messaging runs in the sandbox.
//! Opening the page is a data view, audited as `appointment.viewed` like the Admin API.
//! The customer's full number shows to staff only; payloads have numbers masked.
//!
//! `GET /dashboard/appointments/{id}` (viewer) and
//! `POST /dashboard/appointments/{id}/override` `action, reason, starts_at` (staff).

use actix_web::{web, HttpRequest, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::format::{json_line, local_input, money, parse_local_instant, truncate, when};
use super::layout::{after_action, badge, csrf_field, html_response, page, Flash, Frame, Nav};
use super::queries;
use super::session::{can_act, Staff, Viewer};
use crate::api::admin::appointments::{apply_override, detail_viewed, OverrideRequest};
use crate::api::admin::queries::appointments::AppointmentDetail;
use crate::api::admin::support::db;
use crate::api::admin::AdminError;
use crate::auth::Principal;
use crate::http::AppState;

/// The overrides staff may pick, with the status each moves to.
const ACTIONS: [(&str, &str, AppointmentStatus); 5] = [
    ("confirm", "Confirm", AppointmentStatus::Confirmed),
    ("cancel", "Cancel", AppointmentStatus::Cancelled),
    ("mark_no_show", "Mark no-show", AppointmentStatus::NoShow),
    ("complete", "Complete", AppointmentStatus::Completed),
    ("reschedule", "Reschedule", AppointmentStatus::Rescheduled),
];

/// The overrides the lifecycle allows from `status` (SPEC §3).
fn allowed_actions(status: &str) -> Vec<(&'static str, &'static str)> {
    let Ok(from) = status.parse::<AppointmentStatus>() else {
        return Vec::new();
    };
    ACTIONS
        .iter()
        .filter(|(_, _, to)| from.can_transition_to(*to))
        .map(|(value, label, _)| (*value, *label))
        .collect()
}

fn path_of(id: &str) -> String {
    format!("/dashboard/appointments/{id}")
}

fn override_form(state: &AppState, principal: &Principal, d: &AppointmentDetail) -> Markup {
    let a = &d.appointment;
    let actions = allowed_actions(&a.status);
    let zone = state.config.timezone;
    html! {
        section.panel #override {
            h2 { "Override" }
            @if actions.is_empty() {
                p.muted { "This appointment is " (a.status) ": nothing can change it any more." }
            } @else {
                form.stack method="post" action={ (path_of(&a.id)) "/override" } {
                    (csrf_field(principal))
                    label for="action" { "Action" }
                    select #action name="action" required {
                        @for (value, label) in &actions { option value=(value) { (label) } }
                    }
                    label for="reason" { "Reason (kept on the appointment's events)" }
                    input #reason type="text" name="reason" maxlength="500" required
                        placeholder="e.g. confirmed by phone";
                    label for="starts_at" { "New start (reschedule only, " (zone.name()) ")" }
                    input #starts_at type="datetime-local" name="starts_at"
                        value=(local_input(a.starts_at, zone));
                    div.buttons { button.primary type="submit" { "Apply" } }
                }
            }
        }
    }
}

fn reply_form(principal: &Principal, d: &AppointmentDetail) -> Markup {
    let a = &d.appointment;
    html! {
        section.panel #simulate-reply {
            h2 { "Simulate a reply (sandbox)" }
            form.stack method="post" action="/dashboard/messages/reply" {
                (csrf_field(principal))
                input type="hidden" name="customer_id" value=(a.customer.id);
                input type="hidden" name="back" value=(path_of(&a.id));
                label for="reply-body" { "What the customer texts back" }
                input #reply-body type="text" name="body" maxlength="1600" required placeholder="YES";
                div.buttons { button type="submit" { "Send as the customer" } }
            }
        }
    }
}

fn facts(state: &AppState, d: &AppointmentDetail, phone: Option<&str>) -> Markup {
    let a = &d.appointment;
    let zone = state.config.timezone;
    html! {
        div.grid {
            section.panel {
                h2 { "Appointment" }
                dl.facts {
                    dt { "Status" } dd #status { (badge(&a.status)) }
                    dt { "Starts" } dd { (when(a.starts_at, zone)) }
                    dt { "Ends" } dd { (when(a.ends_at, zone)) }
                    dt { "Zone" } dd { (a.timezone) }
                    dt { "Service" } dd { (a.service_type.as_deref().unwrap_or("—")) }
                    dt { "Cost" } dd {
                        (d.service_cost_cents.map_or_else(|| "—".to_string(), |c| money(c, d.currency.as_deref())))
                    }
                    dt { "Deposit" } dd {
                        (badge(&a.deposit_status))
                        @if let Some(cents) = d.deposit_amount_cents { " " (money(cents, d.currency.as_deref())) }
                    }
                    dt { "Source" } dd { (a.source) " · " span.mono { (a.external_id) } }
                    dt { "Version" } dd { (d.version) }
                }
            }
            section.panel {
                h2 { "Customer" }
                dl.facts {
                    dt { "Name" } dd {
                        a href={ "/dashboard/customers/" (a.customer.id) } {
                            (a.customer.name.as_deref().unwrap_or(&a.customer.pseudonym))
                        }
                    }
                    dt { "Phone" } dd.phone {
                        (phone.or(a.customer.phone_masked.as_deref()).unwrap_or("—"))
                    }
                    dt { "Cancel link" } dd { (d.cancel_url.as_deref().unwrap_or("—")) }
                    dt { "Reschedule link" } dd { (d.reschedule_url.as_deref().unwrap_or("—")) }
                }
            }
        }
    }
}

fn timeline(state: &AppState, d: &AppointmentDetail) -> Markup {
    let zone = state.config.timezone;
    let t = &d.timeline;
    html! {
        h2 { "Messages" }
        @if t.messages.is_empty() { p.empty { "No messages." } } @else {
            table.list #messages {
                thead { tr { th { "When" } th { "Direction" } th { "Kind" } th { "Text" } th { "Delivery" } } }
                tbody {
                    @for m in &t.messages {
                        tr data-message-id=(m.id) {
                            td data-label="When" { (when(m.sent_at.unwrap_or(m.created_at), zone)) }
                            td data-label="Direction" {
                                (m.direction) " · " (m.channel)
                                @if let Some(to) = &m.counterpart_masked { br; span.muted { (to) } }
                            }
                            td data-label="Kind" {
                                (m.kind.as_deref().unwrap_or("—"))
                                @if m.sandbox { " " span.badge.info { "sandbox" } }
                            }
                            td data-label="Text" { (truncate(&m.body, 400)) }
                            td data-label="Delivery" {
                                (badge(&m.status))
                                @if let Some(code) = &m.error_code { " " span.muted { (code) } }
                                @for s in &m.status_history {
                                    br; span.muted { (s.status) " · " (when(s.occurred_at, zone)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Timers" }
        @if t.timers.is_empty() { p.empty { "No timers." } } @else {
            table.list #timers {
                thead { tr { th { "Due" } th { "Kind" } th { "Status" } th { "Fired" } } }
                tbody {
                    @for timer in &t.timers {
                        tr {
                            td data-label="Due" { (when(timer.due_at, zone)) }
                            td data-label="Kind" { (timer.kind) }
                            td data-label="Status" { (badge(&timer.status)) }
                            td data-label="Fired" { (timer.fired_at.map_or_else(|| "—".to_string(), |at| when(at, zone))) }
                        }
                    }
                }
            }
        }
        h2 { "Workflows" }
        @if t.workflows.is_empty() { p.empty { "No workflows." } } @else {
            table.list #workflows {
                thead { tr { th { "Workflow" } th { "State" } th { "Step" } th { "Retries" } th { "Error" } th { "Updated" } } }
                tbody {
                    @for w in &t.workflows {
                        tr {
                            td data-label="Workflow" { (w.kind) }
                            td data-label="State" { (badge(&w.state)) }
                            td data-label="Step" { (w.step) }
                            td data-label="Retries" { (w.retry_count) }
                            td data-label="Error" { (w.last_error.as_deref().unwrap_or("—")) }
                            td data-label="Updated" { (when(w.updated_at, zone)) }
                        }
                    }
                }
            }
        }
        h2 { "Escalations" }
        @if t.escalations.is_empty() { p.empty { "No escalations." } } @else {
            table.list #appointment-escalations {
                thead { tr { th { "Raised" } th { "Reason" } th { "Priority" } th { "Status" } } }
                tbody {
                    @for e in &t.escalations {
                        tr {
                            td data-label="Raised" { (when(e.created_at, zone)) }
                            td data-label="Reason" { (e.reason) }
                            td data-label="Priority" { (badge(&e.priority)) }
                            td data-label="Status" {
                                (badge(&e.status))
                                @if let Some(r) = &e.resolution { " " span.muted { (r) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Events" }
        @if t.events.is_empty() { p.empty { "No events." } } @else {
            table.list #events {
                thead { tr { th { "#" } th { "When" } th { "Event" } th { "Details" } } }
                tbody {
                    @for e in &t.events {
                        tr {
                            td data-label="#" { (e.seq) }
                            td data-label="When" { (when(e.occurred_at, zone)) }
                            td data-label="Event" { (e.event_type) }
                            td data-label="Details" { code { (json_line(&e.payload, 240)) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /dashboard/appointments/{id}`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let id = path.into_inner();
    let principal = viewer.0.clone();
    let staff = can_act(&principal);
    let (detail, phone) = db(&state, move |conn| {
        let detail = detail_viewed(conn, &principal, &id)?;
        let phone = if staff {
            queries::customer_phone(conn, &principal.tenant_id, &detail.appointment.customer.id)?
        } else {
            None
        };
        Ok::<_, AdminError>((detail, phone))
    })
    .await?;
    let sandbox = state.config.twilio.auth_token.is_none();
    let name = detail
        .appointment
        .customer
        .name
        .clone()
        .unwrap_or_else(|| detail.appointment.customer.pseudonym.clone());
    let title = format!(
        "{name} · {}",
        when(detail.appointment.starts_at, state.config.timezone)
    );
    let body = html! {
        (facts(&state, &detail, phone.as_deref()))
        @if staff {
            div.grid {
                (override_form(&state, &viewer, &detail))
                @if sandbox { (reply_form(&viewer, &detail)) }
            }
        }
        (timeline(&state, &detail))
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Today,
            title: &title,
            flash: Flash::of(&req),
        },
        body,
    )))
}

#[derive(Debug, Deserialize)]
pub struct OverrideForm {
    action: String,
    reason: String,
    starts_at: Option<String>,
}

/// `POST /dashboard/appointments/{id}/override`.
pub async fn override_status(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<OverrideForm>,
) -> Result<HttpResponse, DashboardError> {
    let id = path.into_inner();
    let back = path_of(&id);
    let OverrideForm {
        action,
        reason,
        starts_at,
    } = form.into_inner();
    let reschedule = action.trim() == "reschedule";
    let starts_at = match starts_at
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(text) if reschedule => match parse_local_instant(text, state.config.timezone) {
            Some(at) => Some(at),
            None => {
                let err = AdminError::invalid("startsAt", "the new start is not a date and time");
                return after_action::<AdminError>(&back, Err(err));
            }
        },
        _ => None,
    };
    let request = OverrideRequest {
        action,
        reason,
        starts_at,
        ends_at: None,
    };
    let done = apply_override(&state, &staff, &id, request)
        .await
        .map(|done| {
            format!(
                "Override applied: {} → {}.",
                done.previous_status,
                done.after.status.as_str()
            )
        });
    after_action(&back, done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_moves_the_lifecycle_allows_are_offered() {
        let values = |status| -> Vec<&str> {
            allowed_actions(status)
                .into_iter()
                .map(|(v, _)| v)
                .collect()
        };
        assert_eq!(
            values("booked"),
            ["confirm", "cancel", "mark_no_show", "reschedule"]
        );
        assert_eq!(values("in_progress"), ["mark_no_show", "complete"]);
        assert!(values("cancelled").is_empty());
        assert!(values("nonsense").is_empty());
    }
}
