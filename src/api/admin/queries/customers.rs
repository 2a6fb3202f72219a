//! Customers as the Admin API shows them: the list (filter by risk level, search by
//! name, e-mail or the end of the phone number; keyset-paginated by
//! `(created_at, id)`; phone and e-mail masked) and one customer in full, with consents
//! and appointments.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use serde::Serialize;

use super::super::error::AdminError;
use super::super::support::{mask_phone, Cursor};
use super::appointments::{self, AppointmentItem};
use super::{utc, Page};
use crate::store::schema::{consents, customers};
use crate::store::DbConnection;

diesel::define_sql_function!(fn lower(x: Nullable<Text>) -> Nullable<Text>);

/// Most appointments a customer's detail lists.
const DETAIL_APPOINTMENTS: i64 = 200;

/// The SPEC §4 risk levels: low < 40 ≤ medium < 70 ≤ high.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }

    pub fn of(score: i32) -> Self {
        match score {
            s if s >= 70 => Self::High,
            s if s >= 40 => Self::Medium,
            _ => Self::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The scores of this level: `[min, max)`.
    fn bounds(self) -> (i32, i32) {
        match self {
            Self::Low => (i32::MIN, 40),
            Self::Medium => (40, 70),
            Self::High => (70, i32::MAX),
        }
    }
}

/// Which customers a list returns.
#[derive(Debug, Clone)]
pub struct CustomerFilter {
    pub tenant_id: String,
    pub risk: Option<RiskLevel>,
    /// Part of the name or e-mail (any case), or the last digits of the phone number.
    pub search: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerItem {
    pub id: String,
    pub pseudonym: String,
    pub name: Option<String>,
    pub phone_masked: Option<String>,
    pub email_masked: Option<String>,
    pub risk_score: i32,
    pub risk_level: &'static str,
    pub appointment_count: i32,
    pub no_show_count: i32,
    pub opted_out: bool,
    pub requires_deposit: bool,
    pub erased: bool,
    pub created_at: DateTime<Utc>,
}

type ItemRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    i32,
    i32,
    bool,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

fn item(
    (
        id,
        pseudonym,
        name,
        phone,
        email,
        risk_score,
        appointment_count,
        no_show_count,
        opted_out,
        requires_deposit,
        erased_at,
        created_at,
    ): ItemRow,
) -> CustomerItem {
    CustomerItem {
        id,
        pseudonym,
        name,
        phone_masked: phone.as_deref().map(mask_phone),
        email_masked: email.as_deref().map(mask_email),
        risk_score,
        risk_level: RiskLevel::of(risk_score).as_str(),
        appointment_count,
        no_show_count,
        opted_out,
        requires_deposit,
        erased: erased_at.is_some(),
        created_at: utc(created_at),
    }
}

/// `jane@example.com` → `j***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// `text` with the LIKE wildcards escaped (escape character `\`).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of customers, oldest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &CustomerFilter,
) -> Result<Page<CustomerItem>, AdminError> {
    let mut query = customers::table
        .filter(customers::tenant_id.eq(filter.tenant_id.clone()))
        .select((
            customers::id,
            customers::pseudonym,
            customers::name,
            customers::phone_e164,
            customers::email,
            customers::risk_score,
            customers::appointment_count,
            customers::no_show_count,
            customers::opted_out,
            customers::requires_deposit,
            customers::erased_at,
            customers::created_at,
        ))
        .order((customers::created_at.asc(), customers::id.asc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if let Some(risk) = filter.risk {
        let (min, max) = risk.bounds();
        query = query.filter(
            customers::risk_score
                .ge(min)
                .and(customers::risk_score.lt(max)),
        );
    }
    if let Some(search) = filter.search.as_deref().map(str::trim) {
        let words = format!("%{}%", like_escaped(&search.to_lowercase()));
        let digits: String = search.chars().filter(char::is_ascii_digit).collect();
        let phone_like = search
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if phone_like && digits.len() >= 3 {
            query = query.filter(
                customers::phone_e164
                    .like(format!("%{digits}"))
                    .escape('\\'),
            );
        } else {
            query = query.filter(
                lower(customers::name)
                    .like(words.clone())
                    .escape('\\')
                    .or(lower(customers::email).like(words).escape('\\')),
            );
        }
    }
    if let Some(after) = &filter.after {
        query = query.filter(
            customers::created_at.gt(after.at).or(customers::created_at
                .eq(after.at)
                .and(customers::id.gt(after.id.clone()))),
        );
    }
    let rows: Vec<ItemRow> = query.load(conn)?;
    Ok(Page::from_rows(
        rows.into_iter().map(item).collect(),
        filter.limit,
        |c| Cursor {
            at: c.created_at.naive_utc(),
            id: c.id.clone(),
        },
    ))
}

/// One customer in full: contact details, history counters, consents, appointments.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetail {
    pub id: String,
    pub pseudonym: String,
    pub name: Option<String>,
    pub phone_e164: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub appointment_count: i32,
    pub confirmed_count: i32,
    pub no_show_count: i32,
    pub reschedule_count: i32,
    pub payment_past_due: bool,
    pub risk_score: i32,
    pub risk_level: &'static str,
    pub requires_deposit: bool,
    pub opted_out: bool,
    pub last_review_request_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub consents: Vec<ConsentView>,
    pub appointments: Vec<AppointmentItem>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    pub id: String,
    pub channel: String,
    pub status: String,
    pub source: String,
    pub evidence: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

type DetailRow = (
    (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    (i32, i32, i32, i32, bool, i32, bool, bool),
    (
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        NaiveDateTime,
        NaiveDateTime,
    ),
);

/// The customer `id` of `tenant_id`, in full.
pub fn detail(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<CustomerDetail>, AdminError> {
    let row: Option<DetailRow> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::id.eq(id))
        .select((
            (
                customers::id,
                customers::pseudonym,
                customers::name,
                customers::phone_e164,
                customers::email,
                customers::timezone,
                customers::language,
            ),
            (
                customers::appointment_count,
                customers::confirmed_count,
                customers::no_show_count,
                customers::reschedule_count,
                customers::payment_past_due,
                customers::risk_score,
                customers::requires_deposit,
                customers::opted_out,
            ),
            (
                customers::last_review_request_at,
                customers::erased_at,
                customers::created_at,
                customers::updated_at,
            ),
        ))
        .first(conn)
        .optional()?;
    let Some((
        (id, pseudonym, name, phone_e164, email, timezone, language),
        (
            appointment_count,
            confirmed_count,
            no_show_count,
            reschedule_count,
            payment_past_due,
            risk_score,
            requires_deposit,
            opted_out,
        ),
        (last_review_request_at, erased_at, created_at, updated_at),
    )) = row
    else {
        return Ok(None);
    };
    let consents: Vec<(
        String,
        String,
        String,
        String,
        Option<String>,
        NaiveDateTime,
    )> = consents::table
        .filter(consents::tenant_id.eq(tenant_id))
        .filter(consents::customer_id.eq(&id))
        .order((consents::recorded_at.asc(), consents::id.asc()))
        .select((
            consents::id,
            consents::channel,
            consents::status,
            consents::source,
            consents::evidence,
            consents::recorded_at,
        ))
        .load(conn)?;
    let appointments = appointments::of_customer(conn, tenant_id, &id, DETAIL_APPOINTMENTS)?;
    Ok(Some(CustomerDetail {
        pseudonym,
        name,
        phone_e164,
        email,
        timezone,
        language,
        appointment_count,
        confirmed_count,
        no_show_count,
        reschedule_count,
        payment_past_due,
        risk_score,
        risk_level: RiskLevel::of(risk_score).as_str(),
        requires_deposit,
        opted_out,
        last_review_request_at: last_review_request_at.map(utc),
        erased_at: erased_at.map(utc),
        created_at: utc(created_at),
        updated_at: utc(updated_at),
        consents: consents
            .into_iter()
            .map(
                |(id, channel, status, source, evidence, recorded_at)| ConsentView {
                    id,
                    channel,
                    status,
                    source,
                    evidence,
                    recorded_at: utc(recorded_at),
                },
            )
            .collect(),
        appointments,
        id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_levels_follow_the_spec_bounds() {
        assert_eq!(RiskLevel::of(39), RiskLevel::Low);
        assert_eq!(RiskLevel::of(40), RiskLevel::Medium);
        assert_eq!(RiskLevel::of(69), RiskLevel::Medium);
        assert_eq!(RiskLevel::of(70), RiskLevel::High);
        assert_eq!(RiskLevel::parse(" HIGH "), Some(RiskLevel::High));
        assert_eq!(RiskLevel::parse("extreme"), None);
    }

    #[test]
    fn emails_and_wildcards() {
        assert_eq!(mask_email("jane@example.com"), "j***@example.com");
        assert_eq!(mask_email("nope"), "***");
        assert_eq!(like_escaped("50%_a\\"), "50\\%\\_a\\\\");
    }
}
