//! Twilio: the engine's [`MessagingProvider`] port over Twilio's REST API (SMS and
//! WhatsApp), plus the pure pieces the HTTP layer needs for Twilio's webhooks.
//!
//! This module owns the outbound wire format — `POST …/Messages.json` with basic auth
//! and a form body, `GET …/Messages/{sid}.json` and the `Messages.json` list used to
//! reconcile a send whose answer was lost — and the mapping of transport failures and
//! Twilio's answers to [`ProviderError`]. `errors` classifies Twilio error codes,
//! `signature` computes and verifies `X-Twilio-Signature`, `inbound` parses inbound
//! messages and status callbacks.
//!
//! Futures and threads: awc's client is `!Send` (it holds `Rc`s), but the port returns
//! `Send` futures. Each call therefore builds its client and runs the HTTP exchange in a
//! task spawned with `tokio::task::spawn_local` on the current thread's `LocalSet`, and
//! the returned future only awaits that task's `JoinHandle` (which is `Send`); dropping
//! the returned future aborts the task. The futures must be polled inside a `LocalSet`
//! — any actix arbiter or `actix_rt` system is one, which is where the engine runs them.
//! Each arbiter thread keeps one client (see `http_client`), so connections are reused
//! and the TLS context is built once, not per message.
//!
//! Nothing here logs the auth token, a message body or a full phone number (only the
//! last four digits).

pub mod errors;
pub mod inbound;
pub mod signature;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ACCEPT;
use actors::ports::providers::{
    Channel, MessagingProvider, OutboundMessage, ProviderError, SendReceipt,
};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

pub use errors::{is_opt_out, twilio_code};

use crate::providers::http::{http_client, on_local_set, retry_after, transport_error, Answer};

/// Twilio's REST API version path segment.
const API_VERSION: &str = "2010-04-01";
/// How many recent messages a content lookup reads (one page).
const LOOKUP_PAGE_SIZE: &str = "50";
/// A content lookup only matches messages created this recently, so an identical
/// reminder sent days ago is not mistaken for the attempt being reconciled.
const LOOKUP_WINDOW: chrono::Duration = chrono::Duration::hours(72);
/// Statuses of a message that never reached the recipient: a content lookup ignores
/// them, so the message may be sent again.
const NOT_DELIVERED: [&str; 3] = ["failed", "undelivered", "canceled"];
const WHATSAPP_PREFIX: &str = "whatsapp:";
/// Names this provider in errors.
const PROVIDER: &str = "twilio";

/// Credentials and endpoints for one Twilio account.
#[derive(Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub auth_token: String,
    /// The sender: an E.164 number (`whatsapp:` prefix optional; it is added for
    /// WhatsApp messages) or a messaging-service SID `MG…`.
    pub from: String,
    /// `https://api.twilio.com` in production; a fake's address in tests.
    pub api_base: Url,
    /// Sent as `StatusCallback` with every message when set.
    pub status_callback: Option<Url>,
    /// The longest a request may take, connect to last byte of the answer.
    pub timeout: Duration,
}

impl fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"********")
            .field("from", &errors::mask_number(&self.from))
            .field("api_base", &self.api_base.as_str())
            .field(
                "status_callback",
                &self.status_callback.as_ref().map(Url::as_str),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Who a message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    /// A phone number, without any `whatsapp:` prefix.
    Number(String),
    /// A messaging service (`MessagingServiceSid`); Twilio picks the number.
    Service(String),
}

impl Sender {
    fn parse(from: &str) -> Self {
        let from = from.trim();
        if from.starts_with("MG") && from.len() == 34 {
            Self::Service(from.to_string())
        } else {
            Self::Number(strip_whatsapp(from).to_string())
        }
    }

    /// The form field naming the sender.
    fn form_field(&self, channel: Channel) -> (&'static str, String) {
        match self {
            Self::Number(number) => ("From", address(channel, number)),
            Self::Service(sid) => ("MessagingServiceSid", sid.clone()),
        }
    }
}

