//! The Command API (SPEC §7): `POST /v1/commands` and `GET /v1/commands/{id}`.
//!
//! A command is `{commandType, aggregate:{type,id}, payload, metadata}` sent with an
//! `Idempotency-Key`; the answer is `202 {commandId, status, workflowId, correlationId,
//! aggregate}`. How a command is taken:
//!
//! 1. Checked without the database (type, fields, payload shape): a bad one is `400
//!    VALIDATION_ERROR` naming the field, and nothing is recorded.
//! 2. In **one transaction**: the idempotency key is claimed by inserting its row (the
//!    table's unique key decides between concurrent duplicates: the second waits for the
//!    first's transaction, then finds its row), the command is checked against the data
//!    (the appointment exists and may make the move, …), commands that act on the
//!    database alone (consent, risk, escalations, dead letters) take effect, the command
//!    row and an audit entry are written. A refusal rolls all of it back.
//! 3. Work for the engine is then handed on durably — `Engine::submit` records it in
//!    the inbox, deduplicated by the command's id — and only then is `202` answered, so
//!    a `202` survives a crash. An inbound message goes the way a Twilio reply goes.
//!    Until the hand-on is done the key stays `pending`: a retry of the same request
//!    (after a crash, or a concurrent duplicate) repeats the hand-on, which the inbox's
//!    deduplication makes harmless, and answers the first answer.
//!
//! The same key with the same body (compared as the SHA-256 of its canonical JSON)
//! answers the first answer again; with another body, `409 IDEMPOTENCY_CONFLICT`. Keys
//! are kept 72 h. `GET /v1/commands/{id}` reads the command's status; for work handed to
//! the engine it looks at the inbox item, and records `completed` or `failed` once the
//! engine has applied or refused it.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{appointment_id_for, AppointmentCommand, ChangedBy, InboxWork, Origin};
use actors::ports::providers::Channel;
use actors::supervisors::OutboxChanged;
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::command_queries::{self as queries, status, Claim, CommandRow, KeyRow};
use crate::audit::{self, chain::canonical_json, AuditError, NewEntry};
use crate::auth::{StaffOrAbove, ViewerOrAbove};
use crate::config::values::is_e164;
use crate::http::request_context::RequestContext;
use crate::http::{ApiError, AppState};
use crate::providers::twilio::inbound::InboundMessage;
use crate::store::models::to_utc;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::{DbConnection, StoreError};
use crate::webhooks::{booking, twilio};

/// The header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest idempotency key accepted.
const MAX_KEY_LEN: usize = 200;
/// Longest free text (a resolution, an inbound body) accepted.
const MAX_TEXT: usize = 4000;
/// How often [`resume_pending`] looks for commands never handed on.
const RESUME_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// A command's hand-on counts as abandoned after this long.
const RESUME_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Registers the Command API routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/commands").route(web::post().to(submit)))
        .service(web::resource("/v1/commands/{id}").route(web::get().to(status_of)));
}

/// Everything taking a command can fail with; mapped to the envelope once, below.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cannot move from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    #[error("command {0} not found")]
    NotFound(String),
    #[error("command query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] actors::engine::EngineError),
    /// The inbound-message path (shared with Twilio's webhook) failed.
    #[error(transparent)]
    Reply(ApiError),
    #[error("{0}")]
    Internal(String),
}

impl CommandError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CommandError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::Invalid { field, reason } => ApiError::validation(
                format!("{field}: {reason}"),
                json!({"field": field, "reason": reason}),
            ),
            CommandError::InvalidTransition { from, to } => {
                ApiError::InvalidTransition { from, to }
            }
            CommandError::IdempotencyConflict => ApiError::IdempotencyConflict,
            CommandError::NotFound(id) => ApiError::NotFound(format!("command {id} not found")),
            CommandError::Store(store) => store.into(),
            CommandError::Engine(engine) => engine.into(),
            CommandError::Reply(api) => api,
            other @ (CommandError::Query(_)
            | CommandError::Audit(_)
            | CommandError::Internal(_)) => ApiError::Internal(other.to_string()),
        }
    }
}

/// Runs `work` on the blocking pool, flattening the errors.
async fn run<T, F>(state: &AppState, work: F) -> Result<T, CommandError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, CommandError> + Send + 'static,
    T: Send + 'static,
{
    state.db.run(move |conn| Ok(work(conn))).await?
}

