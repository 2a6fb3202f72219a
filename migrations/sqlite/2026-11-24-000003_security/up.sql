-- Security: encrypted integration secrets, the hash-chained audit log, admin users,
-- their sessions and login attempts (for lockout), and hashed API tokens.

CREATE TABLE integration_secrets (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    occurred_at   TIMESTAMP NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT,
    subject_id    TEXT,
    details       TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);

CREATE TABLE admin_users (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    last_login_at  TIMESTAMP
);
CREATE UNIQUE INDEX admin_users_username ON admin_users (tenant_id, username);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants (tenant_id),
    user_id          TEXT NOT NULL REFERENCES admin_users (id),
    csrf_token_hash  TEXT NOT NULL,
    address          TEXT,
    user_agent       TEXT,
    created_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE login_attempts (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    username      TEXT NOT NULL,
    address       TEXT NOT NULL,
    success       BOOLEAN NOT NULL,
    attempted_at  TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_lookup ON login_attempts (tenant_id, username, address, attempted_at);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    token_hash    TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP,
    expires_at    TIMESTAMP,
    revoked_at    TIMESTAMP
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);
