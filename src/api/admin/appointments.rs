//! `GET /v1/admin/appointments`, `GET /v1/admin/appointments/{id}` (audited as a data
//! view: the timeline holds the customer's messages) and `POST
//! /v1/admin/appointments/{id}/override` (staff; through the engine, so the lifecycle
//! of SPEC §3 applies: a move it does not allow is `409 INVALID_TRANSITION` and changes
//! nothing; audited).

use actix_web::{web, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{AppointmentCommand, ChangedBy};
use actors::ports::store::AppointmentRecord;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::error::AdminError;
use super::queries::appointments::{self, AppointmentDetail, AppointmentFilter};
use super::support::{audit_entry, db, instant_or_date, limit, staff_label, Cursor};
use crate::audit;
use crate::auth::{Principal, StaffOrAbove, ViewerOrAbove};
use crate::http::{ApiError, AppState, JsonAfterAuth};
use crate::store::DbConnection;

/// Longest override reason accepted.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One status or several, comma-separated.
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    customer_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn statuses(text: Option<&str>) -> Result<Vec<String>, AdminError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<AppointmentStatus>()
                .map(|status| status.as_str().to_string())
                .map_err(|e| AdminError::invalid("status", e.to_string()))
        })
        .collect()
}

#[utoipa::path(
    get, path = "/v1/admin/appointments", tag = "admin", operation_id = "list_appointments", summary = "Appointments by status, date range, customer; keyset-paginated", params(ListQuery), responses((status = 200, description = "items and nextCursor", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn list(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let zone = state.config.timezone;
    let filter = AppointmentFilter {
        tenant_id: viewer.tenant_id.clone(),
        statuses: statuses(query.status.as_deref())?,
        from: query
            .from
            .as_deref()
            .map(|t| instant_or_date("from", t, zone, false))
            .transpose()?,
        to: query
            .to
            .as_deref()
            .map(|t| instant_or_date("to", t, zone, true))
            .transpose()?,
        customer_id: query.customer_id.clone(),
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: limit(query.limit)?,
    };
    let page = db(&state, move |conn| appointments::list(conn, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get, path = "/v1/admin/appointments/{id}", tag = "admin", operation_id = "appointment_detail", summary = "One appointment with its timeline: events, messages, timers, workflows (audited as a data view)", params(("id" = String, Path, description = "ARO's appointment id")), responses((status = 200, description = "The appointment", body = Object), (status = 404, description = "NOT_FOUND")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
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

/// The appointment `id` with its timeline, recorded in the audit log as a data view by
/// `principal` (`appointment.viewed`). Shared by the Admin API and the dashboard.
pub(crate) fn detail_viewed(
    conn: &mut DbConnection,
    principal: &Principal,
    id: &str,
) -> Result<AppointmentDetail, AdminError> {
    let detail = appointments::detail(conn, &principal.tenant_id, id)?
        .ok_or_else(|| AdminError::not_found("appointment", id))?;
    audit::record(
        conn,
        &audit_entry(
            principal,
            "appointment.viewed",
            "appointment",
            id,
            json!({"customerId": detail.appointment.customer.id}),
        ),
    )?;
    Ok(detail)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideBody {
    action: String,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    reason: String,
}

/// What staff may do to an appointment by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Override {
    Confirm,
    Cancel,
    MarkNoShow,
    Complete,
    Reschedule,
}

impl Override {
    fn parse(text: &str) -> Result<Self, AdminError> {
        match text.trim() {
            "confirm" => Ok(Self::Confirm),
            "cancel" => Ok(Self::Cancel),
            "mark_no_show" => Ok(Self::MarkNoShow),
            "complete" => Ok(Self::Complete),
            "reschedule" => Ok(Self::Reschedule),
            other => Err(AdminError::invalid(
                "action",
                format!(
                    "unknown action {other:?}; expected confirm, cancel, mark_no_show, \
                     complete or reschedule"
                ),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
            Self::MarkNoShow => "mark_no_show",
            Self::Complete => "complete",
            Self::Reschedule => "reschedule",
        }
    }

    fn target(self) -> Option<AppointmentStatus> {
        match self {
            Self::Confirm => Some(AppointmentStatus::Confirmed),
            Self::Cancel => Some(AppointmentStatus::Cancelled),
            Self::MarkNoShow => Some(AppointmentStatus::NoShow),
            Self::Complete => Some(AppointmentStatus::Completed),
            Self::Reschedule => None,
        }
    }
}

#[utoipa::path(
    post, path = "/v1/admin/appointments/{id}/override", tag = "admin", operation_id = "override_appointment", summary = "A person's override: confirm, cancel, no_show, complete, reschedule (only the moves SPEC §3 allows)", params(("id" = String, Path, description = "ARO's appointment id")), request_body(content = OverrideBody), responses((status = 200, description = "Applied through the appointment's actor", body = Object), (status = 400, description = "VALIDATION_ERROR"), (status = 404, description = "NOT_FOUND"), (status = 409, description = "INVALID_TRANSITION")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn override_status(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonAfterAuth<OverrideBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let request = OverrideRequest {
        action: body.action,
        reason: body.reason,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let done = apply_override(&state, &staff, &path.into_inner(), request).await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": done.after.id,
        "action": done.action,
        "previousStatus": done.previous_status,
        "status": done.after.status,
        "startsAt": done.after.starts_at,
        "endsAt": done.after.ends_at,
        "version": done.after.version,
    })))
}

/// A manual override as a person asked for it.
#[derive(Debug, Clone)]
pub(crate) struct OverrideRequest {
    /// `confirm`, `cancel`, `mark_no_show`, `complete` or `reschedule`.
    pub action: String,
    pub reason: String,
    /// The new start (reschedule only).
    pub starts_at: Option<DateTime<Utc>>,
    /// The new end (reschedule only; default: the same duration).
    pub ends_at: Option<DateTime<Utc>>,
}

/// What an override did.
#[derive(Debug, Clone)]
pub(crate) struct OverrideDone {
    pub action: &'static str,
    pub previous_status: String,
    /// The appointment as the engine committed it.
    pub after: AppointmentRecord,
}

/// Applies a manual override to the appointment `id` through the engine, as
/// `principal`'s decision (staff or above, checked by the caller), and audits it.
/// Shared by the Admin API and the dashboard.
pub(crate) async fn apply_override(
    state: &AppState,
    principal: &Principal,
    id: &str,
    request: OverrideRequest,
) -> Result<OverrideDone, AdminError> {
    let id = id.to_string();
    let action = Override::parse(&request.action)?;
    let reason = request.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdminError::invalid(
            "reason",
            format!("reason is required (1 to {MAX_REASON_CHARS} characters)"),
        ));
    }
    if action != Override::Reschedule && (request.starts_at.is_some() || request.ends_at.is_some())
    {
        return Err(AdminError::invalid(
            "startsAt",
            "startsAt and endsAt are for reschedule only",
        ));
    }
    let (tenant, lookup_id) = (principal.tenant_id.clone(), id.clone());
    let before = db(state, move |conn| {
        appointments::find_brief(conn, &tenant, &lookup_id)?
            .ok_or_else(|| AdminError::not_found("appointment", &lookup_id))
    })
    .await?;
    let by = ChangedBy::Staff(staff_label(principal));
    let command = match action.target() {
        Some(to) => AppointmentCommand::Transition {
            to,
            by,
            reason: Some(reason),
        },
        None => {
            let starts_at = request.starts_at.ok_or_else(|| {
                AdminError::invalid("startsAt", "startsAt is required to reschedule")
            })?;
            let ends_at = request
                .ends_at
                .unwrap_or(starts_at + (before.ends_at - before.starts_at));
            AppointmentCommand::Reschedule {
                starts_at,
                ends_at,
                by,
            }
        }
    };
    let after = state
        .engine
        .route(id.clone(), command)
        .await
        .map_err(AdminError::from)?
        .ok_or_else(|| AdminError::not_found("appointment", &id))?;
    let entry = audit_entry(
        principal,
        "appointment.override",
        "appointment",
        &id,
        json!({
            "action": action.as_str(),
            "from": before.status,
            "to": after.status,
            "customerId": before.customer_id,
            "version": after.version,
        }),
    );
    db(state, move |conn| Ok(audit::record(conn, &entry)?)).await?;
    Ok(OverrideDone {
        action: action.as_str(),
        previous_status: before.status,
        after,
    })
}
