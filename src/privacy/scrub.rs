//! Removing one customer's personal data from stored text and JSON documents (pure).
//!
//! Two layers, applied to every document that concerns the customer:
//!
//! 1. **By key.** In JSON, the value of a key that holds personal data by its nature —
//!    names, phone numbers, e-mail addresses, message bodies and excerpts, notes,
//!    free-text reasons, cancel / reschedule / payment links, consent evidence — is
//!    replaced by [`ERASED`] (a `null` stays `null`), wherever it is nested. Keys are
//!    compared without case and without `_`, so `phone_e164` and `phoneE164` are one.
//!    Facts the metrics read (`kind`, `amountCents`, statuses, times, ids) are kept.
//! 2. **By value.** Every remaining string has the customer's known values replaced by
//!    [`ERASED`]: phone numbers (E.164, without `+`, and the national digits), the
//!    e-mail address, the full name and each word of it (3 letters or more, whole
//!    words, any case; in text, or as the whole value — an identifier such as
//!    `ext-jane-1` stays whole so it still names its row), and the text of every
//!    message sent to or received from them.
//!
//! Text that is not JSON gets the second layer only.

use regex::Regex;
use serde_json::Value;

/// What erased data is replaced with.
pub const ERASED: &str = "[erased]";

/// Keys (lower case, without `_`) whose values are personal data wherever they occur.
const PERSONAL_KEYS: &[&str] = &[
    "name",
    "firstname",
    "lastname",
    "fullname",
    "phone",
    "phonee164",
    "phonenumber",
    "textremindernumber",
    "email",
    "body",
    "text",
    "excerpt",
    "note",
    "notes",
    "resolutionnote",
    "reason",
    "cancellationreason",
    "cancelurl",
    "rescheduleurl",
    "link",
    "depositlink",
    "paymentlink",
    "evidence",
    "questionsandanswers",
    "answer",
    "answers",
];

/// Message texts shorter than this are not searched for on their own ("yes", "ok"):
/// they say nothing about a person and would match unrelated text.
const MIN_TEXT_CHARS: usize = 8;
/// Name words shorter than this are not searched for on their own.
const MIN_NAME_WORD_CHARS: usize = 3;

/// One customer's known values, to be found and replaced.
#[derive(Debug, Clone, Default)]
pub struct Needles {
    /// Exact substrings (phones, e-mail, message texts), longest first.
    phrases: Vec<String>,
    /// Name words and the full name, whole words, any case.
    names: Option<Regex>,
}

impl Needles {
    /// The needles for a customer with these `phones` (E.164), `names`, `emails` and the
    /// `texts` of their messages.
    pub fn new<'a>(
        phones: impl IntoIterator<Item = &'a str>,
        names: impl IntoIterator<Item = &'a str>,
        emails: impl IntoIterator<Item = &'a str>,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut phrases: Vec<String> = Vec::new();
        for phone in phones {
            phrases.extend(phone_forms(phone));
        }
        phrases.extend(
            emails
                .into_iter()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string),
        );
        phrases.extend(
            texts
                .into_iter()
                .map(str::trim)
                .filter(|t| t.chars().count() >= MIN_TEXT_CHARS)
                .map(str::to_string),
        );
        phrases.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        phrases.dedup();
        let mut words: Vec<String> = Vec::new();
        for name in names {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            words.push(name.to_string());
            words.extend(
                name.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
                    .filter(|w| w.chars().count() >= MIN_NAME_WORD_CHARS)
                    .map(str::to_string),
            );
        }
        words.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        words.dedup();
        let names = (!words.is_empty())
            .then(|| {
                let alternatives: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
                Regex::new(&format!(r"(?i)\b(?:{})\b", alternatives.join("|"))).ok()
            })
            .flatten();
        Self { phrases, names }
    }

    /// `text` with every needle replaced by [`ERASED`].
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for phrase in &self.phrases {
            if out.contains(phrase.as_str()) {
                out = out.replace(phrase.as_str(), ERASED);
            }
        }
        if let Some(names) = &self.names {
            // Name words go from text, and where they are the whole value; an
            // identifier that merely contains one (`ext-jane-1`) is left whole, so it
            // still matches the row it names.
            let text_like = out.chars().any(char::is_whitespace);
            let whole = names
                .find(&out)
                .is_some_and(|m| m.start() == 0 && m.end() == out.len());
            if text_like || whole {
                out = names.replace_all(&out, ERASED).into_owned();
            }
        }
        out
    }

    /// Scrubs a JSON value in place: personal keys first, then every string.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                let scrubbed = self.text(text);
                if scrubbed != *text {
                    *text = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let address = is_address_key(key) && item.as_str().is_some_and(is_address);
                    if is_personal_key(key) || address {
                        if !item.is_null() {
                            *item = Value::String(ERASED.to_string());
                        }
                    } else {
                        self.json(item);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A stored document scrubbed: parsed and scrubbed as JSON when it is JSON (and
    /// written back in the same compact form), else scrubbed as text.
    pub fn document(&self, stored: &str) -> String {
        match serde_json::from_str::<Value>(stored) {
            Ok(mut value) if value.is_object() || value.is_array() => {
                self.json(&mut value);
                value.to_string()
            }
            _ => self.text(stored),
        }
    }

    /// [`Needles::document`] for an optional column.
    pub fn optional(&self, stored: Option<&str>) -> Option<String> {
        stored.map(|s| self.document(s))
    }
}

/// Whether `key` names personal data (see [`PERSONAL_KEYS`]).
pub fn is_personal_key(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    PERSONAL_KEYS.contains(&folded.as_str())
}

/// Whether `key` names the other party of a message (`to`, `from`), which in event
/// payloads also names statuses and times: only addresses are erased there.
fn is_address_key(key: &str) -> bool {
    matches!(key, "to" | "from" | "To" | "From")
}

/// A phone number or an e-mail address (with or without a `whatsapp:` prefix).
fn is_address(value: &str) -> bool {
    let bare = value.trim().trim_start_matches("whatsapp:");
    let digits = bare.chars().filter(char::is_ascii_digit).count();
    bare.contains('@')
        || (digits >= 7
            && bare
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c)))
}

