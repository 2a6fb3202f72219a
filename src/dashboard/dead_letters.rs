//! Dead letters (SPEC §6: work that exhausted its retries, kept 30 days): open ones
//! oldest first (or replayed / archived ones), with, for staff, replay and archive —
//! exactly `POST /v1/admin/dead-letters/{id}/replay` and `…/archive` (the same
//! functions: the messaging supervisor queues the row again; audited). Payloads show
//! with every phone number masked.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /dashboard/dead-letters?status=open\|replayed\|archived&domain=&cursor=` | viewer |
//! | `POST /dashboard/dead-letters/{id}/replay`, `POST …/{id}/archive` (`back`) | staff (CSRF) |

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::format::{json_line, when};
use super::layout::{
    after_action, badge, csrf_field, here, html_response, link, page, pager, safe_back, Flash,
    Frame, Nav,
};
use super::session::{can_act, Staff, Viewer};
use crate::api::admin::dead_letters::{archive_dead_letter, replay_dead_letter};
use crate::api::admin::queries::dead_letters::{
    self, DeadLetterFilter, DeadLetterView, ARCHIVED, OPEN, REPLAYED,
};
use crate::api::admin::support::{db, Cursor};
use crate::api::admin::AdminError;
use crate::auth::Principal;
use crate::http::AppState;

const PAGE_SIZE: i64 = 50;
const BASE: &str = "/dashboard/dead-letters";

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    domain: Option<String>,
    cursor: Option<String>,
}

fn status_of(query: &ListQuery) -> Result<&'static str, AdminError> {
    match query.status.as_deref().map(str::trim) {
        None | Some("") => Ok(OPEN),
        Some(s) => [OPEN, REPLAYED, ARCHIVED]
            .into_iter()
            .find(|known| *known == s)
            .ok_or_else(|| {
                AdminError::invalid("status", "status must be open, replayed or archived")
            }),
    }
}

fn actions(principal: &Principal, d: &DeadLetterView, back: &str) -> Markup {
    html! {
        div.buttons {
            @if d.replayable {
                form.inline method="post" action={ (BASE) "/" (d.id) "/replay" } {
                    (csrf_field(principal))
                    input type="hidden" name="back" value=(back);
                    button.primary type="submit" { "Replay" }
                }
            }
            form.inline method="post" action={ (BASE) "/" (d.id) "/archive" } {
                (csrf_field(principal))
                input type="hidden" name="back" value=(back);
                button type="submit" { "Archive" }
            }
        }
    }
}

/// `GET /dashboard/dead-letters`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, DashboardError> {
    let status = status_of(&query)?;
    let domain = query
        .domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let filter = DeadLetterFilter {
        tenant_id: viewer.tenant_id.clone(),
        status: Some(status.to_string()),
        domain: domain.clone(),
        after: Cursor::optional(query.cursor.as_deref())?,
        limit: PAGE_SIZE,
    };
    let listed = db(&state, move |conn| dead_letters::list(conn, &filter)).await?;
    let zone = state.config.timezone;
    let back = here(&req);
    let staff = can_act(&viewer);
    let next_page = listed.next_cursor.as_deref().map(|c| {
        link(
            BASE,
            &[
                ("status", Some(status)),
                ("domain", domain.as_deref()),
                ("cursor", Some(c)),
            ],
        )
    });
    let body = html! {
        nav.chips aria-label="Filter" {
            @for s in [OPEN, REPLAYED, ARCHIVED] {
                a.chip.active[s == status] href=(link(BASE, &[("status", Some(s))])) { (s) }
            }
        }
        @if listed.items.is_empty() {
            p.empty { "No " (status) " dead letters." }
        } @else {
            table.list #dead-letters {
                thead { tr {
                    th { "Created" } th { "Domain" } th { "Kind" } th { "Error" }
                    th { "Attempts" } th { "Status" } th { "Payload" } th { "" }
                } }
                tbody {
                    @for d in &listed.items {
                        tr data-dead-letter-id=(d.id) data-status=(d.status) {
                            td data-label="Created" { (when(d.created_at, zone)) }
                            td data-label="Domain" { (d.domain) }
                            td data-label="Kind" { (d.kind) }
                            td data-label="Error" { (d.error) }
                            td data-label="Attempts" { (d.attempts) }
                            td data-label="Status" {
                                (badge(&d.status))
                                @if let Some(by) = &d.resolved_by { br; span.muted { "by " (by) } }
                            }
                            td data-label="Payload" { code { (json_line(&d.payload, 240)) } }
                            td.actions {
                                @if staff && d.status == OPEN { (actions(&viewer, d, &back)) }
                            }
                        }
                    }
                }
            }
        }
        (pager(next_page))
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::DeadLetters,
            title: "Dead letters",
            flash: Flash::of(&req),
        },
        body,
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    back: Option<String>,
}

/// `POST /dashboard/dead-letters/{id}/replay`.
pub async fn replay(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, DashboardError> {
    let back = safe_back(form.back.as_deref(), BASE);
    let done = replay_dead_letter(&state, &staff, &path)
        .await
        .map(|_| "Dead letter replayed: its work is queued again.".to_string());
    after_action(&back, done)
}

/// `POST /dashboard/dead-letters/{id}/archive`.
pub async fn archive(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, DashboardError> {
    let back = safe_back(form.back.as_deref(), BASE);
    let done = archive_dead_letter(&state, &staff, &path)
        .await
        .map(|_| "Dead letter archived.".to_string());
    after_action(&back, done)
}
