//! `POST /webhooks/calendly`: Calendly deliveries become engine work, and every invitee
//! of a reschedule chain reaches one appointment.
//!
//! Three steps, each its own function: [`intent`] says what an event asks for (pure);
//! [`plan`] finds the appointment it is about — binding aliases for reschedules — and
//! returns the inbox items to record, in the order they must be applied; [`receive`]
//! is the route: verify the signature over the raw bytes, parse, plan, submit, answer.
//! `aro sync calendly` feeds fetched invitees through the same [`intent`] and [`plan`].
//!
//! Mapping (SPEC §6): `invitee.created` books; `invitee.canceled` cancels (by the
//! booking system, with Calendly's reason); `invitee_no_show.created` marks a no-show;
//! `invitee_no_show.deleted` and other events are acknowledged and ignored (`no_show`
//! is final in ARO: a mark removed in Calendly is for a person to correct). Only a
//! `text_reminder_number` is used for messages — given for text reminders, it counts
//! as consent; a phone typed into a booking question is not consent and is dropped.
//!
//! Reschedules: Calendly cancels the old invitee (`rescheduled: true`, `new_invitee`)
//! and creates a new one (`old_invitee`), in either order, seconds apart, maybe twice.
//! Every invitee of a chain names the appointment of its first invitee: the new
//! invitee's URI is bound to it in `appointment_aliases` *before* the delivery is
//! acknowledged, so anything later naming the new invitee (its cancellation, a no-show,
//! a further reschedule) finds it. Both halves become [`AppointmentCommand::Replaced`]
//! on that appointment — it follows the new invitee and waits in `rescheduled` — and
//! the create half adds a `Book` with the new time, which books it again there. The
//! inbox applies one appointment's items in arrival order (copies of one delivery are
//! recorded one at a time, so its items arrive in plan order), so both orders end the
//! same way: one appointment, moved, booked, never cancelled.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::Origin;
use actors::engine::{
    appointment_id_for, AppointmentCommand, Booking, ChangedBy, CustomerInfo, Engine, EngineError,
    InboxWork,
};
use actors::ports::store::InboxAccept;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::QueryResult;
use serde_json::json;

use crate::http::request_context::RequestContext;
use crate::http::{ApiError, AppState};
use crate::providers::calendly::{self, CalendlyEvent, CalendlyPayloadError, Invitee, PhoneSource};
use crate::store::alias_queries::{self, Alias};
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::DbConnection;

/// The `source` of appointments, aliases and inbox items from Calendly.
pub const SOURCE: &str = "calendly";

/// Longest reschedule chain followed back (a guard against a cycle in bad data).
const MAX_CHAIN: usize = 64;

/// What a Calendly event asks of ARO, before its appointment is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// A new booking: `invitee.created` without `old_invitee`.
    Book(Booking),
    /// A reschedule's new half: `booking` replaces the invitee `old`.
    Rebook { booking: Booking, old: String },
    /// A reschedule's old half: `old` was cancelled because `new` replaces it.
    Replaced { old: String, new: Option<String> },
    /// A cancellation in Calendly.
    Cancel {
        invitee: String,
        reason: Option<String>,
    },
    /// The host marked the invitee a no-show.
    NoShow { invitee: String },
    /// Acknowledged, recorded nowhere; the reason is logged.
    Ignore(&'static str),
}

impl Intent {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Book(_) => "book",
            Intent::Rebook { .. } => "rebook",
            Intent::Replaced { .. } => "replaced",
            Intent::Cancel { .. } => "cancel",
            Intent::NoShow { .. } => "no_show",
            Intent::Ignore(_) => "ignored",
        }
    }
}

/// What `event` asks for, for `tenant_id`. Pure.
pub fn intent(tenant_id: &str, event: CalendlyEvent) -> Intent {
    match event {
        CalendlyEvent::InviteeCreated(invitee) => match invitee.old_invitee.clone() {
            Some(old) => Intent::Rebook {
                booking: booking(tenant_id, invitee),
                old,
            },
            None => Intent::Book(booking(tenant_id, invitee)),
        },
        CalendlyEvent::InviteeCanceled {
            invitee_uri,
            rescheduled: true,
            new_invitee,
            ..
        } => Intent::Replaced {
            old: invitee_uri,
            new: new_invitee,
        },
        CalendlyEvent::InviteeCanceled {
            invitee_uri,
            canceler_type,
            reason,
            ..
        } => Intent::Cancel {
            invitee: invitee_uri,
            reason: cancellation_reason(canceler_type.as_deref(), reason.as_deref()),
        },
        CalendlyEvent::NoShowCreated { invitee_uri } => Intent::NoShow {
            invitee: invitee_uri,
        },
        CalendlyEvent::NoShowDeleted { .. } => Intent::Ignore(
            "invitee_no_show.deleted: no_show is final in ARO; a person corrects the appointment",
        ),
        CalendlyEvent::Ignored { .. } => Intent::Ignore("an event ARO does not act on"),
    }
}

