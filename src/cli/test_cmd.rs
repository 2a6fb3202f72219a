//! `aro test messaging --to +1…`: sends one message through the messaging provider the
//! configuration selects (Twilio with credentials, else the sandbox, which records it in
//! the message log) and prints what the provider answered — a quick check of
//! credentials and sender during an install.

use actors::ports::providers::{Channel, OutboundMessage};
use anyhow::bail;

use super::TestAction;
use crate::app::prepare_database;
use crate::config::values::is_e164;
use crate::config::Config;
use crate::engine_host::messaging_provider;
use crate::telemetry::redact::mask_phone;

pub fn run(config: Config, action: TestAction) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    match action {
        TestAction::Messaging { to, body, whatsapp } => messaging(config, to, body, whatsapp),
    }
}

fn messaging(config: Config, to: String, body: String, whatsapp: bool) -> anyhow::Result<()> {
    if !is_e164(&to) {
        bail!("--to {to:?} is not an E.164 number (+ and 8 to 15 digits, e.g. +15551234567)");
    }
    actix_web::rt::System::new().block_on(async move {
        let db = prepare_database(&config).await?;
        let provider = messaging_provider(&config, &db);
        let message = OutboundMessage {
            idempotency_key: format!("test:{}", uuid::Uuid::now_v7()),
            channel: if whatsapp {
                Channel::Whatsapp
            } else {
                Channel::Sms
            },
            to: to.clone(),
            body,
        };
        let shown = mask_phone(&to);
        match provider.send(message).await {
            Ok(receipt) => {
                println!(
                    "sent through {} to {shown}: id {}, status {}",
                    provider.name(),
                    receipt.provider_ref,
                    receipt.status
                );
                Ok(())
            }
            Err(error) => bail!(
                "{} refused the message to {shown} ({:?}{}): {}",
                provider.name(),
                error.class,
                if error.class.is_retryable() {
                    ", retryable"
                } else {
                    ""
                },
                error.message
            ),
        }
    })
}