fn strip_whatsapp(address: &str) -> &str {
    address.strip_prefix(WHATSAPP_PREFIX).unwrap_or(address)
}

/// The address Twilio expects on `channel`.
fn address(channel: Channel, number: &str) -> String {
    let number = strip_whatsapp(number.trim());
    match channel {
        Channel::Sms => number.to_string(),
        Channel::Whatsapp => format!("{WHATSAPP_PREFIX}{number}"),
    }
}

/// The form body of a send.
fn send_form(settings: &TwilioSettings, message: &OutboundMessage) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("To", address(message.channel, &message.to)),
        Sender::parse(&settings.from).form_field(message.channel),
        ("Body", message.body.clone()),
    ];
    if let Some(callback) = &settings.status_callback {
        form.push(("StatusCallback", callback.to_string()));
    }
    form
}

/// `{api_base}/2010-04-01/Accounts/{sid}/` followed by `tail`, each segment escaped.
fn endpoint(settings: &TwilioSettings, tail: &[&str]) -> Result<Url, ProviderError> {
    let mut url = settings.api_base.clone();
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| ProviderError {
            class: ErrorClass::ClientError,
            message: format!("twilio api_base {} cannot take a path", settings.api_base),
            outcome_unknown: false,
        })?
        .pop_if_empty()
        .extend([API_VERSION, "Accounts", settings.account_sid.as_str()])
        .extend(tail);
    Ok(url)
}

/// Twilio's Message resource, the fields we read.
#[derive(Debug, Clone, Deserialize)]
struct MessageResource {
    sid: String,
    status: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// RFC 2822, e.g. `Thu, 30 Jul 2015 20:12:31 +0000`.
    #[serde(default)]
    date_created: Option<String>,
}

impl MessageResource {
    fn receipt(&self) -> SendReceipt {
        SendReceipt {
            provider_ref: self.sid.clone(),
            status: self.status.clone(),
        }
    }
}

/// One page of Twilio's message list.
#[derive(Debug, Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<MessageResource>,
}

/// The newest message of `page` that is the attempt being reconciled: same recipient
/// and exact same body, created within [`LOOKUP_WINDOW`] (a message whose date cannot
/// be read counts as recent), and not in a status meaning it never reached the
/// recipient — after `failed` / `undelivered` a resend duplicates nothing.
fn find_sent<'a>(
    page: &'a [MessageResource],
    to: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Option<&'a MessageResource> {
    page.iter().find(|m| {
        let recent = m
            .date_created
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .is_none_or(|created| now.signed_duration_since(created) <= LOOKUP_WINDOW);
        m.body.as_deref() == Some(body)
            && m.to.as_deref().is_none_or(|t| t == to)
            && !NOT_DELIVERED.contains(&m.status.as_str())
            && recent
    })
}

/// The error for a non-2xx answer from Twilio.
fn answer_error(answer: &Answer) -> ProviderError {
    if let Some(redirect) = answer.unexpected_redirect("twilio") {
        return redirect;
    }
    let parsed = answer
        .body
        .as_deref()
        .ok()
        .and_then(errors::TwilioApiError::parse);
    errors::from_response(answer.status, parsed.as_ref(), retry_after(&answer.headers))
}

/// Adds Twilio's basic auth (account SID : auth token) and asks for JSON.
fn authorised(settings: &TwilioSettings, request: awc::ClientRequest) -> awc::ClientRequest {
    request
        .basic_auth(&settings.account_sid, &settings.auth_token)
        .insert_header((ACCEPT, "application/json"))
}

