//! The message log, newest first — everything sent and received, or only the sandbox
//! outbox (messages recorded, never sent, while a provider has no credentials) — with
//! the other party's number masked. While messaging runs in the sandbox, staff can type
//! a customer's reply: it takes exactly the path of `POST /sandbox/replies` and `aro
//! sandbox reply` (the same function: the path of a real Twilio reply).
//!
//! | route | who |
//! | --- | --- |
//! | `GET /dashboard/messages?sandbox=1&direction=inbound\|outbound&cursor=` | viewer |
//! | `POST /dashboard/messages/reply` `from` or `customer_id`, `body`, `back` | staff (CSRF) |

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::format::{truncate, when};
use super::layout::{
    after_action, badge, csrf_field, here, html_response, link, page, pager, safe_back, Flash,
    Frame, Nav,
};
use super::queries::{self, MessageFilter};
use super::session::{can_act, Staff, Viewer};
use crate::api::admin::support::{db, Cursor};
use crate::api::admin::AdminError;
use crate::auth::Principal;
use crate::http::{ApiError, AppState};
use crate::webhooks::sandbox::{record_typed_reply, SandboxReply};

const PAGE_SIZE: i64 = 50;
const BASE: &str = "/dashboard/messages";

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    sandbox: Option<String>,
    direction: Option<String>,
    cursor: Option<String>,
}

fn direction_of(query: &ListQuery) -> Result<Option<&'static str>, AdminError> {
    match query.direction.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("inbound") => Ok(Some("inbound")),
        Some("outbound") => Ok(Some("outbound")),
        Some(_) => Err(AdminError::invalid(
            "direction",
            "direction must be inbound or outbound",
        )),
    }
}

fn reply_form(principal: &Principal, back: &str) -> Markup {
    html! {
        section.panel #simulate-reply {
            h2 { "Simulate a reply (sandbox)" }
            p.muted { "Messaging runs in the sandbox: type what a customer texts back, as if it came from their phone." }
            form.stack method="post" action={ (BASE) "/reply" } {
                (csrf_field(principal))
                input type="hidden" name="back" value=(back);
                label for="reply-from" { "From (E.164)" }
                input #reply-from type="tel" name="from" required placeholder="+15551234567";
                label for="reply-body" { "Text" }
                input #reply-body type="text" name="body" maxlength="1600" required placeholder="YES";
                div.buttons { button.primary type="submit" { "Send as the customer" } }
            }
        }
    }
}

/// `GET /dashboard/messages`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, DashboardError> {
    let sandbox_only = query
        .sandbox
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "0");
    let direction = direction_of(&query)?;
    let filter = MessageFilter {
        tenant_id: viewer.tenant_id.clone(),
        sandbox_only,
        direction: direction.map(str::to_string),
        before: Cursor::optional(query.cursor.as_deref())?,
        limit: PAGE_SIZE,
    };
    let listed = db(&state, move |conn| queries::messages_page(conn, &filter)).await?;
    let zone = state.config.timezone;
    let sandbox_mode = state.config.twilio.auth_token.is_none();
    let sandbox_flag = sandbox_only.then_some("1");
    let next_page = listed.next_cursor.as_deref().map(|c| {
        link(
            BASE,
            &[
                ("sandbox", sandbox_flag),
                ("direction", direction),
                ("cursor", Some(c)),
            ],
        )
    });
    let body = html! {
        p.muted {
            @if sandbox_mode {
                "Messaging runs in the " strong { "sandbox" } ": messages are recorded here and never leave this machine."
            } @else {
                "Messaging is live (Twilio)."
            }
        }
        nav.chips aria-label="Filter" {
            a.chip.active[!sandbox_only && direction.is_none()] href=(BASE) { "All" }
            a.chip.active[sandbox_only] href=(link(BASE, &[("sandbox", Some("1"))])) { "Sandbox outbox" }
            a.chip.active[direction == Some("inbound")] href=(link(BASE, &[("direction", Some("inbound"))])) { "Received" }
            a.chip.active[direction == Some("outbound")] href=(link(BASE, &[("direction", Some("outbound"))])) { "Sent" }
        }
        @if sandbox_mode && can_act(&viewer) { (reply_form(&viewer, &here(&req))) }
        @if listed.items.is_empty() {
            p.empty { "No messages." }
        } @else {
            table.list #message-log {
                thead { tr {
                    th { "When" } th { "Direction" } th { "To / from" } th { "Kind" }
                    th { "Text" } th { "Status" } th { "" }
                } }
                tbody {
                    @for m in &listed.items {
                        tr data-message-id=(m.id) {
                            td data-label="When" { (when(m.created_at, zone)) }
                            td data-label="Direction" { (m.direction) " · " (m.channel) }
                            td data-label="To / from" { (m.counterpart_masked.as_deref().unwrap_or("—")) }
                            td data-label="Kind" {
                                (m.kind.as_deref().unwrap_or("—"))
                                @if m.sandbox { " " span.badge.info { "sandbox" } }
                            }
                            td data-label="Text" { (truncate(&m.body, 200)) }
                            td data-label="Status" {
                                (badge(&m.status))
                                @if let Some(code) = &m.error_code { " " span.muted { (code) } }
                                " " span.muted { (m.provider) }
                            }
                            td.actions {
                                @if let Some(id) = &m.appointment_id {
                                    a.button href={ "/dashboard/appointments/" (id) } { "Appointment" }
                                } @else if let Some(id) = &m.customer_id {
                                    a.button href={ "/dashboard/customers/" (id) } { "Customer" }
                                }
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
            active: Nav::Messages,
            title: "Messages",
            flash: Flash::of(&req),
        },
        body,
    )))
}

#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    from: Option<String>,
    customer_id: Option<String>,
    body: String,
    back: Option<String>,
}

/// `POST /dashboard/messages/reply`: a typed customer reply, in the sandbox.
pub async fn reply(
    staff: Staff,
    state: web::Data<AppState>,
    form: web::Form<ReplyForm>,
) -> Result<HttpResponse, DashboardError> {
    let ReplyForm {
        from,
        customer_id,
        body,
        back,
    } = form.into_inner();
    let back = safe_back(back.as_deref(), BASE);
    let from = match (from.filter(|f| !f.trim().is_empty()), customer_id) {
        (Some(from), _) => from,
        (None, Some(customer)) => {
            let tenant = staff.tenant_id.clone();
            let phone = db(&state, move |conn| {
                queries::customer_phone(conn, &tenant, &customer)
            })
            .await?;
            match phone {
                Some(phone) => phone,
                None => {
                    let err = AdminError::invalid("from", "this customer has no phone number");
                    return after_action::<AdminError>(&back, Err(err));
                }
            }
        }
        (None, None) => {
            let err = AdminError::invalid("from", "say who the reply is from");
            return after_action::<AdminError>(&back, Err(err));
        }
    };
    let reply = SandboxReply {
        from,
        body,
        message_sid: None,
    };
    let done = record_typed_reply(&state, reply)
        .await
        .map(|(status, sid)| match status {
            "duplicate" => format!("That reply was already recorded ({sid})."),
            _ => format!("Reply recorded ({sid}): it is handled like a real one."),
        });
    after_action::<ApiError>(&back, done)
}
