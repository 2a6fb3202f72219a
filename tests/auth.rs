//! Authentication and authorization on the real daemon, both backends: every admin
//! route refuses a missing, expired, revoked or wrong-role credential; a viewer changes
//! nothing; cookie requests that change state need their CSRF token; the sixth login
//! after five failures is refused even with the right password until 15 minutes pass;
//! bearer tokens work until revoked or expired; sessions roll; the admin rate limit;
//! security headers on every response; `aro admin` at the command line.

mod common;

use aro::auth::Role;
use aro::store::schema::{admin_users, api_tokens, audit_log, login_attempts, sessions};
use aro::store::{Conn, Database};
use awc::http::Method;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use common::credentials::{create_token, create_user, PASSWORD};
use common::{aro_command, client, spawn_app, Kind, TestApp};
use diesel::prelude::*;
use serde_json::{json, Value};

struct Ctx {
    app: TestApp,
    db: Database,
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

struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn auth(&self) -> Auth<'_> {
        Auth::Cookie {
            cookie: &self.cookie,
            csrf: Some(&self.csrf),
        }
    }

    fn without_csrf(&self) -> Auth<'_> {
        Auth::Cookie {
            cookie: &self.cookie,
            csrf: None,
        }
    }
}

struct Answer {
    status: u16,
    body: Value,
    headers: awc::http::header::HeaderMap,
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
}

async fn setup(kind: Kind) -> Ctx {
    let app = spawn_app(kind).await;
    let db = Database::open(&app.db.config(&[]).database).expect("open database");
    Ctx { app, db }
}

impl Ctx {
    fn conn(&self) -> Conn {
        self.db.get().expect("connection")
    }

    async fn user(&self, username: &str, role: Role) -> String {
        create_user(&self.db, username, role).await
    }