async fn send_now(
    settings: Arc<TwilioSettings>,
    message: OutboundMessage,
) -> Result<SendReceipt, ProviderError> {
    let url = endpoint(&settings, &["Messages.json"])?;
    let form = send_form(&settings, &message);
    let to = errors::mask_number(&message.to);
    tracing::debug!(to = %to, channel = ?message.channel, "twilio: sending message");
    let client = http_client(settings.timeout);
    let request = authorised(&settings, client.post(url.as_str()));
    let response = request
        .send_form(&form)
        .await
        .map_err(|e| transport_error(PROVIDER, &e, true))?;
    let answer = Answer::read(response).await;
    let result = if answer.is_success() {
        answer
            .json::<MessageResource>(PROVIDER, true)
            .map(|m| m.receipt())
    } else {
        Err(answer_error(&answer))
    };
    match &result {
        Ok(receipt) => {
            tracing::info!(to = %to, sid = %receipt.provider_ref, status = %receipt.status, "twilio: message accepted");
        }
        Err(error) => {
            tracing::warn!(to = %to, class = ?error.class, outcome_unknown = error.outcome_unknown, error = %error.message, "twilio: send failed");
        }
    }
    result
}

async fn lookup_by_sid(
    settings: Arc<TwilioSettings>,
    sid: String,
) -> Result<Option<SendReceipt>, ProviderError> {
    let url = endpoint(&settings, &["Messages", &format!("{sid}.json")])?;
    let client = http_client(settings.timeout);
    let request = authorised(&settings, client.get(url.as_str()));
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(PROVIDER, &e, false))?;
    let answer = Answer::read(response).await;
    if answer.status == 404 {
        return Ok(None);
    }
    if !answer.is_success() {
        return Err(answer_error(&answer));
    }
    let found = answer.json::<MessageResource>(PROVIDER, true)?;
    Ok(Some(found.receipt()))
}

async fn lookup_by_content(
    settings: Arc<TwilioSettings>,
    message: OutboundMessage,
) -> Result<Option<SendReceipt>, ProviderError> {
    let mut url = endpoint(&settings, &["Messages.json"])?;
    let to = address(message.channel, &message.to);
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("To", &to);
        // A messaging service picks the number itself: filter by recipient only.
        if let Sender::Number(number) = Sender::parse(&settings.from) {
            query.append_pair("From", &address(message.channel, &number));
        }
        query.append_pair("PageSize", LOOKUP_PAGE_SIZE);
    }
    let client = http_client(settings.timeout);
    let request = authorised(&settings, client.get(url.as_str()));
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(PROVIDER, &e, false))?;
    let answer = Answer::read(response).await;
    if !answer.is_success() {
        return Err(answer_error(&answer));
    }
    let page = answer.json::<MessagePage>(PROVIDER, true)?;
    let found =
        find_sent(&page.messages, &to, &message.body, Utc::now()).map(MessageResource::receipt);
    tracing::debug!(
        to = %errors::mask_number(&message.to),
        found = found.is_some(),
        "twilio: looked up an earlier attempt"
    );
    Ok(found)
}

/// The Twilio messaging adapter. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct TwilioMessaging {
    settings: Arc<TwilioSettings>,
}

impl TwilioMessaging {
    pub fn new(settings: TwilioSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &TwilioSettings {
        &self.settings
    }
}

impl MessagingProvider for TwilioMessaging {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    /// `POST …/Messages.json`. A timeout or a connection lost after the request was
    /// written is reported with `outcome_unknown`: reconcile with [`Self::lookup`].
    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>> {
        let settings = Arc::clone(&self.settings);
        on_local_set(PROVIDER, move || send_now(settings, message), true)
    }