// ---------------------------------------------------------------------------------
// The request, checked without the database.

/// The kinds of aggregate commands name.
mod aggregate {
    pub const APPOINTMENT: &str = "appointment";
    pub const CUSTOMER: &str = "customer";
    pub const ESCALATION: &str = "escalation";
    pub const DEAD_LETTER: &str = "dead_letter";
    pub const MESSAGE: &str = "message";
}

/// Every command type, as the wire names it.
pub const COMMAND_TYPES: [&str; 13] = [
    "appointment.upsert",
    "appointment.confirm",
    "appointment.cancel",
    "appointment.reschedule",
    "appointment.mark_no_show",
    "appointment.complete",
    "customer.opt_out",
    "customer.opt_in",
    "customer.recalculate_risk",
    "message.inbound",
    "escalation.resolve",
    "dlq.replay",
    "dlq.archive",
];

/// What a command asks for, checked for shape.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Create or update an appointment from booking data (its id is derived from the
    /// booking system's id, as the booking webhook derives it).
    Upsert {
        appointment_id: String,
        command: Box<AppointmentCommand>,
    },
    /// Move an existing appointment (`id`: ARO's id or the booking system's).
    Move {
        id: String,
        to: AppointmentStatus,
        reason: Option<String>,
    },
    Reschedule {
        id: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Consent {
        customer_id: String,
        granted: bool,
    },
    RecalculateRisk {
        customer_id: String,
    },
    Inbound {
        from: String,
        body: String,
    },
    Resolve {
        escalation_id: String,
        resolution: String,
    },
    Replay {
        dead_letter_id: String,
    },
    Archive {
        dead_letter_id: String,
    },
}

/// A checked request.
#[derive(Debug, Clone)]
struct Parsed {
    command_type: String,
    aggregate_type: &'static str,
    action: Action,
    payload: Value,
    metadata: Value,
}

fn text_field(
    object: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<String>, CommandError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(CommandError::invalid(
            format!("{prefix}{name}"),
            "must not be empty",
        )),
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT => Err(CommandError::invalid(
            format!("{prefix}{name}"),
            format!("longer than {MAX_TEXT} characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(CommandError::invalid(
            format!("{prefix}{name}"),
            "must be a string",
        )),
    }
}

fn required_text(
    object: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<String, CommandError> {
    text_field(object, name, prefix)?
        .ok_or_else(|| CommandError::invalid(format!("{prefix}{name}"), "required"))
}

fn instant_field(object: &Map<String, Value>, name: &str) -> Result<DateTime<Utc>, CommandError> {
    let text = required_text(object, name, "payload.")?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CommandError::invalid(
                format!("payload.{name}"),
                format!("not an RFC 3339 time with offset: {e}"),
            )
        })
}

/// Refuses payload keys other than `allowed` (a typo should not pass silently).
fn only_keys(object: &Map<String, Value>, allowed: &[&str]) -> Result<(), CommandError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(CommandError::invalid(
            format!("payload.{extra}"),
            if allowed.is_empty() {
                "this command takes no payload fields".to_string()
            } else {
                format!("unknown field; expected {}", allowed.join(", "))
            },
        )),
        None => Ok(()),
    }
}

fn optional_object(body: &Map<String, Value>, name: &str) -> Result<Value, CommandError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(value @ Value::Object(_)) => Ok(value.clone()),
        Some(_) => Err(CommandError::invalid(name, "must be a JSON object")),
    }
}

