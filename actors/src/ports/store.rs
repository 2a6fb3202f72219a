//! The `Store` port: durable state of appointments, workflows, timers, the outbox and
//! the event log.
//!
//! Its central promise is [`Store::commit`]: one [`Commit`] — an appointment's new
//! state, the events it produced, the timers it set, moved or cancelled, the side
//! effects it wants (outbox rows), workflow instances and escalations — is written in
//! one transaction, or not at all. Optimistic versions make a stale writer fail with
//! [`StoreError::Conflict`] instead of overwriting newer state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BoxFuture;
use crate::domain::appointment_status::AppointmentStatus;
use crate::domain::workflow_state::WorkflowState;
use crate::resilience::breaker::BreakerSnapshot;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A version check failed or a unique key was taken: someone else wrote first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached now; retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The commit applies an inbox item that was already applied: nothing was written.
    #[error("already applied: {0}")]
    AlreadyApplied(String),
    /// Anything else (a bug or corrupt data).
    #[error("store failure: {0}")]
    Failed(String),
}

/// The provider domains, each with its own supervisor, breaker and rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderDomain {
    Messaging,
    Booking,
    Payment,
    Classification,
}

impl ProviderDomain {
    pub const ALL: [ProviderDomain; 4] = [
        ProviderDomain::Messaging,
        ProviderDomain::Booking,
        ProviderDomain::Payment,
        ProviderDomain::Classification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderDomain::Messaging => "messaging",
            ProviderDomain::Booking => "booking",
            ProviderDomain::Payment => "payment",
            ProviderDomain::Classification => "classification",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// An appointment's committed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentRecord {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
    pub status: AppointmentStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// IANA zone used for wall-clock rules and rendering.
    pub timezone: String,
    pub service_type: Option<String>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    /// The service's price in the currency's minor unit, when known.
    #[serde(default)]
    pub service_cost_cents: Option<i64>,
    /// Incremented by every commit that changes the appointment.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the appointment's deposit workflow stands (SPEC §4).
    #[serde(default)]
    pub deposit: DepositState,
}

/// The deposit workflow of one appointment: asked for at intake when the customer's
/// risk or no-shows require it, never charged or enforced by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositState {
    pub status: DepositStatus,
    /// In the currency's minor unit.
    pub amount_cents: Option<i64>,
    /// The payment link sent to the customer.
    pub link: Option<String>,
    /// Steps taken: the version of the workflow's `workflow_instances` row.
    pub steps: i64,
}

/// A deposit's progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositStatus {
    /// No deposit asked for.
    #[default]
    None,
    /// A payment link is being created.
    Requested,
    /// The link was sent; waiting for the payment.
    AwaitingPayment,
    /// The one reminder was sent; still waiting.
    Reminded,
    Paid,
    /// Not paid in time: staff were told (nothing is cancelled).
    NotPaid,
}

impl DepositStatus {
    pub const ALL: [DepositStatus; 6] = [
        Self::None,
        Self::Requested,
        Self::AwaitingPayment,
        Self::Reminded,
        Self::Paid,
        Self::NotPaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Requested => "requested",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Reminded => "reminded",
            Self::Paid => "paid",
            Self::NotPaid => "not_paid",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Still waiting for the customer to pay.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Requested | Self::AwaitingPayment | Self::Reminded
        )
    }
}

/// A customer as the booking system describes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub id: String,
    pub tenant_id: String,
    pub phone_e164: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    /// The customer opted out (SPEC §5: no automated message to them). Owned by the
    /// reply handling, never changed by a booking.
    #[serde(default)]
    pub opted_out: bool,
    /// What the engine knows of the customer's past (risk, deposits, reviews).
    #[serde(default)]
    pub history: CustomerHistory,
}

/// A customer's record of past appointments and what it implies. Counters change only
/// through [`CustomerWrite::Counters`]; the store recomputes `risk_score` with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerHistory {
    /// Appointments that reached an outcome (completed or no-show).
    pub appointments: i32,
    pub confirmed: i32,
    pub no_shows: i32,
    pub reschedules: i32,
    pub payment_past_due: bool,
    /// 0–100 (SPEC §4), as last recomputed.
    pub risk_score: i32,
    /// New bookings ask for a deposit.
    pub requires_deposit: bool,
    pub last_review_request_at: Option<DateTime<Utc>>,
}

