//! `DieselStore`: the engine's `Store` port on the daemon's database.
//!
//! Reads run on the blocking pool. Writes — commits, outbox outcomes, breaker state —
//! go to one writer thread that groups whatever is waiting into a single transaction,
//! each write in its own savepoint: on SQLite with `synchronous=FULL` many writes then
//! share one fsync (group commit), and one write's conflict does not undo the others.
//! A write is acknowledged only after the transaction holding it has committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actors::ports::clock::Clock;
use actors::ports::store::{
    AppointmentRecord, Commit, CustomerRecord, InboxAccept, InboxRecord, InboxUpdate, NewInbox,
    OutboxRecord, OutboxUpdate, ProviderDomain, Store, StoreError as PortError, StoreResult,
    TimerCursor, TimerRecord, WorkflowRecord,
};
use actors::ports::BoxFuture;
use actors::resilience::breaker::BreakerSnapshot;
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::engine_queries::{self as queries, QueryError};
use super::inbox_queries;
use super::models::{to_naive, BreakerRow};
use super::{Database, DbConnection, StoreError};

/// Writes grouped into one transaction at most.
const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before callers are made to wait (back-pressure).
const QUEUE: usize = 16 * 1024;

enum Write {
    Commit(Box<Commit>),
    Outbox(OutboxUpdate),
    Breaker(BreakerRow),
    Inbox(InboxUpdate),
    Accept(NewInbox),
    Claim(Vec<String>),
    Replay(String),
    Prune(DateTime<Utc>),
}

/// What a committed write reports back.
enum Written {
    Done,
    /// Recording inbound work answers whether it was new.
    Inbox(InboxAccept),
    /// Whether a conditional change applied.
    Applied(bool),
    /// How many rows a change touched.
    Count(u64),
}

struct Job {
    write: Write,
    reply: oneshot::Sender<StoreResult<Written>>,
}

/// What the writer thread has done since it started (for benchmarks and diagnosis).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (one per group).
    pub commits: u64,
    /// Writes they held.
    pub writes: u64,
    /// Time spent running the writes' statements, in microseconds.
    pub statements_us: u64,
    /// Time spent in `COMMIT` (on SQLite with `synchronous=FULL`: the fsync), in
    /// microseconds.
    pub commit_us: u64,
}

#[derive(Debug, Default)]
struct WriterCounters {
    commits: AtomicU64,
    writes: AtomicU64,
    statements_us: AtomicU64,
    commit_us: AtomicU64,
}

/// The engine's store on SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct DieselStore {
    db: Database,
    writer: mpsc::Sender<Job>,
    counters: Arc<WriterCounters>,
}

impl DieselStore {
    /// Starts the writer thread. It stops when the last clone of the store is dropped.
    pub fn start(db: Database, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let (writer, jobs) = mpsc::channel(QUEUE);
        let thread_db = db.clone();
        let counters = Arc::new(WriterCounters::default());
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("aro-store-writer".to_string())
            .spawn(move || write_loop(thread_db, clock, jobs, &thread_counters))?;
        Ok(Self {
            db,
            writer,
            counters,
        })
    }

    /// The writer's counters so far.
    pub fn writer_stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            statements_us: c.statements_us.load(Ordering::Relaxed),
            commit_us: c.commit_us.load(Ordering::Relaxed),
        }
    }

    fn write(&self, write: Write) -> BoxFuture<'static, StoreResult<()>> {
        let written = self.write_reporting(write);
        Box::pin(async move { written.await.map(|_| ()) })
    }

    /// A write whose answer is one kind of [`Written`], picked by `pick`.
    fn write_answering<T: Send + 'static>(
        &self,
        write: Write,
        pick: fn(Written) -> Option<T>,
    ) -> BoxFuture<'static, StoreResult<T>> {
        let written = self.write_reporting(write);
        Box::pin(async move {
            pick(written.await?)
                .ok_or_else(|| PortError::Failed("the writer answered another kind".into()))
        })
    }

    fn write_reporting(&self, write: Write) -> BoxFuture<'static, StoreResult<Written>> {
        let writer = self.writer.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            writer
                .send(Job { write, reply })
                .await
                .map_err(|_| PortError::Unavailable("the store writer has stopped".into()))?;
            answer
                .await
                .map_err(|_| PortError::Unavailable("the store writer has stopped".into()))?
        })
    }

    fn read<T, F>(&self, work: F) -> BoxFuture<'static, StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, QueryError> + Send + 'static,
    {
        let db = self.db.clone();
        Box::pin(async move {
            match db.run(move |conn| Ok(work(conn))).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err)) => Err(port_error(err)),
                Err(err) => Err(store_error(err)),
            }
        })
    }
}