/// The booking an invitee describes. Its zone (the invitee's, as Calendly reports it)
/// is the appointment's and the customer's; its phone is kept only when it was given
/// for text reminders.
pub fn booking(tenant_id: &str, invitee: Invitee) -> Booking {
    let zone = invitee
        .timezone
        .as_deref()
        .and_then(|z| Tz::from_str(z).ok())
        .map(|z| z.name().to_string());
    let phone = invitee
        .phone_e164
        .filter(|_| invitee.phone_source == Some(PhoneSource::TextReminderNumber));
    Booking {
        tenant_id: tenant_id.to_string(),
        source: SOURCE.to_string(),
        external_id: invitee.invitee_uri,
        starts_at: invitee.starts_at,
        ends_at: invitee.ends_at,
        timezone: zone.clone(),
        service_type: Some(invitee.service).filter(|s| !s.trim().is_empty()),
        cancel_url: invitee.cancel_url,
        reschedule_url: invitee.reschedule_url,
        service_cost_cents: None,
        customer: CustomerInfo {
            phone_e164: phone,
            name: Some(invitee.name).filter(|s| !s.trim().is_empty()),
            email: invitee.email,
            timezone: zone,
        },
    }
}

/// `host: Schedule conflict`, from who cancelled (`host` / `invitee`) and why.
pub fn cancellation_reason(canceler_type: Option<&str>, reason: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [canceler_type, reason].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// One inbox item of a delivery: its deduplication key and its work.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub dedup_key: String,
    pub work: InboxWork,
}