/// The ways an E.164 number is written in stored text: as given, without `+`, and the
/// national digits (without a 1–3 digit calling code, at least 7 digits left).
pub fn phone_forms(e164: &str) -> Vec<String> {
    let e164 = e164.trim();
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 {
        return if e164.is_empty() {
            Vec::new()
        } else {
            vec![e164.to_string()]
        };
    }
    let mut forms = vec![e164.to_string(), digits.clone()];
    for code in 1..=3 {
        if digits.len() - code >= 7 {
            forms.push(digits[code..].to_string());
        }
    }
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jane() -> Needles {
        Needles::new(
            ["+15557770001"],
            ["Jane Erasmus"],
            ["jane.erasmus@example.com"],
            ["Could we move it to Friday afternoon?", "yes"],
        )
    }

    #[test]
    fn phones_are_found_in_every_form() {
        assert_eq!(
            phone_forms("+15557770001"),
            vec![
                "+15557770001",
                "15557770001",
                "5557770001",
                "557770001",
                "57770001"
            ]
        );
        let needles = jane();
        assert_eq!(needles.text("call 5557770001 now"), "call [erased] now");
        assert_eq!(needles.text("+15557770001"), "[erased]");
        assert_eq!(
            needles.text("+15557770002"),
            "+15557770002",
            "another number"
        );
    }

    #[test]
    fn names_are_whole_words_in_any_case() {
        let needles = jane();
        assert_eq!(needles.text("Hi JANE, see you"), "Hi [erased], see you");
        assert_eq!(needles.text("Jane Erasmus called"), "[erased] called");
        assert_eq!(needles.text("Janet and Erasmusson"), "Janet and Erasmusson");
        assert_eq!(needles.text("erasmus"), "[erased]");
        assert_eq!(
            needles.text("ext-jane-1"),
            "ext-jane-1",
            "an identifier stays whole"
        );
        assert_eq!(
            needles.text("mail jane.erasmus@example.com"),
            "mail [erased]"
        );
    }

    #[test]
    fn personal_keys_go_whatever_their_value_and_facts_stay() {
        let needles = jane();
        let mut doc = json!({
            "kind": "booking_confirmation",
            "amountCents": 2500,
            "to": "+15557770001",
            "customer": {"name": "J. E.", "phone_e164": "+15550000000", "email": null},
            "command": {"excerpt": "see you Friday", "intent": "reschedule"},
            "from": {"startsAt": "2031-06-04T14:00:00Z"},
            "by": {"type": "staff", "id": "ann"},
            "items": ["Could we move it to Friday afternoon? thanks", "yes"],
            "cancelUrl": "https://calendly.com/cancellations/X",
            "transition": {"from": "booked", "to": "confirmed"},
            "reply": {"from": "whatsapp:+447700900123", "to": "+15550001111"},
        });
        needles.json(&mut doc);
        assert_eq!(
            doc,
            json!({
                "kind": "booking_confirmation",
                "amountCents": 2500,
                "to": "[erased]",
                "customer": {"name": "[erased]", "phone_e164": "[erased]", "email": null},
                "command": {"excerpt": "[erased]", "intent": "reschedule"},
                "from": {"startsAt": "2031-06-04T14:00:00Z"},
                "by": {"type": "staff", "id": "ann"},
                "items": ["[erased] thanks", "yes"],
                "cancelUrl": "[erased]",
                "transition": {"from": "booked", "to": "confirmed"},
                "reply": {"from": "[erased]", "to": "[erased]"},
            })
        );
    }

    #[test]
    fn documents_keep_their_form() {
        let needles = jane();
        assert_eq!(
            needles.document(r#"{"body":"x","kind":"k"}"#),
            r#"{"body":"[erased]","kind":"k"}"#
        );
        assert_eq!(
            needles.document("HTTP 400 for +15557770001"),
            "HTTP 400 for [erased]"
        );
        assert_eq!(needles.document("42"), "42");
        assert_eq!(needles.optional(None), None);
        assert!(is_personal_key("resolution_note"));
        assert!(is_personal_key("PhoneE164"));
        assert!(!is_personal_key("kind"));
    }

    #[test]
    fn no_needles_change_nothing() {
        let needles = Needles::new([], [], [], []);
        assert_eq!(needles.text("Jane +15557770001"), "Jane +15557770001");
    }
}
