//! Event subscriptions (SPEC §7), owner only: signed webhook sinks that receive every
//! new event of the tenant, in order, at least once.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/subscriptions` | `{url, secret?, eventTypes?, after?}` | `201` the subscription (with `secret` when ARO generated it: shown once) |
//! | `GET /v1/subscriptions` | — | `{subscriptions: [...]}` (never a secret) |
//! | `POST /v1/subscriptions/{id}/replay` | `{after}` | the subscription, its cursor moved back |
//!
//! Deliveries are made by [`super::deliverer`]; the secret is kept as described in
//! [`super::subscription_queries`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::deliverer;
use super::event_queries::{self, parse_cursor};
use super::subscription_queries::{self as queries, NewSubscription, SubscriptionRow};
use crate::audit::AuditError;
use crate::auth::secrets::SecretsError;
use crate::auth::OwnerOnly;
use crate::config::Secret;
use crate::crypto::{CryptoError, MasterKey};
use crate::http::{ApiError, AppState, JsonAfterAuth};
use crate::store::models::to_utc;
use crate::store::{DbConnection, StoreError};

/// Longest subscription URL accepted.
const MAX_URL: usize = 2000;
/// Shortest and longest caller-chosen secret.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=1024;
/// Most event types one subscription may name.
const MAX_TYPES: usize = 100;

/// Registers the subscription routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/subscriptions")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/v1/subscriptions/{id}/replay").route(web::post().to(replay)));
}

/// Everything subscription handling can fail with; mapped to the envelope once, below.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such subscription")]
    NotFound,
    #[error("subscription query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("master key: {0}")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SubscriptionError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SubscriptionError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<SubscriptionError> for ApiError {
    fn from(err: SubscriptionError) -> Self {
        match err {
            SubscriptionError::Invalid { field, reason } => ApiError::validation(
                format!("{field}: {reason}"),
                json!({"field": field, "reason": reason}),
            ),
            SubscriptionError::NotFound => ApiError::NotFound("no such subscription".to_string()),
            SubscriptionError::Store(store) => store.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

async fn run<T, F>(state: &AppState, work: F) -> Result<T, SubscriptionError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, SubscriptionError> + Send + 'static,
    T: Send + 'static,
{
    state.db.run(move |conn| Ok(work(conn))).await?
}

/// A subscription as the API shows it: never its secret.
pub fn subscription_json(row: &SubscriptionRow) -> Value {
    json!({
        "id": row.id,
        "url": row.url,
        "eventTypes": row.types(),
        "status": row.status,
        "cursor": row.cursor.to_string(),
        "attempts": row.attempts,
        "nextAttemptAt": row.next_attempt_at.map(|at| to_utc(at).to_rfc3339()),
        "lastError": row.last_error,
        "createdAt": to_utc(row.created_at).to_rfc3339(),
        "updatedAt": to_utc(row.updated_at).to_rfc3339(),
    })
}

/// A cursor given as a string (as the Event API hands them out) or a number.
fn cursor_value(
    value: Option<&Value>,
    field: &'static str,
) -> Result<Option<i64>, SubscriptionError> {
    let bad = || {
        SubscriptionError::invalid(
            field,
            "not a cursor (a nextCursor from the Event API, or 0)",
        )
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_cursor(text).map(Some).ok_or_else(bad),
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    url: String,
    secret: Option<String>,
    event_types: Option<Vec<String>>,
    after: Option<Value>,
}

fn check_url(text: &str) -> Result<String, SubscriptionError> {
    let text = text.trim();
    if text.len() > MAX_URL {
        return Err(SubscriptionError::invalid(
            "url",
            format!("longer than {MAX_URL} characters"),
        ));
    }
    let url =
        url::Url::parse(text).map_err(|e| SubscriptionError::invalid("url", e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SubscriptionError::invalid(
            "url",
            "must be an http or https URL with a host",
        ));
    }
    // The URL is stored as it is: credentials belong in the signing secret.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SubscriptionError::invalid(
            "url",
            "must not carry credentials",
        ));
    }
    Ok(url.to_string())
}

fn check_types(types: Option<Vec<String>>) -> Result<Vec<String>, SubscriptionError> {
    let mut types: Vec<String> = types
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.trim().to_string())
        .collect();
    if types.len() > MAX_TYPES {
        return Err(SubscriptionError::invalid(
            "eventTypes",
            format!("at most {MAX_TYPES} types"),
        ));
    }
    let plain = |t: &String| {
        (1..=100).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if let Some(bad) = types.iter().find(|t| !plain(t)) {
        return Err(SubscriptionError::invalid(
            "eventTypes",
            format!("{bad:?} is not an event type (e.g. appointment.confirmed)"),
        ));
    }
    types.sort();
    types.dedup();
    Ok(types)
}

