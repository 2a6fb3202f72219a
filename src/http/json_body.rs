//! [`JsonAfterAuth`]: a JSON request body whose refusal waits for the credential.
//!
//! actix-web extracts a handler's arguments together, and the first one to fail answers.
//! A principal backed by an API token is looked up in the database, so with
//! `web::Json<T>` a body that does not parse answered `400` before a bad token could
//! answer `401`: a caller with no valid credential learnt how the route validates. This
//! extractor never fails; it reads and parses the body under the same limit, media
//! type and envelope as `web::Json`, and hands the outcome to the handler, which takes
//! it with `?` after its credential has been checked.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::{json_error, ApiError, AppState};

/// The body limit when the application state is not registered (tests of one route).
const FALLBACK_LIMIT: usize = 64 * 1024;

/// A JSON body, parsed, or the envelope its refusal answers.
pub struct JsonAfterAuth<T>(Result<T, ApiError>);

impl<T> JsonAfterAuth<T> {
    /// The parsed body, or why it was refused.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonAfterAuth<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(FALLBACK_LIMIT, |state| state.config.http.max_body_bytes);
        let body = web::JsonBody::<T>::new(req, payload, None, true).limit(limit);
        Box::pin(async move { Ok(JsonAfterAuth(body.await.map_err(json_error))) })
    }
}