    async fn token(&self, role: Role, expires_at: Option<DateTime<Utc>>) -> (String, String) {
        create_token(&self.db, role, expires_at).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = client().request(method, self.app.url(path));
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
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers: response.headers().clone(),
        }
    }

    async fn login_answer(&self, username: &str, password: &str) -> Answer {
        self.send(
            Method::POST,
            "/v1/auth/login",
            Auth::None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    async fn login(&self, username: &str) -> Session {
        let answer = self.login_answer(username, PASSWORD).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let set_cookie = answer
            .headers
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .expect("ascii")
            .to_string();
        let cookie = set_cookie
            .strip_prefix("aro_session=")
            .and_then(|rest| rest.split(';').next())
            .expect("aro_session cookie")
            .to_string();
        Session {
            cookie,
            csrf: answer.body["csrfToken"].as_str().expect("csrf").to_string(),
        }
    }

    fn audit_actions(&self) -> Vec<String> {
        audit_log::table
            .order(audit_log::seq.asc())
            .select(audit_log::action)
            .load(&mut *self.conn())
            .expect("audit")
    }
}

/// Every route this module adds, the role it needs, and a body for it.
fn admin_routes(token_id: &str) -> Vec<(Method, String, Option<Value>, Role)> {
    vec![
        (Method::GET, "/v1/auth/me".into(), None, Role::Viewer),
        (Method::POST, "/v1/auth/logout".into(), None, Role::Viewer),
        (Method::GET, "/v1/admin/audit".into(), None, Role::Owner),
        (Method::GET, "/v1/admin/users".into(), None, Role::Owner),
        (
            Method::POST,
            "/v1/admin/users".into(),
            Some(json!({"username": "newbie", "password": "Quiet-Meadow-77#", "role": "viewer"})),
            Role::Owner,
        ),
        (Method::GET, "/v1/admin/tokens".into(), None, Role::Owner),
        (
            Method::POST,
            "/v1/admin/tokens".into(),
            Some(json!({"name": "ci", "role": "viewer"})),
            Role::Owner,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tokens/{token_id}"),
            None,
            Role::Owner,
        ),
    ]
}

async fn login_sets_a_strict_cookie_and_me_answers(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("ann", Role::Owner).await;

    let wrong = ctx.login_answer("ann", "Velvet-Harbor-43!").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.code(), "UNAUTHORIZED");
    assert!(wrong.headers.get("set-cookie").is_none());
    let unknown = ctx.login_answer("nobody", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    let elsewhere = ctx
        .send(
            Method::POST,
            "/v1/auth/login",
            Auth::None,
            Some(json!({"username": "ann", "password": PASSWORD, "tenantId": "no-such-tenant"})),
        )
        .await;
    assert_eq!(elsewhere.status, 401, "{}", elsewhere.body);
    assert_eq!(
        unknown.body["error"]["message"],
        wrong.body["error"]["message"]
    );

    let answer = ctx.login_answer("ANN", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let set_cookie = answer.headers.get("set-cookie").unwrap().to_str().unwrap();
    for part in ["aro_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain http public URL: {set_cookie}"
    );
    assert_eq!(answer.body["role"], "owner");
    assert_eq!(answer.body["user"]["username"], "ann");
    assert_eq!(answer.headers.get("cache-control").unwrap(), "no-store");

    let session = ctx.login("ann").await;
    let me = ctx
        .send(Method::GET, "/v1/auth/me", session.auth(), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["role"], "owner");
    assert_eq!(me.body["kind"], "session");
    assert_eq!(me.body["csrfToken"], session.csrf.as_str());

    // The database holds neither the cookie nor the CSRF token.
    let stored: Vec<(String, String)> = sessions::table
        .select((sessions::id, sessions::csrf_token_hash))
        .load(&mut *ctx.conn())
        .expect("sessions");
    assert_eq!(stored.len(), 2);
    for (id, csrf_hash) in stored {
        assert_ne!(id, session.cookie);
        assert_ne!(csrf_hash, session.csrf);
    }
    let actions = ctx.audit_actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login.failed").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"auth.login.succeeded".to_string()));
}

async fn every_admin_route_refuses_bad_credentials(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("owner1", Role::Owner).await;
    ctx.user("viewer1", Role::Viewer).await;
    let (victim_id, _) = ctx.token(Role::Viewer, None).await;
    let (_, expired) = ctx
        .token(Role::Owner, Some(Utc::now() + Duration::seconds(2)))
        .await;
    let (revoked_id, revoked) = ctx.token(Role::Owner, None).await;
    let (_, viewer_token) = ctx.token(Role::Viewer, None).await;
    let (_, staff_token) = ctx.token(Role::Staff, None).await;
    let expired_session = ctx.login("owner1").await;
    let viewer = ctx.login("viewer1").await;
    {
        let mut conn = ctx.conn();
        let past = Utc::now().naive_utc() - Duration::minutes(1);
        diesel::update(api_tokens::table.filter(api_tokens::expires_at.is_not_null()))
            .set(api_tokens::expires_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("expire token");
        diesel::update(api_tokens::table.find(&revoked_id))
            .set(api_tokens::revoked_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("revoke token");
        let owner_id: String = admin_users::table
            .filter(admin_users::username.eq("owner1"))
            .select(admin_users::id)
            .first(&mut *conn)
            .expect("owner");
        diesel::update(sessions::table.filter(sessions::user_id.eq(owner_id)))
            .set(sessions::expires_at.eq(past))
            .execute(&mut *conn)
            .expect("expire session");
    }
    let garbage = "aro_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (method, path, body, needs) in admin_routes(&victim_id) {
        let what = format!("{method} {path}");
        for (label, auth) in [
            ("missing", Auth::None),
            ("expired session", expired_session.auth()),
            ("expired token", Auth::Bearer(&expired)),
            ("revoked token", Auth::Bearer(&revoked)),
            ("unknown token", Auth::Bearer(garbage)),
            ("malformed token", Auth::Bearer("not-a-token")),
        ] {
            let answer = ctx.send(method.clone(), &path, auth, body.clone()).await;
            assert_eq!(
                answer.status, 401,
                "{what} with a {label} credential: {}",
                answer.body
            );
            assert_eq!(answer.code(), "UNAUTHORIZED", "{what} {label}");
            assert_eq!(answer.body["error"]["retryable"], false);
        }
        if needs == Role::Owner {
            for (label, auth) in [
                ("viewer token", Auth::Bearer(&viewer_token)),
                ("staff token", Auth::Bearer(&staff_token)),
                ("viewer session", viewer.auth()),
            ] {
                let answer = ctx.send(method.clone(), &path, auth, body.clone()).await;
                assert_eq!(answer.status, 403, "{what} as {label}: {}", answer.body);
                assert_eq!(answer.code(), "FORBIDDEN", "{what} {label}");
                assert_eq!(answer.reason(), "role", "{what} {label}");
                assert_eq!(answer.body["error"]["details"]["required"], "owner");
            }
        }
    }
    // The refused requests changed nothing.
    let mut conn = ctx.conn();
    let user_count: i64 = admin_users::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(user_count, 2);
    let live: i64 = api_tokens::table
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(live, 4, "victim, expired, viewer, staff");
}

async fn a_viewer_cannot_change_anything(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("owner1", Role::Owner).await;
    ctx.user("viewer1", Role::Viewer).await;
    ctx.user("staff1", Role::Staff).await;
    let (victim_id, victim) = ctx.token(Role::Viewer, None).await;
    let viewer = ctx.login("viewer1").await;
    let staff = ctx.login("staff1").await;
    let (_, viewer_token) = ctx.token(Role::Viewer, None).await;
    let before = ctx.audit_actions().len();
    for auth in [viewer.auth(), staff.auth(), Auth::Bearer(&viewer_token)] {
        for (method, path, body, _) in admin_routes(&victim_id)
            .into_iter()
            .filter(|(m, _, _, needs)| *m != Method::GET && *needs == Role::Owner)
        {
            let answer = ctx.send(method.clone(), &path, auth, body).await;
            assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
            assert_eq!(answer.reason(), "role");
        }
    }
    // Nothing was created, revoked or audited; the victim token still works.
    assert_eq!(ctx.audit_actions().len(), before);
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&victim), None)
        .await;
    assert_eq!(me.status, 200);
    let users: i64 = admin_users::table
        .count()
        .get_result(&mut *ctx.conn())
        .expect("count");
    assert_eq!(users, 3);
    // Reading is allowed.
    let me = ctx
        .send(Method::GET, "/v1/auth/me", viewer.auth(), None)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["role"], "viewer");
}