impl CustomerHistory {
    /// The risk score these counts give.
    pub fn risk(&self) -> u8 {
        crate::domain::risk::risk_score(&crate::domain::risk::RiskInputs {
            no_shows: u32::try_from(self.no_shows).unwrap_or(0),
            appointments: u32::try_from(self.appointments).unwrap_or(0),
            confirmations: u32::try_from(self.confirmed).unwrap_or(0),
            reschedules: u32::try_from(self.reschedules).unwrap_or(0),
            payment_past_due: self.payment_past_due,
        })
    }
}

/// A change to a customer inside a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerWrite {
    /// Insert, or update name/email/zone of the customer with this id.
    Upsert(CustomerRecord),
    /// Set flags the engine decides: deposits required from now on, when a review
    /// was last asked for. `None` leaves a flag as it is.
    Flags {
        customer_id: String,
        requires_deposit: Option<bool>,
        last_review_request_at: Option<DateTime<Utc>>,
    },
    /// Add to the customer's counters (concurrent appointments may do this at once);
    /// the store recomputes the risk score from the new counts in the same transaction.
    Counters {
        customer_id: String,
        appointments: i32,
        confirmed: i32,
        no_shows: i32,
        reschedules: i32,
    },
}

/// A workflow instance's committed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub state: WorkflowState,
    pub step: String,
    pub data: Value,
    pub retry_count: i32,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Write `record`; `expected_version` is the version read before the change (`None`
/// for a new row). The stored version becomes `record.version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub record: T,
    pub expected_version: Option<i64>,
}

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub profile: String,
    pub payload: Value,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

/// A durable timer. The key is unique per tenant: setting an existing key moves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerSpec {
    pub tenant_id: String,
    pub key: String,
    pub owner_type: String,
    pub owner_id: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub payload: Value,
}

/// A position in the (due time, key) order of timers: reads continue after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerCursor {
    pub due_at: DateTime<Utc>,
    /// `None`: every timer due at `due_at` is behind the cursor.
    pub key: Option<String>,
}

impl TimerCursor {
    /// Whether a timer (`due_at`, `key`) comes after the cursor.
    pub fn is_before(&self, due_at: DateTime<Utc>, key: &str) -> bool {
        match &self.key {
            Some(k) => due_at > self.due_at || (due_at == self.due_at && key > k.as_str()),
            None => due_at > self.due_at,
        }
    }
}

/// What becomes of a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerStatus {
    Scheduled,
    Fired,
    Cancelled,
    Missed,
}

impl TimerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerStatus::Scheduled => "scheduled",
            TimerStatus::Fired => "fired",
            TimerStatus::Cancelled => "cancelled",
            TimerStatus::Missed => "missed",
        }
    }
}

/// A stored timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRecord {
    pub spec: TimerSpec,
    pub status: TimerStatus,
}

/// A side effect to perform through a provider, exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutbox {
    pub id: String,
    pub tenant_id: String,
    pub domain: ProviderDomain,
    pub kind: String,
    pub owner_type: String,
    pub owner_id: String,
    /// Unique per tenant; also sent to providers that accept one.
    pub idempotency_key: String,
    pub payload: Value,
    pub not_before: DateTime<Utc>,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Being sent now; after a crash its outcome is unknown and must be reconciled.
    InFlight,
    /// The provider accepted it.
    Done,
    /// Attempts exhausted or a final error: moved to the dead-letter queue.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::InFlight => "in_flight",
            OutboxStatus::Done => "done",
            OutboxStatus::Dead => "dead",
        }
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub item: NewOutbox,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
}

/// How an attempt on an outbox row ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxUpdate {
    /// About to call the provider: mark in flight and count the attempt.
    Started { id: String, attempts: i32 },
    /// The provider accepted it (`sent`), or it was dropped unsent (`sent: None`).
    Done {
        id: String,
        provider_ref: Option<String>,
        sent: Option<SentBy>,
    },
    /// Try again at `at`.
    Retry {
        id: String,
        at: DateTime<Utc>,
        error: String,
    },
    /// Give up: move to the dead-letter queue and raise an escalation, atomically.
    Dead {
        id: String,
        error: String,
        escalation: NewEscalation,
    },
}

