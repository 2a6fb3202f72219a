-- Core domain: tenants, their business configuration, customers, consents,
-- appointments and the message log (outbound and inbound) with delivery history.

CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    profile     TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    phone       TEXT,
    country     TEXT NOT NULL,
    currency    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE business_config (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE customers (
    id                      TEXT PRIMARY KEY NOT NULL,
    tenant_id               TEXT NOT NULL REFERENCES tenants (tenant_id),
    pseudonym               TEXT NOT NULL,
    phone_e164              TEXT,
    name                    TEXT,
    email                   TEXT,
    timezone                TEXT,
    language                TEXT,
    appointment_count       INTEGER NOT NULL DEFAULT 0,
    confirmed_count         INTEGER NOT NULL DEFAULT 0,
    no_show_count           INTEGER NOT NULL DEFAULT 0,
    reschedule_count        INTEGER NOT NULL DEFAULT 0,
    payment_past_due        BOOLEAN NOT NULL DEFAULT FALSE,
    risk_score              INTEGER NOT NULL DEFAULT 0,
    requires_deposit        BOOLEAN NOT NULL DEFAULT FALSE,
    opted_out               BOOLEAN NOT NULL DEFAULT FALSE,
    last_review_request_at  TIMESTAMP,
    erased_at               TIMESTAMP,
    created_at              TIMESTAMP NOT NULL,
    updated_at              TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX customers_tenant_phone ON customers (tenant_id, phone_e164);
CREATE UNIQUE INDEX customers_tenant_pseudonym ON customers (tenant_id, pseudonym);
CREATE INDEX customers_tenant_risk ON customers (tenant_id, risk_score);

CREATE TABLE consents (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    channel      TEXT NOT NULL,
    status       TEXT NOT NULL,
    source       TEXT NOT NULL,
    evidence     TEXT,
    recorded_at  TIMESTAMP NOT NULL
);
CREATE INDEX consents_customer ON consents (tenant_id, customer_id, recorded_at);

CREATE TABLE appointments (
    id                    TEXT PRIMARY KEY NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_id           TEXT NOT NULL REFERENCES customers (id),
    source                TEXT NOT NULL,
    external_id           TEXT NOT NULL,
    status                TEXT NOT NULL,
    starts_at             TIMESTAMP NOT NULL,
    ends_at               TIMESTAMP NOT NULL,
    timezone              TEXT NOT NULL,
    service_type          TEXT,
    service_cost_cents    BIGINT,
    currency              TEXT,
    cancel_url            TEXT,
    reschedule_url        TEXT,
    deposit_status        TEXT NOT NULL DEFAULT 'none',
    deposit_amount_cents  BIGINT,
    notes                 TEXT,
    version               BIGINT NOT NULL DEFAULT 0,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX appointments_external ON appointments (tenant_id, source, external_id);
CREATE INDEX appointments_upcoming ON appointments (tenant_id, starts_at);
CREATE INDEX appointments_status_time ON appointments (tenant_id, status, starts_at);
CREATE INDEX appointments_customer ON appointments (customer_id, starts_at);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY NOT NULL,
    tenant_id            TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_id          TEXT REFERENCES customers (id),
    appointment_id       TEXT REFERENCES appointments (id),
    direction            TEXT NOT NULL,
    channel              TEXT NOT NULL,
    kind                 TEXT,
    body                 TEXT NOT NULL,
    from_addr            TEXT,
    to_addr              TEXT,
    provider             TEXT NOT NULL,
    provider_message_id  TEXT,
    status               TEXT NOT NULL,
    encoding             TEXT,
    segments             INTEGER,
    sandbox              BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key      TEXT,
    error_code           TEXT,
    sent_at              TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
CREATE INDEX messages_customer_time ON messages (tenant_id, customer_id, created_at);
CREATE INDEX messages_appointment ON messages (appointment_id, created_at);
CREATE UNIQUE INDEX messages_provider_id ON messages (provider, provider_message_id);
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, idempotency_key);

CREATE TABLE message_status_history (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    message_id         TEXT NOT NULL REFERENCES messages (id),
    status             TEXT NOT NULL,
    error_code         TEXT,
    provider_event_id  TEXT,
    occurred_at        TIMESTAMP NOT NULL
);
CREATE INDEX message_status_history_message ON message_status_history (message_id, occurred_at);
