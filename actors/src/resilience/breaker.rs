//! A circuit breaker per provider domain: closed → open after N failures inside a
//! window, open for a fixed time, then half-open until enough successes close it (any
//! failure while half-open opens it again). Its state can be snapshotted for storage and
//! restored at start.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The SPEC §6 numbers for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures inside `window` that open the breaker.
    pub failure_threshold: u32,
    pub window: Duration,
    /// How long it stays open before letting a trial call through.
    pub open_for: Duration,
    /// Successes while half-open that close it.
    pub successes_to_close: u32,
}

impl BreakerConfig {
    /// Messaging: 5 failures in 5 min → open 60 s, 2 successes to close.
    pub fn messaging() -> Self {
        Self::new(5, Duration::minutes(5), Duration::seconds(60), 2)
    }

    /// Booking: 10 failures in 10 min → open 120 s, 3 successes to close.
    pub fn booking() -> Self {
        Self::new(10, Duration::minutes(10), Duration::seconds(120), 3)
    }

    /// Payment: 3 failures in 3 min → open 30 s, 2 successes to close.
    pub fn payment() -> Self {
        Self::new(3, Duration::minutes(3), Duration::seconds(30), 2)
    }

    pub fn new(
        failure_threshold: u32,
        window: Duration,
        open_for: Duration,
        successes_to_close: u32,
    ) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            window,
            open_for,
            successes_to_close: successes_to_close.max(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown breaker state `{0}`")]
pub struct UnknownBreakerState(pub String);

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BreakerState {
    type Err = UnknownBreakerState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "closed" => Ok(Self::Closed),
            "open" => Ok(Self::Open),
            "half_open" => Ok(Self::HalfOpen),
            other => Err(UnknownBreakerState(other.to_string())),
        }
    }
}

/// What is persisted (`breaker_state` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub failure_count: u32,
    pub success_count: u32,
    pub window_started_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open until {retry_at}")]
