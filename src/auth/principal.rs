//! The caller of a request — an admin user by session cookie, or an API token by
//! `Authorization: Bearer` — as an actix extractor, and the role guards.
//!
//! - A bearer token wins over a cookie; a request with an `Authorization` header that
//!   is not a valid bearer token is refused (401), whatever cookie it carries.
//! - A cookie-authenticated request with a method other than GET, HEAD, OPTIONS or
//!   TRACE must carry the session's CSRF token in `X-CSRF-Token`, or in a form body's
//!   `csrf_token` field (read by the `http::security` middleware), else 403 with
//!   `details.reason = "csrf"`. Bearer requests need none: a browser never adds them by
//!   itself.
//! - `X-Tenant-Id`, when sent, must be the credential's tenant (else 403).
//! - Role guards: `principal.require(Role::Staff)?` in a handler, or take
//!   [`ViewerOrAbove`], [`StaffOrAbove`] or [`OwnerOnly`] instead of [`Principal`].
//!
//! The principal is cached in the request's extensions, so several extractors of one
//! request look the credential up once.

use std::fmt;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;

use super::{sessions, tokens, AuthError, Role};
use crate::audit::Actor;
use crate::config::Secret;
use crate::http::{ApiError, AppState};
use crate::store::DbConnection;

pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field that may carry the CSRF token instead of the header.
pub const CSRF_FIELD: &str = "csrf_token";
pub const TENANT_HEADER: &str = "x-tenant-id";

/// The CSRF token a form body carried (put in the request's extensions by the
/// `http::security` middleware).
#[derive(Debug, Clone)]
pub struct PresentedCsrf(pub Secret<String>);

/// How the caller authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An admin user's browser session (`session_id` is the stored hash).
    Session {
        user_id: String,
        username: String,
        session_id: String,
    },
    /// An API token.
    Token { token_id: String, name: String },
}

/// An authenticated caller: tenant, role and who.
#[derive(Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub role: Role,
    pub kind: PrincipalKind,
    csrf_token: Option<Secret<String>>,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, id) = match &self.kind {
            PrincipalKind::Session { user_id, .. } => ("session", user_id),
            PrincipalKind::Token { token_id, .. } => ("token", token_id),
        };
        f.debug_struct("Principal")
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("kind", &kind)
            .field("id", id)
            .finish()
    }
}

impl Principal {
    /// `Ok` when this principal's role allows what `required` allows.
    pub fn require(&self, required: Role) -> Result<(), AuthError> {
        if self.role.allows(required) {
            Ok(())
        } else {
            Err(AuthError::RoleTooLow {
                required,
                actual: self.role,
            })
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> Actor {
        match &self.kind {
            PrincipalKind::Session { user_id, .. } => Actor::user(user_id),
            PrincipalKind::Token { token_id, .. } => Actor::token(token_id),
        }
    }

    /// The session's CSRF token (sessions only).
    pub fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_ref().map(|t| t.expose().as_str())
    }

    /// The stored session id (sessions only).
    pub fn session_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Session { session_id, .. } => Some(session_id),
            PrincipalKind::Token { .. } => None,
        }
    }
}

/// The credential a request carries.
pub enum Credential {
    Bearer(Secret<String>),
    Session {
        cookie: Secret<String>,
        /// Whether the method changes state, so a CSRF token is needed.
        needs_csrf: bool,
        csrf: Option<Secret<String>>,
    },
    Missing,
}

fn is_safe(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method)
}

/// Reads the credential from the request's headers (and a form's CSRF field).
pub fn credential(req: &HttpRequest) -> Result<Credential, AuthError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::Unauthenticated)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or(AuthError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Unauthenticated);
        }
        return Ok(Credential::Bearer(Secret::new(token.trim().to_string())));
    }
    let Some(cookie) = sessions::cookie_value(req.headers()) else {
        return Ok(Credential::Missing);
    };
    let csrf = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| Secret::new(v.trim().to_string()))
        .or_else(|| req.extensions().get::<PresentedCsrf>().map(|p| p.0.clone()));
    Ok(Credential::Session {
        cookie: Secret::new(cookie),
        needs_csrf: !is_safe(req.method()),
        csrf,
    })
}

