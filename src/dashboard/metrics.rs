//! Business metrics per day, ISO week or month in the business time zone — no-show,
//! confirmation and response rates as charts, appointments per period as bars, and the
//! numbers in a table — computed by `metrics::business` exactly as `GET
//! /v1/admin/metrics` computes them (definitions in `docs/metrics.md`).
//!
//! `GET /dashboard/metrics?period=day|week|month&from=YYYY-MM-DD&to=YYYY-MM-DD`
//! (viewer; default: the last 30 days).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::chart::{count_chart, rate_chart, Point};
use super::error::DashboardError;
use super::format::{money, percent};
use super::layout::{html_response, link, page, Flash, Frame, Nav};
use super::session::Viewer;
use crate::api::admin::metrics::metrics_request;
use crate::api::admin::support::db;
use crate::http::AppState;
use crate::metrics::business::{self, Granularity, PeriodMetrics};

const BASE: &str = "/dashboard/metrics";

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn label(granularity: Granularity, p: &PeriodMetrics) -> String {
    match granularity {
        Granularity::Day => p.start.format("%b %-d").to_string(),
        Granularity::Week => p.start.format("wk %V").to_string(),
        Granularity::Month => p.start.format("%b %Y").to_string(),
    }
}

fn series(
    granularity: Granularity,
    periods: &[PeriodMetrics],
    value: impl Fn(&PeriodMetrics) -> Option<f64>,
) -> Vec<Point> {
    periods
        .iter()
        .map(|p| Point {
            label: label(granularity, p),
            value: value(p),
        })
        .collect()
}

/// `GET /dashboard/metrics`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, DashboardError> {
    let request = metrics_request(
        &state,
        &viewer.tenant_id,
        query.period.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    )?;
    let granularity = request.granularity;
    let report = db(&state, move |conn| Ok(business::compute(conn, &request)?)).await?;
    let currency = report.currency.as_deref();
    let period_name = match granularity {
        Granularity::Day => "day",
        Granularity::Week => "week",
        Granularity::Month => "month",
    };
    let totals = &report.totals;
    let body = html! {
        form.inline method="get" action=(BASE) {
            label for="period" { "Per" }
            select #period name="period" {
                @for p in ["day", "week", "month"] { option value=(p) selected[p == period_name] { (p) } }
            }
            label for="from" { "From" }
            input #from type="date" name="from" value=(report.from.format("%Y-%m-%d"));
            label for="to" { "To" }
            input #to type="date" name="to" value=(report.to.format("%Y-%m-%d"));
            button type="submit" { "Show" }
        }
        p.muted { "Periods in " (report.timezone) ". "
            a href=(link(BASE, &[("period", Some(period_name))])) { "Reset" } }
        div.grid #totals {
            section.panel { h2 { "No-show rate" } p.big { (percent(totals.rates.no_show_rate)) } }
            section.panel { h2 { "Confirmation rate" } p.big { (percent(totals.rates.confirmation_rate)) } }
            section.panel { h2 { "Response rate" } p.big { (percent(totals.rates.response_rate)) } }
            section.panel { h2 { "Revenue protected" } p.big { (money(totals.counts.revenue_protected_cents, currency)) } }
        }
        (rate_chart("no-show-chart", "No-show rate", &series(granularity, &report.periods, |p| p.rates.no_show_rate)))
        (rate_chart("confirmation-chart", "Confirmation rate", &series(granularity, &report.periods, |p| p.rates.confirmation_rate)))
        (rate_chart("response-chart", "Response rate", &series(granularity, &report.periods, |p| p.rates.response_rate)))
        (count_chart("appointments-chart", "Appointments", &series(granularity, &report.periods, |p| {
            Some(p.counts.appointments as f64)
        })))
        table.list #metrics-table {
            thead { tr {
                th { "Period" } th.num { "Appointments" } th.num { "No-show" } th.num { "Confirmed" }
                th.num { "Responded" } th.num { "Messages" } th.num { "Deposits paid" }
            } }
            tbody {
                @for p in report.periods.iter().rev() {
                    tr {
                        td data-label="Period" { (p.start) @if p.end != p.start { " – " (p.end) } }
                        td.num data-label="Appointments" { (p.counts.appointments) }
                        td.num data-label="No-show" { (percent(p.rates.no_show_rate)) }
                        td.num data-label="Confirmed" { (percent(p.rates.confirmation_rate)) }
                        td.num data-label="Responded" { (percent(p.rates.response_rate)) }
                        td.num data-label="Messages" { (p.rates.messages_sent_total) }
                        td.num data-label="Deposits paid" { (money(p.counts.deposits_paid_cents, currency)) }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Metrics,
            title: "Metrics",
            flash: Flash::of(&req),
        },
        body,
    )))
}