/// The inbox items for `intent`, in the order they must be applied, under the
/// delivery's `dedup_key` (a delivery with several items suffixes it per item, so a
/// retry after a partial failure records only what is missing). Binds the aliases a
/// reschedule needs on the way. Blocking: runs on a pooled connection.
pub fn plan(
    conn: &mut DbConnection,
    tenant_id: &str,
    dedup_key: &str,
    intent: Intent,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Planned>> {
    let item = |suffix: &str, appointment_id: &str, command: AppointmentCommand| Planned {
        dedup_key: format!("{dedup_key}{suffix}"),
        work: InboxWork::new(appointment_id, command)
            .with_origin(Origin::caused_by(format!("{SOURCE}:{dedup_key}{suffix}"))),
    };
    let plan = match intent {
        Intent::Ignore(_) => Vec::new(),
        Intent::Book(booking) => {
            let target = resolve(conn, tenant_id, &booking.external_id)?;
            vec![item("", &target, AppointmentCommand::Book(booking))]
        }
        Intent::Cancel { invitee, reason } => {
            let target = resolve(conn, tenant_id, &invitee)?;
            let command = AppointmentCommand::Transition {
                to: AppointmentStatus::Cancelled,
                by: ChangedBy::BookingSystem,
                reason,
            };
            vec![item("", &target, command)]
        }
        Intent::NoShow { invitee } => {
            let target = resolve(conn, tenant_id, &invitee)?;
            let command = AppointmentCommand::Transition {
                to: AppointmentStatus::NoShow,
                by: ChangedBy::BookingSystem,
                reason: None,
            };
            vec![item("", &target, command)]
        }
        Intent::Rebook { booking, old } => {
            let link = link(conn, tenant_id, &old, Some(&booking.external_id), now)?;
            let replaced = AppointmentCommand::Replaced {
                replaced: link.chain.clone(),
                replacement: Some(booking.external_id.clone()),
                by: ChangedBy::BookingSystem,
            };
            let mut items = vec![
                item(":replaced", &link.target, replaced),
                item("", &link.target, AppointmentCommand::Book(booking)),
            ];
            items.extend(retire(&link, |id, command| item(":retire", id, command)));
            items
        }
        Intent::Replaced { old, new } => {
            let link = link(conn, tenant_id, &old, new.as_deref(), now)?;
            let replaced = AppointmentCommand::Replaced {
                replaced: link.chain.clone(),
                replacement: new,
                by: ChangedBy::BookingSystem,
            };
            let mut items = vec![item("", &link.target, replaced)];
            items.extend(retire(&link, |id, command| item(":retire", id, command)));
            items
        }
    };
    Ok(plan)
}

/// The appointment an invitee names: its alias, else the one derived from its URI.
fn resolve(conn: &mut DbConnection, tenant_id: &str, invitee: &str) -> QueryResult<String> {
    Ok(alias_queries::find(conn, tenant_id, SOURCE, invitee)?
        .map(|alias| alias.appointment_id)
        .unwrap_or_else(|| appointment_id_for(tenant_id, SOURCE, invitee)))
}

/// Where one link of a reschedule chain (`old` → `new`) leads.
#[derive(Debug, Clone, PartialEq)]
struct Link {
    /// The appointment `old` names.
    root: String,
    /// The appointment `new` is bound to: `root`, unless `new` was bound elsewhere
    /// first (deliveries of two reschedules of one chain arrived out of order).
    target: String,
    /// `old`, then the invitees it replaced in turn.
    chain: Vec<String>,
}

/// Binds the link `old` → `new`: `old` keeps (or, unknown so far, is given) its own
/// appointment, and `new` is bound to the same one unless it is bound already.
fn link(
    conn: &mut DbConnection,
    tenant_id: &str,
    old: &str,
    new: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<Link> {
    let bind = |conn: &mut DbConnection, external_id: &str, target: &str, replaces| {
        let alias = Alias {
            tenant_id: tenant_id.to_string(),
            source: SOURCE.to_string(),
            external_id: external_id.to_string(),
            appointment_id: target.to_string(),
            replaces,
        };
        alias_queries::bind(conn, &alias, now).map(|held| held.appointment_id)
    };
    // `old` is bound to its own appointment when first seen as replaced, so that a
    // later, conflicting link to it is noticed instead of splitting the chain silently.
    let root = match alias_queries::find(conn, tenant_id, SOURCE, old)? {
        Some(alias) => alias.appointment_id,
        None => bind(conn, old, &appointment_id_for(tenant_id, SOURCE, old), None)?,
    };
    let target = match new {
        Some(new) => bind(conn, new, &root, Some(old.to_string()))?,
        None => root.clone(),
    };
    let chain = chain(conn, tenant_id, old)?;
    Ok(Link {
        root,
        target,
        chain,
    })
}

/// `invitee`, then the invitees it replaced in turn, as far as the aliases know.
fn chain(conn: &mut DbConnection, tenant_id: &str, invitee: &str) -> QueryResult<Vec<String>> {
    let mut chain = vec![invitee.to_string()];
    let mut current = invitee.to_string();
    while chain.len() < MAX_CHAIN {
        let Some(replaces) = alias_queries::find(conn, tenant_id, SOURCE, &current)?
            .and_then(|alias| alias.replaces)
            .filter(|r| !chain.contains(r))
        else {
            break;
        };
        chain.push(replaces.clone());
        current = replaces;
    }
    Ok(chain)
}

/// When a link's new invitee was bound to another appointment first, the chain split
/// in two: the newer half continues there, and the appointment the old invitee names
/// stands for a booking Calendly no longer has. It is cancelled — by the booking
/// system, which did cancel that invitee — with a reason naming where it continues.
fn retire(link: &Link, item: impl Fn(&str, AppointmentCommand) -> Planned) -> Option<Planned> {
    if link.target == link.root {
        return None;
    }
    tracing::warn!(
        appointment = %link.root,
        continues_as = %link.target,
        "calendly: a reschedule chain arrived out of order and split; cancelling the superseded appointment"
    );
    Some(item(
        &link.root,
        AppointmentCommand::Transition {
            to: AppointmentStatus::Cancelled,
            by: ChangedBy::BookingSystem,
            reason: Some(format!(
                "rescheduled in Calendly; continues as appointment {}",
                link.target
            )),
        },
    ))
}

/// Stripes of the lock that serializes the copies of one delivery.
const DELIVERY_LOCKS: usize = 64;

/// The lock of the delivery `dedup_key`. Two copies of a delivery that plans several
/// items must not interleave: the second copy could record the second item and hand
/// it to the inbox processor before the first copy has handed over the first.
fn delivery_lock(dedup_key: &str) -> &'static tokio::sync::Mutex<()> {
    static LOCKS: OnceLock<Vec<tokio::sync::Mutex<()>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| {
        (0..DELIVERY_LOCKS)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect()
    });
    let mut hasher = DefaultHasher::new();
    dedup_key.hash(&mut hasher);
    &locks[(hasher.finish() % DELIVERY_LOCKS as u64) as usize]
}