fn write_loop(
    db: Database,
    clock: Arc<dyn Clock>,
    mut jobs: mpsc::Receiver<Job>,
    counters: &WriterCounters,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = write_batch(&db, clock.now(), &batch, counters);
        metrics::histogram!("aro_store_group_commit_size").record(batch.len() as f64);
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// Writes a batch in one transaction; returns each write's own outcome.
fn write_batch(
    db: &Database,
    now: DateTime<Utc>,
    batch: &[Job],
    counters: &WriterCounters,
) -> Vec<StoreResult<Written>> {
    let fail_all = |err: PortError| batch.iter().map(|_| Err(err.clone())).collect();
    let mut conn = match db.get() {
        Ok(conn) => conn,
        Err(err) => return fail_all(store_error(err)),
    };
    let mut new_id = || uuid::Uuid::now_v7().to_string();
    let started = Instant::now();
    let mut statements_done = started;
    let outcome = conn.transaction::<_, DieselError, _>(|conn| {
        let mut results = Vec::with_capacity(batch.len());
        for job in batch {
            let result = conn.transaction::<Written, QueryError, _>(|conn| {
                let done = |_| Written::Done;
                match &job.write {
                    Write::Commit(commit) => {
                        queries::apply_commit(conn, commit, &mut new_id, now).map(done)
                    }
                    Write::Outbox(update) => {
                        queries::apply_outbox_update(conn, update, &mut new_id, now).map(done)
                    }
                    Write::Breaker(row) => queries::save_breaker(conn, row).map(done),
                    Write::Inbox(update) => {
                        inbox_queries::update(conn, update, &mut new_id, now).map(done)
                    }
                    Write::Accept(item) => inbox_queries::accept(conn, item).map(Written::Inbox),
                    Write::Claim(ids) => queries::claim_outbox(conn, ids, now).map(done),
                    Write::Replay(id) => {
                        queries::replay_dead_letter(conn, id, now).map(Written::Applied)
                    }
                    Write::Prune(before) => inbox_queries::prune(conn, *before).map(Written::Count),
                }
            });
            results.push(result.map_err(port_error));
        }
        statements_done = Instant::now();
        Ok(results)
    });
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    counters
        .statements_us
        .fetch_add(micros(statements_done - started), Ordering::Relaxed);
    counters
        .commit_us
        .fetch_add(micros(statements_done.elapsed()), Ordering::Relaxed);
    match outcome {
        Ok(results) => results,
        Err(err) => fail_all(port_error(QueryError::Diesel(err))),
    }
}

fn store_error(err: StoreError) -> PortError {
    match err {
        StoreError::Unavailable(reason) => PortError::Unavailable(reason),
        StoreError::Query(err) => port_error(QueryError::Diesel(err)),
        other => PortError::Failed(other.to_string()),
    }
}

fn port_error(err: QueryError) -> PortError {
    match err {
        QueryError::Conflict(reason) => PortError::Conflict(reason),
        QueryError::AlreadyApplied(what) => PortError::AlreadyApplied(what),
        QueryError::Diesel(DieselError::DatabaseError(kind, info)) => {
            let message = info.message().to_string();
            let transient = matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ) || message.contains("database is locked")
                || message.contains("database is busy");
            if transient {
                PortError::Unavailable(message)
            } else if kind == DatabaseErrorKind::UniqueViolation {
                PortError::Conflict(message)
            } else {
                PortError::Failed(message)
            }
        }
        other => PortError::Failed(other.to_string()),
    }
}

