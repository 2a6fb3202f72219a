//! Profile packs (SPEC §2): the data that adapts the domain-agnostic engine to a kind
//! of business — message templates per kind, channel and language; terminology; and
//! policy overlays (quiet hours, message cap, opt-out footer, forbidden content,
//! timings, deposit rules). The engine reads a pack; it never names one.
//!
//! Packs are additive: a pack can tighten the message cap but not raise it above the
//! guardrail, and cannot turn off the opt-out footer or the content filter's place in
//! the send path.

pub mod content_filter;
pub mod pack_file;
pub mod sms_encoding;
pub mod template;

use std::collections::BTreeMap;

use chrono::Duration;

use crate::domain::message_cap::MAX_AUTOMATED_PER_WINDOW;
use crate::domain::quiet_hours::QuietWindow;
use crate::ports::providers::Channel;
pub use content_filter::ContentFilter;
pub use pack_file::{parse_pack, PackError};
pub use sms_encoding::{shape, SmsEncoding, SmsShape};
pub use template::{Template, Variable, MESSAGE_KINDS};

/// The pack every install starts with, compiled in.
pub const DEFAULT_PACK_NAME: &str = "healthcare";

/// The shipped packs' files, compiled in: (name, TOML text).
pub const SHIPPED_PACKS: [(&str, &str); 4] = [
    (
        "healthcare",
        include_str!("../../../config/profiles/healthcare.toml"),
    ),
    ("salon", include_str!("../../../config/profiles/salon.toml")),
    ("legal", include_str!("../../../config/profiles/legal.toml")),
    (
        "coaching",
        include_str!("../../../config/profiles/coaching.toml"),
    ),
];

/// Message kinds sent in answer to a keyword, exempt from the footer rule below.
const NO_FOOTER_KINDS: [&str; 1] = ["opt_out_confirmation"];

/// The words a pack uses for its people and visits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminology {
    /// "patient", "client"…
    pub customer: String,
    /// "appointment", "session", "consultation"…
    pub appointment: String,
}

/// The pack's default timings (SPEC §4), overridable per business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub reminder_48h_before: Duration,
    pub reminder_24h_before: Duration,
    /// After the 24 h reminder with no reply: `no_customer_response`.
    pub no_response_after: Duration,
    /// Still unconfirmed this long before the start: a high escalation.
    pub unconfirmed_escalation_before: Duration,
    /// No automated message later than this before the start.
    pub last_send_before_start: Duration,
    /// Completed at end + this unless marked otherwise.
    pub completion_grace: Duration,
    /// Review request at end + this.
    pub review_after_end: Duration,
    /// Rebooking offer this long after the review request.
    pub rebook_after_review: Duration,
    /// No review request to a customer asked within this.
    pub review_cooldown: Duration,
    /// Waiting for a deposit before its one reminder.
    pub deposit_payment_wait: Duration,
    /// After the deposit reminder, before `deposit_not_paid`.
    pub deposit_reminder_wait: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            reminder_48h_before: Duration::hours(48),
            reminder_24h_before: Duration::hours(24),
            no_response_after: Duration::hours(4),
            unconfirmed_escalation_before: Duration::hours(6),
            last_send_before_start: Duration::hours(2),
            completion_grace: Duration::hours(2),
            review_after_end: Duration::hours(6),
            rebook_after_review: Duration::hours(24),
            review_cooldown: Duration::days(90),
            deposit_payment_wait: Duration::hours(24),
            deposit_reminder_wait: Duration::hours(12),
        }
    }
}

/// When a deposit is asked for, and how much (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepositRules {
    /// Risk score at or above which a deposit is required.
    pub risk_threshold: u8,
    /// No-shows at or above which a deposit is required.
    pub no_show_threshold: u32,
    /// In the currency's minor unit.
    pub amount_cents: i64,
}

impl Default for DepositRules {
    fn default() -> Self {
        Self {
            risk_threshold: 70,
            no_show_threshold: 2,
            amount_cents: 5_000,
        }
    }
}

/// The pack's policy overlays.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `None`: no quiet hours.
    pub quiet_hours: Option<QuietWindow>,
    /// Automated messages per customer per rolling 24 h; never above the guardrail.
    pub message_cap: usize,
    /// Appended to every automated message (SPEC §5).
    pub opt_out_footer: String,
    pub forbidden_content: ContentFilter,
    pub timings: Timings,
    pub deposit: DepositRules,
}

/// One kind's templates in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTemplates {
    pub sms: Template,
    /// Falls back to `sms` when absent.
    pub whatsapp: Option<Template>,
}

/// A loaded, validated profile pack.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilePack {
    pub name: String,
    pub terminology: Terminology,
    pub policy: Policy,
    /// kind → language → templates; every kind has `en`.
    templates: BTreeMap<String, BTreeMap<String, ChannelTemplates>>,
}

/// A message ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub body: String,
    pub shape: SmsShape,
}

/// A message the content filter stopped (never sent; the engine escalates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub kind: String,
    /// The rule it broke, e.g. `term:diagnosis`.
    pub rule: String,
}

