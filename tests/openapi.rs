//! The OpenAPI document at `GET /v1/openapi.json`, checked against the application:
//!
//! - it documents exactly the routes the code registers (every `web::resource` in
//!   `src/`, but the dashboard's HTML pages and the sandbox pay page), and each
//!   documented operation is routed (never the default 404 or a 405);
//! - the role each operation's security requirement names is the one the daemon
//!   enforces: driven by the document, every secured operation refuses a missing,
//!   expired, revoked, unknown or malformed credential and an expired session with 401,
//!   a role below the named one with 403 (`reason: role`), a cookie request that changes
//!   state without its CSRF token with 403 (`reason: csrf`), and lets the named role
//!   through; public operations need no credential.
//!
//! Requests go out from a different loopback address per credential, so the admin
//! rate limit (100 requests / 15 min per address) never answers for the daemon.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration as StdDuration;

use aro::auth::Role;
use aro::store::schema::{admin_users, api_tokens, sessions};
use aro::store::Database;
use awc::http::Method;
use chrono::{Duration, Utc};
use common::credentials::{create_token, create_user, sign_in};
use common::{spawn_app, Kind, TestApp};
use diesel::prelude::*;
use serde_json::{json, Value};

/// Paths that are for browsers, not the API, and so are not in the document.
fn is_browser_path(path: &str) -> bool {
    path == "/" || path.starts_with("/dashboard") || path.starts_with("/sandbox/pay/")
}

/// `(METHOD, path)` of every route registered in `src/` with `web::resource("…")`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut files = Vec::new();
    collect_rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("web::resource(") {
            rest = &rest[at + "web::resource(".len()..];
            let Some(literal) = rest.strip_prefix('"') else {
                // A constant: only the dashboard's assets are registered that way.
                assert!(
                    file.to_string_lossy().contains("src/dashboard/"),
                    "{}: a route registered without a literal path: {}",
                    file.display(),
                    &rest[..rest.len().min(60)]
                );
                continue;
            };
            let path = &literal[..literal.find('"').expect("closing quote")];
            // This resource's routes run until the next resource or the end of the chain.
            let end = [rest.find("web::resource("), rest.find(';')]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            let block = &rest[..end];
            let mut methods = 0;
            for method in ["get", "post", "put", "patch", "delete"] {
                if block.contains(&format!("web::{method}()")) {
                    found.insert((method.to_uppercase(), path.to_string()));
                    methods += 1;
                }
            }
            assert!(methods > 0, "{path} in {}: no method found", file.display());
        }
    }
    found
}

fn collect_rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// One documented operation.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    path: String,
    /// `None`: public. `Some(None)`: any credential. `Some(Some(role))`: that role or above.
    security: Option<Option<Role>>,
}

impl Operation {
    fn concrete_path(&self) -> String {
        self.path.replace("{id}", "no-such-id")
    }

    fn changes_state(&self) -> bool {
        self.method != Method::GET
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let security = operation["security"].as_array().map(|requirements| {
                let scopes: BTreeSet<&str> = requirements
                    .iter()
                    .flat_map(|r| r.as_object().expect("requirement").values())
                    .flat_map(|scopes| scopes.as_array().expect("scopes"))
                    .map(|s| s.as_str().expect("scope"))
                    .collect();
                assert!(
                    scopes.len() <= 1,
                    "{method} {path}: one role, got {scopes:?}"
                );
                scopes.first().map(|role| match *role {
                    "viewer" => Role::Viewer,
                    "staff" => Role::Staff,
                    "owner" => Role::Owner,
                    other => panic!("{method} {path}: unknown role {other}"),
                })
            });
            out.push(Operation {
                method,
                path: path.clone(),
                security,
            });
        }
    }
    // Signing out ends the session it is made with: last.
    out.sort_by_key(|op| op.path == "/v1/auth/logout");
    out
}

struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn reason(&self) -> &str {
        self.body["error"]["details"]["reason"]
            .as_str()
            .unwrap_or("")
    }

    /// The application's default answer for a path no route matches.
    fn is_unrouted(&self) -> bool {
        self.status == 405
            || (self.status == 404
                && self.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no route for")))
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie {
        cookie: &'a str,
        csrf: Option<&'a str>,
    },
}

/// Sends one request from the loopback address `127.0.0.<source>`.
async fn send(app: &TestApp, source: u8, method: Method, path: &str, auth: Auth<'_>) -> Answer {
    let connector =
        awc::Connector::new().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)));
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(StdDuration::from_secs(10))
        .finish();
    let mut request = client.request(method.clone(), app.url(path));
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        Auth::Cookie { cookie, csrf } => {
            request = request.insert_header(("Cookie", format!("aro_session={cookie}")));
            if let Some(csrf) = csrf {
                request = request.insert_header(("X-CSRF-Token", csrf.to_string()));
            }
        }
    }
    let mut response = if method == Method::GET {
        request.send().await
    } else {
        request.send_json(&json!({})).await
    }
    .expect("request");
    let status = response.status().as_u16();
    // A stream (the SSE route) is judged by its status alone.
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = if is_stream {
        Value::Null
    } else {
        let bytes = response.body().limit(4 << 20).await.expect("body");
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Answer { status, body }
}

async fn document(app: &TestApp) -> Value {
    let answer = send(app, 1, Method::GET, "/v1/openapi.json", Auth::None).await;
    assert_eq!(answer.status, 200);
    answer.body
}

#[actix_rt::test]
async fn the_document_lists_exactly_the_registered_routes_and_each_is_routed() {
    let app = spawn_app(Kind::Sqlite).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    assert!(doc["components"]["securitySchemes"]["session"].is_object());

    let documented: BTreeSet<(String, String)> = operations(&doc)
        .iter()
        .map(|op| (op.method.to_string(), op.path.clone()))
        .collect();
    let registered: BTreeSet<(String, String)> = registered_routes()
        .into_iter()
        .filter(|(_, path)| !is_browser_path(path))
        .collect();
    assert!(registered.len() >= 40, "{registered:?}");
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty() && unregistered.is_empty(),
        "registered but not documented: {undocumented:?}\ndocumented but not registered: {unregistered:?}"
    );

    let mut ids = BTreeSet::new();
    for op in operations(&doc) {
        let raw = &doc["paths"][&op.path][op.method.as_str().to_lowercase()];
        let id = raw["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert!(
            raw["summary"].is_string(),
            "{} {}: summary",
            op.method,
            op.path
        );
        for (status, answer) in raw["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    answer["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorEnvelope",
                    "{} {} {status}: the error envelope",
                    op.method,
                    op.path
                );
            }
        }
        let answer = send(&app, 2, op.method.clone(), &op.concrete_path(), Auth::None).await;
        assert!(
            !answer.is_unrouted(),
            "{} {} is documented but not routed: {} {}",
            op.method,
            op.path,
            answer.status,
            answer.body
        );
        if op.security.is_none() {
            assert_ne!(answer.status, 401, "{} {} is public", op.method, op.path);
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Staff => 1,
        Role::Owner => 2,
    }
}