async fn cookie_requests_that_change_state_need_csrf(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("owner1", Role::Owner).await;
    let session = ctx.login("owner1").await;
    let body = json!({"name": "deploy", "role": "staff"});

    let answer = ctx
        .send(
            Method::POST,
            "/v1/admin/tokens",
            session.without_csrf(),
            Some(body.clone()),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.code(), "FORBIDDEN");
    assert_eq!(answer.reason(), "csrf");

    let forged = Auth::Cookie {
        cookie: &session.cookie,
        csrf: Some("forged-token"),
    };
    let answer = ctx
        .send(Method::POST, "/v1/admin/tokens", forged, Some(body.clone()))
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.reason(), "csrf");
    let none: i64 = api_tokens::table
        .count()
        .get_result(&mut *ctx.conn())
        .expect("count");
    assert_eq!(none, 0, "refused requests create nothing");

    // Reads need no CSRF token; writes with it work.
    let answer = ctx
        .send(
            Method::GET,
            "/v1/admin/tokens",
            session.without_csrf(),
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer = ctx
        .send(
            Method::POST,
            "/v1/admin/tokens",
            session.auth(),
            Some(body.clone()),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let token = answer.body["token"]
        .as_str()
        .expect("token shown once")
        .to_string();
    assert!(token.starts_with("aro_"));

    // A bearer token needs none.
    let (_, owner_token) = ctx.token(Role::Owner, None).await;
    let answer = ctx
        .send(
            Method::POST,
            "/v1/admin/tokens",
            Auth::Bearer(&owner_token),
            Some(body),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);

    // Logout without the token is refused; with the token in a form field it works.
    let answer = ctx
        .send(
            Method::POST,
            "/v1/auth/logout",
            session.without_csrf(),
            None,
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.reason(), "csrf");
    let mut response = client()
        .post(ctx.app.url("/v1/auth/logout"))
        .insert_header(("Cookie", format!("aro_session={}", session.cookie)))
        .content_type("application/x-www-form-urlencoded")
        .send_body(format!("csrf_token={}", session.csrf))
        .await
        .expect("logout");
    assert_eq!(response.status(), 204, "{:?}", response.body().await);
    let cleared = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let answer = ctx
        .send(Method::GET, "/v1/auth/me", session.auth(), None)
        .await;
    assert_eq!(answer.status, 401, "the session ended");
    assert!(ctx.audit_actions().contains(&"auth.logout".to_string()));
}

async fn the_sixth_login_is_refused_until_the_lock_expires(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("ann", Role::Staff).await;
    ctx.user("bob", Role::Staff).await;
    for attempt in 1..=5 {
        let answer = ctx
            .login_answer("ann", &format!("Wrong-Password-{attempt}!"))
            .await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.body);
    }
    let locked = ctx.login_answer("ann", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(locked.reason(), "login_locked");
    let retry = locked.body["error"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(locked.body["error"]["details"]["retryAfter"], retry);
    assert!(locked.headers.get("retry-after").is_some());
    assert!(locked.headers.get("set-cookie").is_none());
    // Still refused, and refusals do not extend the lock.
    let again = ctx.login_answer("ann", PASSWORD).await;
    assert_eq!(again.status, 429);
    let recorded: i64 = login_attempts::table
        .count()
        .get_result(&mut *ctx.conn())
        .expect("count");
    assert_eq!(recorded, 5, "refused attempts are not recorded");

    // The pair is locked, not the user or the address.
    ctx.login("bob").await;

    // 15 minutes later the right password works again.
    {
        let mut conn = ctx.conn();
        let rows: Vec<(String, NaiveDateTime)> = login_attempts::table
            .filter(login_attempts::username.eq("ann"))
            .select((login_attempts::id, login_attempts::attempted_at))
            .load(&mut *conn)
            .expect("attempts");
        for (id, at) in rows {
            diesel::update(login_attempts::table.find(id))
                .set(login_attempts::attempted_at.eq(at - Duration::minutes(16)))
                .execute(&mut *conn)
                .expect("move back");
        }
    }
    ctx.login("ann").await;

    let actions = ctx.audit_actions();
    for action in [
        "auth.login.failed",
        "auth.login.locked",
        "auth.login.refused",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login.locked").count(),
        1
    );
}

async fn bearer_tokens_work_until_revoked_or_expired(kind: Kind) {
    let ctx = setup(kind).await;
    let (id, token) = ctx.token(Role::Staff, None).await;
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&token), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["kind"], "token");
    assert_eq!(me.body["role"], "staff");
    assert_eq!(me.body["token"]["id"], id.as_str());
    assert!(me.body["csrfToken"].is_null());
    let (hash, used): (String, Option<NaiveDateTime>) = api_tokens::table
        .find(&id)
        .select((api_tokens::token_hash, api_tokens::last_used_at))
        .first(&mut *ctx.conn())
        .expect("row");
    assert_ne!(hash, token, "stored hashed");
    assert!(used.is_some(), "last_used_at recorded");

    // Scoped to its tenant.
    let mut response = client()
        .get(ctx.app.url("/v1/auth/me"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("X-Tenant-Id", "another-clinic"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["details"]["reason"], "tenant");

    // An owner revokes it over the API; it stops working at once.
    let (_, owner) = ctx.token(Role::Owner, None).await;
    let listed = ctx
        .send(Method::GET, "/v1/admin/tokens", Auth::Bearer(&owner), None)
        .await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.to_string().contains(&token),
        "values are never listed"
    );
    let revoked = ctx
        .send(
            Method::DELETE,
            &format!("/v1/admin/tokens/{id}"),
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revokedAt"].is_string());
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&token), None)
        .await;
    assert_eq!(me.status, 401);
    let missing = ctx
        .send(
            Method::DELETE,
            "/v1/admin/tokens/nope",
            Auth::Bearer(&owner),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    // Expiry.
    let (_, short) = ctx
        .token(Role::Viewer, Some(Utc::now() + Duration::hours(1)))
        .await;
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&short), None)
        .await;
    assert_eq!(me.status, 200);
    diesel::update(api_tokens::table.filter(api_tokens::expires_at.is_not_null()))
        .set(api_tokens::expires_at.eq(Some(Utc::now().naive_utc() - Duration::seconds(1))))
        .execute(&mut *ctx.conn())
        .expect("expire");
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&short), None)
        .await;
    assert_eq!(me.status, 401);

    let actions = ctx.audit_actions();
    assert!(actions.contains(&"auth.token.created".to_string()));
    assert!(actions.contains(&"auth.token.revoked".to_string()));
}