/// Checks a credential against the database: the principal, or why not.
pub fn authenticate(
    conn: &mut DbConnection,
    credential: &Credential,
    now: DateTime<Utc>,
) -> Result<Principal, AuthError> {
    match credential {
        Credential::Missing => Err(AuthError::Unauthenticated),
        Credential::Bearer(token) => {
            let row = tokens::authenticate(conn, token.expose(), now)?
                .ok_or(AuthError::Unauthenticated)?;
            Ok(Principal {
                tenant_id: row.tenant_id.clone(),
                role: row.role()?,
                kind: PrincipalKind::Token {
                    token_id: row.id.clone(),
                    name: row.name.clone(),
                },
                csrf_token: None,
            })
        }
        Credential::Session {
            cookie,
            needs_csrf,
            csrf,
        } => {
            let (session, user) =
                sessions::lookup(conn, cookie.expose(), now)?.ok_or(AuthError::Unauthenticated)?;
            if *needs_csrf {
                let presented = csrf.as_ref().map(|t| t.expose().as_str());
                if !presented.is_some_and(|t| sessions::csrf_matches(&session, t)) {
                    return Err(AuthError::Csrf);
                }
            }
            let role = user.role()?;
            sessions::bump(conn, &session, now)?;
            Ok(Principal {
                tenant_id: session.tenant_id.clone(),
                role,
                kind: PrincipalKind::Session {
                    user_id: user.id.clone(),
                    username: user.username.clone(),
                    session_id: session.id.clone(),
                },
                csrf_token: Some(Secret::new(sessions::csrf_token(cookie.expose()))),
            })
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        if let Some(cached) = req.extensions().get::<Principal>() {
            let cached = cached.clone();
            return Box::pin(async move { Ok(cached) });
        }
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal("application state missing".to_string()))?;
            let credential = credential(&req)?;
            if matches!(credential, Credential::Missing) {
                return Err(AuthError::Unauthenticated.into());
            }
            let now = Utc::now();
            let principal = state
                .db
                .run(move |conn| Ok(authenticate(conn, &credential, now)))
                .await
                .map_err(AuthError::from)??;
            let tenant = req
                .headers()
                .get(TENANT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            if let Some(tenant) = tenant.filter(|t| *t != principal.tenant_id) {
                return Err(AuthError::WrongTenant(tenant.to_string()).into());
            }
            req.extensions_mut().insert(principal.clone());
            Ok(principal)
        })
    }
}

macro_rules! role_guard {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let principal = Principal::from_request(req, payload);
                Box::pin(async move {
                    let principal = principal.await?;
                    principal.require($role)?;
                    Ok($name(principal))
                })
            }
        }

        impl Deref for $name {
            type Target = Principal;

            fn deref(&self) -> &Principal {
                &self.0
            }
        }
    };
}

role_guard!(
    /// Any authenticated caller (viewer, staff or owner).
    ViewerOrAbove,
    Role::Viewer
);
role_guard!(
    /// Staff or owner.
    StaffOrAbove,
    Role::Staff
);
role_guard!(
    /// Owners only.
    OwnerOnly,
    Role::Owner
);

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn principal(role: Role) -> Principal {
        Principal {
            tenant_id: "default".into(),
            role,
            kind: PrincipalKind::Token {
                token_id: "t1".into(),
                name: "ci".into(),
            },
            csrf_token: None,
        }
    }

    #[test]
    fn require_compares_roles() {
        assert!(principal(Role::Owner).require(Role::Staff).is_ok());
        assert!(principal(Role::Staff).require(Role::Staff).is_ok());
        assert!(matches!(
            principal(Role::Viewer).require(Role::Staff),
            Err(AuthError::RoleTooLow {
                required: Role::Staff,
                actual: Role::Viewer
            })
        ));
        assert_eq!(principal(Role::Viewer).actor(), Actor::token("t1"));
    }

    #[test]
    fn credentials_are_read_from_bearer_or_cookie() {
        let req = TestRequest::get()
            .insert_header(("Authorization", "Bearer aro_x"))
            .insert_header(("Cookie", "aro_session=abc"))
            .to_http_request();
        assert!(matches!(credential(&req), Ok(Credential::Bearer(t)) if t.expose() == "aro_x"));

        let req = TestRequest::get()
            .insert_header(("Authorization", "Basic dTpw"))
            .to_http_request();
        assert!(matches!(credential(&req), Err(AuthError::Unauthenticated)));

        let req = TestRequest::post()
            .insert_header(("Cookie", "aro_session=abc"))
            .insert_header(("X-CSRF-Token", "tok"))
            .to_http_request();
        match credential(&req) {
            Ok(Credential::Session {
                cookie,
                needs_csrf,
                csrf,
            }) => {
                assert_eq!(cookie.expose(), "abc");
                assert!(needs_csrf);
                assert_eq!(csrf.map(|c| c.expose().clone()).as_deref(), Some("tok"));
            }
            _ => panic!("expected a session credential"),
        }

        let req = TestRequest::get()
            .insert_header(("Cookie", "aro_session=abc"))
            .to_http_request();
        assert!(matches!(
            credential(&req),
            Ok(Credential::Session {
                needs_csrf: false,
                ..
            })
        ));
        let req = TestRequest::get().to_http_request();
        assert!(matches!(credential(&req), Ok(Credential::Missing)));
    }
}
