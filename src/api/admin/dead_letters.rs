//! `GET /v1/admin/dead-letters?status=open|replayed|archived&domain=&limit=&cursor=`,
//! `POST /v1/admin/dead-letters/{id}/replay` and `POST
//! /v1/admin/dead-letters/{id}/archive` (staff; audited).
//!
//! A replay goes through the messaging supervisor (`ReplayDeadLetter` with the dead
//! letter's outbox row): the row is queued again with its attempts reset and the dead
//! letter is marked `replayed`; a payment row is then picked up by the payment
//! supervisor. Only an `open` dead letter can be replayed or archived (else `409`), and
//! only one with an outbox row can be replayed (inbound work that failed is archived).

use actix_web::{web, HttpResponse};
use actors::engine::EngineError;
use actors::supervisors::messaging::ReplayDeadLetter;
use actors::supervisors::OutboxChanged;
use serde::Deserialize;
use serde_json::json;

use super::error::AdminError;
use super::queries::dead_letters::{
    self, DeadLetterFilter, DeadLetterView, ARCHIVED, OPEN, REPLAYED,
};
use super::support::{audit_entry, db, limit, staff_label, Cursor};
use crate::auth::{Principal, StaffOrAbove, ViewerOrAbove};
use crate::http::{ApiError, AppState};

const STATUSES: [&str; 3] = [OPEN, REPLAYED, ARCHIVED];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    domain: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/admin/dead-letters", tag = "admin", operation_id = "list_dead_letters", summary = "Work that exhausted its retries (kept 30 days)", params(ListQuery), responses((status = 200, description = "items and nextCursor (numbers masked)", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn list(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) if STATUSES.contains(&s) => Some(s.to_string()),
        Some(s) => {
            return Err(AdminError::invalid(
                "status",
                format!("status {s:?} is not one of {}", STATUSES.join(", ")),
            )
            .into())
        }
    };
    let filter = DeadLetterFilter {
        tenant_id: viewer.tenant_id.clone(),
        status,
        domain: query
            .domain
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: limit(query.limit)?,
    };
    let page = db(&state, move |conn| dead_letters::list(conn, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The open dead letter `id` of the caller's tenant, or why not.
async fn open_dead_letter(
    state: &AppState,
    tenant_id: &str,
    id: &str,
    to: &str,
) -> Result<DeadLetterView, AdminError> {
    let (tenant, lookup_id) = (tenant_id.to_string(), id.to_string());
    let found = db(state, move |conn| {
        dead_letters::find(conn, &tenant, &lookup_id)?
            .ok_or_else(|| AdminError::not_found("dead letter", &lookup_id))
    })
    .await?;
    if found.status != OPEN {
        return Err(AdminError::State {
            what: "dead letter",
            from: found.status,
            to: to.to_string(),
        });
    }
    Ok(found)
}

#[utoipa::path(
    post, path = "/v1/admin/dead-letters/{id}/replay", tag = "admin", operation_id = "replay_dead_letter", summary = "Send the work again from attempt zero", params(("id" = String, Path, description = "The dead letter's id")), responses((status = 200, description = "Replayed", body = Object), (status = 400, description = "VALIDATION_ERROR: nothing to replay"), (status = 404, description = "NOT_FOUND"), (status = 409, description = "INVALID_TRANSITION: not open")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn replay(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = replay_dead_letter(&state, &staff, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"deadLetter": view})))
}

/// Replays the open dead letter `id` as `principal` (staff or above, checked by the
/// caller): its outbox row goes back to the queue through the messaging supervisor, and
/// the dead letter is marked `replayed` with its audit entry. Shared by the Admin API
/// and the dashboard.
pub(crate) async fn replay_dead_letter(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Option<DeadLetterView>, AdminError> {
    let id = id.to_string();
    let found = open_dead_letter(state, &principal.tenant_id, &id, REPLAYED).await?;
    let outbox_id = found.outbox_id.clone().ok_or_else(|| {
        AdminError::invalid(
            "id",
            "this dead letter is inbound work without an outbox row: it cannot be replayed; \
             archive it",
        )
    })?;
    let replayed = state
        .engine
        .messaging
        .send(ReplayDeadLetter(outbox_id.clone()))
        .await
        .map_err(|_| AdminError::Unavailable("messaging supervisor"))?
        .map_err(|e| AdminError::Engine(EngineError::Store(e)))?;
    if !replayed {
        // The outbox row is no longer dead: someone replayed it a moment ago.
        return Err(AdminError::State {
            what: "dead letter",
            from: "replayed".to_string(),
            to: REPLAYED.to_string(),
        });
    }
    if found.domain == "payment" {
        if let Some(payments) = &state.engine.payments {
            payments.do_send(OutboxChanged);
        }
    }
    let entry = audit_entry(
        principal,
        "dead_letter.replayed",
        "dead_letter",
        &id,
        json!({"outboxId": outbox_id, "domain": found.domain, "kind": found.kind,
               "attempts": found.attempts}),
    );
    let (tenant, by) = (principal.tenant_id.clone(), staff_label(principal));
    db(state, move |conn| {
        dead_letters::record_replay(conn, &tenant, &id, &by, &entry)
    })
    .await
}

#[utoipa::path(
    post, path = "/v1/admin/dead-letters/{id}/archive", tag = "admin", operation_id = "archive_dead_letter", summary = "Archive without retrying", params(("id" = String, Path, description = "The dead letter's id")), responses((status = 200, description = "Archived", body = Object), (status = 404, description = "NOT_FOUND"), (status = 409, description = "INVALID_TRANSITION: not open")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn archive(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = archive_dead_letter(&state, &staff, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"deadLetter": view})))
}

/// Archives the open dead letter `id` as `principal` (staff or above, checked by the
/// caller), with its audit entry; nothing is retried. Shared by the Admin API and the
/// dashboard.
pub(crate) async fn archive_dead_letter(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<DeadLetterView, AdminError> {
    let id = id.to_string();
    let found = open_dead_letter(state, &principal.tenant_id, &id, ARCHIVED).await?;
    let entry = audit_entry(
        principal,
        "dead_letter.archived",
        "dead_letter",
        &id,
        json!({"outboxId": found.outbox_id, "domain": found.domain, "kind": found.kind,
               "attempts": found.attempts}),
    );
    let (tenant, by, at) = (
        principal.tenant_id.clone(),
        staff_label(principal),
        state.engine.now(),
    );
    db(state, move |conn| {
        dead_letters::archive(conn, &tenant, &id, &by, at, &entry)
    })
    .await?
    .ok_or_else(|| AdminError::State {
        what: "dead letter",
        from: "not open".to_string(),
        to: ARCHIVED.to_string(),
    })
}