/// Checks a request body for `tenant_id`.
fn parse(tenant_id: &str, body: &Value) -> Result<Parsed, CommandError> {
    let Value::Object(body) = body else {
        return Err(CommandError::invalid("body", "must be a JSON object"));
    };
    if let Some(extra) = body
        .keys()
        .find(|k| !["commandType", "aggregate", "payload", "metadata"].contains(&k.as_str()))
    {
        return Err(CommandError::invalid(
            extra.clone(),
            "unknown field; expected commandType, aggregate, payload, metadata",
        ));
    }
    let command_type = required_text(body, "commandType", "")?;
    if !COMMAND_TYPES.contains(&command_type.as_str()) {
        return Err(CommandError::invalid(
            "commandType",
            format!(
                "unknown command type {command_type:?}; expected one of {}",
                COMMAND_TYPES.join(", ")
            ),
        ));
    }
    let payload = optional_object(body, "payload")?;
    let metadata = optional_object(body, "metadata")?;
    let (aggregate_type, aggregate_id) = match body.get("aggregate") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(agg)) => {
            if let Some(extra) = agg.keys().find(|k| !["type", "id"].contains(&k.as_str())) {
                return Err(CommandError::invalid(
                    format!("aggregate.{extra}"),
                    "unknown field; expected type, id",
                ));
            }
            (
                text_field(agg, "type", "aggregate.")?,
                text_field(agg, "id", "aggregate.")?,
            )
        }
        Some(_) => return Err(CommandError::invalid("aggregate", "must be a JSON object")),
    };
    let family = match command_type.split('.').next() {
        Some("appointment") => aggregate::APPOINTMENT,
        Some("customer") => aggregate::CUSTOMER,
        Some("escalation") => aggregate::ESCALATION,
        Some("dlq") => aggregate::DEAD_LETTER,
        _ => aggregate::MESSAGE,
    };
    if let Some(given) = aggregate_type.as_deref().filter(|t| *t != family) {
        return Err(CommandError::invalid(
            "aggregate.type",
            format!("{command_type} acts on a {family:?} aggregate, not {given:?}"),
        ));
    }
    let Value::Object(fields) = &payload else {
        return Err(CommandError::invalid("payload", "must be a JSON object"));
    };
    // The aggregate is required except where the payload names it.
    let need_id = || {
        aggregate_id
            .clone()
            .ok_or_else(|| CommandError::invalid("aggregate.id", "required"))
    };
    let action = match command_type.as_str() {
        "appointment.upsert" => {
            let booking = booking::booking_from_data(tenant_id, &payload).map_err(|invalid| {
                let field = invalid.field.strip_prefix("data").map_or_else(
                    || invalid.field.to_string(),
                    |rest| format!("payload{rest}"),
                );
                CommandError::invalid(field, invalid.reason)
            })?;
            let appointment_id =
                appointment_id_for(tenant_id, booking::SOURCE, &booking.external_id);
            if let Some(given) = aggregate_id.as_deref() {
                if given != booking.external_id && given != appointment_id {
                    return Err(CommandError::invalid(
                        "aggregate.id",
                        "must be payload.appointment_id or the appointment's ARO id",
                    ));
                }
            }
            Action::Upsert {
                appointment_id,
                command: Box::new(AppointmentCommand::Book(booking)),
            }
        }
        "appointment.confirm"
        | "appointment.cancel"
        | "appointment.mark_no_show"
        | "appointment.complete" => {
            only_keys(fields, &["reason"])?;
            let to = match command_type.as_str() {
                "appointment.confirm" => AppointmentStatus::Confirmed,
                "appointment.cancel" => AppointmentStatus::Cancelled,
                "appointment.mark_no_show" => AppointmentStatus::NoShow,
                _ => AppointmentStatus::Completed,
            };
            Action::Move {
                id: need_id()?,
                to,
                reason: text_field(fields, "reason", "payload.")?,
            }
        }
        "appointment.reschedule" => {
            only_keys(fields, &["startsAt", "endsAt"])?;
            let starts_at = instant_field(fields, "startsAt")?;
            let ends_at = instant_field(fields, "endsAt")?;
            if ends_at <= starts_at {
                return Err(CommandError::invalid(
                    "payload.endsAt",
                    "must be after startsAt",
                ));
            }
            Action::Reschedule {
                id: need_id()?,
                starts_at,
                ends_at,
            }
        }
        "customer.opt_out" | "customer.opt_in" => {
            only_keys(fields, &[])?;
            Action::Consent {
                customer_id: need_id()?,
                granted: command_type == "customer.opt_in",
            }
        }
        "customer.recalculate_risk" => {
            only_keys(fields, &[])?;
            Action::RecalculateRisk {
                customer_id: need_id()?,
            }
        }
        "message.inbound" => {
            // Replies are matched in the business's own tenant (as Twilio's are).
            if tenant_id != DEFAULT_TENANT {
                return Err(CommandError::invalid(
                    "commandType",
                    "message.inbound is available to the default tenant only",
                ));
            }
            only_keys(fields, &["from", "body"])?;
            let from = required_text(fields, "from", "payload.")?;
            if !is_e164(&from) {
                return Err(CommandError::invalid(
                    "payload.from",
                    "not an E.164 number (+ and 8 to 15 digits)",
                ));
            }
            Action::Inbound {
                from,
                body: required_text(fields, "body", "payload.")?,
            }
        }
        "escalation.resolve" => {
            only_keys(fields, &["resolution"])?;
            Action::Resolve {
                escalation_id: need_id()?,
                resolution: required_text(fields, "resolution", "payload.")?,
            }
        }
        // dlq.replay, dlq.archive
        _ => {
            only_keys(fields, &["deadLetterId"])?;
            let named = text_field(fields, "deadLetterId", "payload.")?;
            let dead_letter_id = match (named, aggregate_id.clone()) {
                (Some(a), Some(b)) if a != b => {
                    return Err(CommandError::invalid(
                        "payload.deadLetterId",
                        "differs from aggregate.id",
                    ))
                }
                (Some(id), _) | (None, Some(id)) => id,
                (None, None) => {
                    return Err(CommandError::invalid("payload.deadLetterId", "required"))
                }
            };
            if command_type == "dlq.replay" {
                Action::Replay { dead_letter_id }
            } else {
                Action::Archive { dead_letter_id }
            }
        }
    };
    Ok(Parsed {
        command_type,
        aggregate_type: family,
        action,
        payload,
        metadata,
    })
}

