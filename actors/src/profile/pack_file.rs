//! Reading a profile pack's TOML file into a validated [`ProfilePack`]. Every problem is
//! reported with the file, the key and the reason (SPEC §2), e.g.
//! `config/profiles/salon.toml: templates.reminder_48h.sms: unknown variable {nmae}`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Duration, NaiveTime};
use serde::Deserialize;

use super::content_filter::ContentFilter;
use super::template::{Template, MESSAGE_KINDS};
use super::{ChannelTemplates, DepositRules, Policy, ProfilePack, Terminology, Timings};
use crate::domain::message_cap::MAX_AUTOMATED_PER_WINDOW;
use crate::domain::quiet_hours::QuietWindow;

/// Why a pack cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    pub file: String,
    /// The dotted key, empty when the problem is the whole file.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.reason)
        }
    }
}

impl std::error::Error for PackError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    pack: RawHeader,
    terminology: RawTerminology,
    policy: RawPolicy,
    templates: BTreeMap<String, RawKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerminology {
    customer: String,
    appointment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    quiet_hours: String,
    message_cap: i64,
    opt_out_footer: String,
    #[serde(default)]
    timings: BTreeMap<String, String>,
    #[serde(default)]
    deposit: Option<RawDeposit>,
    #[serde(default)]
    forbidden_content: Option<RawFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeposit {
    risk_threshold: Option<i64>,
    no_show_threshold: Option<i64>,
    amount: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    terms: Vec<String>,
    #[serde(default)]
    patterns: BTreeMap<String, String>,
}

/// `[templates.<kind>]`: `sms`, optional `whatsapp`, and optional per-language tables
/// (`[templates.<kind>.es]`) with the same two keys. (serde cannot deny unknown
/// fields beside a flattened map: an unknown key is read as a language and refused
/// there.)
#[derive(Debug, Deserialize)]
struct RawKind {
    sms: String,
    whatsapp: Option<String>,
    #[serde(flatten)]
    languages: BTreeMap<String, RawLanguage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    sms: String,
    whatsapp: Option<String>,
}

/// Parses and validates the pack in `text`; `file` names it in errors.
pub fn parse_pack(file: &str, text: &str) -> Result<ProfilePack, PackError> {
    let error = |key: &str, reason: String| PackError {
        file: file.to_string(),
        key: key.to_string(),
        reason,
    };
    let raw: RawPack = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let reason = match line {
            Some(line) => format!("line {line}: {}", e.message()),
            None => e.message().to_string(),
        };
        error("", reason)
    })?;
    if raw.pack.name.trim().is_empty() {
        return Err(error("pack.name", "must not be empty".to_string()));
    }
    let quiet_hours = parse_quiet_hours(&raw.policy.quiet_hours)
        .map_err(|reason| error("policy.quiet_hours", reason))?;
    let message_cap = usize::try_from(raw.policy.message_cap)
        .ok()
        .filter(|cap| (1..=MAX_AUTOMATED_PER_WINDOW).contains(cap))
        .ok_or_else(|| {
            error(
                "policy.message_cap",
                format!(
                    "must be 1 to {MAX_AUTOMATED_PER_WINDOW} (a pack cannot raise the guardrail), got {}",
                    raw.policy.message_cap
                ),
            )
        })?;
    if raw.policy.opt_out_footer.trim().is_empty() {
        return Err(error(
            "policy.opt_out_footer",
            "every automated SMS carries an opt-out footer; it must not be empty".to_string(),
        ));
    }
    let timings =
        parse_timings(&raw.policy.timings).map_err(|(key, reason)| error(&key, reason))?;
    let deposit =
        parse_deposit(raw.policy.deposit.as_ref()).map_err(|(key, reason)| error(&key, reason))?;
    let filter = match &raw.policy.forbidden_content {
        None => ContentFilter::default(),
        Some(f) => ContentFilter::new(
            f.terms.iter().map(String::as_str),
            f.patterns.iter().map(|(n, p)| (n.as_str(), p.as_str())),
        )
        .map_err(|e| error("policy.forbidden_content", e.to_string()))?,
    };
    let mut templates = BTreeMap::new();
    for (kind, raw_kind) in &raw.templates {
        if !MESSAGE_KINDS.contains(&kind.as_str()) {
            return Err(error(
                &format!("templates.{kind}"),
                format!("unknown message kind; known: {}", MESSAGE_KINDS.join(", ")),
            ));
        }
        let parse = |key: String, source: &str| {
            Template::parse(kind, source).map_err(|e| error(&key, e.to_string()))
        };
        let mut by_language = BTreeMap::new();
        by_language.insert(
            "en".to_string(),
            ChannelTemplates {
                sms: parse(format!("templates.{kind}.sms"), &raw_kind.sms)?,
                whatsapp: raw_kind
                    .whatsapp
                    .as_deref()
                    .map(|s| parse(format!("templates.{kind}.whatsapp"), s))
                    .transpose()?,
            },
        );
        for (language, raw_language) in &raw_kind.languages {
            if language.len() != 2 || !language.chars().all(|c| c.is_ascii_lowercase()) {
                return Err(error(
                    &format!("templates.{kind}.{language}"),
                    "a language is a two-letter ISO 639-1 code, e.g. es".to_string(),
                ));
            }
            by_language.insert(
                language.clone(),
                ChannelTemplates {
                    sms: parse(
                        format!("templates.{kind}.{language}.sms"),
                        &raw_language.sms,
                    )?,
                    whatsapp: raw_language
                        .whatsapp
                        .as_deref()
                        .map(|s| parse(format!("templates.{kind}.{language}.whatsapp"), s))
                        .transpose()?,
                },
            );
        }
        templates.insert(kind.clone(), by_language);
    }
    if let Some(missing) = MESSAGE_KINDS.iter().find(|k| !templates.contains_key(**k)) {
        return Err(error(
            &format!("templates.{missing}"),
            "missing: every pack has a template for every message kind".to_string(),
        ));
    }
    Ok(ProfilePack::from_parts(
        raw.pack.name,
        Terminology {
            customer: raw.terminology.customer,
            appointment: raw.terminology.appointment,
        },
        Policy {
            quiet_hours,
            message_cap,
            opt_out_footer: raw.policy.opt_out_footer.trim().to_string(),
            forbidden_content: filter,
            timings,
            deposit,
        },
        templates,
    ))
}

