//! The running engine: per provider domain the circuit breaker, rate-limit tokens and
//! retry queues (live from the messaging supervisor, and as the store holds them for
//! every domain), and the live appointment actors — what `GET /v1/admin/supervisors`
//! and `GET /v1/admin/actors` answer, from the same functions.
//!
//! `GET /dashboard/supervisors` (viewer).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::error::DashboardError;
use super::format::when;
use super::layout::{badge, html_response, page, Flash, Frame, Nav};
use super::session::Viewer;
use crate::api::admin::engine::{supervisor_state, tenant_live_actors};
use crate::api::admin::queries::supervisors::DomainStore;
use crate::http::AppState;

/// Most live actors the page lists (the busiest first).
const MAX_ACTORS: usize = 200;

/// What the store holds of one domain.
fn stored(state: &AppState, name: &str, domain: Option<&DomainStore>) -> Markup {
    let zone = state.config.timezone;
    html! {
        dl.facts {
            @match domain.and_then(|d| d.breaker.as_ref()) {
                Some(b) => {
                    dt { "Breaker (stored)" } dd { (badge(&b.state)) " "
                        span.muted { (b.failure_count) " failures, " (b.success_count) " successes" } }
                    @if let Some(at) = b.opened_at { dt { "Opened" } dd { (when(at, zone)) } }
                }
                None => { dt { "Breaker (stored)" } dd { span.muted { "never tripped" } } }
            }
            @let outbox = domain.map(|d| d.outbox.clone()).unwrap_or_default();
            @for status in ["pending", "in_flight", "unknown", "dead", "done"] {
                dt { "Outbox " (status) } dd data-domain=(name) data-outbox=(status) {
                    (outbox.get(status).copied().unwrap_or(0))
                }
            }
            dt { "Open dead letters" } dd { (domain.map_or(0, |d| d.open_dead_letters)) }
        }
    }
}

/// `GET /dashboard/supervisors`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashboardError> {
    let (snapshot, domains) = supervisor_state(&state, &viewer.tenant_id).await?;
    let mut actors = tenant_live_actors(&state, &viewer.tenant_id).await?;
    actors.sort_by(|a, b| {
        b.in_flight
            .cmp(&a.in_flight)
            .then(a.idle_for.cmp(&b.idle_for))
    });
    let live_count = actors.len();
    actors.truncate(MAX_ACTORS);
    let payments = state.engine.payments.is_some();
    let others: BTreeMap<&String, &DomainStore> = domains
        .iter()
        .filter(|(name, _)| name.as_str() != "messaging" && name.as_str() != "payment")
        .collect();
    let body = html! {
        div.grid {
            section.panel #messaging {
                h2 { "Messaging" }
                dl.facts {
                    dt { "Breaker" } dd #breaker { (badge(snapshot.breaker.as_str())) }
                    dt { "Rate-limit tokens" } dd { (format!("{:.2}", snapshot.tokens)) }
                    dt { "Queue depth" } dd { (snapshot.queue_depth) }
                    dt { "In flight" } dd { (snapshot.in_flight) }
                    dt { "Sent" } dd { (snapshot.sent) }
                    dt { "Retried" } dd { (snapshot.retried) }
                    dt { "Dead-lettered" } dd { (snapshot.dead_lettered) }
                    dt { "Reconciled" } dd { (snapshot.reconciled) }
                }
                (stored(&state, "messaging", domains.get("messaging")))
            }
            section.panel #payment {
                h2 { "Payments" }
                p { @if payments { (badge("running")) " Stripe configured" } @else { (badge("off")) " no payment provider configured" } }
                (stored(&state, "payment", domains.get("payment")))
            }
            @for (name, domain) in &others {
                section.panel {
                    h2 { (name) }
                    (stored(&state, name, Some(domain)))
                }
            }
        }
        h2 { "Live actors " span.muted { "(" (live_count) ")" } }
        @if actors.is_empty() { p.empty { "No appointment actor is in memory." } } @else {
            table.list #actors {
                thead { tr { th { "Appointment" } th { "Status" } th.num { "In flight" } th.num { "Idle" } } }
                tbody {
                    @for a in &actors {
                        tr {
                            td data-label="Appointment" {
                                a.mono href={ "/dashboard/appointments/" (a.appointment_id) } { (a.appointment_id) }
                            }
                            td data-label="Status" { (a.status.map_or("—", |s| s.as_str())) }
                            td.num data-label="In flight" { (a.in_flight) }
                            td.num data-label="Idle" { (format!("{:.1} s", a.idle_for.as_secs_f64())) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Supervisors,
            title: "Supervisors",
            flash: Flash::of(&req),
        },
        body,
    )))
}