// ---------------------------------------------------------------------------------
// Taking effect.

/// What is left to do once the command's transaction committed. Stored with the
/// command, so a retry of the request repeats exactly what was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Nothing: the command took effect in its transaction.
    None,
    /// Engine work, recorded in the inbox under the command's id.
    Inbox { work: Box<InboxWork> },
    /// An inbound message, handled as a Twilio reply whose id is `api:<command id>`.
    Reply { from: String, body: String },
    /// Outbox rows were revived: tell the supervisors to look.
    Poke,
}

/// A command about to be recorded.
struct NewCommand {
    id: String,
    tenant_id: String,
    key: String,
    request_hash: String,
    correlation_id: String,
    /// `type:id` of who sent it.
    by: String,
    actor: audit::Actor,
    parsed: Parsed,
    now: DateTime<Utc>,
}

/// What recording a command found or did.
enum Recorded {
    /// Recorded now: the answer and what is left to do.
    Fresh { answer: Value, effect: Effect },
    /// The same request was recorded before.
    Repeat(KeyRow),
}

fn answer_json(id: &str, state: &str, correlation_id: &str, aggregate: (&str, &str)) -> Value {
    json!({
        "commandId": id,
        "status": state,
        "workflowId": Value::Null,
        "correlationId": correlation_id,
        "aggregate": {"type": aggregate.0, "id": aggregate.1},
    })
}