    /// With `provider_ref`: `GET …/Messages/{sid}.json`, 404 → `None`, else the message
    /// whatever its status. Without: the newest of the last 50 messages to the recipient
    /// (from our sender) with the exact same body, created in the last 72 hours and not
    /// `failed` / `undelivered` / `canceled`; `None` when there is none.
    fn lookup(
        &self,
        message: OutboundMessage,
        provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>> {
        let settings = Arc::clone(&self.settings);
        match provider_ref {
            Some(sid) => on_local_set(PROVIDER, move || lookup_by_sid(settings, sid), false),
            None => on_local_set(
                PROVIDER,
                move || lookup_by_content(settings, message),
                false,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(from: &str) -> TwilioSettings {
        TwilioSettings {
            account_sid: "AC0123".to_string(),
            auth_token: "secret-token".to_string(),
            from: from.to_string(),
            api_base: Url::parse("https://api.twilio.com").expect("url"),
            status_callback: Some(
                Url::parse("https://aro.example/webhooks/twilio/status").expect("url"),
            ),
            timeout: Duration::from_secs(10),
        }
    }

    fn message(channel: Channel) -> OutboundMessage {
        OutboundMessage {
            idempotency_key: "k1".to_string(),
            channel,
            to: "+15551234567".to_string(),
            body: "See you at 3pm".to_string(),
        }
    }

    fn resource(sid: &str, status: &str, body: &str, created: &str) -> MessageResource {
        MessageResource {
            sid: sid.to_string(),
            status: status.to_string(),
            body: Some(body.to_string()),
            to: Some("+15551234567".to_string()),
            date_created: Some(created.to_string()),
        }
    }

    #[test]
    fn debug_masks_the_token_and_number() {
        let shown = format!("{:?}", settings("+15557654321"));
        assert!(!shown.contains("secret-token"));
        assert!(!shown.contains("5557654321"));
        assert!(shown.contains("AC0123"));
    }

    #[test]
    fn endpoints_escape_and_append() {
        let s = settings("+15557654321");
        assert_eq!(
            endpoint(&s, &["Messages.json"]).expect("url").as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json"
        );
        let mut proxied = s.clone();
        proxied.api_base = Url::parse("http://127.0.0.1:9/twilio/").expect("url");
        assert_eq!(
            endpoint(&proxied, &["Messages", "SM1/../x.json"])
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/twilio/2010-04-01/Accounts/AC0123/Messages/SM1%2F..%2Fx.json"
        );
    }

    #[test]
    fn sms_form_has_every_field() {
        let form = send_form(&settings("+15557654321"), &message(Channel::Sms));
        assert_eq!(
            form,
            vec![
                ("To", "+15551234567".to_string()),
                ("From", "+15557654321".to_string()),
                ("Body", "See you at 3pm".to_string()),
                (
                    "StatusCallback",
                    "https://aro.example/webhooks/twilio/status".to_string()
                ),
            ]
        );
    }

    #[test]
    fn whatsapp_form_prefixes_both_addresses_once() {
        for from in ["+15557654321", "whatsapp:+15557654321"] {
            let form = send_form(&settings(from), &message(Channel::Whatsapp));
            assert_eq!(form[0], ("To", "whatsapp:+15551234567".to_string()));
            assert_eq!(form[1], ("From", "whatsapp:+15557654321".to_string()));
        }
        // A whatsapp: sender still sends plain SMS from the bare number.
        let form = send_form(&settings("whatsapp:+15557654321"), &message(Channel::Sms));
        assert_eq!(form[1], ("From", "+15557654321".to_string()));
    }

    #[test]
    fn messaging_service_sender() {
        let sid = format!("MG{}", "a".repeat(32));
        let form = send_form(&settings(&sid), &message(Channel::Sms));
        assert_eq!(form[1], ("MessagingServiceSid", sid));
    }

    #[test]
    fn content_lookup_matches_recent_delivered_attempts_only() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let recent = "Sun, 01 Mar 2026 09:59:00 +0000";
        let old = "Wed, 25 Feb 2026 09:59:00 +0000";
        let page = vec![
            resource("SM1", "failed", "See you at 3pm", recent),
            resource("SM2", "queued", "Other text", recent),
            resource("SM3", "sent", "See you at 3pm", recent),
            resource("SM4", "delivered", "See you at 3pm", old),
        ];
        let to = "+15551234567";
        assert_eq!(
            find_sent(&page, to, "See you at 3pm", now).map(|m| m.sid.as_str()),
            Some("SM3")
        );
        assert!(find_sent(&page[..2], to, "See you at 3pm", now).is_none());
        assert!(find_sent(&page[3..], to, "See you at 3pm", now).is_none());
        assert!(find_sent(&page, "+15550000000", "See you at 3pm", now).is_none());
        let mut undated = resource("SM5", "queued", "See you at 3pm", "");
        undated.date_created = None;
        assert!(find_sent(&[undated], to, "See you at 3pm", now).is_some());
    }
}
