//! Who is looking at the dashboard: the [`Viewer`] and [`Staff`] extractors over the
//! auth layer's `Principal` (the same session cookie, CSRF check and role guards as the
//! Admin API). Without a valid session they answer a redirect to the login page; a
//! state-changing request without the session's CSRF token, or below the role needed,
//! gets the `403` envelope.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::error::DashboardError;
use crate::auth::{Principal, Role};
use crate::http::ApiError;

/// Where a sign-in should come back to: the page asked for (GET), else the home page.
fn come_back_to(req: &HttpRequest) -> String {
    if req.method() == Method::GET {
        match req.query_string() {
            "" => req.path().to_string(),
            query => format!("{}?{query}", req.path()),
        }
    } else {
        super::HOME.to_string()
    }
}

/// The principal of the request, or a redirect to the login page.
fn principal(
    req: &HttpRequest,
    payload: &mut Payload,
    needs: Role,
) -> LocalBoxFuture<'static, Result<Principal, DashboardError>> {
    let next = come_back_to(req);
    let found = Principal::from_request(req, payload);
    Box::pin(async move {
        let principal = found.await.map_err(|err| match err {
            ApiError::Unauthorized => DashboardError::Login { next },
            other => DashboardError::Api(other),
        })?;
        principal.require(needs)?;
        Ok(principal)
    })
}

macro_rules! dashboard_guard {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequest for $name {
            type Error = DashboardError;
            type Future = LocalBoxFuture<'static, Result<Self, DashboardError>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let found = principal(req, payload, $role);
                Box::pin(async move { found.await.map($name) })
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

dashboard_guard!(
    /// Anyone signed in (viewer, staff or owner): may look.
    Viewer,
    Role::Viewer
);
dashboard_guard!(
    /// Staff or owner: may act.
    Staff,
    Role::Staff
);

/// Whether `principal` may act (staff or above): the dashboard shows forms only then.
pub fn can_act(principal: &Principal) -> bool {
    principal.role.allows(Role::Staff)
}