/// Checks the command against the data and takes the effects that are database work:
/// the aggregate's id, the command's status, its result and what is left to do.
fn apply(
    conn: &mut DbConnection,
    new: &NewCommand,
) -> Result<(String, &'static str, Option<Value>, Effect), CommandError> {
    let tenant = new.tenant_id.as_str();
    let staff = || ChangedBy::Staff(new.by.clone());
    let inbox = |appointment_id: &str, command| Effect::Inbox {
        work: Box::new(
            InboxWork::new(appointment_id, command).with_origin(Origin::new(
                Some(new.correlation_id.clone()),
                new.id.clone(),
            )),
        ),
    };
    Ok(match &new.parsed.action {
        Action::Upsert {
            appointment_id,
            command,
        } => (
            appointment_id.clone(),
            status::ACCEPTED,
            None,
            inbox(appointment_id, command.as_ref().clone()),
        ),
        Action::Move { id, to, reason } => {
            let (id, current) = queries::find_appointment(conn, tenant, id)?;
            queries::check_transition(current, *to)?;
            let command = AppointmentCommand::Transition {
                to: *to,
                by: staff(),
                reason: reason.clone(),
            };
            let effect = inbox(&id, command);
            (id, status::ACCEPTED, None, effect)
        }
        Action::Reschedule {
            id,
            starts_at,
            ends_at,
        } => {
            let (id, current) = queries::find_appointment(conn, tenant, id)?;
            if current != AppointmentStatus::Rescheduled {
                queries::check_transition(current, AppointmentStatus::Rescheduled)?;
            }
            let command = AppointmentCommand::Reschedule {
                starts_at: *starts_at,
                ends_at: *ends_at,
                by: staff(),
            };
            let effect = inbox(&id, command);
            (id, status::ACCEPTED, None, effect)
        }
        Action::Consent {
            customer_id,
            granted,
        } => {
            let result =
                queries::set_consent(conn, tenant, customer_id, *granted, &new.id, new.now)?;
            (
                customer_id.clone(),
                status::COMPLETED,
                Some(result),
                Effect::None,
            )
        }
        Action::RecalculateRisk { customer_id } => {
            let result = queries::recalculate_risk(conn, tenant, customer_id, new.now)?;
            (
                customer_id.clone(),
                status::COMPLETED,
                Some(result),
                Effect::None,
            )
        }
        Action::Inbound { from, body } => (
            format!("api:{}", new.id),
            status::ACCEPTED,
            None,
            Effect::Reply {
                from: from.clone(),
                body: body.clone(),
            },
        ),
        Action::Resolve {
            escalation_id,
            resolution,
        } => {
            let result = queries::resolve_escalation(
                conn,
                tenant,
                escalation_id,
                resolution,
                &new.by,
                new.now,
            )?;
            (
                escalation_id.clone(),
                status::COMPLETED,
                Some(result),
                Effect::None,
            )
        }
        Action::Replay { dead_letter_id } => {
            let letter =
                queries::replay_dead_letter(conn, tenant, dead_letter_id, &new.by, new.now)?;
            let effect = match letter.outbox_id {
                Some(_) => Effect::Poke,
                None => {
                    let work: InboxWork = serde_json::from_str(&letter.payload).map_err(|e| {
                        CommandError::invalid(
                            "aggregate.id",
                            format!("the dead letter's work cannot be read: {e}"),
                        )
                    })?;
                    Effect::Inbox {
                        work: Box::new(work),
                    }
                }
            };
            let state = match effect {
                Effect::Inbox { .. } => status::ACCEPTED,
                _ => status::COMPLETED,
            };
            (
                letter.id,
                state,
                Some(json!({"status": "replayed", "domain": letter.domain})),
                effect,
            )
        }
        Action::Archive { dead_letter_id } => {
            let result =
                queries::archive_dead_letter(conn, tenant, dead_letter_id, &new.by, new.now)?;
            (
                dead_letter_id.clone(),
                status::COMPLETED,
                Some(result),
                Effect::None,
            )
        }
    })
}

/// Claims the key and records the command in one transaction (see the module doc).
fn record(conn: &mut DbConnection, new: &NewCommand) -> Result<Recorded, CommandError> {
    conn.transaction(|conn| {
        let placeholder = Value::Null;
        let mut key = KeyRow::new(
            &new.tenant_id,
            &new.key,
            &new.request_hash,
            &new.id,
            &placeholder,
            new.now,
        );
        if let Claim::Repeat(existing) = queries::claim(conn, &key)? {
            return Ok(Recorded::Repeat(existing));
        }
        let (aggregate_id, state, result, effect) = apply(conn, new)?;
        let answer = answer_json(
            &new.id,
            state,
            &new.correlation_id,
            (new.parsed.aggregate_type, &aggregate_id),
        );
        key.response_body = Some(answer.to_string());
        queries::store_answer(conn, &key)?;
        let now = crate::store::models::to_naive(new.now);
        queries::insert_command(
            conn,
            &CommandRow {
                id: new.id.clone(),
                tenant_id: new.tenant_id.clone(),
                command_type: new.parsed.command_type.clone(),
                aggregate_type: new.parsed.aggregate_type.to_string(),
                aggregate_id: aggregate_id.clone(),
                status: state.to_string(),
                payload: json!({
                    "payload": new.parsed.payload,
                    "metadata": new.parsed.metadata,
                    "effect": effect,
                })
                .to_string(),
                result: result.map(|r| r.to_string()),
                error: None,
                idempotency_key: Some(new.key.clone()),
                correlation_id: new.correlation_id.clone(),
                workflow_id: None,
                created_at: now,
                updated_at: now,
            },
        )?;
        // Pseudonymous ids only: the aggregate's id is ours (checked above, or derived),
        // never a phone number, a name or the caller's free text.
        audit::record(
            conn,
            &NewEntry::new(&new.tenant_id, new.actor.clone(), "command.accepted")
                .at(new.now)
                .subject("command", &new.id)
                .details(json!({
                    "commandType": new.parsed.command_type,
                    "aggregateType": new.parsed.aggregate_type,
                    "aggregateId": aggregate_id,
                    "status": state,
                })),
        )?;
        Ok(Recorded::Fresh { answer, effect })
    })
}

