-- Indexes shaped like the engine's hot queries (found by `aro bench engine`: the outbox
-- poll scanned the whole table, because a partial index on status IN (…) does not serve
-- a query for one status).
DROP INDEX outbox_pending;
CREATE INDEX outbox_due ON outbox (domain, status, next_attempt_at, id);
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (due_at, timer_key) WHERE status = 'scheduled';
