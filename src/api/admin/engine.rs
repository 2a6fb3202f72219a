//! The running engine as staff see it: `GET /v1/admin/supervisors` (each provider
//! domain's circuit breaker, rate-limit tokens, queue and counters: live from the
//! messaging supervisor, and as persisted for every domain), `GET /v1/admin/actors`
//! (live appointment actors) and `GET /v1/admin/actors/{appointmentId}` (one actor's
//! state, in-flight messages, pending timers and workflows; activates it if needed).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use actors::engine::{InspectActor, ListActors, LiveActor};
use actors::ports::store::{AppointmentRecord, TimerRecord, WorkflowRecord};
use actors::supervisors::messaging::{GetSnapshot, SupervisorSnapshot};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use super::error::AdminError;
use super::queries::appointments;
use super::queries::supervisors::{self, DomainStore};
use super::support::db;
use crate::auth::ViewerOrAbove;
use crate::engine_host::{payments_mode, PaymentsMode};
use crate::http::{ApiError, AppState};
use crate::store::schema::appointments as appointments_table;

/// How long the admin API waits for an engine actor to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

#[utoipa::path(
    get, path = "/v1/admin/supervisors", tag = "admin", operation_id = "supervisors", summary = "Each provider domain: breaker state, rate-limit tokens, retry queues", responses((status = 200, description = "Supervisors", body = Object), (status = 503, description = "SERVICE_UNAVAILABLE: the supervisor did not answer")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn supervisors(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (snapshot, mut stored) = supervisor_state(&state, &viewer.tenant_id).await?;
    let messaging = json!({
        "domain": snapshot.domain.as_str(),
        "running": true,
        "breaker": snapshot.breaker,
        "tokens": (snapshot.tokens * 100.0).round() / 100.0,
        "queueDepth": snapshot.queue_depth,
        "inFlight": snapshot.in_flight,
        "sent": snapshot.sent,
        "retried": snapshot.retried,
        "deadLettered": snapshot.dead_lettered,
        "reconciled": snapshot.reconciled,
        "stored": stored.remove("messaging").unwrap_or_default(),
    });
    let payment = json!({
        "domain": "payment",
        "running": state.engine.payments.is_some(),
        // `stripe`, `sandbox` (a trial install's own pay page) or `off`.
        "mode": payments_mode_name(&state),
        "configured": payments_mode(&state.config) == PaymentsMode::Stripe,
        "stored": stored.remove("payment").unwrap_or_default(),
    });
    Ok(HttpResponse::Ok().json(json!({
        "supervisors": [messaging, payment],
        "otherDomains": stored,
    })))
}

/// The name of the payment mode the daemon runs in (`engine_host::payments_mode`).
pub(crate) fn payments_mode_name(state: &AppState) -> &'static str {
    match payments_mode(&state.config) {
        PaymentsMode::Stripe => "stripe",
        PaymentsMode::Sandbox => "sandbox",
        PaymentsMode::Off => "off",
    }
}

/// The live messaging supervisor's snapshot, and what the store holds of every provider
/// domain of `tenant_id`. Shared by the Admin API and the dashboard.
pub(crate) async fn supervisor_state(
    state: &AppState,
    tenant_id: &str,
) -> Result<(SupervisorSnapshot, BTreeMap<String, DomainStore>), AdminError> {
    let snapshot = state
        .engine
        .messaging
        .send(GetSnapshot)
        .timeout(ASK_TIMEOUT)
        .await
        .map_err(|_| AdminError::Unavailable("messaging supervisor"))?;
    let tenant = tenant_id.to_string();
    let stored = db(state, move |conn| supervisors::by_domain(conn, &tenant)).await?;
    Ok((snapshot, stored))
}

/// One live actor in the list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveActorView {
    appointment_id: String,
    status: Option<&'static str>,
    in_flight: usize,
    idle_for_ms: u128,
}

fn live_view(a: &LiveActor) -> LiveActorView {
    LiveActorView {
        appointment_id: a.appointment_id.clone(),
        status: a.status.map(|s| s.as_str()),
        in_flight: a.in_flight,
        idle_for_ms: a.idle_for.as_millis(),
    }
}

async fn live_actors(state: &AppState) -> Result<Vec<LiveActor>, AdminError> {
    state
        .engine
        .directory
        .send(ListActors)
        .timeout(ASK_TIMEOUT)
        .await
        .map_err(|_| AdminError::Unavailable("actor directory"))
}

