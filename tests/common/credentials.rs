//! Credentials for tests: admin users with the test password, API tokens, and a browser
//! session signed in through `POST /v1/auth/login` — made the way the CLI and the API
//! make them (`aro::auth::{users, tokens}`), in the `default` tenant.

use std::sync::OnceLock;

use aro::audit::Actor;
use aro::auth::{password, service, tokens, users, Role};
use aro::store::Database;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::client;

/// Every test user's password (it passes the password policy).
pub const PASSWORD: &str = "Velvet-Harbor-42!";

/// The argon2id hash of [`PASSWORD`], computed once per test binary.
pub fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash(PASSWORD).expect("hash"))
        .clone()
}

/// Creates the admin user `username` with `role` and [`PASSWORD`]; its id.
pub async fn create_user(db: &Database, username: &str, role: Role) -> String {
    let new = users::NewUser {
        tenant_id: "default".into(),
        username: username.into(),
        password_hash: password_hash(),
        role,
    };
    service::run(db, move |conn| {
        users::create(conn, &new, &Actor::cli(), Utc::now())
    })
    .await
    .expect("create user")
    .id
}

/// Issues an API token with `role` (expiring at `expires_at`, if given): `(id, token)`.
pub async fn create_token(
    db: &Database,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> (String, String) {
    let issued = service::run(db, move |conn| {
        tokens::create(
            conn,
            "default",
            &format!("{role} token"),
            role,
            expires_at,
            &Actor::cli(),
            Utc::now(),
        )
    })
    .await
    .expect("create token");
    (issued.row.id.clone(), issued.token.expose().clone())
}

/// Signs `username` in with [`PASSWORD`] at `login_url` (the daemon's
/// `/v1/auth/login`): `(session cookie value, CSRF token)`.
pub async fn sign_in(login_url: &str, username: &str) -> (String, String) {
    let mut response = client()
        .post(login_url)
        .send_json(&json!({"username": username, "password": PASSWORD}))
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 200, "sign-in of {username}");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("aro_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let body: Value = serde_json::from_slice(&response.body().await.expect("body")).expect("json");
    (
        cookie,
        body["csrfToken"].as_str().expect("csrf").to_string(),
    )
}