/// Does what is left of a command once its transaction committed; answers the
/// command's new status when this settles it.
async fn hand_on(
    state: &AppState,
    tenant_id: &str,
    command_id: &str,
    effect: &Effect,
) -> Result<Option<&'static str>, CommandError> {
    match effect {
        Effect::None => Ok(None),
        Effect::Inbox { work } => {
            state
                .engine
                .submit(
                    tenant_id,
                    queries::INBOX_SOURCE,
                    command_id,
                    work.as_ref().clone(),
                )
                .await?;
            Ok(None)
        }
        Effect::Reply { from, body } => {
            let message = InboundMessage {
                message_sid: format!("api:{command_id}"),
                channel: Channel::Sms,
                from: from.clone(),
                to: state.config.twilio.from.clone().unwrap_or_default(),
                body: body.clone(),
                num_media: 0,
            };
            twilio::handle_reply(state, message)
                .await
                .map_err(CommandError::Reply)?;
            Ok(Some(status::COMPLETED))
        }
        Effect::Poke => {
            state.engine.outbox_changed();
            if let Some(payments) = &state.engine.payments {
                payments.do_send(OutboxChanged);
            }
            Ok(None)
        }
    }
}

/// Hands the command's work on and marks its key completed.
async fn finish(
    state: &AppState,
    tenant_id: &str,
    key: &str,
    command_id: &str,
    effect: &Effect,
) -> Result<(), CommandError> {
    let settled = hand_on(state, tenant_id, command_id, effect).await?;
    let (tenant_id, key, command_id) = (
        tenant_id.to_string(),
        key.to_string(),
        command_id.to_string(),
    );
    let now = Utc::now();
    run(state, move |conn| {
        queries::complete_key(
            conn,
            &tenant_id,
            &key,
            settled.map(|s| (command_id.as_str(), s)),
            now,
        )
    })
    .await
}

/// Finishes the hand-on of a command whose key is still `pending` (its first request
/// failed or crashed after recording it, or is still handing it on: repeating the
/// hand-on is harmless).
async fn resume(state: &AppState, row: &KeyRow) -> Result<(), CommandError> {
    if row.is_completed() {
        return Ok(());
    }
    let command_id = row
        .resource_id
        .clone()
        .ok_or_else(|| CommandError::Internal("idempotency key without a command".to_string()))?;
    let (tenant_id, id) = (row.tenant_id.clone(), command_id.clone());
    let command = run(state, move |conn| {
        queries::find_command(conn, &tenant_id, &id)
    })
    .await?
    .ok_or_else(|| CommandError::NotFound(command_id.clone()))?;
    let effect = stored_effect(&command)?;
    finish(state, &row.tenant_id, &row.key, &command_id, &effect).await
}

/// The first answer of a repeated request, after finishing its hand-on if the first
/// request did not get that far.
async fn repeat(state: &AppState, row: KeyRow) -> Result<HttpResponse, CommandError> {
    let answer: Value = row
        .response_body
        .as_deref()
        .and_then(|body| serde_json::from_str(body).ok())
        .ok_or_else(|| CommandError::Internal("idempotency key without an answer".to_string()))?;
    resume(state, &row).await?;
    let code = row
        .response_status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .unwrap_or(actix_web::http::StatusCode::ACCEPTED);
    Ok(HttpResponse::build(code)
        .insert_header(("Idempotent-Replayed", "true"))
        .json(answer))
}

/// Finishes, in the background, commands recorded but never handed on — their request
/// failed after the commit, or the daemon stopped in between, and nobody retried:
/// what was recorded takes effect. Looks every minute for keys pending longer than
/// [`RESUME_AFTER`].
pub async fn resume_pending(state: web::Data<AppState>) {
    loop {
        tokio::time::sleep(RESUME_EVERY).await;
        let before = Utc::now() - chrono::Duration::from_std(RESUME_AFTER).unwrap_or_default();
        let stale = match run(&state, move |conn| queries::stale_keys(conn, before, 100)).await {
            Ok(stale) => stale,
            Err(error) => {
                tracing::warn!(%error, "cannot look for unfinished commands");
                continue;
            }
        };
        for row in stale {
            let command = row.resource_id.clone().unwrap_or_default();
            match resume(&state, &row).await {
                Ok(()) => tracing::info!(%command, "unfinished command handed on"),
                Err(error) => {
                    tracing::warn!(%command, %error, "cannot finish a command; will retry")
                }
            }
        }
    }
}

