//! The nightly pass (SPEC §4): at 03:00 in the business's zone every customer's risk
//! score is recomputed from their counters ([`recompute_all`]), after the 02:00 backup.
//! Started by `app` with the engine, stopped at shutdown; a failed pass is logged and
//! tried again the next night.

use chrono::{NaiveTime, Utc};

use crate::config::Config;
use crate::ops::backup_schedule::{next_slot, sleep_until};
use crate::store::risk_queries::recompute_all;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::Database;

/// The local time of day the pass runs.
pub const NIGHTLY_AT: NaiveTime = match NaiveTime::from_hms_opt(3, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The running schedule; dropping or stopping it ends the task.
pub struct NightlyJobs {
    task: tokio::task::JoinHandle<()>,
}

impl NightlyJobs {
    /// Starts the schedule on the current runtime.
    pub fn start(config: &Config, db: &Database) -> Self {
        let zone = config.timezone;
        let db = db.clone();
        let task = tokio::task::spawn(async move {
            loop {
                sleep_until(next_slot(Utc::now(), zone, NIGHTLY_AT)).await;
                let pass = db
                    .run(|conn| Ok(recompute_all(conn, DEFAULT_TENANT)?))
                    .await;
                match pass {
                    Ok(changed) => tracing::info!(changed, "nightly risk recompute done"),
                    Err(error) => tracing::error!(%error, "nightly risk recompute failed"),
                }
            }
        });
        Self { task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for NightlyJobs {
    fn drop(&mut self) {
        self.task.abort();
    }
}
