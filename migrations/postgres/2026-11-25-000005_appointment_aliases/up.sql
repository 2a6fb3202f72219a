-- Other names a booking system uses for an appointment. A Calendly reschedule cancels
-- the old invitee and creates a new one; every invitee of such a chain names the one
-- appointment (the first invitee's), so later deliveries about the newest invitee —
-- its cancellation, a no-show, a further reschedule — reach the appointment that moved.
-- Written when the delivery is acknowledged, before its work is applied, and never
-- changed afterwards: the first binding of an external id holds.

CREATE TABLE appointment_aliases (
    tenant_id       TEXT NOT NULL REFERENCES tenants (tenant_id),
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    appointment_id  TEXT NOT NULL,
    replaces        TEXT,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, source, external_id)
);