/// `HH:MM-HH:MM` (quiet from the first to the second) or `off`.
pub fn parse_quiet_hours(text: &str) -> Result<Option<QuietWindow>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("expected HH:MM-HH:MM or off, got {text:?}"))?;
    let time = |t: &str| {
        NaiveTime::parse_from_str(t.trim(), "%H:%M")
            .map_err(|_| format!("{t:?} is not a time of day HH:MM"))
    };
    let (start, end) = (time(start)?, time(end)?);
    if start == end {
        return Err("the quiet window is empty; write off to disable it".to_string());
    }
    Ok(Some(QuietWindow { start, end }))
}

/// A duration such as `48h`, `30m`, `90d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut seen_unit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration like 48h, 30m or 90d"))?;
        number.clear();
        total += match c {
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            's' => Duration::seconds(n),
            _ => return Err(format!("{text:?} is not a duration like 48h, 30m or 90d")),
        };
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        return Err(format!(
            "{text:?} is not a duration like 48h, 30m or 90d (a unit is required)"
        ));
    }
    Ok(total)
}

fn parse_timings(raw: &BTreeMap<String, String>) -> Result<Timings, (String, String)> {
    let mut timings = Timings::default();
    for (key, value) in raw {
        let path = format!("policy.timings.{key}");
        let duration = parse_duration(value).map_err(|r| (path.clone(), r))?;
        if duration <= Duration::zero() {
            return Err((path, "must be longer than zero".to_string()));
        }
        let slot = match key.as_str() {
            "reminder_48h_before" => &mut timings.reminder_48h_before,
            "reminder_24h_before" => &mut timings.reminder_24h_before,
            "no_response_after" => &mut timings.no_response_after,
            "unconfirmed_escalation_before" => &mut timings.unconfirmed_escalation_before,
            "last_send_before_start" => &mut timings.last_send_before_start,
            "completion_grace" => &mut timings.completion_grace,
            "review_after_end" => &mut timings.review_after_end,
            "rebook_after_review" => &mut timings.rebook_after_review,
            "review_cooldown" => &mut timings.review_cooldown,
            "deposit_payment_wait" => &mut timings.deposit_payment_wait,
            "deposit_reminder_wait" => &mut timings.deposit_reminder_wait,
            _ => return Err((path, "unknown timing".to_string())),
        };
        *slot = duration;
    }
    if timings.reminder_24h_before >= timings.reminder_48h_before {
        return Err((
            "policy.timings.reminder_24h_before".to_string(),
            "must be shorter than reminder_48h_before".to_string(),
        ));
    }
    Ok(timings)
}

