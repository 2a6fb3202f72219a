//! `customer.rectified`: correcting a customer's name, phone number, e-mail address or
//! language (GDPR art. 16).
//!
//! Every field is checked before anything changes; a bad one is a validation error
//! naming it and nothing changes. The phone number is read like the booking adapters
//! read one — E.164, or national to the business's country — and stored in E.164; one
//! already used by another customer of the tenant is refused. `null` removes a name,
//! e-mail address or language (not a phone number: erase the customer or opt them out
//! instead). The audit entry names the fields changed, never their values.
//!
//! A new number also goes on the customer's messages still waiting to be sent, and the
//! live actors of their appointments are evicted so that none keeps the old details in
//! memory. (The booking system's next update about them overwrites what it sends again:
//! correct it there too.)

use actors::engine::Engine;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use super::error::PrivacyError;
use crate::audit::{self, Actor, NewEntry};
use crate::providers::calendly::normalize_phone;
use crate::store::schema::{appointments, customers, outbox};
use crate::store::{Database, DbConnection};

/// Longest name accepted.
const MAX_NAME_CHARS: usize = 200;
/// Longest e-mail address (RFC 5321).
const MAX_EMAIL_CHARS: usize = 254;

/// The request body: any of the fields; `null` removes a value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RectifyRequest {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub language: Option<Option<String>>,
}

/// A field that is present: `Some(None)` for `null`, `Some(Some(v))` for a value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A checked correction: `None` leaves a field as it is, `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rectification {
    pub name: Option<Option<String>>,
    /// Normalized E.164.
    pub phone: Option<String>,
    pub email: Option<Option<String>>,
    pub language: Option<Option<String>>,
}

impl Rectification {
    /// Checks `request`; phone numbers without `+` are national to `country`.
    pub fn parse(request: RectifyRequest, country: &str) -> Result<Self, PrivacyError> {
        let change = Rectification {
            name: request
                .name
                .map(|n| n.map(|n| name(&n)).transpose())
                .transpose()?,
            phone: request.phone.map(|p| phone(p, country)).transpose()?,
            email: request
                .email
                .map(|e| e.map(|e| email(&e)).transpose())
                .transpose()?,
            language: request
                .language
                .map(|l| l.map(|l| language(&l)).transpose())
                .transpose()?,
        };
        if change.fields().is_empty() {
            return Err(PrivacyError::invalid(
                "body",
                "nothing to change: send any of name, phone, email, language",
            ));
        }
        Ok(change)
    }

    /// The names of the fields this changes.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("phone", self.phone.is_some()),
            ("email", self.email.is_some()),
            ("language", self.language.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect()
    }
}