/// A fresh signing secret: 32 random bytes, hex, with a recognisable prefix.
fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// `POST /v1/subscriptions`.
#[utoipa::path(
    post, path = "/v1/subscriptions", tag = "events", operation_id = "create_subscription", summary = "Add a signed webhook sink (at-least-once, retried with backoff)", request_body(content = CreateBody), responses((status = 201, description = "Created; the signing secret is answered once", body = Object), (status = 400, description = "VALIDATION_ERROR")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn create(
    owner: OwnerOnly,
    state: web::Data<AppState>,
    body: JsonAfterAuth<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let url = check_url(&body.url)?;
    let event_types = check_types(body.event_types)?;
    let (secret, generated) = match body.secret {
        Some(secret) if SECRET_LEN.contains(&secret.len()) => (secret, false),
        Some(_) => {
            return Err(SubscriptionError::invalid(
                "secret",
                format!("{} to {} characters", SECRET_LEN.start(), SECRET_LEN.end()),
            )
            .into())
        }
        None => (generate_secret(), true),
    };
    let after = cursor_value(body.after.as_ref(), "after")?;
    let tenant_id = owner.tenant_id.clone();
    let actor = owner.actor();
    let config = state.config.clone();
    let new = NewSubscription {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id,
        url,
        secret: Secret::new(secret),
        event_types,
        cursor: after.unwrap_or(0),
    };
    let shown_secret = generated.then(|| new.secret.expose().clone());
    let row = run(&state, move |conn| {
        let master = MasterKey::load_or_create(&config)?;
        let mut new = new;
        if after.is_none() {
            // Without `after`, only events from now on.
            new.cursor = event_queries::head(conn, &new.tenant_id)?;
        }
        queries::create(conn, &master, &new, &actor, Utc::now())
    })
    .await?;
    deliverer::wake();
    let mut answer = subscription_json(&row);
    if let Some(secret) = shown_secret {
        answer["secret"] = json!(secret);
    }
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// `GET /v1/subscriptions`.
#[utoipa::path(
    get, path = "/v1/subscriptions", tag = "events", operation_id = "list_subscriptions", summary = "Webhook sinks for events", responses((status = 200, description = "Subscriptions (secrets masked)", body = Object)), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn list(owner: OwnerOnly, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant_id = owner.tenant_id.clone();
    let rows = run(&state, move |conn| queries::list(conn, &tenant_id)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "subscriptions": rows.iter().map(subscription_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    after: Value,
}

/// `POST /v1/subscriptions/{id}/replay`.
#[utoipa::path(
    post, path = "/v1/subscriptions/{id}/replay", tag = "events", operation_id = "replay_subscription", summary = "Deliver again from a cursor", params(("id" = String, Path, description = "The subscription's id")), request_body(content = ReplayBody), responses((status = 200, description = "Rewound", body = Object), (status = 400, description = "VALIDATION_ERROR"), (status = 404, description = "NOT_FOUND")), security(("token" = ["owner"]), ("session" = ["owner"]))
)]
async fn replay(
    owner: OwnerOnly,
    id: web::Path<String>,
    state: web::Data<AppState>,
    body: JsonAfterAuth<ReplayBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let after = cursor_value(Some(&body.after), "after")?
        .ok_or_else(|| SubscriptionError::invalid("after", "required"))?;
    let tenant_id = owner.tenant_id.clone();
    let actor = owner.actor();
    let id = id.into_inner();
    let row = run(&state, move |conn| {
        queries::replay(conn, &tenant_id, &id, after, &actor, Utc::now())
    })
    .await?;
    deliverer::wake();
    Ok(HttpResponse::Ok().json(subscription_json(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.example.com/aro").is_ok());
        assert!(check_url("http://127.0.0.1:9000/x").is_ok());
        for bad in [
            "ftp://x.example/",
            "not a url",
            "https://user:pw@x.example/",
            "mailto:a@b.c",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn types_and_secrets() {
        assert_eq!(
            check_types(Some(vec!["b.x".into(), "a.y".into(), "b.x".into()])).expect("ok"),
            vec!["a.y".to_string(), "b.x".to_string()]
        );
        assert!(check_types(Some(vec!["has space".into()])).is_err());
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
        assert_ne!(secret, generate_secret());
    }
}
