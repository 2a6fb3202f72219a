//! The dashboard's error type. Without a session a page answers a redirect to the
//! login page (`303 See Other`, the page asked for kept in `next`); every other failure
//! is the Admin API's [`ApiError`], answered with the standard envelope — the
//! request-context middleware keeps every error response an envelope, whoever made it.

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::api::admin::AdminError;
use crate::auth::AuthError;
use crate::http::ApiError;

/// Everything a dashboard handler can fail with.
#[derive(Debug)]
pub enum DashboardError {
    /// No (valid) session: go and sign in, then come back to `next`.
    Login { next: String },
    /// Refused or failed: the envelope with its status.
    Api(ApiError),
}

impl fmt::Display for DashboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Login { .. } => f.write_str("sign in to see the dashboard"),
            Self::Api(err) => err.fmt(f),
        }
    }
}

impl ResponseError for DashboardError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Login { .. } => StatusCode::SEE_OTHER,
            Self::Api(err) => err.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Login { next } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, super::login::login_url(next)))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish(),
            Self::Api(err) => err.error_response(),
        }
    }
}

impl From<ApiError> for DashboardError {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<AdminError> for DashboardError {
    fn from(err: AdminError) -> Self {
        Self::Api(err.into())
    }
}

impl From<AuthError> for DashboardError {
    fn from(err: AuthError) -> Self {
        Self::Api(err.into())
    }
}
