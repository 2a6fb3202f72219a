//! The running daemon: opens the database, migrates, binds the listener and serves
//! HTTP until stopped. Tests build it on a random port exactly as `aro serve` does.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use chrono::Utc;

use actors::engine::Engine;
use actors::ports::clock::{Clock, SystemClock};

use crate::config::Config;
use crate::engine_host::start_engine;
use crate::http::{self, request_context::request_context, AppState};
use crate::ops::backup_schedule::BackupScheduler;
use crate::ops::nightly::NightlyJobs;
use crate::store::{migrations, models::Tenant, tenant_queries, Database, StoreError};

/// How often histogram samples are folded into buckets when nobody scrapes `/metrics`.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the engine: {0}")]
    Engine(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built, not yet running, daemon.
pub struct Application {
    server: Server,
    address: SocketAddr,
    db: Database,
    engine: Engine,
    /// The daily backup (`backup.daily`); stopped with the server.
    backups: Option<BackupScheduler>,
    /// The nightly risk recompute; stopped with the server.
    nightly: NightlyJobs,
}

impl Application {
    /// Opens the database, applies migrations (when configured), makes sure the
    /// business's tenant exists, and binds the HTTP listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with the engine on `clock` (the end-to-end tests drive
    /// days of reminders through a virtual clock).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let db = prepare_database(&config).await?;
        let engine = start_engine(&config, &db, clock).map_err(StartError::Engine)?;
        let backups = BackupScheduler::start(&config, &db);
        let nightly = NightlyJobs::start(&config, &db);

        let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let max_body = config.http.max_body_bytes;
        let shutdown_secs = config.http.shutdown_timeout.as_secs();
        let workers = config.http.workers;
        let classifier = crate::providers::llm::ReplyClassifier::from_config(&config, &db);
        let state = web::Data::new(AppState {
            config: Arc::new(config),
            db: db.clone(),
            metrics: http::metrics_recorder(),
            engine: engine.clone(),
            classifier,
        });
        // Subscription deliveries and command upkeep (SPEC §7).
        crate::api::start_background(state.clone());
        // One set of inbound rate limits for all workers (SPEC §8).
        let limits = web::Data::new(crate::auth::rate_limit::InboundLimits::new(
            state.config.http.webhook_rate_limit_per_minute,
        ));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(limits.clone())
                .wrap(from_fn(http::security::admin_guard))
                .wrap(from_fn(request_context))
                .wrap(http::security::headers(&state.config))
                .configure(|cfg| http::routes(cfg, max_body))
                .default_service(web::to(http::not_found))
        })
        .disable_signals()
        .shutdown_timeout(shutdown_secs);
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                addr: address,
                source,
            })?
            .run();
        Ok(Self {
            server,
            address,
            db,
            engine,
            backups,
            nightly,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The running engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`Application::handle`], then stops the engine
    /// (committed work is durable; timers and outbox rows resume at the next start).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let upkeep = actix_web::rt::spawn(async {
            let recorder = http::metrics_recorder();
            let mut tick = actix_web::rt::time::interval(METRICS_UPKEEP_EVERY);
            loop {
                tick.tick().await;
                recorder.run_upkeep();
            }
        });
        let result = self.server.await;
        upkeep.abort();
        if let Some(backups) = self.backups {
            backups.stop();
        }
        self.nightly.stop();
        self.engine.shutdown().await;
        result
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests and returns.
    ///
    /// The signal handlers are installed when this is called, before the returned
    /// future first runs: a signal that arrives as soon as the daemon says it is
    /// listening is handled, not the default (which would kill the process).
    pub fn run_until_signal(self) -> impl std::future::Future<Output = std::io::Result<()>> {
        let signals = ShutdownSignals::install();
        let handle = self.handle();
        async move {
            actix_web::rt::spawn(async move {
                let signal = signals.recv().await;
                tracing::info!(signal, "shutdown requested; draining");
                handle.stop(true).await;
            });
            self.run_until_stopped().await
        }
    }
}

/// Opens the database, applies pending migrations (or refuses to start when they are
/// pending and migrating on start is off) and makes sure the business's tenant exists.
pub async fn prepare_database(config: &Config) -> Result<Database, StartError> {
    let db = Database::open(&config.database)?;
    if config.database.migrate_on_start {
        let applied = db.run(migrations::run_pending).await?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "migrations applied");
        }
    } else {
        let pending = db.run(migrations::pending_count).await?;
        if pending > 0 {
            return Err(StoreError::MigrationsPending(pending).into());
        }
    }
    let tenant = default_tenant(config);
    db.run(move |conn| tenant_queries::ensure(conn, &tenant))
        .await?;
    Ok(db)
}

fn default_tenant(config: &Config) -> Tenant {
    let now = Utc::now().naive_utc();
    Tenant {
        tenant_id: tenant_queries::DEFAULT_TENANT.to_string(),
        name: config.business.name.clone(),
        profile: config.profile.clone(),
        timezone: config.timezone.name().to_string(),
        phone: config.business.phone.clone(),
        country: config.business.country.clone(),
        currency: config.business.currency.clone(),
        created_at: now,
        updated_at: now,
    }
}

/// SIGTERM and SIGINT, registered with the runtime when installed.
struct ShutdownSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Registers the handlers now (must run inside the runtime).
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let register = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(err) => {
                    tracing::warn!(error = %err, signal = name, "cannot watch a shutdown signal");
                    None
                }
            };
            Self {
                term: register(SignalKind::terminate(), "SIGTERM"),
                int: register(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for either signal and names the one received.
    async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            let (mut term, mut int) = (self.term, self.int);
            let term_recv = async {
                match term.as_mut() {
                    Some(stream) => stream.recv().await,
                    None => std::future::pending().await,
                }
            };
            let int_recv = async {
                match int.as_mut() {
                    Some(stream) => stream.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term_recv => "SIGTERM",
                _ = int_recv => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