async fn the_document_names_the_role_each_operation_enforces(kind: Kind) {
    let app = spawn_app(kind).await;
    let db = Database::open(&app.db.config(&[]).database).expect("open database");
    let doc = document(&app).await;
    let ops = operations(&doc);
    let secured: Vec<&Operation> = ops.iter().filter(|op| op.security.is_some()).collect();
    assert!(secured.len() >= 30, "{} secured operations", secured.len());

    for (name, role) in [
        ("owner1", Role::Owner),
        ("staff1", Role::Staff),
        ("viewer1", Role::Viewer),
        ("gone1", Role::Owner),
    ] {
        create_user(&db, name, role).await;
    }
    let (_, expired) = create_token(&db, Role::Owner, None).await;
    let (revoked_id, revoked) = create_token(&db, Role::Owner, None).await;
    let role_tokens = [
        (Role::Viewer, create_token(&db, Role::Viewer, None).await.1),
        (Role::Staff, create_token(&db, Role::Staff, None).await.1),
        (Role::Owner, create_token(&db, Role::Owner, None).await.1),
    ];
    let (expired_session, expired_csrf) = sign_in(&app.url("/v1/auth/login"), "gone1").await;
    let viewer_session = sign_in(&app.url("/v1/auth/login"), "viewer1").await;
    let owner_session = sign_in(&app.url("/v1/auth/login"), "owner1").await;
    {
        let mut conn = db.get().expect("connection");
        let past = Utc::now().naive_utc() - Duration::minutes(1);
        let expired_id = api_tokens::table
            .filter(api_tokens::id.ne(&revoked_id))
            .order(api_tokens::created_at.asc())
            .select(api_tokens::id)
            .first::<String>(&mut *conn)
            .expect("first token");
        diesel::update(api_tokens::table.find(&expired_id))
            .set(api_tokens::expires_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("expire token");
        diesel::update(api_tokens::table.find(&revoked_id))
            .set(api_tokens::revoked_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("revoke token");
        let gone: String = admin_users::table
            .filter(admin_users::username.eq("gone1"))
            .select(admin_users::id)
            .first(&mut *conn)
            .expect("user");
        diesel::update(sessions::table.filter(sessions::user_id.eq(gone)))
            .set(sessions::expires_at.eq(past))
            .execute(&mut *conn)
            .expect("expire session");
    }

    let bad: [(&str, Auth); 6] = [
        ("no", Auth::None),
        ("an expired", Auth::Bearer(&expired)),
        ("a revoked", Auth::Bearer(&revoked)),
        (
            "an unknown",
            Auth::Bearer("aro_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("a malformed", Auth::Bearer("not-a-token")),
        (
            "an expired session",
            Auth::Cookie {
                cookie: &expired_session,
                csrf: Some(&expired_csrf),
            },
        ),
    ];
    for (source, (label, auth)) in bad.iter().enumerate() {
        for op in &secured {
            let answer = send(
                &app,
                10 + source as u8,
                op.method.clone(),
                &op.concrete_path(),
                *auth,
            )
            .await;
            assert_eq!(
                (answer.status, answer.code()),
                (401, "UNAUTHORIZED"),
                "{} {} with {label} credential: {}",
                op.method,
                op.path,
                answer.body
            );
        }
    }

    for (source, (role, token)) in role_tokens.iter().enumerate() {
        for op in &secured {
            let answer = send(
                &app,
                20 + source as u8,
                op.method.clone(),
                &op.concrete_path(),
                Auth::Bearer(token),
            )
            .await;
            let needed = op.security.flatten().unwrap_or(Role::Viewer);
            if rank(*role) < rank(needed) {
                assert_eq!(
                    (answer.status, answer.reason()),
                    (403, "role"),
                    "{} {} needs {needed:?}, a {role:?} token must be refused: {}",
                    op.method,
                    op.path,
                    answer.body
                );
            } else {
                assert!(
                    answer.status != 401 && answer.status != 403,
                    "{} {} names {needed:?}; a {role:?} token must pass: {} {}",
                    op.method,
                    op.path,
                    answer.status,
                    answer.body
                );
            }
        }
    }

    // Cookie requests that change state need the session's CSRF token, whatever the role.
    for op in secured.iter().filter(|op| op.changes_state()) {
        let (cookie, _) = &owner_session;
        let answer = send(
            &app,
            30,
            op.method.clone(),
            &op.concrete_path(),
            Auth::Cookie { cookie, csrf: None },
        )
        .await;
        assert_eq!(
            (answer.status, answer.reason()),
            (403, "csrf"),
            "{} {} without its CSRF token: {}",
            op.method,
            op.path,
            answer.body
        );
        let needed = op.security.flatten().unwrap_or(Role::Viewer);
        if needed != Role::Viewer {
            let (cookie, csrf) = &viewer_session;
            let answer = send(
                &app,
                31,
                op.method.clone(),
                &op.concrete_path(),
                Auth::Cookie {
                    cookie,
                    csrf: Some(csrf),
                },
            )
            .await;
            assert_eq!(
                (answer.status, answer.reason()),
                (403, "role"),
                "{} {} as a viewer session: {}",
                op.method,
                op.path,
                answer.body
            );
        }
    }
}

on_both_backends!(the_document_names_the_role_each_operation_enforces);
