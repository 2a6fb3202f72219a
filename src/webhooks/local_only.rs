//! The guard of the sandbox's local tools (typed replies, sandbox payments): they answer
//! only connections from this machine — loopback, or the daemon's own address when it
//! binds a specific one — so the sandbox is never an unauthenticated way in.

use actix_web::HttpRequest;

use crate::http::ApiError;

/// `Ok` for a request from this machine; 403 naming `what` otherwise.
pub fn require_this_machine(req: &HttpRequest, what: &str) -> Result<(), ApiError> {
    let local = req.app_config().local_addr().ip();
    if req
        .peer_addr()
        .is_some_and(|peer| peer.ip().is_loopback() || peer.ip() == local)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} are accepted from this machine only"
        )))
    }
}