impl OutboxUpdate {
    /// The outbox row this update is for.
    pub fn id(&self) -> &str {
        match self {
            Self::Started { id, .. }
            | Self::Done { id, .. }
            | Self::Retry { id, .. }
            | Self::Dead { id, .. } => id,
        }
    }
}

/// Which provider accepted a message, and the status it answered with: recorded in the
/// message log with the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentBy {
    pub provider: String,
    pub status: String,
    /// When the provider accepted it.
    pub at: DateTime<Utc>,
}

/// Something a person must look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEscalation {
    pub id: String,
    pub tenant_id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub reason: String,
    /// low, medium or high.
    pub priority: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// Inbound work — a webhook delivery or an integrator's command, normalized — recorded
/// durably before it is acknowledged, and applied to its appointment afterwards. The
/// inbox, not an actor's mailbox, is the record of work (ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInbox {
    pub id: String,
    pub tenant_id: String,
    /// Where it came from (`booking`, `calendly`, `twilio`, …).
    pub source: String,
    /// The sender's id for it: a repeat with the same (tenant, source, key) is a duplicate.
    pub dedup_key: String,
    /// The normalized work (see `engine::inbox::InboxWork`).
    pub payload: Value,
    pub received_at: DateTime<Utc>,
}

/// Where an inbox item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    /// Acknowledged, not yet applied.
    Pending,
    /// Applied to its appointment (in the same transaction as the change it caused).
    Processed,
    /// Refused by the appointment (e.g. an invalid transition); nothing changed.
    Rejected,
    /// Could not be applied after repeated attempts: dead-lettered and escalated.
    Dead,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Pending => "pending",
            InboxStatus::Processed => "processed",
            InboxStatus::Rejected => "rejected",
            InboxStatus::Dead => "dead",
        }
    }
}

/// A stored inbox item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxRecord {
    pub item: NewInbox,
    pub status: InboxStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// What recording an inbox item found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxAccept {
    /// New: recorded, to be applied.
    Accepted,
    /// Seen before (same tenant, source and dedup key): nothing recorded.
    Duplicate,
}

/// How applying an inbox item ended, when not by a commit of its appointment.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxUpdate {
    /// The appointment refused it; nothing else changed.
    Rejected { id: String, error: String },
    /// Not applied this time; stays pending.
    Retry { id: String, error: String },
    /// Given up: dead-lettered with an escalation, atomically.
    Dead {
        id: String,
        error: String,
        escalation: NewEscalation,
    },
}

impl InboxUpdate {
    pub fn id(&self) -> &str {
        match self {
            Self::Rejected { id, .. } | Self::Retry { id, .. } | Self::Dead { id, .. } => id,
        }
    }
}

/// One atomic unit of change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    pub customer: Option<CustomerWrite>,
    pub appointment: Option<Versioned<AppointmentRecord>>,
    pub workflows: Vec<Versioned<WorkflowRecord>>,
    pub events: Vec<NewEvent>,
    /// Set or move timers (by key).
    pub set_timers: Vec<TimerSpec>,
    /// (tenant, key) of timers to cancel.
    pub cancel_timers: Vec<(String, String)>,
    /// (tenant, key) of timers that fired and were handled.
    pub fired_timers: Vec<(String, String)>,
    /// (tenant, key) of overdue timers recorded as missed.
    pub missed_timers: Vec<(String, String)>,
    pub outbox: Vec<NewOutbox>,
    pub escalations: Vec<NewEscalation>,
    /// Inbox items this change applies: marked processed in the same transaction. The
    /// commit fails with [`StoreError::AlreadyApplied`] (and writes nothing) when one
    /// of them was processed before, so inbound work takes effect exactly once.
    pub inbox_processed: Vec<String>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self == &Commit::default()
    }
}

