//! The authentication layer's error type, mapped to the HTTP envelope once in
//! `http::error` (`From<AuthError> for ApiError`).

use super::password::PasswordProblem;
use super::Role;
use crate::audit::AuditError;
use crate::store::StoreError;

/// Everything signing in, checking a credential or managing users and tokens can fail
/// with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that is unknown, expired, revoked or malformed.
    #[error("authentication required")]
    Unauthenticated,
    /// A login with a wrong username or password (which of the two is not said).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins for this username from this address.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    /// Authenticated, but the role is below what the action needs.
    #[error("this needs the {required} role; this credential has {actual}")]
    RoleTooLow { required: Role, actual: Role },
    /// A state-changing request authenticated by cookie without its CSRF token.
    #[error("missing or wrong CSRF token (send it as X-CSRF-Token or the csrf_token field)")]
    Csrf,
    /// The credential belongs to another tenant than the request names.
    #[error("this credential is not valid for tenant {0:?}")]
    WrongTenant(String),
    /// The password does not meet the policy.
    #[error("the password does not meet the policy: {}", describe(.0))]
    WeakPassword(Vec<PasswordProblem>),
    /// A field is malformed.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<diesel::result::Error> for AuthError {
    fn from(err: diesel::result::Error) -> Self {
        AuthError::Store(StoreError::Query(err))
    }
}

fn describe(problems: &[PasswordProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
