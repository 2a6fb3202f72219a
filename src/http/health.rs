//! `/health` (the process answers) and `/ready` (the database answers and its schema
//! is current).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;

#[utoipa::path(
    get, path = "/health", tag = "health", operation_id = "health", summary = "The process answers", responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Object))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(
    get, path = "/ready", tag = "health", operation_id = "ready", summary = "The database answers and its schema is current", responses((status = 200, description = "`{\"status\":\"ready\",\"checks\":{…}}`", body = Object), (status = 503, description = "SERVICE_UNAVAILABLE: not ready, with the failing check"))
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.db.readiness().await {
        Ok(()) => {
            metrics::gauge!("aro_ready").set(1.0);
            Ok(HttpResponse::Ok().json(json!({"status": "ready", "checks": {"database": "ok"}})))
        }
        Err(err) => {
            metrics::gauge!("aro_ready").set(0.0);
            tracing::warn!(error = %err, "not ready");
            Err(ApiError::Unavailable {
                message: format!("not ready: {err}"),
                details: json!({"checks": {"database": err.to_string()}}),
            })
        }
    }
}
