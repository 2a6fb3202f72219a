//! Phone numbers from Calendly bookings: normalising what an invitee typed to E.164
//! with the business's default country, and recognising a booking question that asks
//! for a phone number. Pure.
//!
//! The country table is deliberately small (the markets ARO ships for); a number in
//! another country must be typed internationally (`+…` or `00…`).

/// Calling code, national trunk prefix, and the lengths of a national significant
/// number (without trunk prefix) for each supported default country.
struct Country {
    iso: &'static str,
    code: &'static str,
    trunk: Option<&'static str>,
    nsn: std::ops::RangeInclusive<usize>,
}

const COUNTRIES: &[Country] = &[
    // NANP: the "trunk" 1 is the country code itself, as dialled nationally.
    Country {
        iso: "US",
        code: "1",
        trunk: Some("1"),
        nsn: 10..=10,
    },
    Country {
        iso: "CA",
        code: "1",
        trunk: Some("1"),
        nsn: 10..=10,
    },
    Country {
        iso: "GB",
        code: "44",
        trunk: Some("0"),
        nsn: 9..=10,
    },
    Country {
        iso: "DE",
        code: "49",
        trunk: Some("0"),
        nsn: 6..=12,
    },
    Country {
        iso: "FR",
        code: "33",
        trunk: Some("0"),
        nsn: 9..=9,
    },
    Country {
        iso: "ES",
        code: "34",
        trunk: None,
        nsn: 9..=9,
    },
    Country {
        iso: "MX",
        code: "52",
        trunk: None,
        nsn: 10..=10,
    },
    Country {
        iso: "AU",
        code: "61",
        trunk: Some("0"),
        nsn: 9..=9,
    },
];

/// Where a booking's phone number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneSource {
    /// Calendly's `text_reminder_number`: given for text reminders.
    TextReminderNumber,
    /// The answer to a custom question that asks for a phone number.
    Question,
}

/// Normalises `raw` to E.164 (`+` and 7–15 digits) or `None`.
///
/// Spaces, dashes, dots and parentheses are dropped (an international `(0)` such as
/// `+44 (0)20 …` is dropped whole); a leading `+` or `00` marks an international
/// number; otherwise the number is national to `country` (ISO 3166 alpha-2): a trunk
/// prefix is dropped and the calling code added. Anything else (letters, an extension,
/// a national number for an unknown country) is `None`.
pub fn normalize_phone(raw: &str, country: &str) -> Option<String> {
    let raw = raw.trim().replace("(0)", "");
    let mut international = false;
    let mut digits = String::with_capacity(raw.len());
    for (i, c) in raw.chars().enumerate() {
        match c {
            '+' if i == 0 => international = true,
            '0'..='9' => digits.push(c),
            '-' | '\u{2010}' | '\u{2013}' | '.' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if !international {
        if let Some(rest) = digits.strip_prefix("00") {
            digits = rest.to_string();
            international = true;
        }
    }
    let e164_digits = if international {
        digits
    } else {
        national(&digits, country)?
    };
    valid(&e164_digits).then(|| format!("+{e164_digits}"))
}

/// The E.164 digits (without `+`) of a national number.
fn national(digits: &str, country: &str) -> Option<String> {
    let country = COUNTRIES
        .iter()
        .find(|c| c.iso.eq_ignore_ascii_case(country.trim()))?;
    let fits = |nsn: &str| country.nsn.contains(&nsn.len());
    if let Some(nsn) = country.trunk.and_then(|t| digits.strip_prefix(t)) {
        if fits(nsn) {
            return Some(format!("{}{nsn}", country.code));
        }
    }
    if let Some(nsn) = digits.strip_prefix(country.code) {
        if fits(nsn) {
            return Some(digits.to_string());
        }
    }
    fits(digits).then(|| format!("{}{digits}", country.code))
}

/// 7–15 digits, no leading zero; a NANP area code starts with 2–9. (The exchange code
/// is not checked: the 555-1xx numbers used in examples and tests would fail it.)
fn valid(digits: &str) -> bool {
    if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
        return false;
    }
    if let Some(nanp) = digits.strip_prefix('1') {
        let bytes = nanp.as_bytes();
        if bytes.len() == 10 {
            return bytes[0] >= b'2';
        }
    }
    true
}

/// Words that make a question a phone question.
const PHONE_WORDS: &[&str] = &[
    "phone",
    "telephone",
    "mobile",
    "cell",
    "cellphone",
    "sms",
    "text",
    "whatsapp",
    "tel",
    "teléfono",
    "telefono",
    "móvil",
    "movil",
    "celular",
    "téléphone",
    "portable",
    "handy",
    "handynummer",
    "telefonnummer",
    "mobilnummer",
];

/// True when a booking question asks for a phone number (phone, mobile, cell, SMS,
/// teléfono, …, as a whole word, so "cancellation" is not "cell").
pub fn is_phone_question(question: &str) -> bool {
    question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| PHONE_WORDS.contains(&word) || (word.len() > 5 && word.ends_with("phone")))
}