fn name(raw: &str) -> Result<String, PrivacyError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(PrivacyError::invalid(
            "name",
            "name must not be empty (send null to remove it)",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PrivacyError::invalid(
            "name",
            format!("name must be at most {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_string())
}

fn phone(raw: Option<String>, country: &str) -> Result<String, PrivacyError> {
    let raw = raw.ok_or_else(|| {
        PrivacyError::invalid(
            "phone",
            "the phone number cannot be removed; opt the customer out or erase them instead",
        )
    })?;
    normalize_phone(&raw, country).ok_or_else(|| {
        PrivacyError::invalid(
            "phone",
            format!(
                "phone must be a phone number in E.164 (such as +15551234567) or national to {country}"
            ),
        )
    })
}

fn email(raw: &str) -> Result<String, PrivacyError> {
    let email = raw.trim();
    let bad = || {
        PrivacyError::invalid(
            "email",
            "email must be an address such as jane@example.com (send null to remove it)",
        )
    };
    if email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// A language tag: `en`, `es`, `pt-BR` (a 2–3 letter language, optional subtags).
fn language(raw: &str) -> Result<String, PrivacyError> {
    let tag = raw.trim().replace('_', "-");
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    let bad = || {
        PrivacyError::invalid(
            "language",
            "language must be a language tag such as en, es or pt-BR (send null to remove it)",
        )
    };
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut out = primary.to_ascii_lowercase();
    for part in parts {
        if !(2..=8).contains(&part.len()) || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        out.push('-');
        if part.len() == 2 && part.chars().all(|c| c.is_ascii_alphabetic()) {
            out.push_str(&part.to_ascii_uppercase());
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// The customer's contact details after a rectification.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rectified {
    pub id: String,
    pub name: Option<String>,
    pub phone_e164: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
    /// The fields changed, as asked.
    pub updated_fields: Vec<&'static str>,
    /// Messages waiting to be sent that now go to the new number.
    pub pending_messages_readdressed: usize,
    /// Live appointment actors stopped (they reload the new details when next used).
    pub actors_evicted: usize,
    #[serde(skip)]
    appointment_ids: Vec<String>,
}

/// Applies `change` to customer `customer_id` and evicts the live actors of their
/// appointments.
pub async fn run(
    db: &Database,
    engine: &Engine,
    tenant_id: &str,
    customer_id: &str,
    change: Rectification,
    actor: &Actor,
) -> Result<Rectified, PrivacyError> {
    let (tenant, customer, actor) = (
        tenant_id.to_string(),
        customer_id.to_string(),
        actor.clone(),
    );
    let now = engine.now();
    let mut rectified = db
        .run(move |conn| Ok(apply(conn, &tenant, &customer, &change, &actor, now)))
        .await??;
    rectified.actors_evicted = engine.evict(rectified.appointment_ids.clone()).await;
    Ok(rectified)
}

/// Applies `change` in one transaction, audited as `customer.rectified`.
pub fn apply(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    change: &Rectification,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Rectified, PrivacyError> {
    let at = now.naive_utc();
    let outcome = conn.transaction(|conn| {
        let scope = customers::table
            .filter(customers::tenant_id.eq(tenant_id))
            .filter(customers::id.eq(customer_id));
        // A write first: SQLite takes its write lock here, waiting for it if need be.
        if diesel::update(scope)
            .set(customers::updated_at.eq(at))
            .execute(conn)?
            == 0
        {
            return Err(PrivacyError::NotFound(customer_id.to_string()));
        }
        let (erased_at, old_phone): (Option<chrono::NaiveDateTime>, Option<String>) = scope
            .select((customers::erased_at, customers::phone_e164))
            .first(conn)?;
        if erased_at.is_some() {
            return Err(PrivacyError::Erased(customer_id.to_string()));
        }
        if let Some(phone) = &change.phone {
            let taken: i64 = customers::table
                .filter(customers::tenant_id.eq(tenant_id))
                .filter(customers::phone_e164.eq(phone))
                .filter(customers::id.ne(customer_id))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(PrivacyError::PhoneInUse);
            }
            diesel::update(scope)
                .set(customers::phone_e164.eq(phone))
                .execute(conn)?;
        }
        if let Some(name) = &change.name {
            diesel::update(scope)
                .set(customers::name.eq(name))
                .execute(conn)?;
        }
        if let Some(email) = &change.email {
            diesel::update(scope)
                .set(customers::email.eq(email))
                .execute(conn)?;
        }
        if let Some(language) = &change.language {
            diesel::update(scope)
                .set(customers::language.eq(language))
                .execute(conn)?;
        }
        let appointment_ids: Vec<String> = appointments::table
            .filter(appointments::tenant_id.eq(tenant_id))
            .filter(appointments::customer_id.eq(customer_id))
            .select(appointments::id)
            .load(conn)?;
        let readdressed = match &change.phone {
            Some(phone) if old_phone.as_deref() != Some(phone.as_str()) => {
                readdress(conn, tenant_id, customer_id, &appointment_ids, phone, at)?
            }
            _ => 0,
        };
        let (name, phone_e164, email, language) = scope
            .select((
                customers::name,
                customers::phone_e164,
                customers::email,
                customers::language,
            ))
            .first(conn)?;
        let fields = change.fields();
        audit::record(
            conn,
            &NewEntry::new(tenant_id, actor.clone(), "customer.rectified")
                .subject("customer", customer_id)
                .details(json!({"fields": fields, "pendingMessagesReaddressed": readdressed})),
        )?;
        Ok(Rectified {
            id: customer_id.to_string(),
            name,
            phone_e164,
            email,
            language,
            updated_fields: fields,
            pending_messages_readdressed: readdressed,
            actors_evicted: 0,
            appointment_ids,
        })
    });
    match outcome {
        // A concurrent change gave the number to someone else first.
        Err(PrivacyError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Err(PrivacyError::PhoneInUse),
        other => other,
    }
}

/// Points the customer's messages still waiting to be sent at `phone`.
fn readdress(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    appointment_ids: &[String],
    phone: &str,
    at: chrono::NaiveDateTime,
) -> Result<usize, PrivacyError> {
    let mut rows: Vec<(String, String)> = outbox::table
        .filter(outbox::tenant_id.eq(tenant_id))
        .filter(outbox::status.eq("pending"))
        .filter(outbox::owner_type.eq("customer"))
        .filter(outbox::owner_id.eq(customer_id))
        .select((outbox::id, outbox::payload))
        .load(conn)?;
    for chunk in appointment_ids.chunks(500) {
        rows.extend(
            outbox::table
                .filter(outbox::tenant_id.eq(tenant_id))
                .filter(outbox::status.eq("pending"))
                .filter(outbox::owner_type.eq("appointment"))
                .filter(outbox::owner_id.eq_any(chunk))
                .select((outbox::id, outbox::payload))
                .load::<(String, String)>(conn)?,
        );
    }
    let mut changed = 0;
    for (id, payload) in rows {
        let Ok(mut doc) = serde_json::from_str::<Value>(&payload) else {
            continue;
        };
        let Some(to) = doc.get_mut("to") else {
            continue;
        };
        // Keep a channel prefix (`whatsapp:`) as it was.
        let new_to = match to.as_str().and_then(|t| t.split_once(':')) {
            Some((channel, _)) => format!("{channel}:{phone}"),
            None => phone.to_string(),
        };
        *to = Value::String(new_to);
        changed += diesel::update(outbox::table.find(&id))
            .set((
                outbox::payload.eq(doc.to_string()),
                outbox::updated_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> RectifyRequest {
        serde_json::from_str(json).expect("request")
    }

    fn field_of(err: PrivacyError) -> &'static str {
        match err {
            PrivacyError::Invalid { field, .. } => field,
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn fields_are_checked_and_normalized() {
        let change = Rectification::parse(
            request(
                r#"{"name": "  Jane Q. Public ", "phone": "(555) 777-0009",
                    "email": "Jane@Example.COM", "language": "pt_br"}"#,
            ),
            "US",
        )
        .expect("valid");
        assert_eq!(
            change,
            Rectification {
                name: Some(Some("Jane Q. Public".into())),
                phone: Some("+15557770009".into()),
                email: Some(Some("Jane@example.com".into())),
                language: Some(Some("pt-BR".into())),
            }
        );
        assert_eq!(change.fields(), vec!["name", "phone", "email", "language"]);
    }

    #[test]
    fn null_removes_but_not_the_phone() {
        let change = Rectification::parse(request(r#"{"email": null}"#), "US").expect("valid");
        assert_eq!(change.email, Some(None));
        assert_eq!(change.fields(), vec!["email"]);
        let err = Rectification::parse(request(r#"{"phone": null}"#), "US").expect_err("no");
        assert_eq!(field_of(err), "phone");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (body, field) in [
            (r#"{}"#, "body"),
            (r#"{"name": "  "}"#, "name"),
            (r#"{"phone": "555-CALL-NOW"}"#, "phone"),
            (r#"{"phone": "12"}"#, "phone"),
            (r#"{"email": "not an address"}"#, "email"),
            (r#"{"email": "jane@localhost"}"#, "email"),
            (r#"{"language": "english"}"#, "language"),
            (r#"{"name": "Jane", "language": "e"}"#, "language"),
        ] {
            let err = Rectification::parse(request(body), "US").expect_err(body);
            assert_eq!(field_of(err), field, "{body}");
        }
        assert!(serde_json::from_str::<RectifyRequest>(r#"{"nickname": "J"}"#).is_err());
    }
}
