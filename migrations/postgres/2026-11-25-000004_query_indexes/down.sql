DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (due_at) WHERE status = 'scheduled';
DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (domain, next_attempt_at) WHERE status IN ('pending', 'in_flight', 'unknown');
