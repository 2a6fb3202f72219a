//! `GET /v1/admin/customers?risk=&q=&limit=&cursor=` (masked phone and e-mail) and
//! `GET /v1/admin/customers/{id}` (everything, consents and appointments included;
//! audited as a data view, SPEC §8).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::AdminError;
use super::queries::customers::{self, CustomerDetail, CustomerFilter, RiskLevel};
use super::support::{audit_entry, db, limit, Cursor};
use crate::audit;
use crate::auth::{Principal, ViewerOrAbove};
use crate::http::{ApiError, AppState};
use crate::store::DbConnection;

/// Longest search text accepted.
const MAX_SEARCH_CHARS: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    risk: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The customer list `risk` (low, medium, high), the search text `q` and the page
/// `cursor` (as typed in a query string; blank means absent) ask for. Shared by the
/// Admin API and the dashboard.
pub(crate) fn customer_filter(
    tenant_id: &str,
    risk: Option<&str>,
    q: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<CustomerFilter, AdminError> {
    let risk = risk
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            RiskLevel::parse(r)
                .ok_or_else(|| AdminError::invalid("risk", "risk must be low, medium or high"))
        })
        .transpose()?;
    let search = q
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_string);
    if search
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(AdminError::invalid(
            "q",
            format!("q is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(CustomerFilter {
        tenant_id: tenant_id.to_string(),
        risk,
        search,
        after: Cursor::optional(cursor)?,
        limit,
    })
}

#[utoipa::path(
    get, path = "/v1/admin/customers", tag = "admin", operation_id = "list_customers", summary = "Customers by risk level, searched by name, e-mail or the end of the phone number (masked)", params(ListQuery), responses((status = 200, description = "items and nextCursor", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn list(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = customer_filter(
        &viewer.tenant_id,
        query.risk.as_deref(),
        query.q.as_deref(),
        query.cursor.as_deref(),
        limit(query.limit)?,
    )?;
    let page = db(&state, move |conn| customers::list(conn, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get, path = "/v1/admin/customers/{id}", tag = "admin", operation_id = "customer_detail", summary = "One customer (audited as a data view)", params(("id" = String, Path, description = "The customer's id")), responses((status = 200, description = "The customer", body = Object), (status = 404, description = "NOT_FOUND")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn detail(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let principal = viewer.0;
    let detail = db(&state, move |conn| detail_viewed(conn, &principal, &id)).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// The customer `id` in full, recorded in the audit log as a data view by `principal`
/// (`customer.viewed`). Shared by the Admin API and the dashboard.
pub(crate) fn detail_viewed(
    conn: &mut DbConnection,
    principal: &Principal,
    id: &str,
) -> Result<CustomerDetail, AdminError> {
    let detail = customers::detail(conn, &principal.tenant_id, id)?
        .ok_or_else(|| AdminError::not_found("customer", id))?;
    audit::record(
        conn,
        &audit_entry(
            principal,
            "customer.viewed",
            "customer",
            id,
            json!({"appointments": detail.appointments.len(),
                   "consents": detail.consents.len()}),
        ),
    )?;
    Ok(detail)
}
