//! The inbound limits (SPEC §8), kept in memory as a sliding log of the instants of each
//! client address's accepted requests; refused requests are not counted:
//! - admin and auth routes: at most 100 requests in any 15 minutes per address;
//! - webhooks (`/webhooks/…`): at most `http.webhook_rate_limit_per_minute` per source
//!   address in any minute, when set (off by default: a provider refused with 429 must
//!   retry, and Twilio does not retry its status callbacks).
//!
//! One [`InboundLimits`] serves every worker of the process; it starts empty when the
//! daemon restarts.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests allowed per address and window on admin and auth routes.
pub const ADMIN_LIMIT: usize = 100;
pub const ADMIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked before idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// A sliding-window limiter keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The SPEC's admin limit.
    pub fn admin() -> Self {
        Self::new(ADMIN_LIMIT, ADMIN_WINDOW)
    }

    /// Counts a request from `address` at `now`, or says how long until one would be
    /// allowed.
    pub fn check(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > PRUNE_ABOVE {
            let window = self.window;
            seen.retain(|_, log| {
                log.back()
                    .is_some_and(|last| now.saturating_duration_since(*last) < window)
            });
        }
        let log = seen.entry(address).or_default();
        while log
            .front()
            .is_some_and(|first| now.saturating_duration_since(*first) >= self.window)
        {
            log.pop_front();
        }
        if log.len() >= self.limit {
            let oldest = log.front().copied().unwrap_or(now);
            let wait = self
                .window
                .saturating_sub(now.saturating_duration_since(oldest));
            return Err(wait.max(Duration::from_secs(1)));
        }
        log.push_back(now);
        Ok(())
    }
}

/// Every inbound limit of the process.
#[derive(Debug)]
pub struct InboundLimits {
    pub admin: RateLimiter,
    /// `None`: webhooks are not limited.
    pub webhooks: Option<RateLimiter>,
}

impl InboundLimits {
    /// The admin limit, and `webhooks_per_minute` per source address on webhooks (0: off).
    pub fn new(webhooks_per_minute: u32) -> Self {
        Self {
            admin: RateLimiter::admin(),
            webhooks: (webhooks_per_minute > 0)
                .then(|| RateLimiter::new(webhooks_per_minute as usize, Duration::from_secs(60))),
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::admin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_address_and_frees_as_the_window_slides() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.check(a, t0 + Duration::from_secs(i)).is_ok());
        }
        let wait = limiter
            .check(a, t0 + Duration::from_secs(10))
            .expect_err("fourth refused");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.check(b, t0 + Duration::from_secs(10)).is_ok());
        assert!(limiter.check(a, t0 + Duration::from_secs(60)).is_ok());
        assert!(limiter.check(a, t0 + Duration::from_secs(60)).is_err());
    }
}