fn parse_deposit(raw: Option<&RawDeposit>) -> Result<DepositRules, (String, String)> {
    let mut rules = DepositRules::default();
    let Some(raw) = raw else {
        return Ok(rules);
    };
    if let Some(t) = raw.risk_threshold {
        rules.risk_threshold = u8::try_from(t).ok().filter(|t| *t <= 100).ok_or((
            "policy.deposit.risk_threshold".to_string(),
            format!("must be 0 to 100, got {t}"),
        ))?;
    }
    if let Some(n) = raw.no_show_threshold {
        rules.no_show_threshold = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or((
            "policy.deposit.no_show_threshold".to_string(),
            format!("must be at least 1, got {n}"),
        ))?;
    }
    if let Some(amount) = &raw.amount {
        rules.amount_cents = parse_amount(amount).ok_or((
            "policy.deposit.amount".to_string(),
            format!("{amount:?} is not an amount like 50.00"),
        ))?;
    }
    Ok(rules)
}

/// `50`, `50.5` or `50.00` → cents.
fn parse_amount(text: &str) -> Option<i64> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() || fraction.len() > 2 || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    let amount = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)?;
    (amount > 0).then_some(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "config/profiles/test.toml";

    fn shipped() -> String {
        super::super::SHIPPED_PACKS[0].1.to_string()
    }

    fn err(text: &str) -> PackError {
        parse_pack(FILE, text).expect_err("invalid")
    }

    #[test]
    fn an_unknown_variable_names_file_key_and_reason() {
        let text = shipped().replacen("sms = \"Hi {first_name}", "sms = \"Hi {nmae}", 1);
        let e = err(&text);
        assert_eq!(e.file, FILE);
        assert!(e.key.starts_with("templates."), "{e}");
        assert!(e.reason.contains("unknown variable {nmae}"), "{e}");
    }

    #[test]
    fn a_missing_kind_is_named() {
        let start = shipped()
            .find("[templates.review_request]")
            .expect("kind present");
        let rest = &shipped()[start + 1..];
        let end = rest
            .find("\n[")
            .map(|e| start + 1 + e)
            .unwrap_or(shipped().len());
        let text = format!("{}{}", &shipped()[..start], &shipped()[end..]);
        let e = err(&text);
        assert_eq!(e.key, "templates.review_request");
        assert!(e.reason.contains("missing"), "{e}");
    }

    #[test]
    fn bad_durations_caps_and_windows_are_named() {
        let text = shipped().replace(
            "no_response_after = \"4h\"",
            "no_response_after = \"4 hours\"",
        );
        assert_eq!(err(&text).key, "policy.timings.no_response_after");
        let text = shipped().replace("message_cap = 3", "message_cap = 5");
        let e = err(&text);
        assert_eq!(e.key, "policy.message_cap");
        assert!(e.reason.contains("cannot raise the guardrail"));
        let text = shipped().replace(
            "quiet_hours = \"21:00-08:00\"",
            "quiet_hours = \"25:00-08:00\"",
        );
        assert_eq!(err(&text).key, "policy.quiet_hours");
    }

    #[test]
    fn durations_and_amounts_parse() {
        assert_eq!(parse_duration("48h"), Ok(Duration::hours(48)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("90d"), Ok(Duration::days(90)));
        assert!(parse_duration("48").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_amount("50.00"), Some(5_000));
        assert_eq!(parse_amount("50.5"), Some(5_050));
        assert_eq!(parse_amount("12"), Some(1_200));
        assert_eq!(parse_amount("1.234"), None);
        assert_eq!(parse_amount("-5"), None);
        assert_eq!(parse_amount("0"), None);
    }

    #[test]
    fn quiet_hours_parse() {
        let w = parse_quiet_hours("21:00-08:00")
            .expect("ok")
            .expect("window");
        assert_eq!(w.start, NaiveTime::from_hms_opt(21, 0, 0).expect("t"));
        assert_eq!(parse_quiet_hours("off"), Ok(None));
        assert!(parse_quiet_hours("08:00-08:00").is_err());
    }
}
