//! `aro serve`: run the daemon until SIGTERM or SIGINT, telling a service manager
//! (systemd `Type=notify`) when it is ready, that it is alive, and when it stops.

use crate::app::Application;
use crate::config::Config;
use crate::service_notify::ServiceNotifier;
use crate::store::Backend;

pub fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    let notifier = ServiceNotifier::from_env();
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
        let database = app.database().clone();
        let backend = match database.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        // Signal handlers first: the log line below tells supervisors (and tests) that the
        // daemon is up, and a SIGTERM right after it must drain, not kill.
        let running = app.run_until_signal();
        notifier.stop_on_signal();
        tracing::info!(
            addr = %address,
            backend,
            sandbox = ?sandbox,
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        notifier.ready(&format!("serving on {address} ({backend})"));
        notifier.spawn_watchdog(database);
        let result = running.await;
        // Already sent when a signal started the stop; this covers any other way out.
        notifier.stopping();
        result?;
        tracing::info!("stopped");
        Ok(())
    })
}
