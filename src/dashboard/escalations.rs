//! The escalation inbox: open escalations oldest first (or resolved ones), with what
//! each is about and, for staff, the resolve actions — confirm a cancellation, mark
//! confirmed, contacted the customer, dismiss — which do exactly what `POST
//! /v1/admin/escalations/{id}/resolve` does (the same function: the engine moves the
//! appointment first, then the escalation is resolved and audited). The list is a live
//! region.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /dashboard/escalations?status=open\|resolved&priority=&cursor=` | viewer |
//! | `GET /dashboard/escalations/list?…` (the list alone) | viewer |
//! | `POST /dashboard/escalations/{id}/resolve` `resolution, note, back` | staff (CSRF) |

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::error::DashboardError;
use super::format::{json_line, when};
use super::layout::{
    after_action, badge, csrf_field, html_response, link, page, pager, safe_back, Flash, Frame, Nav,
};
use super::live::{self, region};
use super::queries::{self, AppointmentSummary};
use super::session::{can_act, Staff, Viewer};
use crate::api::admin::escalations::resolve_escalation;
use crate::api::admin::queries::appointments::EscalationView;
use crate::api::admin::queries::escalations::{self, EscalationFilter};
use crate::api::admin::queries::Page;
use crate::api::admin::support::{db, Cursor};
use crate::api::admin::AdminError;
use crate::auth::Principal;
use crate::http::AppState;

const PAGE_SIZE: i64 = 50;
const BASE: &str = "/dashboard/escalations";

#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    status: Option<String>,
    priority: Option<String>,
    cursor: Option<String>,
}

impl InboxQuery {
    fn status(&self) -> Result<String, AdminError> {
        match self.status.as_deref().map(str::trim) {
            None | Some("") => Ok("open".to_string()),
            Some(s @ ("open" | "resolved")) => Ok(s.to_string()),
            Some(_) => Err(AdminError::invalid(
                "status",
                "status must be open or resolved",
            )),
        }
    }

    fn priority(&self) -> Result<Option<String>, AdminError> {
        match self.priority.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(p @ ("low" | "medium" | "high")) => Ok(Some(p.to_string())),
            Some(_) => Err(AdminError::invalid(
                "priority",
                "priority must be low, medium or high",
            )),
        }
    }
}

struct Inbox {
    status: String,
    priority: Option<String>,
    page: Page<EscalationView>,
    appointments: HashMap<String, AppointmentSummary>,
}

async fn load(state: &AppState, tenant_id: &str, query: &InboxQuery) -> Result<Inbox, AdminError> {
    let (status, priority) = (query.status()?, query.priority()?);
    let filter = EscalationFilter {
        tenant_id: tenant_id.to_string(),
        status: Some(status.clone()),
        priority: priority.clone(),
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: PAGE_SIZE,
    };
    let tenant = tenant_id.to_string();
    let (page, appointments) = db(state, move |conn| {
        let page = escalations::list(conn, &filter)?;
        let ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|e| e.appointment_id.clone())
            .collect();
        let appointments = queries::appointment_summaries(conn, &tenant, &ids)?;
        Ok((page, appointments))
    })
    .await?;
    Ok(Inbox {
        status,
        priority,
        page,
        appointments,
    })
}

/// What the escalation says, in one line (the customer's words when it carries them).
fn what(details: &Value) -> String {
    for key in ["excerpt", "text", "body", "message"] {
        if let Some(Value::String(text)) = details.get(key) {
            return json_line(&Value::String(text.clone()), 300);
        }
    }
    match details {
        Value::Object(map) if map.is_empty() => String::new(),
        Value::Null => String::new(),
        other => json_line(other, 300),
    }
}

/// The resolve form of one open escalation (staff).
fn resolve_form(principal: &Principal, e: &EscalationView, back: &str) -> Markup {
    let about_appointment = e.appointment_id.is_some();
    html! {
        form.resolve method="post" action={ (BASE) "/" (e.id) "/resolve" } {
            (csrf_field(principal))
            input type="hidden" name="back" value=(back);
            label.sr-only for={ "note-" (e.id) } { "Note" }
            input id={ "note-" (e.id) } type="text" name="note" maxlength="2000"
                placeholder="Note (optional)";
            div.buttons {
                @if about_appointment {
                    button.danger type="submit" name="resolution" value="confirmed_cancellation" {
                        "Confirm cancellation"
                    }
                    button.primary type="submit" name="resolution" value="marked_confirmed" {
                        "Mark confirmed"
                    }
                }
                button type="submit" name="resolution" value="contacted_customer" { "Contacted" }
                button type="submit" name="resolution" value="dismissed" { "Dismiss" }
            }
        }
    }
}

