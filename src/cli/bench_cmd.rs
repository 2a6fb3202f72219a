//! `aro bench`: runs the engine benchmarks of `crate::bench`.

use super::BenchAction;
use crate::config::Config;

pub fn run(config: Config, action: BenchAction) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        match action {
            BenchAction::Engine {
                appointments,
                concurrency,
                rate,
            } => {
                crate::bench::engine(&config, appointments, concurrency.max(1), rate.max(1.0))
                    .await?
            }
            BenchAction::Seed { appointments } => crate::bench::seed(&config, appointments).await?,
        }
        Ok(())
    })
}
