//! The Event API (SPEC §7), viewer or above:
//!
//! - `GET /v1/events?after=<cursor>&limit=<1..1000>`: the caller's tenant's events after
//!   the cursor, in order, as canonical envelopes, with `nextCursor` (the last event's
//!   cursor, as a string) and `hasMore`. Paging with `nextCursor` returns every event
//!   exactly once.
//! - `GET /v1/events/stream`: the same events as server-sent events (`id: <cursor>`,
//!   `event: <eventType>`, `data: <envelope>`), starting after `Last-Event-ID` or
//!   `?after=` (or, with neither, after the newest event: only what happens from now
//!   on). New events are read every 250 ms; a comment line keeps an idle connection
//!   alive every 15 s.
//!
//! Cursors are the events' `seq` (see [`super::event_queries`]).

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::event_queries::{self, parse_cursor, EventRow};
use crate::auth::ViewerOrAbove;
use crate::http::event_stream::event_stream;
use crate::http::{ApiError, AppState};
use crate::store::Database;

/// Events per page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 100;
/// Most events one page returns.
const MAX_LIMIT: i64 = 1000;
/// How often an open stream looks for new events.
const STREAM_POLL: Duration = Duration::from_millis(250);
/// An idle stream gets a comment this often, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events a stream reads at a time.
const STREAM_PAGE: i64 = 200;

/// Registers the Event API routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/events").route(web::get().to(list)))
        .service(web::resource("/v1/events/stream").route(web::get().to(stream)));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
}

fn cursor(text: &str, field: &str) -> Result<i64, ApiError> {
    parse_cursor(text).ok_or_else(|| {
        ApiError::validation(
            format!("{field} is not a cursor (a nextCursor or event id from this API, or 0)"),
            json!({"field": field, "reason": "bad_cursor"}),
        )
    })
}

fn limit(text: Option<&str>) -> Result<i64, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::validation(
                format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                json!({"field": "limit"}),
            )
        })
}

/// `GET /v1/events`.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "list_events", summary = "Events after a cursor, in order", params(ListQuery), responses((status = 200, description = "A page", body = crate::api::openapi::schemas::EventPage), (status = 400, description = "VALIDATION_ERROR: bad cursor or limit")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
async fn list(
    caller: ViewerOrAbove,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let after = match query.after.as_deref() {
        None => 0,
        Some(text) => cursor(text, "after")?,
    };
    let limit = limit(query.limit.as_deref())?;
    let tenant_id = caller.tenant_id.clone();
    let mut rows = state
        .db
        .run(move |conn| {
            Ok(event_queries::after(
                conn,
                &tenant_id,
                after,
                limit + 1,
                &[],
            )?)
        })
        .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = rows.last().map_or(after, |row| row.seq);
    Ok(HttpResponse::Ok().json(json!({
        "events": rows.iter().map(EventRow::envelope).collect::<Vec<Value>>(),
        "nextCursor": next.to_string(),
        "hasMore": has_more,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    after: Option<String>,
}

/// One server-sent event.
fn frame(row: &EventRow) -> String {
    // Compact JSON holds no newline; event types are the engine's dotted names.
    format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        row.seq,
        row.event_type,
        row.envelope()
    )
}

/// Where an open stream is.
struct Stream {
    db: Database,
    tenant_id: String,
    cursor: i64,
    pending: VecDeque<web::Bytes>,
    last_sent: Instant,
    /// The last read returned a full page: read again without waiting.
    more: bool,
    greeted: bool,
}

impl Stream {
    async fn next(mut self) -> Option<(Result<web::Bytes, actix_web::Error>, Self)> {
        if !self.greeted {
            self.greeted = true;
            self.last_sent = Instant::now();
            // Tells the client how soon to reconnect, and flushes the headers.
            return Some((
                Ok(web::Bytes::from_static(b"retry: 2000\n: stream open\n\n")),
                self,
            ));
        }
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                self.last_sent = Instant::now();
                return Some((Ok(chunk), self));
            }
            if !self.more {
                tokio::time::sleep(STREAM_POLL).await;
            }
            let (tenant_id, after) = (self.tenant_id.clone(), self.cursor);
            let read = self
                .db
                .run(move |conn| {
                    Ok(event_queries::after(
                        conn,
                        &tenant_id,
                        after,
                        STREAM_PAGE,
                        &[],
                    )?)
                })
                .await;
            match read {
                Ok(rows) => {
                    self.more = rows.len() as i64 == STREAM_PAGE;
                    if let Some(last) = rows.last() {
                        self.cursor = last.seq;
                        let text: String = rows.iter().map(frame).collect();
                        self.pending.push_back(web::Bytes::from(text));
                    }
                }
                Err(error) => {
                    self.more = false;
                    tracing::warn!(%error, "event stream cannot read events; retrying");
                }
            }
            if self.pending.is_empty() && self.last_sent.elapsed() >= KEEP_ALIVE {
                self.last_sent = Instant::now();
                return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), self));
            }
        }
    }
}

/// `GET /v1/events/stream`.
#[utoipa::path(
    get, path = "/v1/events/stream", tag = "events", operation_id = "event_stream", summary = "Server-sent events from a cursor (or Last-Event-ID)", params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event")), responses((status = 200, description = "text/event-stream of canonical envelopes", content_type = "text/event-stream")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
async fn stream(
    caller: ViewerOrAbove,
    req: HttpRequest,
    query: web::Query<StreamQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let start = match (last_event_id, query.after.as_deref()) {
        (Some(id), _) => Some(cursor(&id, "Last-Event-ID")?),
        (None, Some(after)) => Some(cursor(after, "after")?),
        (None, None) => None,
    };
    let tenant_id = caller.tenant_id.clone();
    let start = match start {
        Some(start) => start,
        None => {
            let tenant_id = tenant_id.clone();
            state
                .db
                .run(move |conn| Ok(event_queries::head(conn, &tenant_id)?))
                .await?
        }
    };
    let open = Stream {
        db: state.db.clone(),
        tenant_id,
        cursor: start,
        pending: VecDeque::new(),
        last_sent: Instant::now(),
        more: true,
        greeted: false,
    };
    Ok(event_stream(futures_util::stream::unfold(
        open,
        Stream::next,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert_eq!(limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(limit(Some("1000")).ok(), Some(1000));
        for bad in ["0", "1001", "-5", "ten"] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
