-- A provider's status report (e.g. Twilio's MessageSid + status) is recorded once.
CREATE UNIQUE INDEX message_status_history_event ON message_status_history (tenant_id, provider_event_id);
