//! The service manager's notify protocol (sd_notify(3)) for `aro serve`: `READY=1` once
//! the daemon serves (database migrated, engine started, HTTP bound), `STOPPING=1` when
//! shutdown starts, and `WATCHDOG=1` at half the interval the manager asks for — sent
//! only while the database answers its readiness check, so a wedged daemon stops
//! pinging and systemd (`WatchdogSec=` in `systemd/aro.service`) restarts it.
//!
//! Everything is a no-op when `NOTIFY_SOCKET` is not set: not under systemd, or a unit
//! that is not `Type=notify`. Datagrams go out through the `sd-notify` crate.
//!
//! The watchdog interval is read as libsystemd's `sd_watchdog_enabled(3)` reads it:
//! `WATCHDOG_USEC` (a positive number of microseconds) and, when set, `WATCHDOG_PID`,
//! which must then be this process. `sd_notify::watchdog_enabled` (0.4.5) is not used
//! because it also treats an *unset* `WATCHDOG_PID` as "not for us", unlike libsystemd;
//! systemd always sets both, so the two agree under systemd itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::store::Database;

/// The notifier of one `aro serve` process. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct ServiceNotifier {
    /// `NOTIFY_SOCKET` is set: messages have somewhere to go.
    active: bool,
    /// The manager's watchdog timeout, when it asked for pings.
    watchdog: Option<Duration>,
    /// `STOPPING=1` was sent (it is sent once).
    stopping: AtomicBool,
    /// A send failed and was logged (later failures are not, to keep the log quiet).
    send_failed: AtomicBool,
}

impl ServiceNotifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Arc<Self> {
        let active = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        let watchdog = watchdog_timeout(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Arc::new(Self::new(active, watchdog))
    }

    fn new(active: bool, watchdog: Option<Duration>) -> Self {
        Self {
            active,
            watchdog: watchdog.filter(|_| active),
            stopping: AtomicBool::new(false),
            send_failed: AtomicBool::new(false),
        }
    }

    /// Whether a service manager listens (`NOTIFY_SOCKET` is set).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The manager's watchdog timeout, when it asked for pings (and listens).
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Tells the manager the daemon is up (`READY=1`), with a one-line status for
    /// `systemctl status`.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        if self.active {
            tracing::debug!(status, "told the service manager we are ready");
        }
    }

    /// Tells the manager shutdown has started (`STOPPING=1`); only the first call sends.
    pub fn stopping(&self) {
        if !self.active || self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("draining and stopping"),
        ]);
    }

    /// Sends `STOPPING=1` as soon as SIGTERM or SIGINT arrives, alongside the daemon's
    /// own handlers (every registered listener of a signal is woken). Registers the
    /// listeners now, so call it inside the runtime before telling anyone the daemon is
    /// up. Does nothing when no manager listens.
    pub fn stop_on_signal(self: &Arc<Self>) {
        if !self.active {
            return;
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate());
            let int = signal(SignalKind::interrupt());
            let (mut term, mut int) = match (term, int) {
                (Ok(term), Ok(int)) => (term, int),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(error = %err, "cannot watch shutdown signals for STOPPING=1");
                    return;
                }
            };
            let notifier = Arc::clone(self);
            actix_web::rt::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                notifier.stopping();
            });
        }
    }

    /// Starts the watchdog pinger when the manager asked for one: every half timeout,
    /// a readiness check of `database` (bounded by that half timeout), then `WATCHDOG=1`
    /// if it passed. A failed check withholds the ping and is logged; enough of them in
    /// a row and the manager restarts the daemon. Runs until the runtime stops.
    pub fn spawn_watchdog(self: &Arc<Self>, database: Database) {
        let Some(timeout) = self.watchdog else {
            return;
        };
        let period = ping_period(timeout);
        let notifier = Arc::clone(self);
        tracing::info!(
            timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            "service manager watchdog enabled"
        );
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut healthy = true;
            loop {
                tick.tick().await;
                match actix_web::rt::time::timeout(period, database.readiness()).await {
                    Ok(Ok(())) => {
                        if !healthy {
                            tracing::info!("healthy again; watchdog pings resumed");
                            notifier.send(&[NotifyState::Status("serving")]);
                        }
                        healthy = true;
                        notifier.send(&[NotifyState::Watchdog]);
                    }
                    Ok(Err(err)) => {
                        healthy = false;
                        tracing::warn!(error = %err, "unhealthy; watchdog ping withheld");
                        let status = format!("unhealthy: {err}");
                        notifier.send(&[NotifyState::Status(&status)]);
                    }
                    Err(_) => {
                        healthy = false;
                        tracing::warn!("readiness check timed out; watchdog ping withheld");
                        notifier
                            .send(&[NotifyState::Status("unhealthy: database check timed out")]);
                    }
                }
            }
        });
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.active {
            return;
        }
        if let Err(err) = sd_notify::notify(false, states) {
            if !self.send_failed.swap(true, Ordering::SeqCst) {
                tracing::warn!(error = %err, "cannot notify the service manager");
            }
        }
    }
}

/// How often to ping for a watchdog `timeout`: half of it, as sd_watchdog_enabled(3)
/// recommends, and never more often than every 10 ms.
pub fn ping_period(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(10))
}

/// The watchdog timeout from `WATCHDOG_USEC` and `WATCHDOG_PID`, as libsystemd reads
/// them: none unless `usec` is a positive integer and `pid` is either unset or
/// `own_pid`.
pub fn watchdog_timeout(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|usec| *usec > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_timeout_follows_libsystemd() {
        let two_s = Some(Duration::from_secs(2));
        assert_eq!(watchdog_timeout(Some("2000000"), None, 7), two_s);
        assert_eq!(watchdog_timeout(Some("2000000"), Some("7"), 7), two_s);
        assert_eq!(watchdog_timeout(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_timeout(Some("2000000"), Some("x"), 7), None);
        assert_eq!(watchdog_timeout(Some("0"), None, 7), None);
        assert_eq!(watchdog_timeout(Some("-5"), None, 7), None);
        assert_eq!(watchdog_timeout(Some("soon"), None, 7), None);
        assert_eq!(watchdog_timeout(None, Some("7"), 7), None);
    }

    #[test]
    fn pings_come_at_half_the_timeout() {
        assert_eq!(
            ping_period(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(
            ping_period(Duration::from_micros(1)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn without_a_socket_nothing_is_active() {
        let notifier = ServiceNotifier::new(false, Some(Duration::from_secs(2)));
        assert!(!notifier.is_active());
        assert_eq!(notifier.watchdog_timeout(), None);
        // No socket: these return without sending anything.
        notifier.ready("ready");
        notifier.stopping();
        assert!(!notifier.stopping.load(Ordering::SeqCst));
    }
}
