//! Redaction of log output: known secret values become a mask and phone numbers keep
//! only their country-code side and last two digits.
//!
//! This is the last line of defence under the `Secret` type: whatever a log statement
//! formats passes through [`Redactor::redact`] before it reaches the output.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::MASK;

/// Rewrites text so that it carries no secret and no full phone number.
#[derive(Debug)]
pub struct Redactor {
    secrets: Vec<String>,
    phone: Regex,
}

/// Secrets shorter than this are not searched for: they would mask ordinary words.
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            secrets,
            // `+` and 8–15 digits, not preceded by a digit: E.164 numbers, also inside
            // `whatsapp:+…` and URL-encoded `%2B…` forms.
            phone: Regex::new(r"(\+|%2B)([1-9][0-9]{7,14})").expect("static regex is valid"),
        }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        if self.phone.is_match(&out) {
            let masked = self
                .phone
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let digits = &caps[2];
                    let keep_start = 2.min(digits.len());
                    let keep_end = digits.len().saturating_sub(2).max(keep_start);
                    format!(
                        "{}{}{}{}",
                        &caps[1],
                        &digits[..keep_start],
                        "*".repeat(keep_end - keep_start),
                        &digits[keep_end..]
                    )
                })
                .into_owned();
            out = Cow::Owned(masked);
        }
        out
    }
}

/// Mask a phone number for display at info level: `+15551234567` → `+15*******67`.
pub fn mask_phone(phone: &str) -> String {
    Redactor::new(Vec::new()).redact(phone).into_owned()
}

/// A `MakeWriter` that redacts each formatted log line before writing it.
#[derive(Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Arc<Redactor>,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Arc<Redactor>) -> Self {
        Self { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: Arc::clone(&self.redactor),
        }
    }
}

/// Writes redacted text to `W`. The fmt layer hands over one whole event per write.
pub struct RedactingWriter<W> {
    inner: W,
    redactor: Arc<Redactor>,
}

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let r = Redactor::new(vec!["sk_test_123456".into(), "abc".into()]);
        assert_eq!(
            r.redact("key=sk_test_123456 and abc"),
            "key=******** and abc"
        );
    }

    #[test]
    fn phone_numbers_keep_only_their_edges() {
        let r = Redactor::new(vec![]);
        assert_eq!(r.redact("to +15551234567 now"), "to +15*******67 now");
        assert_eq!(r.redact("whatsapp:+447700900123"), "whatsapp:+44********23");
        assert_eq!(r.redact("To=%2B15551234567"), "To=%2B15*******67");
        assert_eq!(r.redact("order 12345678901"), "order 12345678901");
        assert_eq!(mask_phone("+15551234567"), "+15*******67");
    }

    #[test]
    fn writer_redacts_what_passes_through() {
        use std::io::Write;
        let redactor = Arc::new(Redactor::new(vec!["hunter2hunter2".into()]));
        let mut buf = Vec::new();
        {
            let mut w = RedactingWriter {
                inner: &mut buf,
                redactor,
            };
            w.write_all(b"{\"msg\":\"token hunter2hunter2 for +15551234567\"}\n")
                .expect("write");
        }
        let out = String::from_utf8(buf).expect("utf8");
        assert_eq!(out, "{\"msg\":\"token ******** for +15*******67\"}\n");
    }
}
