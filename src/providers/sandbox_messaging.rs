//! Sandbox messaging: what runs when no messaging credentials are configured. Each
//! message is recorded in the `messages` table, marked `sandbox`, with status `sent`,
//! and nothing leaves the machine. The dashboard shows these rows (SPEC §6).

use actors::ports::providers::{
    Channel, MessagingProvider, OutboundMessage, ProviderError, SendReceipt,
};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use chrono::Utc;
use diesel::prelude::*;

use crate::store::schema::messages;
use crate::store::{Database, StoreError};

/// The tenant whose sandbox this is.
#[derive(Clone)]
pub struct SandboxMessaging {
    db: Database,
    tenant_id: String,
}

impl SandboxMessaging {
    pub fn new(db: Database, tenant_id: String) -> Self {
        Self { db, tenant_id }
    }
}

fn provider_error(err: StoreError) -> ProviderError {
    ProviderError {
        class: ErrorClass::Network,
        message: format!("sandbox store: {err}"),
        outcome_unknown: false,
    }
}

/// The sandbox's message id for an idempotency key: stable, so a resend finds it.
fn sandbox_ref(id: &str) -> String {
    format!("SBX{}", id.replace('-', ""))
}

impl MessagingProvider for SandboxMessaging {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>> {
        let db = self.db.clone();
        let tenant_id = self.tenant_id.clone();
        Box::pin(async move {
            db.run(move |conn| {
                let existing: Option<String> = messages::table
                    .filter(messages::tenant_id.eq(&tenant_id))
                    .filter(messages::idempotency_key.eq(&message.idempotency_key))
                    .select(messages::id)
                    .first(conn)
                    .optional()?;
                if let Some(id) = existing {
                    return Ok(sandbox_ref(&id));
                }
                let id = uuid::Uuid::now_v7().to_string();
                let now = Utc::now().naive_utc();
                let channel = match message.channel {
                    Channel::Sms => "sms",
                    Channel::Whatsapp => "whatsapp",
                };
                diesel::insert_into(messages::table)
                    .values((
                        messages::id.eq(&id),
                        messages::tenant_id.eq(&tenant_id),
                        messages::direction.eq("outbound"),
                        messages::channel.eq(channel),
                        messages::body.eq(&message.body),
                        messages::to_addr.eq(&message.to),
                        messages::provider.eq("sandbox"),
                        messages::provider_message_id.eq(sandbox_ref(&id)),
                        messages::status.eq("sent"),
                        messages::sandbox.eq(true),
                        messages::idempotency_key.eq(&message.idempotency_key),
                        messages::sent_at.eq(now),
                        messages::created_at.eq(now),
                        messages::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(sandbox_ref(&id))
            })
            .await
            .map(|provider_ref| SendReceipt {
                provider_ref,
                status: "sent".to_string(),
            })
            .map_err(provider_error)
        })
    }

    fn lookup(
        &self,
        message: OutboundMessage,
        _provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>> {
        let db = self.db.clone();
        let tenant_id = self.tenant_id.clone();
        Box::pin(async move {
            db.run(move |conn| {
                let found: Option<String> = messages::table
                    .filter(messages::tenant_id.eq(&tenant_id))
                    .filter(messages::idempotency_key.eq(&message.idempotency_key))
                    .select(messages::id)
                    .first(conn)
                    .optional()?;
                Ok(found.map(|id| SendReceipt {
                    provider_ref: sandbox_ref(&id),
                    status: "sent".to_string(),
                }))
            })
            .await
            .map_err(provider_error)
        })
    }
}
