//! `ScriptedMessaging`: a messaging provider that answers from a script and records
//! every message it accepted, for engine tests without HTTP.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::ports::providers::{MessagingProvider, OutboundMessage, ProviderError, SendReceipt};
use crate::ports::BoxFuture;

#[derive(Debug, Clone, Default)]
pub struct ScriptedMessaging {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    script: VecDeque<Result<(), ProviderError>>,
    delivered: Vec<OutboundMessage>,
    calls: usize,
    /// When set, only messages whose kind starts with this are scripted and counted;
    /// the others are accepted and kept apart.
    only_kinds: Option<&'static str>,
    others: Vec<OutboundMessage>,
}

/// The kind in an engine idempotency key `{owner}:{kind}[:…]`.
fn kind_of(message: &OutboundMessage) -> &str {
    message
        .idempotency_key
        .split(':')
        .nth(1)
        .unwrap_or_default()
}

impl ScriptedMessaging {
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider whose script, calls and deliveries concern only the reminders: every
    /// other message (confirmations, answers…) is accepted and kept in
    /// [`ScriptedMessaging::others`]. For tests about the reminders' retries.
    pub fn reminders_only() -> Self {
        let provider = Self::default();
        provider.lock().only_kinds = Some("reminder");
        provider
    }

    /// Messages outside the scripted kinds, accepted.
    pub fn others(&self) -> Vec<OutboundMessage> {
        self.lock().others.clone()
    }

    /// Queues answers for the next calls; when the script is empty calls succeed.
    pub fn push(&self, answer: Result<(), ProviderError>) {
        self.lock().script.push_back(answer);
    }

    /// Messages the provider accepted, in order.
    pub fn delivered(&self) -> Vec<OutboundMessage> {
        self.lock().delivered.clone()
    }

    /// Every send attempt, accepted or not.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MessagingProvider for ScriptedMessaging {
    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>> {
        let mut inner = self.lock();
        if let Some(prefix) = inner.only_kinds {
            if !kind_of(&message).starts_with(prefix) {
                let receipt = SendReceipt {
                    provider_ref: format!("SX{:032}", inner.others.len()),
                    status: "queued".to_string(),
                };
                inner.others.push(message);
                return Box::pin(async move { Ok(receipt) });
            }
        }
        inner.calls += 1;
        let answer = inner.script.pop_front().unwrap_or(Ok(()));
        let result = answer.map(|()| {
            let receipt = SendReceipt {
                provider_ref: format!("SM{:032}", inner.delivered.len()),
                status: "queued".to_string(),
            };
            inner.delivered.push(message);
            receipt
        });
        Box::pin(async move { result })
    }

    fn lookup(
        &self,
        message: OutboundMessage,
        _provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>> {
        let inner = self.lock();
        let found = inner
            .delivered
            .iter()
            .position(|m| m.idempotency_key == message.idempotency_key)
            .map(|i| SendReceipt {
                provider_ref: format!("SM{i:032}"),
                status: "sent".to_string(),
            })
            .or_else(|| {
                inner
                    .others
                    .iter()
                    .position(|m| m.idempotency_key == message.idempotency_key)
                    .map(|i| SendReceipt {
                        provider_ref: format!("SX{i:032}"),
                        status: "sent".to_string(),
                    })
            });
        Box::pin(async move { Ok(found) })
    }
}