impl Store for DieselStore {
    fn commit(&self, commit: Commit) -> BoxFuture<'static, StoreResult<()>> {
        if commit.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        self.write(Write::Commit(Box::new(commit)))
    }

    fn load_appointment(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>> {
        self.read(move |conn| queries::load_appointment(conn, &id))
    }

    fn find_appointment(
        &self,
        tenant_id: String,
        source: String,
        external_id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>> {
        self.read(move |conn| queries::find_appointment(conn, &tenant_id, &source, &external_id))
    }

    fn load_customer(&self, id: String) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>> {
        self.read(move |conn| queries::load_customer(conn, &id))
    }

    fn opted_out_among(
        &self,
        customer_ids: Vec<String>,
    ) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        self.read(move |conn| queries::opted_out_among(conn, &customer_ids))
    }

    fn sent_since_among(
        &self,
        customer_ids: Vec<String>,
        since: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<Vec<(String, u32)>>> {
        self.read(move |conn| {
            super::message_queries::sent_since_among(
                conn,
                &customer_ids,
                since,
                &actors::domain::message_cap::EXEMPT_KINDS,
            )
        })
    }

    fn load_appointment_and_customer(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<(Option<AppointmentRecord>, Option<CustomerRecord>)>> {
        self.read(move |conn| {
            let appointment = queries::load_appointment(conn, &id)?;
            let customer = match &appointment {
                Some(a) => queries::load_customer(conn, &a.customer_id)?,
                None => None,
            };
            Ok((appointment, customer))
        })
    }

    fn find_customer_by_phone(
        &self,
        tenant_id: String,
        phone_e164: String,
    ) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>> {
        self.read(move |conn| queries::find_customer_by_phone(conn, &tenant_id, &phone_e164))
    }

    fn workflows_of_appointment(
        &self,
        appointment_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<WorkflowRecord>>> {
        self.read(move |conn| queries::workflows_of_appointment(conn, &appointment_id))
    }

    fn due_timers(
        &self,
        after: Option<TimerCursor>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>> {
        self.read(move |conn| queries::due_timers(conn, after.as_ref(), until, limit))
    }

    fn timers_of(
        &self,
        owner_type: String,
        owner_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>> {
        self.read(move |conn| queries::timers_of(conn, &owner_type, &owner_id))
    }

    fn ready_outbox(
        &self,
        domain: ProviderDomain,
        now: DateTime<Utc>,
        limit: usize,
        include_in_flight: bool,
    ) -> BoxFuture<'static, StoreResult<Vec<OutboxRecord>>> {
        self.read(move |conn| queries::ready_outbox(conn, domain, now, limit, include_in_flight))
    }

    fn next_outbox_due(
        &self,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<DateTime<Utc>>>> {
        self.read(move |conn| queries::next_outbox_due(conn, domain))
    }

    fn outbox_depth(&self, domain: ProviderDomain) -> BoxFuture<'static, StoreResult<u64>> {
        self.read(move |conn| queries::outbox_depth(conn, domain))
    }

    fn update_outbox(&self, update: OutboxUpdate) -> BoxFuture<'static, StoreResult<()>> {
        self.write(Write::Outbox(update))
    }

    fn replay_dead_letter(
        &self,
        outbox_id: String,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write_answering(Write::Replay(outbox_id), |written| match written {
            Written::Applied(applied) => Some(applied),
            _ => None,
        })
    }

    fn claim_outbox(&self, ids: Vec<String>) -> BoxFuture<'static, StoreResult<()>> {
        self.write(Write::Claim(ids))
    }

    fn accept_inbox(&self, item: NewInbox) -> BoxFuture<'static, StoreResult<InboxAccept>> {
        self.write_answering(Write::Accept(item), |written| match written {
            Written::Inbox(accepted) => Some(accepted),
            _ => None,
        })
    }

    fn pending_inbox(&self, limit: usize) -> BoxFuture<'static, StoreResult<Vec<InboxRecord>>> {
        self.read(move |conn| inbox_queries::pending(conn, limit))
    }

    fn update_inbox(&self, update: InboxUpdate) -> BoxFuture<'static, StoreResult<()>> {
        self.write(Write::Inbox(update))
    }

    fn prune_inbox(&self, before: DateTime<Utc>) -> BoxFuture<'static, StoreResult<u64>> {
        // Through the writer like every other write: on SQLite a second writing
        // connection would contend with the group commit for the lock.
        self.write_answering(Write::Prune(before), |written| match written {
            Written::Count(removed) => Some(removed),
            _ => None,
        })
    }

    fn load_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<BreakerSnapshot>>> {
        self.read(move |conn| queries::load_breaker(conn, &tenant_id, domain))
    }

    fn save_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
        snapshot: BreakerSnapshot,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(Write::Breaker(BreakerRow::new(
            tenant_id,
            domain,
            &snapshot,
            to_naive(now),
        )))
    }
}
