//! `/health` (the process answers) and `/ready` (the database answers and its schema
//! is current).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

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