pub struct BreakerOpen {
    pub retry_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    snapshot: BreakerSnapshot,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            snapshot: BreakerSnapshot {
                state: BreakerState::Closed,
                failure_count: 0,
                success_count: 0,
                window_started_at: None,
                opened_at: None,
            },
        }
    }

    /// Resumes from a stored snapshot. An open snapshot without an opening time is
    /// treated as opened now-ish by the first `allow` (it stays open for `open_for`).
    pub fn restore(config: BreakerConfig, snapshot: BreakerSnapshot) -> Self {
        Self { config, snapshot }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state as of `now` (an open breaker whose time is up reads half-open).
    pub fn state(&self, now: DateTime<Utc>) -> BreakerState {
        match self.snapshot.state {
            BreakerState::Open if self.open_until().is_some_and(|until| now >= until) => {
                BreakerState::HalfOpen
            }
            state => state,
        }
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        self.snapshot.clone()
    }

    /// May a call go out now? Moves open → half-open when the open time is over.
    pub fn allow(&mut self, now: DateTime<Utc>) -> Result<(), BreakerOpen> {
        if self.snapshot.state == BreakerState::Open {
            let until = match self.open_until() {
                Some(until) => until,
                None => {
                    self.snapshot.opened_at = Some(now);
                    now + self.config.open_for
                }
            };
            if now < until {
                return Err(BreakerOpen { retry_at: until });
            }
            self.snapshot.state = BreakerState::HalfOpen;
            self.snapshot.success_count = 0;
        }
        Ok(())
    }

    pub fn on_success(&mut self, now: DateTime<Utc>) {
        match self.state(now) {
            BreakerState::Closed => {}
            BreakerState::HalfOpen => {
                self.snapshot.state = BreakerState::HalfOpen;
                self.snapshot.success_count += 1;
                if self.snapshot.success_count >= self.config.successes_to_close {
                    self.close();
                }
            }
            // A call let through before the breaker opened came back fine: no change.
            BreakerState::Open => {}
        }
    }

    pub fn on_failure(&mut self, now: DateTime<Utc>) {
        match self.state(now) {
            BreakerState::Closed => {
                let window_live = self
                    .snapshot
                    .window_started_at
                    .is_some_and(|started| now - started < self.config.window);
                if !window_live {
                    self.snapshot.window_started_at = Some(now);
                    self.snapshot.failure_count = 0;
                }
                self.snapshot.failure_count += 1;
                if self.snapshot.failure_count >= self.config.failure_threshold {
                    self.open(now);
                }
            }
            BreakerState::HalfOpen => self.open(now),
            BreakerState::Open => {}
        }
    }

    fn open_until(&self) -> Option<DateTime<Utc>> {
        self.snapshot.opened_at.map(|at| at + self.config.open_for)
    }

    fn open(&mut self, now: DateTime<Utc>) {
        self.snapshot = BreakerSnapshot {
            state: BreakerState::Open,
            failure_count: self.snapshot.failure_count,
            success_count: 0,
            window_started_at: self.snapshot.window_started_at,
            opened_at: Some(now),
        };
    }

    fn close(&mut self) {
        self.snapshot = BreakerSnapshot {
            state: BreakerState::Closed,
            failure_count: 0,
            success_count: 0,
            window_started_at: None,
            opened_at: None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0)
            .single()
            .unwrap_or_default()
            + Duration::seconds(seconds)
    }

    #[test]
    fn five_failures_in_five_minutes_open_it_for_sixty_seconds() {
        let mut breaker = CircuitBreaker::new(BreakerConfig::messaging());
        for i in 0..4 {
            breaker.on_failure(t(i * 60));
            assert_eq!(breaker.state(t(i * 60)), BreakerState::Closed);
        }
        breaker.on_failure(t(290));
        assert_eq!(breaker.state(t(290)), BreakerState::Open);
        assert_eq!(breaker.allow(t(300)), Err(BreakerOpen { retry_at: t(350) }));
        assert_eq!(breaker.allow(t(350)), Ok(()));
        assert_eq!(breaker.state(t(350)), BreakerState::HalfOpen);
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_open_it() {
        let mut breaker = CircuitBreaker::new(BreakerConfig::messaging());
        for i in 0..10 {
            breaker.on_failure(t(i * 100));
        }
        // Windows restart at 0, 500: never 5 inside one.
        assert_eq!(breaker.state(t(1000)), BreakerState::Closed);
    }

    #[test]
    fn two_successes_close_it_and_a_failure_reopens_it() {
        let mut breaker = CircuitBreaker::new(BreakerConfig::messaging());
        for _ in 0..5 {
            breaker.on_failure(t(0));
        }
        assert!(breaker.allow(t(60)).is_ok());
        breaker.on_success(t(60));
        assert_eq!(breaker.state(t(60)), BreakerState::HalfOpen);
        breaker.on_failure(t(61));
        assert_eq!(breaker.state(t(61)), BreakerState::Open);
        assert!(breaker.allow(t(100)).is_err());
        assert!(breaker.allow(t(121)).is_ok());
        breaker.on_success(t(121));
        breaker.on_success(t(122));
        assert_eq!(breaker.state(t(122)), BreakerState::Closed);
    }

    #[test]
    fn a_restored_breaker_keeps_its_open_time() {
        let mut breaker = CircuitBreaker::new(BreakerConfig::payment());
        for _ in 0..3 {
            breaker.on_failure(t(0));
        }
        let snapshot = breaker.snapshot();
        let mut restored = CircuitBreaker::restore(BreakerConfig::payment(), snapshot);
        assert_eq!(restored.allow(t(10)), Err(BreakerOpen { retry_at: t(30) }));
        assert!(restored.allow(t(30)).is_ok());
    }

    #[test]
    fn state_names_round_trip() {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            assert_eq!(state.as_str().parse::<BreakerState>(), Ok(state));
        }
    }
}