/// The booking's phone: `text_reminder_number` when it normalises, else the first
/// phone question's answer that does.
pub fn find_phone<'a>(
    text_reminder_number: Option<&str>,
    questions_and_answers: impl IntoIterator<Item = (&'a str, &'a str)>,
    country: &str,
) -> Option<(String, PhoneSource)> {
    if let Some(number) = text_reminder_number.and_then(|n| normalize_phone(n, country)) {
        return Some((number, PhoneSource::TextReminderNumber));
    }
    questions_and_answers
        .into_iter()
        .filter(|(question, _)| is_phone_question(question))
        .find_map(|(_, answer)| normalize_phone(answer, country))
        .map(|number| (number, PhoneSource::Question))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_forms_are_kept() {
        for (raw, want) in [
            ("+1 (555) 123-4567", "+15551234567"),
            ("+44 7911 123456", "+447911123456"),
            ("+44 (0)20 7946 0958", "+442079460958"),
            ("0049 30 123456", "+4930123456"),
            ("+52 55 1234 5678", "+525512345678"),
            ("+33.6.12.34.56.78", "+33612345678"),
        ] {
            assert_eq!(normalize_phone(raw, "US").as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn national_numbers_take_the_default_country() {
        for (raw, country, want) in [
            ("(555) 123-4567", "US", "+15551234567"),
            ("555.123.4567", "us", "+15551234567"),
            ("1-555-123-4567", "US", "+15551234567"),
            ("416 555 0123", "CA", "+14165550123"),
            ("07911 123456", "GB", "+447911123456"),
            ("020 7946 0958", "GB", "+442079460958"),
            ("030 123456", "DE", "+4930123456"),
            ("0151 23456789", "DE", "+4915123456789"),
            ("06 12 34 56 78", "FR", "+33612345678"),
            ("612 34 56 78", "ES", "+34612345678"),
            ("55 1234 5678", "MX", "+525512345678"),
            ("0412 345 678", "AU", "+61412345678"),
            // The calling code typed without '+'.
            ("447911123456", "GB", "+447911123456"),
            ("34612345678", "ES", "+34612345678"),
        ] {
            assert_eq!(
                normalize_phone(raw, country).as_deref(),
                Some(want),
                "{raw} in {country}"
            );
        }
    }

    #[test]
    fn junk_is_rejected() {
        for (raw, country) in [
            ("", "US"),
            ("call me", "US"),
            ("555-1234", "US"),
            ("555 123 4567 ext 12", "US"),
            ("(055) 123-4567", "US"),
            ("12345", "GB"),
            ("+12", "US"),
            ("+1234567890123456", "US"),
            ("+0 555 1234567", "US"),
            ("5551234567", "ZZ"),
            ("1+5551234567", "US"),
            ("555-123-4567", ""),
        ] {
            assert_eq!(
                normalize_phone(raw, country),
                None,
                "{raw:?} in {country:?}"
            );
        }
    }

    #[test]
    fn phone_questions_are_recognised_by_word() {
        for q in [
            "Phone number",
            "Mobile",
            "Best cell # to reach you",
            "Your cellphone",
            "Número de teléfono",
            "Telefono (WhatsApp)",
            "Send SMS reminders to",
            "Smartphone number",
        ] {
            assert!(is_phone_question(q), "{q}");
        }
        for q in [
            "Cancellation policy accepted?",
            "Anything we should know?",
            "Telescope model",
            "Email",
        ] {
            assert!(!is_phone_question(q), "{q}");
        }
    }

    #[test]
    fn text_reminder_number_wins_then_questions() {
        let qas = [
            ("Anything else?", "call 555-123-9999 after 5"),
            ("Mobile number", "(555) 987-6543"),
        ];
        assert_eq!(
            find_phone(Some("+1 555 123 4567"), qas, "US"),
            Some(("+15551234567".to_string(), PhoneSource::TextReminderNumber))
        );
        assert_eq!(
            find_phone(None, qas, "US"),
            Some(("+15559876543".to_string(), PhoneSource::Question))
        );
        assert_eq!(
            find_phone(Some("not a number"), qas, "US"),
            Some(("+15559876543".to_string(), PhoneSource::Question))
        );
        assert_eq!(find_phone(None, [("Phone", "n/a")], "US"), None);
    }
}
