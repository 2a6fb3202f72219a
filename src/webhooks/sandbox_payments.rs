//! `GET` and `POST /sandbox/pay/{appointment}`: the pay page of a sandbox deposit link
//! (`providers::sandbox_payments`), for installs still on trial — no Stripe key and
//! messaging in the sandbox. The page shows what the link asks for; its button records
//! the payment exactly as Stripe's payment webhook would: a `DepositPaid` for the
//! appointment in the durable inbox (deduplicated per appointment), then the engine
//! marks the deposit paid and sends the receipt.
//!
//! 404 unless payments run in the sandbox, for an unknown appointment, or for one whose
//! deposit link is not this page; 409 INVALID_TRANSITION when its deposit is not
//! awaiting payment; 403
//! from another machine, like the sandbox's typed replies.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::engine::commands::AppointmentCommand;
use actors::engine::inbox::InboxWork;
use actors::engine::Origin;
use actors::ports::store::{AppointmentRecord, DepositStatus, InboxAccept};
use maud::{html, Markup, DOCTYPE};

use super::local_only::require_this_machine;
use crate::engine_host::{payments_mode, PaymentsMode};
use crate::http::request_context::RequestContext;
use crate::http::{ApiError, AppState};
use crate::providers::sandbox_payments::PAY_PATH;
use crate::store::engine_queries::load_appointment;
use crate::store::tenant_queries::DEFAULT_TENANT;

/// The inbox `source` of sandbox payments.
pub const SOURCE: &str = "sandbox_payments";

/// The appointment whose sandbox deposit link is this page.
async fn linked_appointment(
    req: &HttpRequest,
    state: &AppState,
    id: String,
) -> Result<AppointmentRecord, ApiError> {
    if payments_mode(&state.config) != PaymentsMode::Sandbox {
        return Err(ApiError::NotFound(
            "sandbox payments are off: payments go through Stripe, or deposits are off".to_string(),
        ));
    }
    require_this_machine(req, "sandbox payments")?;
    let lookup = id.clone();
    let record = state
        .db
        .run(move |conn| Ok(load_appointment(conn, &lookup)?))
        .await?;
    let page = format!("/{PAY_PATH}/{id}");
    match record {
        Some(record)
            if record.tenant_id == DEFAULT_TENANT
                && record
                    .deposit
                    .link
                    .as_deref()
                    .is_some_and(|link| link.ends_with(&page)) =>
        {
            Ok(record)
        }
        _ => Err(ApiError::NotFound(format!(
            "no sandbox deposit link for appointment {id}"
        ))),
    }
}

fn amount(record: &AppointmentRecord, currency: &str) -> String {
    match record.deposit.amount_cents {
        Some(cents) => format!(
            "{}.{:02} {}",
            cents / 100,
            cents % 100,
            currency.to_uppercase()
        ),
        None => "the deposit".to_string(),
    }
}

fn page(title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
            }
            body {
                h1 { (title) }
                p { strong { "Sandbox: " } "no money moves; this page stands in for Stripe's." }
                (body)
            }
        }
    };
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(markup.into_string())
}

/// `GET /sandbox/pay/{appointment}`.
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = linked_appointment(&req, &state, path.into_inner()).await?;
    let due = amount(&record, &state.config.business.currency);
    let open = matches!(
        record.deposit.status,
        DepositStatus::AwaitingPayment | DepositStatus::Reminded
    );
    Ok(page(
        "Deposit",
        html! {
            p { "Deposit of " strong { (due) } " for the appointment on "
                (record.starts_at.format("%Y-%m-%d %H:%M UTC")) "." }
            @if open {
                form method="post" {
                    button type="submit" { "Pay " (due) " (sandbox)" }
                }
            } @else {
                p { "Nothing to pay: the deposit is " (status_word(record.deposit.status)) "." }
            }
        },
    ))
}

/// `POST /sandbox/pay/{appointment}`.
pub async fn pay(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = linked_appointment(&req, &state, path.into_inner()).await?;
    if !matches!(
        record.deposit.status,
        DepositStatus::AwaitingPayment | DepositStatus::Reminded
    ) {
        return Err(ApiError::InvalidTransition {
            from: format!("deposit {}", status_word(record.deposit.status)),
            to: "deposit paid".to_string(),
        });
    }
    let work = InboxWork::new(
        record.id.clone(),
        AppointmentCommand::DepositPaid {
            payment_ref: format!("sbx_pay_{}", record.id),
        },
    )
    .with_origin(Origin::new(
        RequestContext::correlation_of(&req),
        format!("{SOURCE}:{}", record.id),
    ));
    let accepted = state
        .engine
        .submit(DEFAULT_TENANT, SOURCE, &record.id, work)
        .await?;
    let result = match accepted {
        InboxAccept::Accepted => "accepted",
        InboxAccept::Duplicate => "duplicate",
    };
    metrics::counter!("aro_webhooks_total", "source" => SOURCE, "result" => result).increment(1);
    let due = amount(&record, &state.config.business.currency);
    Ok(page(
        "Deposit paid",
        html! {
            p { "Paid " strong { (due) } " (sandbox). The deposit is recorded and the receipt is on its way." }
        },
    ))
}

fn status_word(status: DepositStatus) -> &'static str {
    match status {
        DepositStatus::None => "not asked for",
        DepositStatus::Requested => "being requested",
        DepositStatus::AwaitingPayment => "awaiting payment",
        DepositStatus::Reminded => "awaiting payment",
        DepositStatus::Paid => "paid",
        DepositStatus::NotPaid => "past its deadline",
    }
}
