//! What every handler can reach: the configuration, the database and the metrics.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::store::Database;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub metrics: PrometheusHandle,
}
