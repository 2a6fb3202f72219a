//! A token bucket for outbound rate limits (SPEC §6: Twilio 60/min burst 10, Calendly
//! 100/h burst 20, Stripe 100/s burst 5). Refills continuously from the instants given.

use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated_at: DateTime<Utc>,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilling at `per_second`.
    pub fn new(capacity: f64, per_second: f64, now: DateTime<Utc>) -> Self {
        let capacity = capacity.max(1.0);
        Self {
            capacity,
            per_second: per_second.max(f64::MIN_POSITIVE),
            tokens: capacity,
            updated_at: now,
        }
    }

    /// Twilio: `per_second` (default 1, i.e. 60/min), burst 10.
    pub fn twilio(per_second: f64, now: DateTime<Utc>) -> Self {
        Self::new(10.0, per_second, now)
    }

    /// Calendly: 100 per hour, burst 20.
    pub fn calendly(now: DateTime<Utc>) -> Self {
        Self::new(20.0, 100.0 / 3600.0, now)
    }

    /// Stripe: 100 per second, burst 5.
    pub fn stripe(now: DateTime<Utc>) -> Self {
        Self::new(5.0, 100.0, now)
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        if now > self.updated_at {
            let elapsed = (now - self.updated_at)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / 1e6;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
            self.updated_at = now;
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn try_take(&mut self, now: DateTime<Utc>) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            Err(Duration::from_secs_f64(wait.min(86_400.0)))
        }
    }

    /// Tokens available at `now` (for the admin API).
    pub fn available(&self, now: DateTime<Utc>) -> f64 {
        let mut copy = self.clone();
        copy.refill(now);
        copy.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0)
            .single()
            .unwrap_or_default()
            + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn twilio_allows_a_burst_of_ten_then_one_per_second() {
        let mut bucket = TokenBucket::twilio(1.0, t(0));
        for _ in 0..10 {
            assert!(bucket.try_take(t(0)).is_ok());
        }
        let wait = bucket.try_take(t(0)).err();
        assert_eq!(wait, Some(Duration::from_secs(1)));
        assert!(bucket.try_take(t(500)).is_err());
        assert!(bucket.try_take(t(1000)).is_ok());
        assert!(bucket.try_take(t(1000)).is_err());
    }

    #[test]
    fn it_never_holds_more_than_its_burst() {
        let bucket = TokenBucket::stripe(t(0));
        assert!((bucket.available(t(3_600_000)) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn calendly_refills_at_one_hundred_an_hour() {
        let mut bucket = TokenBucket::calendly(t(0));
        for _ in 0..20 {
            assert!(bucket.try_take(t(0)).is_ok());
        }
        assert!(bucket.try_take(t(35_000)).is_err());
        assert!(bucket.try_take(t(36_000)).is_ok());
    }
}
