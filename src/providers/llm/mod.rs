//! The optional LLM reply classifier (SPEC §4, §6): an OpenAI-compatible
//! chat-completions API asked for a reply's intent, within a monthly budget, in front of
//! the local classifier.
//!
//! - [`client`]: the HTTP adapter (`POST {api_base}/chat/completions`, 4 s timeout) and
//!   the parsing of its answer;
//! - [`budget`]: the persisted per-month request count (`llm.monthly_budget`);
//! - [`chain`]: [`ReplyClassifier`], the LLM when configured and within budget, else —
//!   and on any LLM failure — the local classifier.
//!
//! Nothing here logs the API key or a phone number; a reply's text only at debug level.

pub mod budget;
pub mod chain;
pub mod client;

use std::time::Duration;

use actors::ports::providers::ProviderError;
use actors::resilience::backoff::ErrorClass;

use crate::store::StoreError;

pub use budget::LlmBudget;
pub use chain::ReplyClassifier;
pub use client::{LlmClient, LlmSettings, LLM_TIMEOUT, SYSTEM_PROMPT};

/// Why the LLM gave no classification (the chain then asks the local classifier).
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// This month's requests are used up.
    #[error("the monthly LLM budget of {limit} requests is spent")]
    BudgetExhausted { limit: u64 },
    /// The budget could not be read or counted: no request is sent unaccounted.
    #[error("the LLM budget could not be checked: {0}")]
    Budget(#[from] StoreError),
    #[error("the LLM did not answer within {0:?}")]
    Timeout(Duration),
    /// A transport failure or a non-2xx answer.
    #[error("{0}")]
    Provider(ProviderError),
    /// A 2xx whose content is not the asked-for JSON.
    #[error("the LLM's answer is not a classification: {0}")]
    InvalidAnswer(String),
    #[error("the LLM is misconfigured: {0}")]
    Config(String),
}

impl LlmError {
    /// A short name for logs and the `aro_llm_requests_total` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::Budget(_) => "budget_error",
            Self::Timeout(_) => "timeout",
            Self::Provider(_) => "http_error",
            Self::InvalidAnswer(_) => "invalid_answer",
            Self::Config(_) => "config_error",
        }
    }

    /// The engine's provider error for this failure.
    pub fn into_provider_error(self) -> ProviderError {
        let (class, message) = match self {
            Self::Provider(error) => return error,
            Self::Timeout(_) => (ErrorClass::Timeout, self.to_string()),
            Self::Budget(_) => (ErrorClass::Network, self.to_string()),
            Self::InvalidAnswer(_) => (ErrorClass::ServerError, self.to_string()),
            Self::BudgetExhausted { .. } | Self::Config(_) => (ErrorClass::Final, self.to_string()),
        };
        ProviderError {
            class,
            message,
            outcome_unknown: false,
        }
    }
}
