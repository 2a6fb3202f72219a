//! The reply classifier chain (SPEC §4) after the carrier keywords, which the caller
//! applies first: the optional LLM, then the local classifier.
//!
//! When the LLM is configured (`llm.api_base` + `llm.model`) and the month's budget
//! allows, the reply's text is sent to it; on any failure — the budget spent or not
//! checkable, a timeout, a network error, a non-2xx answer, an answer that is not the
//! asked-for JSON — the local classifier answers instead. The result's `source` says
//! which one did: `llm` or `local`. The whole LLM stage (budget check and request) is
//! bounded by the 4 s timeout, so a webhook never waits longer than that on it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actors::classify::LocalClassifier;
use actors::ports::providers::{Classification, Classifier, ProviderError};
use actors::ports::BoxFuture;
use chrono::Utc;

use super::budget::LlmBudget;
use super::client::{LlmClient, LlmSettings, LLM_TIMEOUT};
use super::LlmError;
use crate::config::Config;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::Database;

/// The local classifier, built once per process (its lexicon index is not free to
/// build) and shared by every chain.
fn local() -> &'static LocalClassifier {
    static LOCAL: OnceLock<LocalClassifier> = OnceLock::new();
    LOCAL.get_or_init(LocalClassifier::new)
}

/// The LLM and its budget.
#[derive(Debug)]
struct LlmStage {
    client: LlmClient,
    budget: LlmBudget,
    /// The longest the stage may take, budget check included.
    deadline: Duration,
}

impl LlmStage {
    async fn ask(&self, text: &str) -> Result<Classification, LlmError> {
        let attempt = async {
            if !self.budget.reserve(Utc::now()).await? {
                return Err(LlmError::BudgetExhausted {
                    limit: self.budget.limit(),
                });
            }
            self.client.classify_text(text).await
        };
        actix_web::rt::time::timeout(self.deadline, attempt)
            .await
            .unwrap_or(Err(LlmError::Timeout(self.deadline)))
    }
}

/// The classifier chain. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ReplyClassifier {
    llm: Option<Arc<LlmStage>>,
}

impl ReplyClassifier {
    /// The local classifier alone.
    pub fn local_only() -> Self {
        Self::default()
    }

    /// The LLM (within `budget`) first, then the local classifier. The stage's deadline
    /// is the client's timeout.
    pub fn with_llm(client: LlmClient, budget: LlmBudget) -> Self {
        let deadline = client.settings().timeout;
        Self {
            llm: Some(Arc::new(LlmStage {
                client,
                budget,
                deadline,
            })),
        }
    }

    /// The chain the configuration describes: with the LLM when `llm.api_base` and
    /// `llm.model` are set, counting its requests in `db`.
    pub fn from_config(config: &Config, db: &Database) -> Self {
        let llm = &config.llm;
        match (&llm.api_base, &llm.model) {
            (Some(api_base), Some(model)) => {
                // Shown without any credentials a URL could carry.
                let mut shown = api_base.clone();
                shown.set_query(None);
                let _ = shown.set_password(None);
                let _ = shown.set_username("");
                tracing::info!(
                    api_base = %shown,
                    model = %model,
                    monthly_budget = llm.monthly_budget,
                    "reply classifier: LLM, then local"
                );
                let client = LlmClient::new(LlmSettings {
                    api_base: api_base.clone(),
                    api_key: llm.api_key.as_ref().map(|key| key.expose().clone()),
                    model: model.clone(),
                    timeout: LLM_TIMEOUT,
                });
                let budget = LlmBudget::new(db.clone(), DEFAULT_TENANT, llm.monthly_budget);
                Self::with_llm(client, budget)
            }
            _ => Self::local_only(),
        }
    }

    /// Whether an LLM is configured.
    pub fn llm_enabled(&self) -> bool {
        self.llm.is_some()
    }

    /// Classifies one reply; never fails (the local classifier is the last word).
    pub async fn classify(&self, text: &str) -> Classification {
        if let Some(stage) = &self.llm {
            match stage.ask(text).await {
                Ok(classification) => {
                    ::metrics::counter!("aro_llm_requests_total", "result" => "ok").increment(1);
                    return classification;
                }
                Err(error) => {
                    let kind = error.kind();
                    ::metrics::counter!("aro_llm_requests_total", "result" => kind).increment(1);
                    if matches!(error, LlmError::BudgetExhausted { .. }) {
                        tracing::debug!(%error, "llm skipped: using the local classifier");
                    } else {
                        tracing::warn!(%error, kind, "llm failed: using the local classifier");
                    }
                }
            }
        }
        local().classify_text(text)
    }
}

impl Classifier for ReplyClassifier {
    fn classify(&self, text: String) -> BoxFuture<'static, Result<Classification, ProviderError>> {
        let chain = self.clone();
        Box::pin(async move { Ok(ReplyClassifier::classify(&chain, &text).await) })
    }
}
