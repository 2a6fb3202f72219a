//! Parsers for the form posts Twilio sends us: an inbound SMS / WhatsApp message and a
//! message status callback. Pure: they take the decoded form fields (after the
//! signature was verified) and return typed values or an [`InboundError`] naming the
//! field at fault. A field that appears twice is refused rather than guessed at.

use actors::ports::providers::Channel;

/// The prefix Twilio puts on WhatsApp addresses.
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// What is wrong with a Twilio form post.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {field} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// A message a customer sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub message_sid: String,
    pub channel: Channel,
    /// The sender, `whatsapp:` prefix removed.
    pub from: String,
    /// Our number it was sent to, `whatsapp:` prefix removed.
    pub to: String,
    /// The text; empty for a media-only message.
    pub body: String,
    pub num_media: u32,
}

/// Twilio's message statuses, as `MessageStatus` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Read,
    Accepted,
    Scheduled,
    Canceled,
    Receiving,
    Received,
}

impl MessageStatus {
    const ALL: [(&'static str, MessageStatus); 12] = [
        ("queued", Self::Queued),
        ("sending", Self::Sending),
        ("sent", Self::Sent),
        ("delivered", Self::Delivered),
        ("undelivered", Self::Undelivered),
        ("failed", Self::Failed),
        ("read", Self::Read),
        ("accepted", Self::Accepted),
        ("scheduled", Self::Scheduled),
        ("canceled", Self::Canceled),
        ("receiving", Self::Receiving),
        ("received", Self::Received),
    ];

    /// Parses Twilio's lowercase status name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, status)| *status)
    }

    /// Twilio's name for the status.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, status)| *status == self)
            .map_or("unknown", |(name, _)| name)
    }

    /// The message did not reach the recipient and never will.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed | Self::Canceled)
    }
}

/// A status callback for a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    pub status: MessageStatus,
    /// Twilio's error code for a failed / undelivered message
    /// (see [`super::errors::classify_code`]).
    pub error_code: Option<u32>,
}

/// The one value of `name`; `Ok(None)` when absent, an error when repeated.
fn field<'a>(
    form: &'a [(String, String)],
    name: &'static str,
) -> Result<Option<&'a str>, InboundError> {
    let mut found = form.iter().filter(|(key, _)| key == name);
    let first = found.next();
    if found.next().is_some() {
        return Err(InboundError::Invalid {
            field: name,
            reason: "appears more than once",
        });
    }
    Ok(first.map(|(_, value)| value.as_str()))
}

fn required<'a>(form: &'a [(String, String)], name: &'static str) -> Result<&'a str, InboundError> {
    field(form, name)?.ok_or(InboundError::Missing(name))
}

/// A Twilio SID: non-empty, at most 64 ASCII letters and digits.
fn sid(form: &[(String, String)], name: &'static str) -> Result<String, InboundError> {
    let value = required(form, name)?;
    if value.is_empty() {
        return Err(InboundError::Missing(name));
    }
    if value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(InboundError::Invalid {
            field: name,
            reason: "not a Twilio SID",
        });
    }
    Ok(value.to_string())
}

/// An address, split into its channel and the bare address.
fn address(
    form: &[(String, String)],
    name: &'static str,
) -> Result<(Channel, String), InboundError> {
    let value = required(form, name)?.trim();
    let (channel, bare) = match value.strip_prefix(WHATSAPP_PREFIX) {
        Some(bare) => (Channel::Whatsapp, bare),
        None => (Channel::Sms, value),
    };
    if bare.is_empty() {
        return Err(InboundError::Missing(name));
    }
    Ok((channel, bare.to_string()))
}

fn optional_number(
    form: &[(String, String)],
    name: &'static str,
) -> Result<Option<u32>, InboundError> {
    match field(form, name)?.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| InboundError::Invalid {
            field: name,
            reason: "not a number",
        }),
    }
}

/// Parses an inbound message webhook (`MessageSid`, `From`, `To`, `Body`, `NumMedia`).
/// A `whatsapp:` prefix on `From` makes it a WhatsApp message; `To` must agree.
pub fn parse_inbound(form: &[(String, String)]) -> Result<InboundMessage, InboundError> {
    let message_sid = sid(form, "MessageSid")?;
    let (channel, from) = address(form, "From")?;
    let (to_channel, to) = address(form, "To")?;
    if to_channel != channel {
        return Err(InboundError::Invalid {
            field: "To",
            reason: "channel differs from From's",
        });
    }
    let body = required(form, "Body")?.to_string();
    let num_media = optional_number(form, "NumMedia")?.unwrap_or(0);
    Ok(InboundMessage {
        message_sid,
        channel,
        from,
        to,
        body,
        num_media,
    })
}