/// Durable storage for the engine. Every method is safe to call concurrently.
pub trait Store: Send + Sync + 'static {
    /// Writes `commit` in one transaction. `Conflict` when a version check fails.
    fn commit(&self, commit: Commit) -> BoxFuture<'static, StoreResult<()>>;

    fn load_appointment(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>>;

    /// The appointment the booking system `source` calls `external_id`.
    fn find_appointment(
        &self,
        tenant_id: String,
        source: String,
        external_id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>>;

    fn load_customer(&self, id: String) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>>;

    /// Which of `customer_ids` have opted out (SPEC §5: no automated message to them).
    fn opted_out_among(
        &self,
        customer_ids: Vec<String>,
    ) -> BoxFuture<'static, StoreResult<Vec<String>>>;

    /// How many automated messages each of `customer_ids` was sent after `since`,
    /// not counting the kinds the cap exempts (SPEC §5's rolling cap). Customers sent
    /// none may be left out.
    fn sent_since_among(
        &self,
        customer_ids: Vec<String>,
        since: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<Vec<(String, u32)>>>;

    /// An appointment and its customer, read together (what an actor loads at start).
    fn load_appointment_and_customer(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<(Option<AppointmentRecord>, Option<CustomerRecord>)>>;

    /// The customer of `tenant_id` with this E.164 phone.
    fn find_customer_by_phone(
        &self,
        tenant_id: String,
        phone_e164: String,
    ) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>>;

    fn workflows_of_appointment(
        &self,
        appointment_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<WorkflowRecord>>>;

    /// Scheduled timers due at or before `until` and after `after` (in (due, key)
    /// order: the last timer an earlier read returned), soonest first.
    fn due_timers(
        &self,
        after: Option<TimerCursor>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>>;

    /// Every timer of one owner (any status), for inspection.
    fn timers_of(
        &self,
        owner_type: String,
        owner_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>>;

    /// Pending outbox rows of `domain` whose next attempt is due at `now`, oldest
    /// first; with `include_in_flight`, also rows left in flight (by a crash, or by a
    /// write that failed: their outcome must be reconciled).
    fn ready_outbox(
        &self,
        domain: ProviderDomain,
        now: DateTime<Utc>,
        limit: usize,
        include_in_flight: bool,
    ) -> BoxFuture<'static, StoreResult<Vec<OutboxRecord>>>;

    /// The earliest next attempt among pending rows of `domain`, if any.
    fn next_outbox_due(
        &self,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<DateTime<Utc>>>>;

    /// Rows of `domain` waiting to be sent (pending or in flight): the queue depth.
    fn outbox_depth(&self, domain: ProviderDomain) -> BoxFuture<'static, StoreResult<u64>>;

    fn update_outbox(&self, update: OutboxUpdate) -> BoxFuture<'static, StoreResult<()>>;

    /// Puts a dead-lettered row back in the queue (pending now, attempts from zero) and
    /// marks its dead letter replayed. `false` when the row is not dead-lettered.
    fn replay_dead_letter(
        &self,
        outbox_id: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<bool>>;

    /// Marks rows as being sent (in flight, one more attempt each), in one write, before
    /// their provider calls start: after a crash their outcome is then reconciled.
    fn claim_outbox(&self, ids: Vec<String>) -> BoxFuture<'static, StoreResult<()>>;

    /// Records inbound work durably (the caller acknowledges it only after this).
    fn accept_inbox(&self, item: NewInbox) -> BoxFuture<'static, StoreResult<InboxAccept>>;

    /// Pending inbox items, oldest first, at most `limit`.
    fn pending_inbox(&self, limit: usize) -> BoxFuture<'static, StoreResult<Vec<InboxRecord>>>;

    fn update_inbox(&self, update: InboxUpdate) -> BoxFuture<'static, StoreResult<()>>;

    /// Forgets inbox items received before `before` that are no longer pending (their
    /// dedup keys with them); returns how many. Pending items are never removed.
    fn prune_inbox(&self, before: DateTime<Utc>) -> BoxFuture<'static, StoreResult<u64>>;

    fn load_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<BreakerSnapshot>>>;

    fn save_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
        snapshot: BreakerSnapshot,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<()>>;
}
