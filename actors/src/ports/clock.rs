//! The `Clock` port: the engine's only source of time. `SystemClock` reads the wall
//! clock; `VirtualClock` is moved by hand, so tests cover days of reminders in
//! milliseconds and never sleep for real.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::BoxFuture;

/// Where the engine gets "now" and how it waits for a moment to come.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Completes once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single sleep: the wall clock can jump (NTP, suspend), so a long wait is cut
/// into slices that each re-read it.
const MAX_SLEEP_SLICE: std::time::Duration = std::time::Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let left = (deadline - Utc::now()).to_std().unwrap_or_default();
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves time forward by `by` and wakes every sleeper whose deadline has come.
    pub fn advance(&self, by: chrono::Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// Sets the time; it may move backwards (a clock jump), which wakes nobody.
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_replace(to);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` returns at once when the condition already holds; an error
            // means the clock was dropped, and then nothing will ever wake us: return.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn virtual_sleep_wakes_only_when_time_reaches_the_deadline() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let clock = VirtualClock::new(start);
        let deadline = start + chrono::Duration::hours(48);
        let sleeper = tokio::spawn(clock.sleep_until(deadline));
        tokio::task::yield_now().await;
        clock.advance(chrono::Duration::hours(47));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(chrono::Duration::hours(1));
        sleeper.await.expect("sleeper finishes");
        assert_eq!(clock.now(), deadline);
        // A deadline already past returns at once.
        clock.sleep_until(start).await;
    }

    #[tokio::test]
    async fn clock_jump_backwards_wakes_nobody() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let clock = VirtualClock::new(start);
        let sleeper = tokio::spawn(clock.sleep_until(start + chrono::Duration::minutes(5)));
        clock.set(start - chrono::Duration::hours(1));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.set(start + chrono::Duration::minutes(5));
        sleeper.await.expect("finishes");
    }
}
