//! The auth and admin-security routes, kept thin: parse, call `service` or the queries,
//! answer JSON. Errors go out as the envelope through `ApiError`.
//!
//! | route | who |
//! | --- | --- |
//! | `POST /v1/auth/login` `{username, password, tenantId?}` | anyone (lockout, rate limit) |
//! | `POST /v1/auth/logout` | any session (CSRF) or token |
//! | `GET /v1/auth/me` | any principal |
//! | `GET /v1/admin/audit?after=&limit=` | owner |
//! | `GET, POST /v1/admin/users` | owner |
//! | `GET, POST /v1/admin/tokens`, `DELETE /v1/admin/tokens/{id}` | owner |

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::models::{AdminUserRow, ApiTokenRow};
use super::service::{self, run, LoginRequest};
use super::{password, tokens, users, AuthError, OwnerOnly, Principal, PrincipalKind, Role};
use crate::audit::{self, AuditRow, NewEntry};
use crate::config::Secret;
use crate::http::{ApiError, AppState, JsonAfterAuth};
use crate::store::tenant_queries::DEFAULT_TENANT;

/// Most audit entries one page returns.
const MAX_AUDIT_PAGE: i64 = 500;
const DEFAULT_AUDIT_PAGE: i64 = 100;
/// Longest token lifetime that may be asked for.
const MAX_TOKEN_DAYS: i64 = 3650;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/auth/login").route(web::post().to(login)))
        .service(web::resource("/v1/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/v1/auth/me").route(web::get().to(me)))
        .service(web::resource("/v1/admin/audit").route(web::get().to(audit_log)))
        .service(
            web::resource("/v1/admin/users")
                .route(web::get().to(list_users))
                .route(web::post().to(create_user)),
        )
        .service(
            web::resource("/v1/admin/tokens")
                .route(web::get().to(list_tokens))
                .route(web::post().to(create_token)),
        )
        .service(web::resource("/v1/admin/tokens/{id}").route(web::delete().to(revoke_token)));
}

/// The client's address as the lockout and the rate limit key it: the peer's IP (a
/// proxy in front makes every client share its address; see docs/security.md).
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |addr| addr.ip().to_string())
}

/// Whether session cookies are marked `Secure` (the public URL is https).
pub fn secure_cookies(state: &AppState) -> bool {
    state.config.public_url.scheme() == "https"
}

/// A sign-in attempt of `username` for `tenant_id` from the client of `req` (its address
/// and user agent are recorded). Shared by the JSON API and the dashboard's form.
pub fn login_request(
    req: &HttpRequest,
    tenant_id: String,
    username: String,
    password: String,
) -> LoginRequest {
    LoginRequest {
        tenant_id,
        username,
        password: Secret::new(password),
        address: client_address(req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

fn instant(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    tenant_id: Option<String>,
}

#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", operation_id = "login", summary = "Sign in: sets the aro_session cookie (24 h rolling) and answers the CSRF token", request_body(content = LoginBody), responses((status = 200, description = "Signed in: the user, role and csrfToken", body = Object), (status = 401, description = "UNAUTHORIZED: wrong username or password"), (status = 403, description = "FORBIDDEN (reason origin): posted from another site's page"), (status = 429, description = "RATE_LIMIT_EXCEEDED: locked after 5 failures in 15 min, or the address limit"))
)]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    crate::http::security::check_sign_in_origin(&req, &state.config.public_url)?;
    let body = body.into_inner();
    if body.username.trim().is_empty() || body.password.is_empty() {
        return Err(AuthError::Invalid {
            field: "username",
            message: "username and password are required".to_string(),
        }
        .into());
    }
    if body.password.chars().count() > password::MAX_LENGTH {
        return Err(AuthError::InvalidCredentials.into());
    }
    let request = login_request(
        &req,
        body.tenant_id.unwrap_or_else(|| DEFAULT_TENANT.to_string()),
        body.username,
        body.password,
    );
    let outcome = service::login(&state.db, request).await?;
    let cookie = super::sessions::set_cookie(
        outcome.session.cookie_value.expose(),
        secure_cookies(&state),
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, cookie))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "user": {"id": outcome.user.id, "username": outcome.user.username},
            "role": outcome.role,
            "tenantId": outcome.user.tenant_id,
            "csrfToken": outcome.session.csrf_token.expose(),
            "expiresAt": instant(outcome.session.row.expires_at),
        })))
}

#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", operation_id = "logout", summary = "Sign out (ends the session)", responses((status = 204, description = "Signed out")), security(("token" = []), ("session" = []))
)]
async fn logout(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    service::logout(&state.db, &principal).await?;
    let mut response = HttpResponse::NoContent();
    if principal.session_id().is_some() {
        response.insert_header((
            header::SET_COOKIE,
            super::sessions::clear_cookie(secure_cookies(&state)),
        ));
    }
    Ok(response.finish())
}