async fn sessions_roll_forward(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("ann", Role::Viewer).await;
    let session = ctx.login("ann").await;
    let soon = Utc::now().naive_utc() + Duration::minutes(1);
    diesel::update(sessions::table)
        .set((
            sessions::expires_at.eq(soon),
            sessions::last_seen_at.eq(soon - Duration::hours(2)),
        ))
        .execute(&mut *ctx.conn())
        .expect("age the session");
    let me = ctx
        .send(Method::GET, "/v1/auth/me", session.auth(), None)
        .await;
    assert_eq!(me.status, 200);
    let expires: NaiveDateTime = sessions::table
        .select(sessions::expires_at)
        .first(&mut *ctx.conn())
        .expect("session");
    assert!(
        expires > Utc::now().naive_utc() + Duration::hours(23),
        "rolled to 24 h from now: {expires}"
    );
}

async fn owners_manage_users_and_read_the_audit_log(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.user("owner1", Role::Owner).await;
    let session = ctx.login("owner1").await;

    let weak = ctx
        .send(
            Method::POST,
            "/v1/admin/users",
            session.auth(),
            Some(json!({"username": "cara", "password": "Password123!", "role": "staff"})),
        )
        .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert_eq!(weak.code(), "VALIDATION_ERROR");
    assert_eq!(weak.reason(), "weak_password");
    assert_eq!(weak.body["error"]["details"]["problems"], json!(["common"]));

    let short = ctx
        .send(
            Method::POST,
            "/v1/admin/users",
            session.auth(),
            Some(json!({"username": "cara", "password": "abc", "role": "staff"})),
        )
        .await;
    assert_eq!(short.status, 400);
    let problems = short.body["error"]["details"]["problems"].to_string();
    for code in ["too_short", "no_uppercase", "no_digit", "no_symbol"] {
        assert!(problems.contains(code), "{problems}");
    }

    let created = ctx
        .send(
            Method::POST,
            "/v1/admin/users",
            session.auth(),
            Some(json!({"username": "Cara", "password": "Quiet-Meadow-77#", "role": "staff"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["username"], "cara");
    assert!(created.body.get("passwordHash").is_none());
    let duplicate = ctx
        .send(
            Method::POST,
            "/v1/admin/users",
            session.auth(),
            Some(json!({"username": "cara", "password": "Quiet-Meadow-78#", "role": "viewer"})),
        )
        .await;
    assert_eq!(duplicate.status, 400);
    assert_eq!(duplicate.reason(), "already_exists");
    let login = ctx.login_answer("cara", "Quiet-Meadow-77#").await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["role"], "staff");

    let users = ctx
        .send(Method::GET, "/v1/admin/users", session.auth(), None)
        .await;
    assert_eq!(users.status, 200);
    assert_eq!(users.body["users"].as_array().map(Vec::len), Some(2));
    assert!(!users.body.to_string().contains("argon2"));

    let page = ctx
        .send(Method::GET, "/v1/admin/audit?limit=2", session.auth(), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let entries = page.body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[0]["action"], "auth.user.created");
    assert_eq!(entries[0]["prevHash"], "0".repeat(64));
    assert_eq!(entries[1]["prevHash"], entries[0]["hash"]);
    let after = page.body["nextAfter"].as_i64().expect("cursor");
    let next = ctx
        .send(
            Method::GET,
            &format!("/v1/admin/audit?after={after}&limit=500"),
            session.auth(),
            None,
        )
        .await;
    let rest = next.body["entries"].as_array().expect("entries");
    assert!(rest.iter().all(|e| e["seq"].as_i64() > Some(after)));
    assert!(
        rest.iter().any(|e| e["action"] == "audit.viewed"),
        "views are audited"
    );
    let text = next.body.to_string();
    assert!(
        !text.contains("Quiet-Meadow"),
        "no passwords in the audit log"
    );
    assert!(!text.contains(&session.cookie));
    let bad = ctx
        .send(Method::GET, "/v1/admin/audit?limit=0", session.auth(), None)
        .await;
    assert_eq!(bad.status, 400);
}

on_both_backends!(
    login_sets_a_strict_cookie_and_me_answers,
    every_admin_route_refuses_bad_credentials,
    a_viewer_cannot_change_anything,
    cookie_requests_that_change_state_need_csrf,
    the_sixth_login_is_refused_until_the_lock_expires,
    bearer_tokens_work_until_revoked_or_expired,
    sessions_roll_forward,
    owners_manage_users_and_read_the_audit_log,
);

#[actix_rt::test]
async fn admin_routes_are_rate_limited_per_address() {
    let ctx = setup(Kind::Sqlite).await;
    for i in 0..100 {
        let answer = ctx.send(Method::GET, "/v1/auth/me", Auth::None, None).await;
        assert_eq!(answer.status, 401, "request {i}");
    }
    let limited = ctx.send(Method::GET, "/v1/auth/me", Auth::None, None).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.code(), "RATE_LIMIT_EXCEEDED");
    let retry = limited.body["error"]["details"]["retryAfter"]
        .as_u64()
        .expect("retryAfter in details");
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(limited.body["error"]["retryAfter"], retry);
    assert!(limited.headers.get("retry-after").is_some());
    let login = ctx.login_answer("ann", PASSWORD).await;
    assert_eq!(login.status, 429, "login is limited too");
    // Other routes are not.
    let health = ctx.send(Method::GET, "/health", Auth::None, None).await;
    assert_eq!(health.status, 200);
}

#[actix_rt::test]
async fn every_response_carries_the_security_headers() {
    let ctx = setup(Kind::Sqlite).await;
    for (path, status) in [
        ("/health", 200),
        ("/no/such/route", 404),
        ("/v1/auth/me", 401),
    ] {
        let answer = ctx.send(Method::GET, path, Auth::None, None).await;
        assert_eq!(answer.status, status, "{path}");
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    let me = ctx.send(Method::GET, "/v1/auth/me", Auth::None, None).await;
    assert_eq!(me.headers.get("cache-control").unwrap(), "no-store");
}

#[actix_rt::test]
async fn secure_cookies_when_the_public_url_is_https() {
    let db = common::TestDb::new(Kind::Sqlite);
    let app = common::spawn_app_with(db, &[("ARO_PUBLIC_URL", "https://aro.example.com")]).await;
    let database = Database::open(&app.db.config(&[]).database).expect("open");
    let ctx = Ctx { app, db: database };
    ctx.user("ann", Role::Viewer).await;
    let answer = ctx.login_answer("ann", PASSWORD).await;
    let cookie = answer.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(answer.headers.get("strict-transport-security").is_some());
}

/// `aro admin` against the database of a running daemon.
async fn admin_cli_creates_users_and_tokens(kind: Kind) {
    let ctx = setup(kind).await;
    let dir = ctx.app.db.data_dir().to_path_buf();
    let url = ctx.app.db.url.clone();
    let aro = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut cmd = aro_command(&dir);
        cmd.args(args)
            .env("ARO_DATABASE_URL", &url)
            .env("ARO_DATA_DIR", &dir)
            .env("ARO_LOG_LEVEL", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("run aro");
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
        drop(pipe);
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let weak = aro(
        &[
            "admin",
            "create-user",
            "--username",
            "ann",
            "--role",
            "owner",
            "--password-stdin",
        ],
        Some("Password123!\n"),
    );
    assert!(!weak.0, "weak password refused: {weak:?}");
    assert!(weak.2.contains("common password"), "{}", weak.2);

    let made = aro(
        &[
            "admin",
            "create-user",
            "--username",
            "Ann",
            "--role",
            "owner",
        ],
        Some("Velvet-Harbor-42!\n"),
    );
    assert!(made.0, "{made:?}");
    assert!(made.1.contains("created user ann (owner)"), "{}", made.1);
    let listed = aro(&["admin", "list-users"], None);
    assert!(
        listed.0 && listed.1.contains("ann") && listed.1.contains("owner"),
        "{listed:?}"
    );
    assert!(!listed.1.contains("argon2"));

    let bad_role = aro(
        &["admin", "create-token", "--name", "ci", "--role", "admin"],
        None,
    );
    assert!(!bad_role.0);
    let token = aro(
        &["admin", "create-token", "--name", "ci", "--role", "staff"],
        None,
    );
    assert!(token.0, "{token:?}");
    let value = token.1.trim().to_string();
    assert!(value.starts_with("aro_") && value.len() == 47, "{value}");
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&value), None)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["role"], "staff");
    let id = me.body["token"]["id"].as_str().expect("id").to_string();
    let tokens_list = aro(&["admin", "list-tokens"], None);
    assert!(
        tokens_list.0 && tokens_list.1.contains(&id),
        "{tokens_list:?}"
    );
    assert!(!tokens_list.1.contains(&value), "values never listed");
    let revoked = aro(&["admin", "revoke-token", &id], None);
    assert!(revoked.0, "{revoked:?}");
    let me = ctx
        .send(Method::GET, "/v1/auth/me", Auth::Bearer(&value), None)
        .await;
    assert_eq!(me.status, 401);

    ctx.login("ann").await;
    let verify = aro(&["audit", "verify"], None);
    assert!(verify.0, "{verify:?}");
    assert!(verify.1.starts_with("ok: "), "{}", verify.1);
}

