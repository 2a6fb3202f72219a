//! `GET /v1/admin/metrics?period=day|week|month&from=&to=`: the business metrics of
//! SPEC §7 per period in the business time zone (`crate::metrics::business`; the
//! definitions are in `docs/metrics.md`). `from` and `to` are dates (`YYYY-MM-DD`,
//! inclusive, widened to whole periods); without them, the last 30 days, 12 weeks or
//! 12 months up to today.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;

use super::error::AdminError;
use super::support::db;
use crate::auth::ViewerOrAbove;
use crate::http::{ApiError, AppState};
use crate::metrics::business::{self, Granularity, MetricsQuery};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Query {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn date(field: &'static str, text: Option<&str>) -> Result<Option<NaiveDate>, AdminError> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
                AdminError::invalid(field, format!("{field} must be a date (YYYY-MM-DD)"))
            })
        })
        .transpose()
}

/// The metrics request `period`, `from` and `to` (as typed in a query string) mean for
/// `tenant_id`: per day unless a period is named, up to today in the business zone
/// unless `to` is given, over the period's default span unless `from` is given. Shared
/// by the Admin API and the dashboard.
pub(crate) fn metrics_request(
    state: &AppState,
    tenant_id: &str,
    period: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<MetricsQuery, AdminError> {
    let granularity = match period.map(str::trim).filter(|p| !p.is_empty()) {
        None => Granularity::Day,
        Some(p) => Granularity::parse(p)
            .ok_or_else(|| AdminError::invalid("period", "period must be day, week or month"))?,
    };
    let zone = state.config.timezone;
    let today = business::today(zone, state.engine.now());
    let to = date("to", to)?.unwrap_or(today);
    let from = date("from", from)?.unwrap_or_else(|| granularity.default_from(to));
    Ok(MetricsQuery {
        tenant_id: tenant_id.to_string(),
        zone,
        granularity,
        from,
        to,
    })
}

#[utoipa::path(
    get, path = "/v1/admin/metrics", tag = "admin", operation_id = "business_metrics", summary = "No-show, confirmation and response rates, messages, deposits, revenue protected per day, week or month", params(Query), responses((status = 200, description = "Per period", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn metrics(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> Result<HttpResponse, ApiError> {
    let request = metrics_request(
        &state,
        &viewer.tenant_id,
        query.period.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    )?;
    let report = db(&state, move |conn| Ok(business::compute(conn, &request)?)).await?;
    Ok(HttpResponse::Ok().json(report))
}
