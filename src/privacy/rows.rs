//! The rows of a customer export, one type per table: every column that says something
//! about the customer (the tenant id and password-like hashes left out), instants as
//! RFC 3339 UTC, stored JSON documents as JSON, camelCase keys.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::store::schema::{
    appointment_aliases, appointments, commands, consents, customers, dead_letters, escalations,
    events, idempotency_keys, inbox, message_status_history, messages, outbox, timers,
    workflow_instances,
};

fn at<S: Serializer>(value: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    value.and_utc().serialize(s)
}

fn at_opt<S: Serializer>(value: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    value.map(|v| v.and_utc()).serialize(s)
}

/// A stored JSON document as JSON (its text when it does not parse).
fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn doc<S: Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    json_or_text(value).serialize(s)
}

fn doc_opt<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    value.as_deref().map(json_or_text).serialize(s)
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = customers)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRow {
    pub id: String,
    pub pseudonym: String,
    pub phone_e164: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub appointment_count: i32,
    pub confirmed_count: i32,
    pub no_show_count: i32,
    pub reschedule_count: i32,
    pub payment_past_due: bool,
    pub risk_score: i32,
    pub requires_deposit: bool,
    pub opted_out: bool,
    #[serde(serialize_with = "at_opt")]
    pub last_review_request_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "at_opt")]
    pub erased_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = consents)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRow {
    pub id: String,
    pub channel: String,
    pub status: String,
    pub source: String,
    pub evidence: Option<String>,
    #[serde(serialize_with = "at")]
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = appointments)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentRow {
    pub id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
    pub status: String,
    #[serde(serialize_with = "at")]
    pub starts_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub ends_at: NaiveDateTime,
    pub timezone: String,
    pub service_type: Option<String>,
    pub service_cost_cents: Option<i64>,
    pub currency: Option<String>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    pub deposit_status: String,
    pub deposit_amount_cents: Option<i64>,
    pub deposit_link: Option<String>,
    pub deposit_steps: i64,
    pub notes: Option<String>,
    pub version: i64,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = appointment_aliases)]
#[serde(rename_all = "camelCase")]
pub struct AliasRow {
    pub source: String,
    pub external_id: String,
    pub appointment_id: String,
    pub replaces: Option<String>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = messages)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    pub id: String,
    pub customer_id: Option<String>,
    pub appointment_id: Option<String>,
    pub direction: String,
    pub channel: String,
    pub kind: Option<String>,
    pub body: String,
    pub from_addr: Option<String>,
    pub to_addr: Option<String>,
    pub provider: String,
    pub provider_message_id: Option<String>,
    pub status: String,
    pub encoding: Option<String>,
    pub segments: Option<i32>,
    pub sandbox: bool,
    pub idempotency_key: Option<String>,
    pub error_code: Option<String>,
    #[serde(serialize_with = "at_opt")]
    pub sent_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = message_status_history)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    #[serde(skip)]
    pub message_id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub provider_event_id: Option<String>,
    #[serde(serialize_with = "at")]
    pub occurred_at: NaiveDateTime,
}

/// A message with its delivery history, oldest report first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageExport {
    #[serde(flatten)]
    pub message: MessageRow,
    pub status_history: Vec<StatusRow>,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = events)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    #[serde(serialize_with = "at")]
    pub occurred_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub recorded_at: NaiveDateTime,
    pub profile: String,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = escalations)]
#[serde(rename_all = "camelCase")]
pub struct EscalationRow {
    pub id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub reason: String,
    pub priority: String,
    pub status: String,
    #[serde(serialize_with = "doc")]
    pub details: String,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at_opt")]
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = commands)]
#[serde(rename_all = "camelCase")]
pub struct CommandRow {
    pub id: String,
    pub command_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub status: String,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    #[serde(serialize_with = "doc_opt")]
    pub result: Option<String>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub correlation_id: String,
    pub workflow_id: Option<String>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = idempotency_keys)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRow {
    pub scope: String,
    pub key: String,
    pub status: String,
    pub response_status: Option<i32>,
    #[serde(serialize_with = "doc_opt")]
    pub response_body: Option<String>,
    pub resource_id: Option<String>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = workflow_instances)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRow {
    pub id: String,
    pub kind: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub state: String,
    pub step: String,
    #[serde(serialize_with = "doc")]
    pub data: String,
    pub retry_count: i32,
    pub last_error: Option<String>,
    pub version: i64,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
    #[serde(serialize_with = "at_opt")]
    pub completed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = timers)]
#[serde(rename_all = "camelCase")]
pub struct TimerRow {
    pub id: String,
    pub timer_key: String,
    pub owner_type: String,
    pub owner_id: String,
    pub kind: String,
    #[serde(serialize_with = "at")]
    pub due_at: NaiveDateTime,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    pub status: String,
    #[serde(serialize_with = "at_opt")]
    pub fired_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = outbox)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRow {
    pub id: String,
    pub domain: String,
    pub kind: String,
    pub owner_type: String,
    pub owner_id: String,
    pub idempotency_key: String,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    #[serde(serialize_with = "at")]
    pub next_attempt_at: NaiveDateTime,
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = dead_letters)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterRow {
    pub id: String,
    pub outbox_id: Option<String>,
    pub domain: String,
    pub kind: String,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    pub error: String,
    pub attempts: i32,
    pub status: String,
    #[serde(serialize_with = "at")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "at")]
    pub expires_at: NaiveDateTime,
    #[serde(serialize_with = "at_opt")]
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = inbox)]
#[serde(rename_all = "camelCase")]
pub struct InboxRow {
    pub id: String,
    pub source: String,
    pub dedup_key: String,
    #[serde(serialize_with = "doc")]
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(serialize_with = "at")]
    pub received_at: NaiveDateTime,
    #[serde(serialize_with = "at_opt")]
    pub processed_at: Option<NaiveDateTime>,
}