on_both_backends!(admin_cli_creates_users_and_tokens);

/// Login CSRF: a sign-in posted from another site's page (`Sec-Fetch-Site:
/// cross-site`, or, from a browser without it, an `Origin` naming another host) is
/// refused, to the JSON API and the dashboard's form alike, and sets no cookie; our own
/// page (`same-origin`, or Chromium's `Origin: null` under `no-referrer`), the daemon's
/// own origin, and a client that sends neither, sign in.
#[actix_rt::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let ctx = setup(Kind::Sqlite).await;
    ctx.user("ann", Role::Owner).await;
    let own_origin = ctx.app.url("");
    let own_origin = own_origin.trim_end_matches('/').to_string();
    let credentials = json!({"username": "ann", "password": PASSWORD});
    // Redirects are not followed: a signed-in form answers 303.
    let browser = || awc::Client::builder().disable_redirects().finish();
    let refused: [&[(&str, &str)]; 4] = [
        &[
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "https://evil.example"),
        ],
        &[("Sec-Fetch-Site", "same-site"), ("Origin", "null")],
        &[("Origin", "https://evil.example")],
        &[("Origin", "http://127.0.0.1:1")],
    ];
    for headers in refused {
        let mut api = browser().post(ctx.app.url("/v1/auth/login"));
        let mut form = browser().post(ctx.app.url("/dashboard/login"));
        for header in headers {
            api = api.insert_header(*header);
            form = form.insert_header(*header);
        }
        let mut api = api.send_json(&credentials).await.expect("sent");
        assert_eq!(api.status().as_u16(), 403, "API sign-in with {headers:?}");
        assert!(api.headers().get("set-cookie").is_none());
        let body: Value = api.json().await.expect("json");
        assert_eq!(body["error"]["details"]["reason"], "origin", "{body}");
        let form = form
            .send_form(&[("username", "ann"), ("password", PASSWORD)])
            .await
            .expect("sent");
        assert_eq!(form.status().as_u16(), 403, "form sign-in with {headers:?}");
        assert!(form.headers().get("set-cookie").is_none());
    }
    let accepted: [&[(&str, &str)]; 4] = [
        &[("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],
        &[("Sec-Fetch-Site", "none")],
        &[("Origin", own_origin.as_str())],
        &[],
    ];
    for headers in accepted {
        let mut api = browser().post(ctx.app.url("/v1/auth/login"));
        let mut form = browser().post(ctx.app.url("/dashboard/login"));
        for header in headers {
            api = api.insert_header(*header);
            form = form.insert_header(*header);
        }
        let api = api.send_json(&credentials).await.expect("sent");
        assert_eq!(api.status().as_u16(), 200, "API sign-in with {headers:?}");
        let form = form
            .send_form(&[("username", "ann"), ("password", PASSWORD)])
            .await
            .expect("sent");
        assert_eq!(form.status().as_u16(), 303, "form sign-in with {headers:?}");
        assert!(form.headers().get("set-cookie").is_some());
    }
}
