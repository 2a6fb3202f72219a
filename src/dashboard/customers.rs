//! Customers with their risk: the list (filter by risk level, search by name, e-mail
//! or the end of the phone number — the Admin API's query, phone and e-mail masked)
//! and one customer: history counters, risk, consents and appointments, each linking to
//! its page. Opening a customer is a data view, audited as `customer.viewed` like the
//! Admin API; the full phone number and e-mail show to staff only.
//!
//! `GET /dashboard/customers?q=&risk=low|medium|high&cursor=` and
//! `GET /dashboard/customers/{id}` (viewer).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::format::when;
use super::layout::{badge, html_response, link, page, pager, Flash, Frame, Nav};
use super::session::{can_act, Viewer};
use crate::api::admin::customers::{customer_filter, detail_viewed};
use crate::api::admin::queries::customers::{self, mask_email, RiskLevel};
use crate::api::admin::support::{db, mask_phone};
use crate::http::AppState;

const PAGE_SIZE: i64 = 50;
const BASE: &str = "/dashboard/customers";

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    risk: Option<String>,
    cursor: Option<String>,
}

fn risk_badge(score: i32) -> Markup {
    let level = RiskLevel::of(score).as_str();
    html! { (badge(level)) " " span.muted { (score) } }
}

fn search_form(q: &str, risk: Option<&str>) -> Markup {
    html! {
        form.inline.search method="get" action=(BASE) {
            label.sr-only for="q" { "Search" }
            input #q type="search" name="q" value=(q) maxlength="100"
                placeholder="Name, e-mail or last digits of the phone";
            label.sr-only for="risk" { "Risk" }
            select #risk name="risk" {
                option value="" selected[risk.is_none()] { "Any risk" }
                @for level in ["high", "medium", "low"] {
                    option value=(level) selected[risk == Some(level)] { (level) " risk" }
                }
            }
            button type="submit" { "Search" }
        }
    }
}

/// `GET /dashboard/customers`.
pub async fn list(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, DashboardError> {
    let filter = customer_filter(
        &viewer.tenant_id,
        query.risk.as_deref(),
        query.q.as_deref(),
        query.cursor.as_deref(),
        PAGE_SIZE,
    )?;
    let (risk, search) = (filter.risk, filter.search.clone());
    let listed = db(&state, move |conn| customers::list(conn, &filter)).await?;
    let zone = state.config.timezone;
    let risk_text = risk.map(RiskLevel::as_str);
    let next_page = listed.next_cursor.as_deref().map(|c| {
        link(
            BASE,
            &[
                ("q", search.as_deref()),
                ("risk", risk_text),
                ("cursor", Some(c)),
            ],
        )
    });
    let body = html! {
        (search_form(search.as_deref().unwrap_or(""), risk_text))
        @if listed.items.is_empty() {
            p.empty { "No customers match." }
        } @else {
            table.list #customers {
                thead { tr {
                    th { "Name" } th { "Phone" } th { "E-mail" } th { "Risk" }
                    th.num { "Appointments" } th.num { "No-shows" } th { "" } th { "Since" }
                } }
                tbody {
                    @for c in &listed.items {
                        tr data-customer-id=(c.id) {
                            td data-label="Name" {
                                a href={ (BASE) "/" (c.id) } { (c.name.as_deref().unwrap_or(&c.pseudonym)) }
                            }
                            td data-label="Phone" { (c.phone_masked.as_deref().unwrap_or("—")) }
                            td data-label="E-mail" { (c.email_masked.as_deref().unwrap_or("—")) }
                            td data-label="Risk" { (risk_badge(c.risk_score)) }
                            td.num data-label="Appointments" { (c.appointment_count) }
                            td.num data-label="No-shows" { (c.no_show_count) }
                            td data-label="Flags" {
                                @if c.opted_out { span.badge.warn { "opted out" } " " }
                                @if c.requires_deposit { span.badge.info { "deposit" } " " }
                                @if c.erased { span.badge.muted { "erased" } }
                            }
                            td data-label="Since" { (when(c.created_at, zone)) }
                        }
                    }
                }
            }
        }
        (pager(next_page))
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Customers,
            title: "Customers",
            flash: Flash::of(&req),
        },
        body,
    )))
}

/// `GET /dashboard/customers/{id}`.
pub async fn detail(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let id = path.into_inner();
    let principal = viewer.0.clone();
    let c = db(&state, move |conn| detail_viewed(conn, &principal, &id)).await?;
    let zone = state.config.timezone;
    let staff = can_act(&viewer);
    let phone = c
        .phone_e164
        .as_deref()
        .map(|p| if staff { p.to_string() } else { mask_phone(p) });
    let email = c
        .email
        .as_deref()
        .map(|e| if staff { e.to_string() } else { mask_email(e) });
    let title = c.name.clone().unwrap_or_else(|| c.pseudonym.clone());
    let body = html! {
        div.grid {
            section.panel {
                h2 { "Contact" }
                dl.facts {
                    dt { "Phone" } dd.phone { (phone.as_deref().unwrap_or("—")) }
                    dt { "E-mail" } dd { (email.as_deref().unwrap_or("—")) }
                    dt { "Zone" } dd { (c.timezone.as_deref().unwrap_or("—")) }
                    dt { "Language" } dd { (c.language.as_deref().unwrap_or("—")) }
                    dt { "Pseudonym" } dd.mono { (c.pseudonym) }
                    dt { "Customer since" } dd { (when(c.created_at, zone)) }
                }
            }
            section.panel {
                h2 { "Risk" }
                dl.facts {
                    dt { "Score" } dd #risk { (risk_badge(c.risk_score)) }
                    dt { "Appointments" } dd { (c.appointment_count) }
                    dt { "Confirmed" } dd { (c.confirmed_count) }
                    dt { "No-shows" } dd { (c.no_show_count) }
                    dt { "Reschedules" } dd { (c.reschedule_count) }
                    dt { "Payment past due" } dd { (if c.payment_past_due { "yes" } else { "no" }) }
                    dt { "Deposit required" } dd { (if c.requires_deposit { "yes" } else { "no" }) }
                    dt { "Opted out" } dd { (if c.opted_out { "yes" } else { "no" }) }
                }
            }
        }
        h2 { "Appointments" }
        @if c.appointments.is_empty() { p.empty { "No appointments." } } @else {
            table.list #customer-appointments {
                thead { tr { th { "Starts" } th { "Service" } th { "Status" } th { "" } } }
                tbody {
                    @for a in &c.appointments {
                        tr data-appointment-id=(a.id) {
                            td data-label="Starts" { (when(a.starts_at, zone)) }
                            td data-label="Service" { (a.service_type.as_deref().unwrap_or("—")) }
                            td data-label="Status" { (badge(&a.status)) }
                            td.actions { a.button href={ "/dashboard/appointments/" (a.id) } { "Open" } }
                        }
                    }
                }
            }
        }
        h2 { "Consents" }
        @if c.consents.is_empty() { p.empty { "No consents recorded." } } @else {
            table.list #consents {
                thead { tr { th { "Recorded" } th { "Channel" } th { "Status" } th { "Source" } } }
                tbody {
                    @for consent in &c.consents {
                        tr {
                            td data-label="Recorded" { (when(consent.recorded_at, zone)) }
                            td data-label="Channel" { (consent.channel) }
                            td data-label="Status" { (badge(&consent.status)) }
                            td data-label="Source" { (consent.source) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Customers,
            title: &title,
            flash: Flash::of(&req),
        },
        body,
    )))
}
