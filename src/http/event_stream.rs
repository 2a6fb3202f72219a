//! The answer that carries a server-sent event stream: its media type, no caching, and
//! no buffering by a reverse proxy. Used by the Event API's stream and the dashboard's
//! live updates.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::Stream;

/// A `200 text/event-stream` answer streaming `events`.
pub fn event_stream<S>(events: S) -> HttpResponse
where
    S: Stream<Item = Result<web::Bytes, actix_web::Error>> + 'static,
{
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events)
}
