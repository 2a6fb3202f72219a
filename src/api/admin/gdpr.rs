//! GDPR per customer (SPEC §7), thin over [`crate::privacy`]:
//!
//! - `GET /v1/admin/customers/{id}/export` (staff or owner): everything stored about
//!   the customer as one JSON document (`attachment`); audited as `customer.exported`.
//! - `POST /v1/admin/customers/{id}/erase` (owner): their personal data erased
//!   everywhere, nothing sent to them again; audited as `customer.erased`.
//! - `POST /v1/admin/customers/{id}/rectify {name?, phone?, email?, language?}` (staff
//!   or owner): corrected; audited as `customer.rectified` with the field names. A phone
//!   number another customer has is `409` with code `VALIDATION_ERROR`.
//!
//! Exporting is staff work, not a viewer's: a viewer sees one customer at a time on
//! screen, an export is the whole record in a file that leaves the system.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde_json::json;

use crate::auth::{OwnerOnly, StaffOrAbove};
use crate::http::ErrorCode;
use crate::http::{ApiError, AppState, JsonAfterAuth};
use crate::privacy::{self, PrivacyError, Rectification, RectifyRequest};

#[utoipa::path(
    get, path = "/v1/admin/customers/{id}/export", tag = "admin", operation_id = "gdpr_export", summary = "GDPR export: everything held about the customer as one JSON bundle", params(("id" = String, Path, description = "The customer's id")), responses((status = 200, description = "The bundle (an attachment)", body = Object), (status = 404, description = "NOT_FOUND")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn export(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (tenant, actor, customer) = (staff.tenant_id.clone(), staff.actor(), id.clone());
    let bundle = state
        .db
        .run(move |conn| {
            Ok(privacy::export::export(
                conn,
                &tenant,
                &customer,
                &actor,
                Utc::now(),
            ))
        })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"customer-{}.json\"",
                bundle.customer.id
            ),
        ))
        .json(bundle))
}

#[utoipa::path(
    post, path = "/v1/admin/customers/{id}/erase", tag = "admin", operation_id = "gdpr_erase", summary = "GDPR erasure: personal data scrubbed from every table; the audit chain stays valid", params(("id" = String, Path, description = "The customer's id")), responses((status = 200, description = "What was erased", body = Object), (status = 404, description = "NOT_FOUND")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
pub async fn erase(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let erasure = privacy::erase::run(
        &state.db,
        &state.engine,
        &owner.tenant_id,
        &id,
        &owner.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(erasure))
}

#[utoipa::path(
    post, path = "/v1/admin/customers/{id}/rectify", tag = "admin", operation_id = "gdpr_rectify", summary = "GDPR rectification of name, phone or e-mail (validated; audited by field name)", params(("id" = String, Path, description = "The customer's id")), request_body(content = Object, description = "Any of `name`, `phone` (E.164 or national), `email`"), responses((status = 200, description = "The rectified fields", body = Object), (status = 400, description = "VALIDATION_ERROR"), (status = 404, description = "NOT_FOUND")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
pub async fn rectify(
    staff: StaffOrAbove,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonAfterAuth<RectifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let change = Rectification::parse(body.into_inner()?, &state.config.business.country)?;
    let outcome = privacy::rectify::run(
        &state.db,
        &state.engine,
        &staff.tenant_id,
        &id,
        change,
        &staff.actor(),
    )
    .await;
    match outcome {
        Ok(rectified) => Ok(HttpResponse::Ok().json(rectified)),
        Err(err @ PrivacyError::PhoneInUse) => Ok(HttpResponse::Conflict().json(json!({
            "error": {
                "code": ErrorCode::ValidationError,
                "message": err.to_string(),
                "details": {"field": "phone", "reason": "phone_in_use"},
                "retryable": false,
            }
        }))),
        Err(err) => Err(err.into()),
    }
}
