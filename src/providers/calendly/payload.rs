//! Calendly v2 webhook bodies, parsed into what ARO acts on. Pure.
//!
//! A delivery is `{"event": "invitee.created", "created_at": "…", "created_by": "…",
//! "payload": {…}}`. For `invitee.created` and `invitee.canceled` the payload is the
//! Invitee resource (`uri`, `name`, `email`, `text_reminder_number`, `timezone`,
//! `questions_and_answers`, `cancel_url`, `reschedule_url`, `rescheduled`,
//! `old_invitee`, `new_invitee`, `cancellation`, …) with the Scheduled Event embedded
//! as `scheduled_event` (`uri`, `name`, `start_time`, `end_time`, `event_type`,
//! `location`, `status`). For `invitee_no_show.created` / `.deleted` the payload is the
//! no-show: `uri` and `invitee` (the invitee's URI).
//!
//! A reschedule arrives as two deliveries: `invitee.canceled` for the old invitee with
//! `rescheduled: true` (and `new_invitee`), and `invitee.created` for the new one whose
//! `old_invitee` names the old. Consumers move the appointment rather than cancel and
//! re-create it (SPEC §6).
//!
//! The sync adapter ([`super::client`]) hands out the same Invitee-with-
//! `scheduled_event` shape, so [`parse_invitee`] serves both paths.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::phone::{find_phone, PhoneSource};

/// A booked invitee: what a booking is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// `https://api.calendly.com/scheduled_events/{event}/invitees/{invitee}`: the
    /// booking's external id.
    pub invitee_uri: String,
    pub event_uri: String,
    /// On a reschedule, the invitee this one replaces.
    pub old_invitee: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The invitee's IANA time zone, as Calendly reports it.
    pub timezone: Option<String>,
    /// The scheduled event's name (the event type's name), e.g. "30 Minute Consultation".
    pub service: String,
    pub name: String,
    pub email: Option<String>,
    /// The phone in E.164, from `text_reminder_number` or a phone question.
    pub phone_e164: Option<String>,
    /// Where `phone_e164` came from: a `text_reminder_number` was given for text
    /// reminders, which SPEC §4 counts as consent.
    pub phone_source: Option<PhoneSource>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    /// The invitee's own status (`active` / `canceled`) when present.
    pub status: Option<String>,
}

/// A Calendly webhook event, reduced to what ARO acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendlyEvent {
    /// `invitee.created`: a booking, or the new half of a reschedule (`old_invitee`).
    InviteeCreated(Invitee),
    /// `invitee.canceled`; with `rescheduled` it is the old half of a reschedule.
    InviteeCanceled {
        invitee_uri: String,
        event_uri: String,
        rescheduled: bool,
        new_invitee: Option<String>,
        /// The canceller's name as Calendly reports it.
        canceled_by: Option<String>,
        /// `host` or `invitee`.
        canceler_type: Option<String>,
        reason: Option<String>,
    },
    /// `invitee_no_show.created`: the host marked the invitee a no-show.
    NoShowCreated { invitee_uri: String },
    /// `invitee_no_show.deleted`: the mark was removed.
    NoShowDeleted { invitee_uri: String },
    /// Any other event (e.g. `routing_form_submission.created`): acknowledge, ignore.
    Ignored { event_name: String },
}

impl CalendlyEvent {
    /// The invitee the event is about, if any.
    pub fn invitee_uri(&self) -> Option<&str> {
        match self {
            Self::InviteeCreated(invitee) => Some(&invitee.invitee_uri),
            Self::InviteeCanceled { invitee_uri, .. }
            | Self::NoShowCreated { invitee_uri }
            | Self::NoShowDeleted { invitee_uri } => Some(invitee_uri),
            Self::Ignored { .. } => None,
        }
    }
}

/// One webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendlyWebhook {
    /// `event`: `invitee.created`, `invitee.canceled`, …
    pub event_name: String,
    /// When Calendly created the event; the same on every retry of the delivery.
    pub created_at: DateTime<Utc>,
    pub event: CalendlyEvent,
    /// `payload.uri`: the invitee, no-show or other resource.
    pub payload_uri: Option<String>,
}

