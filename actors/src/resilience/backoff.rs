//! Retry policy (SPEC §6): which errors are retried, how many attempts, and the
//! jittered delay before each retry. Only timeouts, network errors, 429 and 5xx are
//! retried; a 429's `Retry-After` is honoured.

use std::time::Duration;

use rand::Rng;

/// How a provider call failed, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    Timeout,
    Network,
    RateLimited {
        retry_after: Option<Duration>,
    },
    ServerError,
    /// A 4xx other than 429: the request is wrong; retrying cannot help.
    ClientError,
    /// The provider says this will never succeed (e.g. an unsubscribed recipient).
    Final,
}

impl ErrorClass {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Network | Self::RateLimited { .. } | Self::ServerError
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// Delay before retry n is uniform in [base, min(max, base · 2^(n−1))].
    Exponential { base: Duration, max: Duration },
    /// Delays grow in equal steps from `first` to `last` over the attempts, jittered
    /// uniformly inside each step.
    Linear { first: Duration, last: Duration },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

/// The longest a `Retry-After` is honoured for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl RetryPolicy {
    /// Messaging: 5 attempts, exponential 0.5–30 s.
    pub fn messaging() -> Self {
        Self {
            max_attempts: 5,
            backoff: Backoff::Exponential {
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
        }
    }

    /// Booking: 3 attempts, exponential 1–60 s.
    pub fn booking() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
        }
    }

    /// Payment: 2 attempts, linear 2–5 s.
    pub fn payment() -> Self {
        Self {
            max_attempts: 2,
            backoff: Backoff::Linear {
                first: Duration::from_secs(2),
                last: Duration::from_secs(5),
            },
        }
    }

    /// The delay before the next attempt after `attempts_made` attempts failed with
    /// `class`, or `None` when the work should be given up (dead-lettered).
    pub fn next_delay<R: Rng + ?Sized>(
        &self,
        attempts_made: u32,
        class: &ErrorClass,
        rng: &mut R,
    ) -> Option<Duration> {
        if !class.is_retryable() || attempts_made >= self.max_attempts {
            return None;
        }
        let retry = attempts_made.max(1);
        let (low, high) = match &self.backoff {
            Backoff::Exponential { base, max } => {
                let factor = 2u32.saturating_pow(retry - 1);
                let high = base.saturating_mul(factor).min(*max).max(*base);
                (*base, high)
            }
            Backoff::Linear { first, last } => {
                let steps = self.max_attempts.saturating_sub(1).max(1);
                let step = last.saturating_sub(*first) / steps;
                let low = (*first + step * (retry - 1)).min(*last);
                let high = (*first + step * retry).min(*last).max(low);
                (low, high)
            }
        };
        let jittered = if high > low {
            Duration::from_secs_f64(rng.gen_range(low.as_secs_f64()..=high.as_secs_f64()))
        } else {
            low
        };
        match class {
            ErrorClass::RateLimited {
                retry_after: Some(after),
            } => Some(jittered.max((*after).min(MAX_RETRY_AFTER))),
            _ => Some(jittered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn only_transient_errors_are_retried() {
        let policy = RetryPolicy::messaging();
        let mut rng = StdRng::seed_from_u64(1);
        assert!(policy
            .next_delay(1, &ErrorClass::ClientError, &mut rng)
            .is_none());
        assert!(policy.next_delay(1, &ErrorClass::Final, &mut rng).is_none());
        for class in [
            ErrorClass::Timeout,
            ErrorClass::Network,
            ErrorClass::ServerError,
            ErrorClass::RateLimited { retry_after: None },
        ] {
            assert!(
                policy.next_delay(1, &class, &mut rng).is_some(),
                "{class:?}"
            );
        }
    }

    #[test]
    fn messaging_gives_up_after_five_attempts() {
        let policy = RetryPolicy::messaging();
        let mut rng = StdRng::seed_from_u64(2);
        for attempt in 1..5 {
            assert!(policy
                .next_delay(attempt, &ErrorClass::Timeout, &mut rng)
                .is_some());
        }
        assert!(policy
            .next_delay(5, &ErrorClass::Timeout, &mut rng)
            .is_none());
    }

    #[test]
    fn exponential_delays_stay_within_their_bounds_and_jitter() {
        let policy = RetryPolicy::messaging();
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            for attempt in 1..5u32 {
                let delay = policy
                    .next_delay(attempt, &ErrorClass::ServerError, &mut rng)
                    .unwrap_or_default();
                let high = (0.5 * f64::from(2u32.pow(attempt - 1))).min(30.0);
                assert!(delay.as_secs_f64() >= 0.5 - 1e-9 && delay.as_secs_f64() <= high + 1e-9);
                seen.insert(delay.as_millis());
            }
        }
        assert!(seen.len() > 50, "delays are jittered");
    }

    #[test]
    fn payment_retries_once_between_two_and_five_seconds() {
        let policy = RetryPolicy::payment();
        let mut rng = StdRng::seed_from_u64(4);
        let delay = policy
            .next_delay(1, &ErrorClass::Timeout, &mut rng)
            .unwrap_or_default();
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_secs(5));
        assert!(policy
            .next_delay(2, &ErrorClass::Timeout, &mut rng)
            .is_none());
    }

    #[test]
    fn retry_after_is_honoured() {
        let policy = RetryPolicy::messaging();
        let mut rng = StdRng::seed_from_u64(5);
        let class = ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            policy.next_delay(1, &class, &mut rng),
            Some(Duration::from_secs(90))
        );
    }
}
