-- Engine: the append-only event log (its sequence is the public cursor), the durable
-- webhook inbox, command records, idempotency keys, workflow instances, durable timers,
-- the transactional outbox, dead letters, escalations, circuit-breaker state and
-- event subscriptions.

CREATE TABLE events (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id           TEXT NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    event_type         TEXT NOT NULL,
    aggregate_type     TEXT NOT NULL,
    aggregate_id       TEXT NOT NULL,
    aggregate_version  BIGINT NOT NULL,
    occurred_at        TIMESTAMP NOT NULL,
    recorded_at        TIMESTAMP NOT NULL,
    profile            TEXT NOT NULL,
    payload            TEXT NOT NULL,
    workflow_id        TEXT,
    correlation_id     TEXT,
    causation_id       TEXT
);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_tenant_cursor ON events (tenant_id, seq);
CREATE INDEX events_aggregate ON events (aggregate_type, aggregate_id, seq);

CREATE TABLE inbox (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    source        TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    received_at   TIMESTAMP NOT NULL,
    processed_at  TIMESTAMP
);
CREATE UNIQUE INDEX inbox_dedup ON inbox (tenant_id, source, dedup_key);
CREATE INDEX inbox_pending ON inbox (received_at) WHERE status = 'pending';

CREATE TABLE commands (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    command_type     TEXT NOT NULL,
    aggregate_type   TEXT NOT NULL,
    aggregate_id     TEXT NOT NULL,
    status           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    correlation_id   TEXT NOT NULL,
    workflow_id      TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX commands_tenant_time ON commands (tenant_id, created_at);

CREATE TABLE idempotency_keys (
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    scope            TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status           TEXT NOT NULL,
    response_status  INTEGER,
    response_body    TEXT,
    resource_id      TEXT,
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE workflow_instances (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    kind            TEXT NOT NULL,
    appointment_id  TEXT,
    customer_id     TEXT,
    state           TEXT NOT NULL,
    step            TEXT NOT NULL,
    data            TEXT NOT NULL,
    retry_count     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    version         BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    completed_at    TIMESTAMP
);
CREATE INDEX workflow_instances_appointment ON workflow_instances (tenant_id, appointment_id);
CREATE INDEX workflow_instances_active ON workflow_instances (tenant_id, state) WHERE state NOT IN ('completed', 'failed', 'cancelled');

CREATE TABLE timers (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    timer_key   TEXT NOT NULL,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    due_at      TIMESTAMP NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL,
    fired_at    TIMESTAMP,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX timers_key ON timers (tenant_id, timer_key);
CREATE INDEX timers_due ON timers (due_at) WHERE status = 'scheduled';
CREATE INDEX timers_owner ON timers (owner_type, owner_id);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    domain           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    owner_type       TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMP NOT NULL,
    provider_ref     TEXT,
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX outbox_idempotency ON outbox (tenant_id, idempotency_key);
CREATE INDEX outbox_pending ON outbox (domain, next_attempt_at) WHERE status IN ('pending', 'in_flight', 'unknown');

CREATE TABLE dead_letters (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    outbox_id    TEXT,
    domain       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    error        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    resolved_at  TIMESTAMP,
    resolved_by  TEXT
);
CREATE INDEX dead_letters_open ON dead_letters (tenant_id, status, created_at);

CREATE TABLE escalations (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    appointment_id  TEXT,
    customer_id     TEXT,
    reason          TEXT NOT NULL,
    priority        TEXT NOT NULL,
    status          TEXT NOT NULL,
    details         TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    resolved_at     TIMESTAMP,
    resolved_by     TEXT,
    resolution      TEXT
);
CREATE INDEX escalations_inbox ON escalations (tenant_id, status, priority, created_at);
CREATE INDEX escalations_appointment ON escalations (appointment_id);

CREATE TABLE breaker_state (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    domain             TEXT NOT NULL,
    state              TEXT NOT NULL,
    failure_count      INTEGER NOT NULL DEFAULT 0,
    success_count      INTEGER NOT NULL DEFAULT 0,
    window_started_at  TIMESTAMP,
    opened_at          TIMESTAMP,
    updated_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    url                TEXT NOT NULL,
    secret_nonce       BLOB NOT NULL,
    secret_ciphertext  BLOB NOT NULL,
    event_types        TEXT NOT NULL,
    status             TEXT NOT NULL,
    cursor             BIGINT NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMP,
    last_error         TEXT,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, status);
