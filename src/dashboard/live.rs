//! Live updates: `GET /dashboard/live`, a small server-sent-event stream for the
//! dashboard's list pages, and the live region those pages wrap their list in.
//!
//! The stream reuses the Event API's reading of the event log (`event_queries::head`,
//! the `seq` cursor) and adds a signature of the escalation inbox (escalations are rows,
//! not events). Every 500 ms it looks at both; when either moved it sends one
//! `event: change` whose data names the topics that changed (`events`, `escalations`).
//! It starts from the marks the page was rendered with (`?after=&esc=`), so nothing
//! that happened between the render and the connection is missed; a reconnecting
//! browser sends `Last-Event-ID` (the last cursor seen). An idle stream gets a comment
//! every 15 s, which also notices a closed connection.
//!
//! `assets/dashboard.js` listens and re-fetches the region's fragment (`data-live-src`)
//! when a topic it follows (`data-live-topics`) changed, replacing the region's content
//! in place: no reload, no inline script.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::error::DashboardError;
use super::queries;
use super::session::Viewer;
use crate::api::admin::support::db;
use crate::api::admin::AdminError;
use crate::api::event_queries;
use crate::http::event_stream::event_stream;
use crate::http::AppState;
use crate::store::Database;

/// How often an open stream looks for changes.
const POLL: Duration = Duration::from_millis(500);
/// An idle stream gets a comment this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where the data stood when a page was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marks {
    /// The newest event's cursor.
    pub after: i64,
    /// The escalation inbox's signature.
    pub esc: String,
}

fn read_marks(conn: &mut crate::store::DbConnection, tenant_id: &str) -> Result<Marks, AdminError> {
    Ok(Marks {
        after: event_queries::head(conn, tenant_id)?,
        esc: queries::escalation_signature(conn, tenant_id)?,
    })
}

/// The current marks of `tenant_id`.
pub async fn marks(state: &AppState, tenant_id: &str) -> Result<Marks, AdminError> {
    let tenant = tenant_id.to_string();
    db(state, move |conn| read_marks(conn, &tenant)).await
}

/// A live region: `content` re-fetched from `src` when one of `topics` changes.
pub fn region(src: &str, topics: &str, marks: &Marks, content: Markup) -> Markup {
    html! {
        div #live-region.live data-live-src=(src) data-live-topics=(topics)
            data-live-after=(marks.after) data-live-esc=(marks.esc) aria-live="polite" {
            (content)
        }
        p.live-status.muted #live-status { "Live updates: connecting…" }
    }
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    after: Option<String>,
    esc: Option<String>,
}

/// Where an open stream is.
struct Stream {
    db: Database,
    tenant_id: String,
    seen: Marks,
    last_sent: Instant,
    greeted: bool,
    /// Topics changed before the stream could say so (set at start-up).
    owed: Vec<&'static str>,
}

impl Stream {
    fn change(&self, topics: &[&str]) -> web::Bytes {
        let data = json!({"topics": topics, "cursor": self.seen.after});
        web::Bytes::from(format!(
            "id: {}\nevent: change\ndata: {data}\n\n",
            self.seen.after
        ))
    }

    async fn next(mut self) -> Option<(Result<web::Bytes, actix_web::Error>, Self)> {
        if !self.greeted {
            self.greeted = true;
            self.last_sent = Instant::now();
            return Some((
                Ok(web::Bytes::from_static(b"retry: 2000\n: live\n\n")),
                self,
            ));
        }
        loop {
            if !self.owed.is_empty() {
                let owed = std::mem::take(&mut self.owed);
                self.last_sent = Instant::now();
                return Some((Ok(self.change(&owed)), self));
            }
            tokio::time::sleep(POLL).await;
            let tenant = self.tenant_id.clone();
            let read = self
                .db
                .run(move |conn| Ok(read_marks(conn, &tenant)))
                .await
                .map_err(AdminError::from)
                .and_then(|r| r);
            match read {
                Ok(now) => {
                    if now.after > self.seen.after {
                        self.owed.push("events");
                    }
                    if now.esc != self.seen.esc {
                        self.owed.push("escalations");
                    }
                    self.seen = Marks {
                        after: now.after.max(self.seen.after),
                        esc: now.esc,
                    };
                }
                Err(error) => tracing::warn!(%error, "dashboard live stream cannot read; retrying"),
            }
            if self.owed.is_empty() && self.last_sent.elapsed() >= KEEP_ALIVE {
                self.last_sent = Instant::now();
                return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), self));
            }
        }
    }
}

/// `GET /dashboard/live`.
pub async fn stream(
    viewer: Viewer,
    req: HttpRequest,
    query: web::Query<LiveQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashboardError> {
    let current = marks(&state, &viewer.tenant_id).await?;
    let reconnect = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(event_queries::parse_cursor);
    let after = reconnect.or_else(|| query.after.as_deref().and_then(event_queries::parse_cursor));
    let mut owed = Vec::new();
    if after.is_some_and(|after| after < current.after) {
        owed.push("events");
    }
    // A reconnect does not know the inbox it last saw: refresh to be sure.
    if reconnect.is_some() || query.esc.as_deref().is_some_and(|esc| esc != current.esc) {
        owed.push("escalations");
    }
    let open = Stream {
        db: state.db.clone(),
        tenant_id: viewer.tenant_id.clone(),
        seen: current,
        last_sent: Instant::now(),
        greeted: false,
        owed,
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
    fn the_region_carries_what_the_script_needs() {
        let marks = Marks {
            after: 1842,
            esc: "2.17.0".to_string(),
        };
        let out = region(
            "/dashboard/today/list?date=2031-03-20&status=booked",
            "events escalations",
            &marks,
            html! { p { "<rows>" } },
        )
        .into_string();
        assert!(out.contains("id=\"live-region\""), "{out}");
        assert!(
            out.contains(
                "data-live-src=\"/dashboard/today/list?date=2031-03-20&amp;status=booked\""
            ),
            "{out}"
        );
        assert!(
            out.contains("data-live-topics=\"events escalations\""),
            "{out}"
        );
        assert!(out.contains("data-live-after=\"1842\""), "{out}");
        assert!(out.contains("data-live-esc=\"2.17.0\""), "{out}");
        assert!(out.contains("&lt;rows&gt;"), "{out}");
    }
}
