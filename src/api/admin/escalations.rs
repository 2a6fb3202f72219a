//! `GET /v1/admin/escalations?status=open|resolved&priority=&limit=&cursor=` and `POST
//! /v1/admin/escalations/{id}/resolve {resolution, note?}` (staff; audited).
//!
//! Resolutions:
//!
//! | resolution | also does |
//! | --- | --- |
//! | `confirmed_cancellation` | cancels the appointment through the engine, as this person's decision (SPEC §3: only a person or the booking system cancels) |
//! | `marked_confirmed` | confirms the appointment through the engine |
//! | `contacted_customer` | nothing more: staff handled it with the customer |
//! | `dismissed` | nothing more |
//!
//! An appointment already in the status asked for is left as it is. The engine moves
//! first; a move the lifecycle refuses is `409 INVALID_TRANSITION` and the escalation
//! stays open. The note is kept on the escalation (`details.resolutionNote`), never in
//! the audit log (it may name people).

use actix_web::{web, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{AppointmentCommand, ChangedBy, EngineError};
use serde::Deserialize;
use serde_json::json;

use super::error::AdminError;
use super::queries::appointments::EscalationView;
use super::queries::escalations::{self, EscalationFilter, Resolution};
use super::support::{audit_entry, db, limit, staff_label, Cursor};
use crate::auth::{Principal, StaffOrAbove, ViewerOrAbove};
use crate::http::{ApiError, AppState, JsonAfterAuth};

const PRIORITIES: [&str; 3] = ["low", "medium", "high"];
const STATUSES: [&str; 2] = ["open", "resolved"];
const MAX_NOTE_CHARS: usize = 2000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn one_of(
    field: &'static str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<Option<String>, AdminError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(AdminError::invalid(
            field,
            format!("{field} {v:?} is not one of {}", allowed.join(", ")),
        )),
    }
}

#[utoipa::path(
    get, path = "/v1/admin/escalations", tag = "admin", operation_id = "list_escalations", summary = "The escalation inbox", params(ListQuery), responses((status = 200, description = "items and nextCursor", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn list(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = EscalationFilter {
        tenant_id: viewer.tenant_id.clone(),
        status: one_of("status", query.status.as_deref(), &STATUSES)?,
        priority: one_of("priority", query.priority.as_deref(), &PRIORITIES)?,
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: limit(query.limit)?,
    };
    let page = db(&state, move |conn| escalations::list(conn, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    resolution: String,
    note: Option<String>,
}

/// The resolutions staff may record, and the status each moves the appointment to.
fn resolution_target(resolution: &str) -> Result<Option<AppointmentStatus>, AdminError> {
    match resolution {
        "confirmed_cancellation" => Ok(Some(AppointmentStatus::Cancelled)),
        "marked_confirmed" => Ok(Some(AppointmentStatus::Confirmed)),
        "contacted_customer" | "dismissed" => Ok(None),
        other => Err(AdminError::invalid(
            "resolution",
            format!(
                "unknown resolution {other:?}; expected confirmed_cancellation, \
                 marked_confirmed, contacted_customer or dismissed"
            ),
        )),
    }
}

#[utoipa::path(
    post, path = "/v1/admin/escalations/{id}/resolve", tag = "admin", operation_id = "resolve_escalation", summary = "Resolve: confirm_cancellation, mark_confirmed, contacted or dismissed (+ note)", params(("id" = String, Path, description = "The escalation's id")), request_body(content = ResolveBody), responses((status = 200, description = "Resolved", body = Object), (status = 400, description = "VALIDATION_ERROR"), (status = 404, description = "NOT_FOUND"), (status = 409, description = "INVALID_TRANSITION: already resolved, or the move is not allowed")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn resolve(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonAfterAuth<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let resolved = resolve_escalation(
        &state,
        &staff,
        &path.into_inner(),
        &body.resolution,
        body.note,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "escalation": resolved.escalation,
        "appointmentStatus": resolved.appointment_status,
    })))
}

/// What resolving an escalation did.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub escalation: EscalationView,
    /// The appointment's status after the move the resolution asked for, if any.
    pub appointment_status: Option<AppointmentStatus>,
}

/// Resolves the open escalation `id` as `principal` (staff or above, checked by the
/// caller): moves its appointment through the engine when the resolution asks for it,
/// then records the resolution with its audit entry. Shared by the Admin API and the
/// dashboard.
pub(crate) async fn resolve_escalation(
    state: &AppState,
    principal: &Principal,
    id: &str,
    resolution: &str,
    note: Option<String>,
) -> Result<Resolved, AdminError> {
    let id = id.to_string();
    let resolution = resolution.trim().to_string();
    let target = resolution_target(&resolution)?;
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(AdminError::invalid(
            "note",
            format!("note is at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    let (tenant, lookup_id) = (principal.tenant_id.clone(), id.clone());
    let escalation = db(state, move |conn| {
        escalations::find(conn, &tenant, &lookup_id)?
            .ok_or_else(|| AdminError::not_found("escalation", &lookup_id))
    })
    .await?;
    if escalation.status != "open" {
        return Err(AdminError::State {
            what: "escalation",
            from: escalation.status,
            to: "resolved".to_string(),
        });
    }
    let by = staff_label(principal);
    let mut appointment_status = None;
    if let Some(to) = target {
        let appointment_id = escalation.appointment_id.clone().ok_or_else(|| {
            AdminError::invalid(
                "resolution",
                format!("{resolution} needs an escalation about an appointment"),
            )
        })?;
        let command = AppointmentCommand::Transition {
            to,
            by: ChangedBy::Staff(by.clone()),
            reason: Some(format!("escalation {id}: {resolution}")),
        };
        appointment_status = match state.engine.route(appointment_id, command).await {
            Ok(record) => record.map(|r| r.status),
            // Already where the person wants it (e.g. the booking system cancelled it).
            Err(EngineError::InvalidTransition(t)) if t.from == t.to => Some(t.to),
            Err(err) => return Err(AdminError::from(err)),
        };
    }
    let entry = audit_entry(
        principal,
        "escalation.resolved",
        "escalation",
        &id,
        json!({
            "resolution": resolution,
            "reason": escalation.reason,
            "priority": escalation.priority,
            "appointmentId": escalation.appointment_id,
            "customerId": escalation.customer_id,
            "appointmentStatus": appointment_status,
            "noteGiven": note.is_some(),
        }),
    );
    let record = Resolution {
        tenant_id: principal.tenant_id.clone(),
        id: id.clone(),
        resolution,
        by,
        note,
        at: state.engine.now(),
    };
    let resolved = db(state, move |conn| {
        escalations::resolve(conn, &record, &entry)
    })
    .await?
    .ok_or_else(|| AdminError::State {
        what: "escalation",
        from: "resolved".to_string(),
        to: "resolved".to_string(),
    })?;
    Ok(Resolved {
        escalation: resolved,
        appointment_status,
    })
}