fn stored_effect(command: &CommandRow) -> Result<Effect, CommandError> {
    let stored: Value = serde_json::from_str(&command.payload)
        .map_err(|e| CommandError::Internal(format!("command {} payload: {e}", command.id)))?;
    serde_json::from_value(stored.get("effect").cloned().unwrap_or(Value::Null))
        .map_err(|e| CommandError::Internal(format!("command {} effect: {e}", command.id)))
}

/// The request's idempotency key, checked.
fn idempotency_key(req: &HttpRequest) -> Result<String, CommandError> {
    let key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(|| CommandError::invalid("Idempotency-Key", "the header is required"))?
        .to_str()
        .map_err(|_| CommandError::invalid("Idempotency-Key", "must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommandError::invalid(
            "Idempotency-Key",
            format!("1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(key.to_string())
}

fn correlation_id(req: &HttpRequest) -> String {
    RequestContext::correlation_of(req).unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The SHA-256 (hex) of a body's canonical JSON: the same request spelled with other
/// whitespace or key order is the same request.
pub fn request_hash(body: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(body).as_bytes()))
}

/// `POST /v1/commands` (staff or owner).
#[utoipa::path(
    post, path = "/v1/commands", tag = "commands", operation_id = "submit_command", summary = "Submit a command: idempotent by Idempotency-Key (kept 72 h); a 202 survives a crash", params(("Idempotency-Key" = String, Header, description = "Required; the same key and body answer the first answer, another body 409"), ("X-Tenant-Id" = Option<String>, Header, description = "Must match the token's tenant when given"), ("X-Correlation-Id" = Option<String>, Header, description = "Carried into the events the command causes")), request_body(content = crate::api::openapi::schemas::CommandEnvelope), responses((status = 202, description = "Accepted", body = crate::api::openapi::schemas::CommandAccepted), (status = 400, description = "VALIDATION_ERROR naming the field"), (status = 404, description = "NOT_FOUND: the aggregate does not exist"), (status = 409, description = "IDEMPOTENCY_CONFLICT, or INVALID_TRANSITION")), security(("token" = ["staff"]), ("session" = ["staff"]))
)]
async fn submit(
    caller: StaffOrAbove,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let json_body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation(
            format!("malformed JSON: {e}"),
            json!({"field": "body", "reason": "malformed_json", "line": e.line(), "column": e.column()}),
        )
    })?;
    let parsed = parse(&caller.tenant_id, &json_body)?;
    let actor = caller.actor();
    let new = NewCommand {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: caller.tenant_id.clone(),
        key: key.clone(),
        request_hash: request_hash(&json_body),
        correlation_id: correlation_id(&req),
        by: format!("{}:{}", actor.actor_type, actor.actor_id),
        actor,
        parsed,
        now: Utc::now(),
    };
    let (command_id, tenant_id, command_type) = (
        new.id.clone(),
        new.tenant_id.clone(),
        new.parsed.command_type.clone(),
    );
    let recorded = run(&state, move |conn| record(conn, &new)).await?;
    match recorded {
        Recorded::Repeat(row) => Ok(repeat(&state, row).await?),
        Recorded::Fresh { answer, effect } => {
            finish(&state, &tenant_id, &key, &command_id, &effect).await?;
            metrics::counter!("aro_commands_total", "type" => command_type).increment(1);
            Ok(HttpResponse::Accepted()
                .insert_header((header::LOCATION, format!("/v1/commands/{command_id}")))
                .json(answer))
        }
    }
}

