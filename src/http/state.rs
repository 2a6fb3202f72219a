//! What every handler can reach: the configuration, the database, the metrics and the
//! engine.

use std::sync::Arc;

use actors::engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::store::Database;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub metrics: PrometheusHandle,
    pub engine: Engine,
    /// The reply classifier chain: the LLM when configured, then the local classifier.
    pub classifier: crate::providers::llm::ReplyClassifier,
}