impl ProfilePack {
    /// A shipped pack by name.
    pub fn shipped(name: &str) -> Result<Self, PackError> {
        let (file, text) = SHIPPED_PACKS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PackError {
                file: format!("config/profiles/{name}.toml"),
                key: String::new(),
                reason: format!(
                    "no such pack; shipped: {}",
                    SHIPPED_PACKS.map(|(n, _)| n).join(", ")
                ),
            })?;
        parse_pack(&format!("config/profiles/{file}.toml"), text)
    }

    /// The default pack, for tests and for an engine built without configuration.
    pub fn default_pack() -> Self {
        Self::shipped(DEFAULT_PACK_NAME)
            .unwrap_or_else(|e| panic!("the shipped default pack must be valid: {e}"))
    }

    /// The template for `kind` on `channel` in `language`, falling back to English and
    /// to the SMS text.
    pub fn template(
        &self,
        kind: &str,
        channel: Channel,
        language: Option<&str>,
    ) -> Option<&Template> {
        let by_language = self.templates.get(kind)?;
        let chosen = language
            .and_then(|l| by_language.get(l))
            .or_else(|| by_language.get("en"))?;
        Some(match channel {
            Channel::Whatsapp => chosen.whatsapp.as_ref().unwrap_or(&chosen.sms),
            Channel::Sms => &chosen.sms,
        })
    }

    /// Renders `kind`, adds the opt-out footer (not to the opt-out confirmation itself),
    /// and runs the forbidden-content filter on the whole body.
    pub fn render(
        &self,
        kind: &str,
        channel: Channel,
        language: Option<&str>,
        values: &BTreeMap<Variable, String>,
    ) -> Result<RenderedMessage, Blocked> {
        let Some(template) = self.template(kind, channel, language) else {
            // Validation guarantees every kind; an unknown kind is the engine's bug,
            // and is blocked rather than sent without a template.
            return Err(Blocked {
                kind: kind.to_string(),
                rule: "no_template".to_string(),
            });
        };
        let mut body = template.render(values).trim().to_string();
        if !NO_FOOTER_KINDS.contains(&kind) && !self.policy.opt_out_footer.is_empty() {
            body.push(' ');
            body.push_str(&self.policy.opt_out_footer);
        }
        if let Some(rule) = self.policy.forbidden_content.violation(&body) {
            return Err(Blocked {
                kind: kind.to_string(),
                rule: rule.to_string(),
            });
        }
        Ok(RenderedMessage {
            shape: shape(&body),
            body,
        })
    }

    /// Replaces one template (used to try a pack's filter against a bad template).
    pub fn set_template(&mut self, kind: &str, language: &str, sms: Template) {
        self.templates.entry(kind.to_string()).or_default().insert(
            language.to_string(),
            ChannelTemplates {
                sms,
                whatsapp: None,
            },
        );
    }

    pub(crate) fn from_parts(
        name: String,
        terminology: Terminology,
        policy: Policy,
        templates: BTreeMap<String, BTreeMap<String, ChannelTemplates>>,
    ) -> Self {
        let cap = policy.message_cap.min(MAX_AUTOMATED_PER_WINDOW);
        Self {
            name,
            terminology,
            policy: Policy {
                message_cap: cap,
                ..policy
            },
            templates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<Variable, String> {
        BTreeMap::from([
            (Variable::FirstName, "Ana".to_string()),
            (Variable::Date, "Tue, Mar 3".to_string()),
            (Variable::Time, "2:30 PM".to_string()),
            (Variable::BusinessName, "Bright Smiles".to_string()),
        ])
    }

    #[test]
    fn every_shipped_pack_loads_with_every_kind() {
        for (name, _) in SHIPPED_PACKS {
            let pack = ProfilePack::shipped(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pack.name, name);
            for kind in MESSAGE_KINDS {
                let rendered = pack
                    .render(kind, Channel::Sms, None, &values())
                    .unwrap_or_else(|b| panic!("{name}/{kind} blocked by {}", b.rule));
                assert!(!rendered.body.is_empty());
                if kind != "opt_out_confirmation" {
                    assert!(
                        rendered.body.ends_with(&pack.policy.opt_out_footer),
                        "{name}/{kind}: footer missing"
                    );
                }
            }
            assert!(pack.policy.message_cap <= MAX_AUTOMATED_PER_WINDOW);
        }
    }

    #[test]
    fn healthcare_blocks_a_template_mentioning_a_diagnosis() {
        let mut pack = ProfilePack::shipped("healthcare").expect("pack");
        let bad = Template::parse(
            "reminder_48h",
            "Hi {first_name}, about your diagnosis on {date}.",
        )
        .expect("template");
        pack.set_template("reminder_48h", "en", bad);
        let blocked = pack
            .render("reminder_48h", Channel::Sms, None, &values())
            .unwrap_err();
        assert_eq!(blocked.rule, "term:diagnosis");
        // The same text is fine in a pack without the PHI filter.
        let mut salon = ProfilePack::shipped("salon").expect("pack");
        let bad = Template::parse("reminder_48h", "Hi {first_name}, about your diagnosis.")
            .expect("template");
        salon.set_template("reminder_48h", "en", bad);
        assert!(salon
            .render("reminder_48h", Channel::Sms, None, &values())
            .is_ok());
    }

    #[test]
    fn a_value_can_break_the_filter_too() {
        let mut pack = ProfilePack::shipped("healthcare").expect("pack");
        let shows_service = Template::parse("booking_confirmation", "Booked: {service} on {date}.")
            .expect("template");
        pack.set_template("booking_confirmation", "en", shows_service);
        let mut v = values();
        v.insert(Variable::Service, "Diagnosis review".to_string());
        let blocked = pack.render("booking_confirmation", Channel::Sms, None, &v);
        assert!(blocked.is_err(), "{blocked:?}");
    }

    #[test]
    fn whatsapp_falls_back_to_sms_and_languages_to_english() {
        let pack = ProfilePack::shipped("healthcare").expect("pack");
        let sms = pack
            .template("reminder_24h", Channel::Sms, Some("xx"))
            .expect("en");
        let wa = pack
            .template("reminder_24h", Channel::Whatsapp, Some("xx"))
            .expect("fallback");
        assert!(!sms.source().is_empty() && !wa.source().is_empty());
    }
}