#[utoipa::path(
    get, path = "/v1/auth/me", tag = "auth", operation_id = "me", summary = "Who the credential belongs to", responses((status = 200, description = "The principal: tenant, role, user or token", body = Object)), security(("token" = []), ("session" = []))
)]
async fn me(principal: Principal) -> HttpResponse {
    let who = match &principal.kind {
        PrincipalKind::Session {
            user_id, username, ..
        } => json!({"kind": "session", "user": {"id": user_id, "username": username}}),
        PrincipalKind::Token { token_id, name } => {
            json!({"kind": "token", "token": {"id": token_id, "name": name}})
        }
    };
    let mut body = json!({
        "tenantId": principal.tenant_id,
        "role": principal.role,
        "csrfToken": principal.csrf_token(),
    });
    if let (Value::Object(body), Value::Object(who)) = (&mut body, who) {
        body.extend(who);
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

fn audit_json(row: &AuditRow) -> Value {
    json!({
        "seq": row.seq,
        "occurredAt": instant(row.occurred_at),
        "actorType": row.actor_type,
        "actorId": row.actor_id,
        "action": row.action,
        "subjectType": row.subject_type,
        "subjectId": row.subject_id,
        "details": serde_json::from_str::<Value>(&row.details)
            .unwrap_or_else(|_| Value::String(row.details.clone())),
        "prevHash": row.prev_hash,
        "hash": row.hash,
    })
}

#[utoipa::path(
    get, path = "/v1/admin/audit", tag = "admin", operation_id = "audit_log", summary = "The hash-chained audit log, oldest first", params(AuditQuery), responses((status = 200, description = "Entries with their hashes", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn audit_log(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            format!("limit must be between 1 and {MAX_AUDIT_PAGE}"),
            json!({"field": "limit"}),
        ));
    }
    let tenant_id = owner.tenant_id.clone();
    let actor = owner.actor();
    let rows = run(&state.db, move |conn| {
        let rows = audit::list(conn, &tenant_id, after, limit)?;
        audit::record(
            conn,
            &NewEntry::new(&tenant_id, actor, "audit.viewed")
                .details(json!({"after": after, "limit": limit, "returned": rows.len()})),
        )?;
        Ok(rows)
    })
    .await?;
    let next_after = rows.last().map(|row| row.seq);
    Ok(HttpResponse::Ok().json(json!({
        "entries": rows.iter().map(audit_json).collect::<Vec<_>>(),
        "nextAfter": next_after,
    })))
}

fn user_json(user: &AdminUserRow) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "createdAt": instant(user.created_at),
        "lastLoginAt": user.last_login_at.map(instant),
    })
}

#[utoipa::path(
    get, path = "/v1/admin/users", tag = "auth", operation_id = "list_users", summary = "The tenant's users", responses((status = 200, description = "Users (no password hashes)", body = Object)), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn list_users(
    owner: OwnerOnly,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = owner.tenant_id.clone();
    let rows = run(&state.db, move |conn| Ok(users::list(conn, &tenant_id)?)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "users": rows.iter().map(user_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    password: String,
    /// owner, staff or viewer.
    #[schema(value_type = String)]
    role: Role,
}

#[utoipa::path(
    post, path = "/v1/admin/users", tag = "auth", operation_id = "create_user", summary = "Create a user (password policy: 12+ characters with upper, lower, digit, symbol; common ones refused)", request_body(content = CreateUserBody), responses((status = 201, description = "Created", body = Object), (status = 400, description = "VALIDATION_ERROR: weak password, taken username")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn create_user(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    body: JsonAfterAuth<CreateUserBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateUserBody {
        username,
        password: typed,
        role,
    } = body.into_inner()?;
    let username = users::normalize_username(&username)?;
    password::check_policy(&typed, Some(&username))?;
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&typed))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let new = users::NewUser {
        tenant_id: owner.tenant_id.clone(),
        username,
        password_hash,
        role,
    };
    let actor = owner.actor();
    let row = run(&state.db, move |conn| {
        users::create(conn, &new, &actor, Utc::now())
    })
    .await?;
    Ok(HttpResponse::Created().json(user_json(&row)))
}

fn token_json(row: &ApiTokenRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "createdAt": instant(row.created_at),
        "lastUsedAt": row.last_used_at.map(instant),
        "expiresAt": row.expires_at.map(instant),
        "revokedAt": row.revoked_at.map(instant),
    })
}

#[utoipa::path(
    get, path = "/v1/admin/tokens", tag = "auth", operation_id = "list_tokens", summary = "The tenant's API tokens (never their values)", responses((status = 200, description = "Tokens", body = Object)), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn list_tokens(
    owner: OwnerOnly,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = owner.tenant_id.clone();
    let rows = run(&state.db, move |conn| Ok(tokens::list(conn, &tenant_id)?)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "tokens": rows.iter().map(token_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTokenBody {
    name: String,
    /// owner, staff or viewer.
    #[schema(value_type = String)]
    role: Role,
    expires_in_days: Option<i64>,
}

#[utoipa::path(
    post, path = "/v1/admin/tokens", tag = "auth", operation_id = "create_token", summary = "Create an API token: its value is answered once and stored hashed", request_body(content = CreateTokenBody), responses((status = 201, description = "The token, once", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn create_token(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    body: JsonAfterAuth<CreateTokenBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let now = Utc::now();
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Some(now + Duration::days(days)),
        Some(_) => {
            return Err(ApiError::validation(
                format!("expiresInDays must be between 1 and {MAX_TOKEN_DAYS}"),
                json!({"field": "expiresInDays"}),
            ))
        }
    };
    owner.require(body.role)?;
    let tenant_id = owner.tenant_id.clone();
    let actor = owner.actor();
    let issued = run(&state.db, move |conn| {
        tokens::create(
            conn, &tenant_id, &body.name, body.role, expires_at, &actor, now,
        )
    })
    .await?;
    let mut answer = token_json(&issued.row);
    answer["token"] = json!(issued.token.expose());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

#[utoipa::path(
    delete, path = "/v1/admin/tokens/{id}", tag = "auth", operation_id = "revoke_token", summary = "Revoke an API token", params(("id" = String, Path, description = "The token's id")), responses((status = 204, description = "Revoked"), (status = 404, description = "NOT_FOUND")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn revoke_token(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = owner.tenant_id.clone();
    let actor = owner.actor();
    let id = id.into_inner();
    let row = run(&state.db, move |conn| {
        tokens::revoke(conn, &tenant_id, &id, &actor, Utc::now())
    })
    .await?;
    Ok(HttpResponse::Ok().json(token_json(&row)))
}