/// Parses a status callback (`MessageSid`, `MessageStatus` — or the legacy `SmsStatus`
/// when `MessageStatus` is absent — and an optional `ErrorCode`).
pub fn parse_status(form: &[(String, String)]) -> Result<StatusCallback, InboundError> {
    let message_sid = sid(form, "MessageSid")?;
    let (name, raw) = match field(form, "MessageStatus")? {
        Some(raw) => ("MessageStatus", raw),
        None => match field(form, "SmsStatus")? {
            Some(raw) => ("SmsStatus", raw),
            None => return Err(InboundError::Missing("MessageStatus")),
        },
    };
    let status = MessageStatus::parse(raw.trim()).ok_or(InboundError::Invalid {
        field: name,
        reason: "not a Twilio message status",
    })?;
    let error_code = optional_number(form, "ErrorCode")?;
    Ok(StatusCallback {
        message_sid,
        status,
        error_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "SM1234567890abcdef1234567890abcdef";

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sms() -> Vec<(String, String)> {
        form(&[
            ("MessageSid", SID),
            ("AccountSid", "AC123"),
            ("From", "+15551234567"),
            ("To", "+15557654321"),
            ("Body", "YES"),
            ("NumMedia", "0"),
        ])
    }

    #[test]
    fn parses_an_sms() {
        let message = parse_inbound(&sms()).expect("parses");
        assert_eq!(message.message_sid, SID);
        assert_eq!(message.channel, Channel::Sms);
        assert_eq!(message.from, "+15551234567");
        assert_eq!(message.to, "+15557654321");
        assert_eq!(message.body, "YES");
        assert_eq!(message.num_media, 0);
    }

    #[test]
    fn whatsapp_prefix_sets_channel_and_is_stripped() {
        let f = form(&[
            ("MessageSid", SID),
            ("From", "whatsapp:+15551234567"),
            ("To", "whatsapp:+15557654321"),
            ("Body", "C"),
            ("NumMedia", "2"),
        ]);
        let message = parse_inbound(&f).expect("parses");
        assert_eq!(message.channel, Channel::Whatsapp);
        assert_eq!(message.from, "+15551234567");
        assert_eq!(message.to, "+15557654321");
        assert_eq!(message.num_media, 2);
    }

    #[test]
    fn inbound_errors_name_the_field() {
        let without = |name: &str| -> Vec<(String, String)> {
            sms().into_iter().filter(|(k, _)| k != name).collect()
        };
        for name in ["MessageSid", "From", "To", "Body"] {
            let err = parse_inbound(&without(name)).expect_err(name);
            assert_eq!(err, InboundError::Missing(name));
            assert!(err.to_string().contains(name));
        }
        // NumMedia is optional.
        assert_eq!(
            parse_inbound(&without("NumMedia")).expect("ok").num_media,
            0
        );

        let mut bad = sms();
        bad[5].1 = "many".to_string();
        assert!(matches!(
            parse_inbound(&bad),
            Err(InboundError::Invalid {
                field: "NumMedia",
                ..
            })
        ));

        let mut mixed = sms();
        mixed[2].1 = "whatsapp:+15551234567".to_string();
        assert!(matches!(
            parse_inbound(&mixed),
            Err(InboundError::Invalid { field: "To", .. })
        ));

        let mut empty_from = sms();
        empty_from[2].1 = "whatsapp:".to_string();
        assert_eq!(
            parse_inbound(&empty_from),
            Err(InboundError::Missing("From"))
        );

        let mut bad_sid = sms();
        bad_sid[0].1 = "SM<script>".to_string();
        assert!(matches!(
            parse_inbound(&bad_sid),
            Err(InboundError::Invalid {
                field: "MessageSid",
                ..
            })
        ));

        let mut repeated = sms();
        repeated.push(("Body".to_string(), "NO".to_string()));
        assert!(matches!(
            parse_inbound(&repeated),
            Err(InboundError::Invalid { field: "Body", .. })
        ));
    }

    #[test]
    fn empty_body_is_allowed_for_media() {
        let mut f = sms();
        f[4].1 = String::new();
        f[5].1 = "1".to_string();
        let message = parse_inbound(&f).expect("parses");
        assert_eq!(message.body, "");
        assert_eq!(message.num_media, 1);
    }

    #[test]
    fn parses_every_status() {
        for (name, status) in MessageStatus::ALL {
            let f = form(&[("MessageSid", SID), ("MessageStatus", name)]);
            let cb = parse_status(&f).expect(name);
            assert_eq!(cb.status, status);
            assert_eq!(cb.status.as_str(), name);
            assert_eq!(cb.error_code, None);
        }
    }

    #[test]
    fn status_with_error_code() {
        let f = form(&[
            ("MessageSid", SID),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]);
        let cb = parse_status(&f).expect("parses");
        assert_eq!(cb.status, MessageStatus::Undelivered);
        assert!(cb.status.is_failure());
        assert_eq!(cb.error_code, Some(30003));
        let empty_code = form(&[
            ("MessageSid", SID),
            ("MessageStatus", "delivered"),
            ("ErrorCode", ""),
        ]);
        assert_eq!(parse_status(&empty_code).expect("parses").error_code, None);
    }

    #[test]
    fn legacy_sms_status_is_accepted() {
        let f = form(&[("MessageSid", SID), ("SmsStatus", "sent")]);
        assert_eq!(
            parse_status(&f).expect("parses").status,
            MessageStatus::Sent
        );
    }

    #[test]
    fn status_errors_name_the_field() {
        assert_eq!(
            parse_status(&form(&[("MessageStatus", "sent")])),
            Err(InboundError::Missing("MessageSid"))
        );
        assert_eq!(
            parse_status(&form(&[("MessageSid", SID)])),
            Err(InboundError::Missing("MessageStatus"))
        );
        let err = parse_status(&form(&[("MessageSid", SID), ("MessageStatus", "lost")]))
            .expect_err("bad status");
        assert!(matches!(
            err,
            InboundError::Invalid {
                field: "MessageStatus",
                ..
            }
        ));
        assert!(err.to_string().contains("MessageStatus"));
        let err = parse_status(&form(&[
            ("MessageSid", SID),
            ("MessageStatus", "failed"),
            ("ErrorCode", "x1"),
        ]))
        .expect_err("bad code");
        assert!(matches!(
            err,
            InboundError::Invalid {
                field: "ErrorCode",
                ..
            }
        ));
    }
}