/// `GET /v1/commands/{id}` (viewer or above).
#[utoipa::path(
    get, path = "/v1/commands/{id}", tag = "commands", operation_id = "command_status", summary = "A command's status", params(("id" = String, Path, description = "The commandId")), responses((status = 200, description = "The command", body = crate::api::openapi::schemas::CommandAccepted), (status = 404, description = "NOT_FOUND")), security(("token" = ["viewer"]), ("session" = ["viewer"]))
)]
async fn status_of(
    caller: ViewerOrAbove,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.tenant_id.clone();
    let id = id.into_inner();
    let now = Utc::now();
    let row = run(&state, move |conn| {
        let Some(mut row) = queries::find_command(conn, &tenant_id, &id)? else {
            return Err(CommandError::NotFound(id));
        };
        if row.status == status::ACCEPTED && matches!(stored_effect(&row)?, Effect::Inbox { .. }) {
            if let Some((settled, error)) = queries::inbox_outcome(conn, &tenant_id, &row.id)? {
                queries::set_status(conn, &tenant_id, &row.id, settled, error.as_deref(), now)?;
                row.status = settled.to_string();
                row.error = error;
                row.updated_at = crate::store::models::to_naive(now);
            }
        }
        Ok(row)
    })
    .await?;
    Ok(HttpResponse::Ok().json(command_json(&row)))
}

fn command_json(row: &CommandRow) -> Value {
    json!({
        "commandId": row.id,
        "commandType": row.command_type,
        "status": row.status,
        "aggregate": {"type": row.aggregate_type, "id": row.aggregate_id},
        "workflowId": row.workflow_id,
        "correlationId": row.correlation_id,
        "result": row.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": row.error,
        "createdAt": to_utc(row.created_at).to_rfc3339(),
        "updatedAt": to_utc(row.updated_at).to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: Value) -> String {
        match parse("default", &body) {
            Err(CommandError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn bad_requests_name_the_field() {
        assert_eq!(field_of(json!([])), "body");
        assert_eq!(field_of(json!({})), "commandType");
        assert_eq!(
            field_of(json!({"commandType": "appointment.explode"})),
            "commandType"
        );
        assert_eq!(
            field_of(json!({"commandType": "appointment.confirm"})),
            "aggregate.id"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "appointment.confirm", "aggregate": {"type": "customer", "id": "x"}})
            ),
            "aggregate.type"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "appointment.reschedule", "aggregate": {"type": "appointment", "id": "a"},
                            "payload": {"startsAt": "2026-03-20T15:00:00Z", "endsAt": "2026-03-20T14:00:00Z"}})
            ),
            "payload.endsAt"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "appointment.upsert", "payload": {"appointment_id": "e1", "duration": 30}})
            ),
            "payload.scheduled_at"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "message.inbound", "payload": {"from": "555", "body": "yes"}})
            ),
            "payload.from"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "escalation.resolve", "aggregate": {"type": "escalation", "id": "e"}})
            ),
            "payload.resolution"
        );
        assert_eq!(
            field_of(json!({"commandType": "dlq.replay"})),
            "payload.deadLetterId"
        );
        assert_eq!(
            field_of(
                json!({"commandType": "customer.opt_out", "aggregate": {"id": "c"}, "payload": {"x": 1}})
            ),
            "payload.x"
        );
        assert_eq!(
            field_of(json!({"commandType": "dlq.archive", "extra": 1})),
            "extra"
        );
    }

    #[test]
    fn an_upsert_derives_the_webhook_appointment_id() {
        let parsed = parse(
            "default",
            &json!({"commandType": "appointment.upsert", "aggregate": {"type": "appointment", "id": "ext-1"},
                    "payload": {"appointment_id": "ext-1", "scheduled_at": "2026-03-20T15:00:00Z", "duration": 30,
                                "customer": {"phone": "+15559876543"}}}),
        )
        .expect("valid");
        let Action::Upsert { appointment_id, .. } = parsed.action else {
            panic!("an upsert");
        };
        assert_eq!(
            appointment_id,
            appointment_id_for("default", booking::SOURCE, "ext-1")
        );
    }

    #[test]
    fn the_request_hash_ignores_spelling() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": 1}}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"a":{"x":1,"y":2},"b":1}"#).expect("json");
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&json!({"b": 2})));
    }

    #[test]
    fn effects_round_trip() {
        let effect = Effect::Reply {
            from: "+15550001111".into(),
            body: "yes".into(),
        };
        let text = serde_json::to_string(&effect).expect("json");
        assert_eq!(
            serde_json::from_str::<Effect>(&text).expect("parse"),
            effect
        );
    }
}