#[utoipa::path(
    get, path = "/v1/admin/actors", tag = "admin", operation_id = "list_actors", summary = "Live appointment actors with status and mailbox depth", responses((status = 200, description = "Actors", body = Object)), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn actors(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let actors: Vec<LiveActorView> = tenant_live_actors(&state, &viewer.tenant_id)
        .await?
        .iter()
        .map(live_view)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"count": actors.len(), "actors": actors})))
}

/// The live appointment actors of `tenant_id`'s appointments. Shared by the Admin API
/// and the dashboard.
pub(crate) async fn tenant_live_actors(
    state: &AppState,
    tenant_id: &str,
) -> Result<Vec<LiveActor>, AdminError> {
    let live = live_actors(state).await?;
    let ids: Vec<String> = live.iter().map(|a| a.appointment_id.clone()).collect();
    let tenant = tenant_id.to_string();
    // Only the caller's tenant's appointments.
    let mine: HashSet<String> = db(state, move |conn| {
        let mut mine = HashSet::new();
        for chunk in ids.chunks(500) {
            let found: Vec<String> = appointments_table::table
                .filter(appointments_table::tenant_id.eq(&tenant))
                .filter(appointments_table::id.eq_any(chunk))
                .select(appointments_table::id)
                .load(conn)?;
            mine.extend(found);
        }
        Ok(mine)
    })
    .await?;
    Ok(live
        .into_iter()
        .filter(|a| mine.contains(&a.appointment_id))
        .collect())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StateView {
    id: String,
    customer_id: String,
    status: &'static str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    timezone: String,
    source: String,
    external_id: String,
    service_type: Option<String>,
    version: i64,
    deposit: Value,
    updated_at: DateTime<Utc>,
}

fn state_view(r: &AppointmentRecord) -> StateView {
    StateView {
        id: r.id.clone(),
        customer_id: r.customer_id.clone(),
        status: r.status.as_str(),
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        timezone: r.timezone.clone(),
        source: r.source.clone(),
        external_id: r.external_id.clone(),
        service_type: r.service_type.clone(),
        version: r.version,
        deposit: json!({
            "status": r.deposit.status.as_str(),
            "amountCents": r.deposit.amount_cents,
            "steps": r.deposit.steps,
        }),
        updated_at: r.updated_at,
    }
}

fn timer_view(t: &TimerRecord) -> Value {
    json!({
        "key": t.spec.key,
        "kind": t.spec.kind,
        "dueAt": t.spec.due_at,
        "status": t.status.as_str(),
        "payload": t.spec.payload,
    })
}

fn workflow_view(w: &WorkflowRecord) -> Value {
    json!({
        "id": w.id,
        "kind": w.kind,
        "state": w.state.as_str(),
        "step": w.step,
        "data": w.data,
        "retryCount": w.retry_count,
        "lastError": w.last_error,
        "version": w.version,
        "updatedAt": w.updated_at,
    })
}

#[utoipa::path(
    get, path = "/v1/admin/actors/{id}", tag = "admin", operation_id = "inspect_actor", summary = "One actor's state, in-flight messages, pending timers and workflows", params(("id" = String, Path, description = "ARO's appointment id")), responses((status = 200, description = "The actor", body = Object), (status = 404, description = "NOT_FOUND")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
pub async fn inspect(
    viewer: ViewerOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (tenant, lookup_id) = (viewer.tenant_id.clone(), id.clone());
    // Never activate an actor for an id that is not one of the caller's appointments.
    db(&state, move |conn| {
        appointments::find_brief(conn, &tenant, &lookup_id)?
            .ok_or_else(|| AdminError::not_found("appointment", &lookup_id))
    })
    .await?;
    let before = live_actors(&state)
        .await?
        .into_iter()
        .find(|a| a.appointment_id == id);
    let view = state
        .engine
        .directory
        .send(InspectActor(id.clone()))
        .timeout(ASK_TIMEOUT)
        .await
        .map_err(|_| AdminError::Unavailable("actor directory"))?
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(json!({
        "appointmentId": id,
        "wasLive": before.is_some(),
        "mailbox": {
            "inFlight": before.as_ref().map_or(0, |a| a.in_flight),
            "idleForMs": before.as_ref().map(|a| a.idle_for.as_millis()),
        },
        "restarts": view.actor.restarts,
        "state": view.actor.state.as_ref().map(state_view),
        "pendingTimers": view.pending_timers.iter().map(timer_view).collect::<Vec<_>>(),
        "workflows": view.workflows.iter().map(workflow_view).collect::<Vec<_>>(),
    })))
}