/// Records `planned`, the items of the delivery `dedup_key`, through the engine, in
/// order. `Accepted` when any item was new.
pub async fn submit(
    engine: &Engine,
    tenant_id: &str,
    dedup_key: &str,
    planned: Vec<Planned>,
) -> Result<InboxAccept, EngineError> {
    let _one_copy_at_a_time = delivery_lock(dedup_key).lock().await;
    let mut outcome = InboxAccept::Duplicate;
    for item in planned {
        let accepted = engine
            .submit(tenant_id, SOURCE, &item.dedup_key, item.work)
            .await?;
        if accepted == InboxAccept::Accepted {
            outcome = InboxAccept::Accepted;
        }
    }
    Ok(outcome)
}

/// The 400 for a body that is not a usable Calendly delivery.
fn invalid(error: CalendlyPayloadError) -> ApiError {
    let field = match &error {
        CalendlyPayloadError::Malformed(_) => "body",
        CalendlyPayloadError::Missing(field) | CalendlyPayloadError::BadTime { field } => field,
    };
    ApiError::validation(error.to_string(), json!({"field": field}))
}

/// `POST /webhooks/calendly`, signed with `Calendly-Webhook-Signature: t=…,v1=…`.
/// Disabled (404) until a signing key is configured.
#[utoipa::path(
    post, path = "/webhooks/calendly", tag = "webhooks", operation_id = "calendly_webhook", summary = "Calendly v2 webhooks (invitee.created, invitee.canceled, invitee_no_show.created/deleted)", params(("Calendly-Webhook-Signature" = String, Header, description = "`t=…,v1=…`, HMAC-SHA256 of `t.body`; 3-minute window")), request_body(content = Object, description = "Calendly's webhook payload"), responses((status = 200, description = "Stored durably (or a duplicate, which causes nothing)", body = Object), (status = 400, description = "VALIDATION_ERROR: malformed"), (status = 401, description = "UNAUTHORIZED: unsigned, tampered, stale or wrongly signed"), (status = 404, description = "NOT_FOUND: the route is off until its secret is configured"), (status = 413, description = "PAYLOAD_TOO_LARGE"))
)]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let Some(signing_key) = state.config.calendly.signing_key.as_ref() else {
        return Err(ApiError::NotFound(
            "the Calendly webhook is disabled: set ARO_CALENDLY_SIGNING_KEY".to_string(),
        ));
    };
    let header = req
        .headers()
        .get("Calendly-Webhook-Signature")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    calendly::verify_signature(header, &body, signing_key.expose(), Utc::now())?;
    let hook = calendly::parse(&body, &state.config.business.country).map_err(invalid)?;
    let dedup_key = hook.dedup_key();
    let intent = intent(DEFAULT_TENANT, hook.event);
    let kind = intent.kind();
    let status = if let Intent::Ignore(reason) = intent {
        tracing::info!(event = %hook.event_name, reason, "calendly: delivery ignored");
        "ignored"
    } else {
        let key = dedup_key.clone();
        let mut planned = state
            .db
            .run(move |conn| Ok(plan(conn, DEFAULT_TENANT, &key, intent, Utc::now())?))
            .await?;
        let correlation = RequestContext::correlation_of(&req);
        for item in &mut planned {
            item.work.origin.correlation_id = correlation.clone();
        }
        match submit(&state.engine, DEFAULT_TENANT, &dedup_key, planned).await? {
            InboxAccept::Accepted => "accepted",
            InboxAccept::Duplicate => "duplicate",
        }
    };
    tracing::debug!(event = %hook.event_name, kind, status, "calendly: delivery answered");
    metrics::histogram!("aro_webhook_ack_seconds", "source" => SOURCE)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("aro_webhooks_total", "source" => SOURCE, "result" => status).increment(1);
    Ok(HttpResponse::Ok().json(json!({"status": status, "id": dedup_key})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn invitee(source: Option<PhoneSource>) -> Invitee {
        Invitee {
            invitee_uri: "https://api.calendly.com/scheduled_events/E1/invitees/I1".into(),
            event_uri: "https://api.calendly.com/scheduled_events/E1".into(),
            old_invitee: None,
            starts_at: at("2031-03-20T15:00:00Z"),
            ends_at: at("2031-03-20T15:30:00Z"),
            timezone: Some("America/New_York".into()),
            service: "30 Minute Consultation".into(),
            name: "Jane Smith".into(),
            email: Some("jane@example.com".into()),
            phone_e164: source.map(|_| "+15551234567".into()),
            phone_source: source,
            cancel_url: Some("https://calendly.com/cancellations/I1".into()),
            reschedule_url: Some("https://calendly.com/reschedulings/I1".into()),
            status: Some("active".into()),
        }
    }

    #[test]
    fn a_created_invitee_books_with_its_details() {
        let Intent::Book(booking) = intent(
            "default",
            CalendlyEvent::InviteeCreated(invitee(Some(PhoneSource::TextReminderNumber))),
        ) else {
            panic!("a booking");
        };
        assert_eq!(booking.source, SOURCE);
        assert_eq!(
            booking.external_id,
            "https://api.calendly.com/scheduled_events/E1/invitees/I1"
        );
        assert_eq!(booking.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(
            booking.customer.timezone.as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            booking.service_type.as_deref(),
            Some("30 Minute Consultation")
        );
        assert_eq!(booking.customer.phone_e164.as_deref(), Some("+15551234567"));
        assert_eq!(booking.customer.name.as_deref(), Some("Jane Smith"));
        assert!(booking.cancel_url.is_some() && booking.reschedule_url.is_some());
    }

    #[test]
    fn only_a_text_reminder_number_is_used_for_messages() {
        let Intent::Book(booking) = intent(
            "default",
            CalendlyEvent::InviteeCreated(invitee(Some(PhoneSource::Question))),
        ) else {
            panic!("a booking");
        };
        assert_eq!(booking.customer.phone_e164, None);
    }

    #[test]
    fn an_unknown_zone_is_left_to_the_business_zone() {
        let mut inv = invitee(None);
        inv.timezone = Some("Mars/Olympus".into());
        let Intent::Book(booking) = intent("default", CalendlyEvent::InviteeCreated(inv)) else {
            panic!("a booking");
        };
        assert_eq!(booking.timezone, None);
    }

    #[test]
    fn each_event_maps_to_its_intent() {
        let mut rebooked = invitee(None);
        rebooked.old_invitee = Some("old".into());
        assert!(matches!(
            intent("default", CalendlyEvent::InviteeCreated(rebooked)),
            Intent::Rebook { old, .. } if old == "old"
        ));
        let canceled = |rescheduled| CalendlyEvent::InviteeCanceled {
            invitee_uri: "I1".into(),
            event_uri: "E1".into(),
            rescheduled,
            new_invitee: rescheduled.then(|| "I2".to_string()),
            canceled_by: Some("Jane Smith".into()),
            canceler_type: Some("invitee".into()),
            reason: Some("Feeling better".into()),
        };
        assert_eq!(
            intent("default", canceled(true)),
            Intent::Replaced {
                old: "I1".into(),
                new: Some("I2".into())
            }
        );
        assert_eq!(
            intent("default", canceled(false)),
            Intent::Cancel {
                invitee: "I1".into(),
                reason: Some("invitee: Feeling better".into())
            }
        );
        assert_eq!(
            intent(
                "default",
                CalendlyEvent::NoShowCreated {
                    invitee_uri: "I1".into()
                }
            ),
            Intent::NoShow {
                invitee: "I1".into()
            }
        );
        assert!(matches!(
            intent(
                "default",
                CalendlyEvent::NoShowDeleted {
                    invitee_uri: "I1".into()
                }
            ),
            Intent::Ignore(_)
        ));
        assert!(matches!(
            intent(
                "default",
                CalendlyEvent::Ignored {
                    event_name: "routing_form_submission.created".into()
                }
            ),
            Intent::Ignore(_)
        ));
    }

    #[test]
    fn cancellation_reasons_join_who_and_why() {
        assert_eq!(cancellation_reason(None, None), None);
        assert_eq!(
            cancellation_reason(Some("host"), None).as_deref(),
            Some("host")
        );
        assert_eq!(
            cancellation_reason(Some("host"), Some("Clinic closed")).as_deref(),
            Some("host: Clinic closed")
        );
    }
}
