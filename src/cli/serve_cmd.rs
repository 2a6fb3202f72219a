//! `aro serve`: run the daemon until SIGTERM or SIGINT.

use crate::app::Application;
use crate::config::Config;
use crate::store::Backend;

pub fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    actix_web::rt::System::new().block_on(async move {
        let sandbox: Vec<&str> = [
            ("calendly", config.calendly.signing_key.is_none()),
            ("twilio", config.twilio.auth_token.is_none()),
            ("stripe", config.stripe.secret_key.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, sandboxed)| sandboxed.then_some(name))
        .collect();
        let app = Application::build(config).await?;
        let address = app.address();
        let backend = match app.database().backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        // Signal handlers first: the log line below tells supervisors (and tests) that the
        // daemon is up, and a SIGTERM right after it must drain, not kill.
        let running = app.run_until_signal();
        tracing::info!(
            addr = %address,
            backend,
            sandbox = ?sandbox,
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        running.await?;
        tracing::info!("stopped");
        Ok(())
    })
}
