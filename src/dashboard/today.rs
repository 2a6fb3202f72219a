//! Today: the business day's appointments (business time zone) soonest first, counted
//! by status, each with its next action (the next scheduled timer: a reminder, an
//! escalation check, completion…) and a flag when it has open escalations. The list is
//! a live region: it refreshes in place when events arrive.
//!
//! `GET /dashboard/today?date=YYYY-MM-DD&status=&cursor=` (the page) and
//! `GET /dashboard/today/list?…` (the list alone, for live updates). Viewer or above.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use chrono::{Duration, NaiveDate};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::format::{clock, day as day_name, when};
use super::layout::{badge, html_response, link, page, pager, Flash, Frame, Nav};
use super::live::{self, region};
use super::queries::{self, NextTimer};
use super::session::Viewer;
use crate::api::admin::queries::appointments::{self, AppointmentFilter, AppointmentItem};
use crate::api::admin::queries::Page;
use crate::api::admin::support::{db, local_midnight, Cursor};
use crate::api::admin::AdminError;
use crate::http::AppState;
use crate::metrics::business;

/// Appointments one page lists.
const PAGE_SIZE: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct TodayQuery {
    date: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

/// The day's data as the page shows it.
struct Day {
    date: NaiveDate,
    status: Option<String>,
    counts: Vec<(String, i64)>,
    page: Page<AppointmentItem>,
    next: HashMap<String, NextTimer>,
    escalations: HashMap<String, i64>,
}

fn parse_query(
    query: &TodayQuery,
    today: NaiveDate,
) -> Result<(NaiveDate, Option<String>), AdminError> {
    let date = match query
        .date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => today,
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| AdminError::invalid("date", "date must be YYYY-MM-DD"))?,
    };
    let status = match query
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(
            text.parse::<AppointmentStatus>()
                .map_err(|e| AdminError::invalid("status", e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    Ok((date, status))
}

async fn load(state: &AppState, tenant_id: &str, query: &TodayQuery) -> Result<Day, AdminError> {
    let zone = state.config.timezone;
    let today = business::today(zone, state.engine.now());
    let (date, status) = parse_query(query, today)?;
    let from = local_midnight(date, zone);
    let to = local_midnight(date + Duration::days(1), zone);
    let filter = AppointmentFilter {
        tenant_id: tenant_id.to_string(),
        statuses: status.iter().cloned().collect(),
        from: Some(from),
        to: Some(to),
        customer_id: None,
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: PAGE_SIZE,
    };
    let tenant = tenant_id.to_string();
    let (counts, page, next, escalations) = db(state, move |conn| {
        let counts = queries::status_counts(conn, &tenant, from, to)?;
        let page = appointments::list(conn, &filter)?;
        let ids: Vec<String> = page.items.iter().map(|a| a.id.clone()).collect();
        let next = queries::next_timers(conn, &tenant, &ids)?;
        let escalations = queries::open_escalations(conn, &tenant, &ids)?;
        Ok((counts, page, next, escalations))
    })
    .await?;
    Ok(Day {
        date,
        status,
        counts,
        page,
        next,
        escalations,
    })
}

fn day_link(base: &str, date: NaiveDate, status: Option<&str>, cursor: Option<&str>) -> String {
    let date = date.format("%Y-%m-%d").to_string();
    link(
        base,
        &[
            ("date", Some(&date)),
            ("status", status),
            ("cursor", cursor),
        ],
    )
}

/// The list: counts by status, the table, the pager.
fn list(state: &AppState, day: &Day) -> Markup {
    let zone = state.config.timezone;
    let total: i64 = day.counts.iter().map(|(_, n)| n).sum();
    let next_page = day
        .page
        .next_cursor
        .as_deref()
        .map(|c| day_link("/dashboard/today", day.date, day.status.as_deref(), Some(c)));
    html! {
        nav.chips aria-label="By status" {
            a.chip.active[day.status.is_none()] href=(day_link("/dashboard/today", day.date, None, None)) {
                "All " span.count { (total) }
            }
            @for (status, n) in &day.counts {
                a.chip.active[day.status.as_deref() == Some(status.as_str())]
                    href=(day_link("/dashboard/today", day.date, Some(status), None))
                    data-status=(status) {
                    (status) " " span.count { (n) }
                }
            }
        }
        @if day.page.items.is_empty() {
            p.empty { "No appointments on this day." }
        } @else {
            table.list #appointments {
                thead { tr {
                    th { "Time" } th { "Customer" } th { "Service" } th { "Status" }
                    th { "Next action" } th { "" }
                } }
                tbody {
                    @for a in &day.page.items {
                        tr data-appointment-id=(a.id) data-status=(a.status) {
                            td data-label="Time" { (clock(a.starts_at, zone)) "–" (clock(a.ends_at, zone)) }
                            td data-label="Customer" {
                                a href={ "/dashboard/customers/" (a.customer.id) } {
                                    (a.customer.name.as_deref().unwrap_or(&a.customer.pseudonym))
                                }
                                @if let Some(phone) = &a.customer.phone_masked {
                                    br; span.muted.phone { (phone) }
                                }
                            }
                            td data-label="Service" { (a.service_type.as_deref().unwrap_or("—")) }
                            td data-label="Status" {
                                (badge(&a.status))
                                @if let Some(n) = day.escalations.get(&a.id) {
                                    " "
                                    a.badge.warn href="/dashboard/escalations" title="open escalations" {
                                        "⚑ " (n)
                                    }
                                }
                            }
                            td data-label="Next action" {
                                @match day.next.get(&a.id) {
                                    Some(t) => { span.kind { (t.kind) } " " span.muted { (when(t.due_at, zone)) } }
                                    None => { span.muted { "—" } }
                                }
                            }
                            td.actions { a.button href={ "/dashboard/appointments/" (a.id) } { "Open" } }
                        }
                    }
                }
            }
        }
        (pager(next_page))
    }
}

/// `GET /dashboard/today`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<TodayQuery>,
) -> Result<HttpResponse, DashboardError> {
    let marks = live::marks(&state, &viewer.tenant_id).await?;
    let day = load(&state, &viewer.tenant_id, &query).await?;
    let src = day_link(
        "/dashboard/today/list",
        day.date,
        day.status.as_deref(),
        query.cursor.as_deref(),
    );
    let title = format!("Today — {}", day_name(day.date));
    let body = html! {
        nav.daynav aria-label="Days" {
            a.button href=(day_link("/dashboard/today", day.date - Duration::days(1), None, None)) { "← Previous day" }
            a.button href="/dashboard/today" { "Today" }
            a.button href=(day_link("/dashboard/today", day.date + Duration::days(1), None, None)) { "Next day →" }
            form.inline method="get" action="/dashboard/today" {
                label.sr-only for="date" { "Date" }
                input #date type="date" name="date" value=(day.date.format("%Y-%m-%d"));
                button type="submit" { "Go" }
            }
        }
        (region(&src, "events escalations", &marks, list(&state, &day)))
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

/// `GET /dashboard/today/list`: the live region's content.
pub async fn fragment(
    viewer: Viewer,
    state: web::Data<AppState>,
    query: web::Query<TodayQuery>,
) -> Result<HttpResponse, DashboardError> {
    let day = load(&state, &viewer.tenant_id, &query).await?;
    Ok(html_response(list(&state, &day)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked() {
        let today = NaiveDate::from_ymd_opt(2031, 3, 20).expect("date");
        let query = TodayQuery::default();
        assert_eq!(parse_query(&query, today).expect("ok"), (today, None));
        let query = TodayQuery {
            date: Some("2031-03-21".into()),
            status: Some("confirmed".into()),
            cursor: None,
        };
        let (date, status) = parse_query(&query, today).expect("ok");
        assert_eq!(date, today + Duration::days(1));
        assert_eq!(status.as_deref(), Some("confirmed"));
        for bad in [("tomorrow", ""), ("2031-03-20", "asleep")] {
            let query = TodayQuery {
                date: Some(bad.0.into()),
                status: Some(bad.1.into()),
                cursor: None,
            };
            assert!(parse_query(&query, today).is_err(), "{bad:?}");
        }
    }
}