impl CalendlyWebhook {
    /// The deduplication key: [`dedup_key`] of the event name, the invitee URI (the
    /// payload's URI for other events) and `created_at`.
    pub fn dedup_key(&self) -> String {
        let subject = self
            .event
            .invitee_uri()
            .or(self.payload_uri.as_deref())
            .unwrap_or("");
        dedup_key(&self.event_name, subject, self.created_at)
    }
}

/// SHA-256 hex of the event name, invitee URI and creation time (RFC 3339, UTC,
/// microseconds), newline-separated: Calendly deliveries carry no id of their own
/// (SPEC §6: "Calendly a hash of event, invitee URI and time").
pub fn dedup_key(event_name: &str, invitee_uri: &str, created_at: DateTime<Utc>) -> String {
    let mut hash = Sha256::new();
    hash.update(event_name.as_bytes());
    hash.update(b"\n");
    hash.update(invitee_uri.as_bytes());
    hash.update(b"\n");
    hash.update(
        created_at
            .to_rfc3339_opts(SecondsFormat::Micros, true)
            .as_bytes(),
    );
    hex::encode(hash.finalize())
}

/// Why a body is not a usable Calendly delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendlyPayloadError {
    #[error("the body is not a JSON Calendly webhook: {0}")]
    Malformed(String),
    #[error("the delivery has no {0}")]
    Missing(&'static str),
    #[error("{field} is not an RFC 3339 time")]
    BadTime { field: &'static str },
}

#[derive(Deserialize)]
struct Envelope {
    event: Option<String>,
    created_at: Option<String>,
    payload: Option<Value>,
}

#[derive(Deserialize)]
struct QuestionAnswer {
    #[serde(default)]
    question: String,
    #[serde(default)]
    answer: Option<String>,
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn time(
    value: &Value,
    key: &str,
    field: &'static str,
) -> Result<DateTime<Utc>, CalendlyPayloadError> {
    let raw = value
        .get(key)
        .and_then(Value::as_str)
        .ok_or(CalendlyPayloadError::Missing(field))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| CalendlyPayloadError::BadTime { field })
}

/// The event URI: the invitee's `event`, else the embedded event's `uri`.
fn event_uri(invitee: &Value) -> Result<String, CalendlyPayloadError> {
    text(invitee, "event")
        .or_else(|| invitee.get("scheduled_event").and_then(|e| text(e, "uri")))
        .ok_or(CalendlyPayloadError::Missing("payload.event"))
}

/// Builds an [`Invitee`] from an Invitee resource with its Scheduled Event embedded as
/// `scheduled_event` (a webhook payload, or what the sync adapter returns as a
/// `BookedEvent::payload`). `default_country` (ISO alpha-2) places national numbers.
pub fn parse_invitee(
    resource: &Value,
    default_country: &str,
) -> Result<Invitee, CalendlyPayloadError> {
    let invitee_uri = text(resource, "uri").ok_or(CalendlyPayloadError::Missing("payload.uri"))?;
    let event_uri = event_uri(resource)?;
    let event = resource
        .get("scheduled_event")
        .filter(|e| e.is_object())
        .ok_or(CalendlyPayloadError::Missing("payload.scheduled_event"))?;
    let starts_at = time(event, "start_time", "scheduled_event.start_time")?;
    let ends_at = time(event, "end_time", "scheduled_event.end_time")?;
    let name = text(resource, "name")
        .or_else(|| {
            let parts: Vec<String> = ["first_name", "last_name"]
                .iter()
                .filter_map(|k| text(resource, k))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .ok_or(CalendlyPayloadError::Missing("payload.name"))?;
    let answers: Vec<QuestionAnswer> = resource
        .get("questions_and_answers")
        .cloned()
        .and_then(|qa| serde_json::from_value(qa).ok())
        .unwrap_or_default();
    let phone = find_phone(
        text(resource, "text_reminder_number").as_deref(),
        answers
            .iter()
            .filter_map(|qa| Some((qa.question.as_str(), qa.answer.as_deref()?))),
        default_country,
    );
    Ok(Invitee {
        invitee_uri,
        event_uri,
        old_invitee: text(resource, "old_invitee"),
        starts_at,
        ends_at,
        timezone: text(resource, "timezone"),
        service: text(event, "name").unwrap_or_default(),
        name,
        email: text(resource, "email"),
        phone_source: phone.as_ref().map(|(_, source)| *source),
        phone_e164: phone.map(|(number, _)| number),
        cancel_url: text(resource, "cancel_url"),
        reschedule_url: text(resource, "reschedule_url"),
        status: text(resource, "status"),
    })
}

fn canceled(invitee: &Value) -> Result<CalendlyEvent, CalendlyPayloadError> {
    let cancellation = invitee.get("cancellation").cloned().unwrap_or(Value::Null);
    Ok(CalendlyEvent::InviteeCanceled {
        invitee_uri: text(invitee, "uri").ok_or(CalendlyPayloadError::Missing("payload.uri"))?,
        event_uri: event_uri(invitee)?,
        rescheduled: invitee
            .get("rescheduled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        new_invitee: text(invitee, "new_invitee"),
        canceled_by: text(&cancellation, "canceled_by"),
        canceler_type: text(&cancellation, "canceler_type"),
        reason: text(&cancellation, "reason"),
    })
}

/// The invitee a no-show is about: `payload.invitee`, else (when the payload is the
/// invitee itself) its `uri`.
fn no_show_invitee(payload: &Value) -> Result<String, CalendlyPayloadError> {
    text(payload, "invitee")
        .or_else(|| text(payload, "uri").filter(|uri| uri.contains("/invitees/")))
        .ok_or(CalendlyPayloadError::Missing("payload.invitee"))
}

/// Parses a webhook body (after [`super::verify_signature`]).
pub fn parse(body: &[u8], default_country: &str) -> Result<CalendlyWebhook, CalendlyPayloadError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| CalendlyPayloadError::Malformed(e.to_string()))?;
    let event_name = envelope
        .event
        .filter(|e| !e.is_empty())
        .ok_or(CalendlyPayloadError::Missing("event"))?;
    let created_at_raw = envelope
        .created_at
        .ok_or(CalendlyPayloadError::Missing("created_at"))?;
    let created_at = DateTime::parse_from_rfc3339(&created_at_raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| CalendlyPayloadError::BadTime {
            field: "created_at",
        })?;
    let payload = envelope
        .payload
        .filter(Value::is_object)
        .ok_or(CalendlyPayloadError::Missing("payload"))?;
    let event = match event_name.as_str() {
        "invitee.created" => {
            CalendlyEvent::InviteeCreated(parse_invitee(&payload, default_country)?)
        }
        "invitee.canceled" => canceled(&payload)?,
        "invitee_no_show.created" => CalendlyEvent::NoShowCreated {
            invitee_uri: no_show_invitee(&payload)?,
        },
        "invitee_no_show.deleted" => CalendlyEvent::NoShowDeleted {
            invitee_uri: no_show_invitee(&payload)?,
        },
        _ => CalendlyEvent::Ignored {
            event_name: event_name.clone(),
        },
    };
    Ok(CalendlyWebhook {
        event_name,
        created_at,
        event,
        payload_uri: text(&payload, "uri"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2";
    const INVITEE: &str =
        "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA";

    /// Shaped like Calendly's documented `invitee.created` delivery.
    fn created_body() -> String {
        format!(
            r#"{{
  "created_at": "2026-03-01T10:00:03.000000Z",
  "created_by": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
  "event": "invitee.created",
  "payload": {{
    "cancel_url": "https://calendly.com/cancellations/AAAAAAAAAAAAAAAA",
    "created_at": "2026-03-01T10:00:02.000000Z",
    "email": "jane@example.com",
    "event": "{EVENT}",
    "first_name": "Jane",
    "last_name": "Smith",
    "name": "Jane Smith",
    "new_invitee": null,
    "no_show": null,
    "old_invitee": null,
    "payment": null,
    "questions_and_answers": [
      {{"answer": "First visit", "position": 0, "question": "What brings you in?"}},
      {{"answer": "(555) 987-6543", "position": 1, "question": "Mobile phone"}}
    ],
    "reconfirmation": null,
    "reschedule_url": "https://calendly.com/reschedulings/AAAAAAAAAAAAAAAA",
    "rescheduled": false,
    "routing_form_submission": null,
    "scheduled_event": {{
      "created_at": "2026-03-01T10:00:02.000000Z",
      "end_time": "2026-03-20T15:30:00.000000Z",
      "event_guests": [],
      "event_memberships": [{{"user": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA"}}],
      "event_type": "https://api.calendly.com/event_types/BBBBBBBBBBBBBBBB",
      "invitees_counter": {{"active": 1, "limit": 1, "total": 1}},
      "location": {{"location": "123 Main St", "type": "physical"}},
      "name": "30 Minute Consultation",
      "start_time": "2026-03-20T15:00:00.000000Z",
      "status": "active",
      "updated_at": "2026-03-01T10:00:02.000000Z",
      "uri": "{EVENT}"
    }},
    "status": "active",
    "text_reminder_number": "+1 555-123-4567",
    "timezone": "America/New_York",
    "tracking": {{"utm_campaign": null, "utm_source": null}},
    "updated_at": "2026-03-01T10:00:02.000000Z",
    "uri": "{INVITEE}"
  }}
}}"#
        )
    }

    #[test]
    fn invitee_created_parses() {
        let hook = parse(created_body().as_bytes(), "US").expect("parses");
        assert_eq!(hook.event_name, "invitee.created");
        let CalendlyEvent::InviteeCreated(inv) = &hook.event else {
            panic!("{hook:?}");
        };
        assert_eq!(inv.invitee_uri, INVITEE);
        assert_eq!(inv.event_uri, EVENT);
        assert_eq!(inv.old_invitee, None);
        assert_eq!(inv.starts_at.to_rfc3339(), "2026-03-20T15:00:00+00:00");
        assert_eq!(inv.ends_at.to_rfc3339(), "2026-03-20T15:30:00+00:00");
        assert_eq!(inv.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(inv.service, "30 Minute Consultation");
        assert_eq!(inv.name, "Jane Smith");
        assert_eq!(inv.email.as_deref(), Some("jane@example.com"));
        assert_eq!(inv.phone_e164.as_deref(), Some("+15551234567"));
        assert_eq!(inv.phone_source, Some(PhoneSource::TextReminderNumber));
        assert_eq!(
            inv.cancel_url.as_deref(),
            Some("https://calendly.com/cancellations/AAAAAAAAAAAAAAAA")
        );
        assert!(inv.reschedule_url.is_some());
    }

    #[test]
    fn phone_falls_back_to_the_phone_question() {
        let body = created_body().replace(
            r#""text_reminder_number": "+1 555-123-4567""#,
            r#""text_reminder_number": null"#,
        );
        let hook = parse(body.as_bytes(), "US").expect("parses");
        let CalendlyEvent::InviteeCreated(inv) = hook.event else {
            panic!("not created");
        };
        assert_eq!(inv.phone_e164.as_deref(), Some("+15559876543"));
        assert_eq!(inv.phone_source, Some(PhoneSource::Question));
    }

    #[test]
    fn name_from_first_and_last_when_name_is_absent() {
        let body = created_body().replace(r#""name": "Jane Smith","#, "");
        let CalendlyEvent::InviteeCreated(inv) =
            parse(body.as_bytes(), "US").expect("parses").event
        else {
            panic!("not created");
        };
        assert_eq!(inv.name, "Jane Smith");
    }

    #[test]
    fn no_show_payloads_parse() {
        let created = br#"{"created_at": "2026-03-20T16:05:00.000000Z", "created_by": "https://api.calendly.com/users/AAAA", "event": "invitee_no_show.created",
            "payload": {"created_at": "2026-03-20T16:05:00.000000Z", "invitee": "https://api.calendly.com/scheduled_events/E1/invitees/I1", "uri": "https://api.calendly.com/invitee_no_shows/N1"}}"#;
        let hook = parse(created, "US").expect("parses");
        assert_eq!(
            hook.event,
            CalendlyEvent::NoShowCreated {
                invitee_uri: "https://api.calendly.com/scheduled_events/E1/invitees/I1".to_string()
            }
        );
        let deleted =
            String::from_utf8_lossy(created).replace("no_show.created", "no_show.deleted");
        assert!(matches!(
            parse(deleted.as_bytes(), "US").expect("parses").event,
            CalendlyEvent::NoShowDeleted { .. }
        ));
    }

    #[test]
    fn other_events_are_ignored() {
        let body = br#"{"created_at": "2026-03-01T10:00:00Z", "event": "routing_form_submission.created", "payload": {"uri": "https://api.calendly.com/routing_form_submissions/R1"}}"#;
        let hook = parse(body, "US").expect("parses");
        assert_eq!(
            hook.event,
            CalendlyEvent::Ignored {
                event_name: "routing_form_submission.created".to_string()
            }
        );
        assert_eq!(hook.dedup_key().len(), 64);
    }

    #[test]
    fn dedup_key_is_stable_and_distinguishes_its_parts() {
        let hook = parse(created_body().as_bytes(), "US").expect("parses");
        let again = parse(created_body().as_bytes(), "US").expect("parses");
        assert_eq!(hook.dedup_key(), again.dedup_key());
        assert_eq!(
            hook.dedup_key(),
            dedup_key("invitee.created", INVITEE, hook.created_at)
        );
        let key = hook.dedup_key();
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        let later = hook.created_at + chrono::Duration::microseconds(1);
        assert_ne!(key, dedup_key("invitee.created", INVITEE, later));
        assert_ne!(key, dedup_key("invitee.canceled", INVITEE, hook.created_at));
        assert_ne!(key, dedup_key("invitee.created", EVENT, hook.created_at));
        // The same instant written differently is the same key.
        let offset = DateTime::parse_from_rfc3339("2026-03-01T11:00:03+01:00")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(key, dedup_key("invitee.created", INVITEE, offset));
    }

    #[test]
    fn malformed_deliveries_are_refused() {
        assert!(matches!(
            parse(b"{", "US"),
            Err(CalendlyPayloadError::Malformed(_))
        ));
        assert_eq!(
            parse(
                br#"{"created_at": "2026-03-01T10:00:00Z", "payload": {}}"#,
                "US"
            ),
            Err(CalendlyPayloadError::Missing("event"))
        );
        assert_eq!(
            parse(br#"{"event": "invitee.created", "payload": {}}"#, "US"),
            Err(CalendlyPayloadError::Missing("created_at"))
        );
        assert_eq!(
            parse(
                br#"{"event": "invitee.created", "created_at": "yesterday", "payload": {}}"#,
                "US"
            ),
            Err(CalendlyPayloadError::BadTime {
                field: "created_at"
            })
        );
        assert_eq!(
            parse(
                br#"{"event": "invitee.created", "created_at": "2026-03-01T10:00:00Z"}"#,
                "US"
            ),
            Err(CalendlyPayloadError::Missing("payload"))
        );
        let no_times =
            created_body().replace(r#""start_time": "2026-03-20T15:00:00.000000Z","#, "");
        assert_eq!(
            parse(no_times.as_bytes(), "US"),
            Err(CalendlyPayloadError::Missing("scheduled_event.start_time"))
        );
        assert_eq!(
            parse(br#"{"event": "invitee_no_show.created", "created_at": "2026-03-01T10:00:00Z", "payload": {"uri": "https://api.calendly.com/invitee_no_shows/N1"}}"#, "US"),
            Err(CalendlyPayloadError::Missing("payload.invitee"))
        );
    }
}