fn list(state: &AppState, principal: &Principal, inbox: &Inbox, back: &str) -> Markup {
    let zone = state.config.timezone;
    let staff = can_act(principal);
    let next_page = inbox.page.next_cursor.as_deref().map(|c| {
        link(
            BASE,
            &[
                ("status", Some(&inbox.status)),
                ("priority", inbox.priority.as_deref()),
                ("cursor", Some(c)),
            ],
        )
    });
    html! {
        @if inbox.page.items.is_empty() {
            p.empty { @if inbox.status == "open" { "Nothing needs attention." } @else { "No resolved escalations." } }
        } @else {
            ul.cards #escalations {
                @for e in &inbox.page.items {
                    li.card data-escalation-id=(e.id) data-status=(e.status) {
                        div.card-head {
                            (badge(&e.priority))
                            " "
                            strong { (e.reason.replace('_', " ")) }
                            span.muted.right { (when(e.created_at, zone)) }
                        }
                        @let said = what(&e.details);
                        @if !said.is_empty() { p.quote { (said) } }
                        @if let Some(id) = &e.appointment_id {
                            p {
                                a href={ "/dashboard/appointments/" (id) } {
                                    @match inbox.appointments.get(id) {
                                        Some(a) => {
                                            (a.customer_name.as_deref().unwrap_or("Appointment"))
                                            " · " (when(a.starts_at, zone))
                                        }
                                        None => { "Appointment" }
                                    }
                                }
                                @if let Some(a) = inbox.appointments.get(id) { " " (badge(&a.status)) }
                            }
                        } @else if let Some(customer) = &e.customer_id {
                            p { a href={ "/dashboard/customers/" (customer) } { "Customer" } }
                        }
                        @if e.status == "open" {
                            @if staff { (resolve_form(principal, e, back)) }
                        } @else {
                            p.muted {
                                "Resolved: " (e.resolution.as_deref().unwrap_or("—"))
                                @if let Some(by) = &e.resolved_by { " by " (by) }
                                @if let Some(at) = e.resolved_at { " · " (when(at, zone)) }
                            }
                        }
                    }
                }
            }
        }
        (pager(next_page))
    }
}

/// `GET /dashboard/escalations`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, DashboardError> {
    let marks = live::marks(&state, &viewer.tenant_id).await?;
    let inbox = load(&state, &viewer.tenant_id, &query).await?;
    let back = super::layout::here(&req);
    let src = link(
        "/dashboard/escalations/list",
        &[
            ("status", Some(&inbox.status)),
            ("priority", inbox.priority.as_deref()),
            ("cursor", query.cursor.as_deref()),
            ("back", Some(&back)),
        ],
    );
    let body = html! {
        nav.chips aria-label="Filter" {
            @for (status, label) in [("open", "Open"), ("resolved", "Resolved")] {
                a.chip.active[inbox.status == status] href=(link(BASE, &[("status", Some(status))])) { (label) }
            }
            @for priority in ["high", "medium", "low"] {
                a.chip.active[inbox.priority.as_deref() == Some(priority)]
                    href=(link(BASE, &[("status", Some(&inbox.status)), ("priority", Some(priority))])) {
                    (priority)
                }
            }
        }
        (region(&src, "events escalations", &marks, list(&state, &viewer, &inbox, &back)))
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Escalations,
            title: "Escalations",
            flash: Flash::of(&req),
        },
        body,
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct FragmentQuery {
    #[serde(flatten)]
    inbox: InboxQuery,
    back: Option<String>,
}

/// `GET /dashboard/escalations/list`: the live region's content.
pub async fn fragment(
    viewer: Viewer,
    state: web::Data<AppState>,
    query: web::Query<FragmentQuery>,
) -> Result<HttpResponse, DashboardError> {
    let inbox = load(&state, &viewer.tenant_id, &query.inbox).await?;
    let back = safe_back(query.back.as_deref(), BASE);
    Ok(html_response(list(&state, &viewer, &inbox, &back)))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    resolution: String,
    note: Option<String>,
    back: Option<String>,
}

/// `POST /dashboard/escalations/{id}/resolve`.
pub async fn resolve(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, DashboardError> {
    let ResolveForm {
        resolution,
        note,
        back,
    } = form.into_inner();
    let back = safe_back(back.as_deref(), BASE);
    let done = resolve_escalation(&state, &staff, &path, &resolution, note)
        .await
        .map(|done| {
            let mut notice = format!("Escalation resolved ({}).", resolution.trim());
            if let Some(status) = done.appointment_status {
                notice.push_str(&format!(" The appointment is {}.", status.as_str()));
            }
            notice
        });
    after_action(&back, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_customers_words_are_shown_with_numbers_masked() {
        assert_eq!(what(&json!({"excerpt": "cancel please"})), "cancel please");
        let shown = what(&json!({"from": "+15559876543", "kind": "reply"}));
        assert!(
            shown.contains("*******6543") && !shown.contains("+1555"),
            "{shown}"
        );
        assert_eq!(what(&json!({})), "");
    }

    #[test]
    fn filters_are_checked() {
        let query = InboxQuery::default();
        assert_eq!(query.status().expect("default"), "open");
        assert_eq!(query.priority().expect("none"), None);
        let bad = InboxQuery {
            status: Some("closed".into()),
            priority: Some("urgent".into()),
            cursor: None,
        };
        assert!(bad.status().is_err());
        assert!(bad.priority().is_err());
    }
}
