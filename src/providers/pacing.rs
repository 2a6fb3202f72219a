//! Outbound pacing of one provider's requests (SPEC §6: Twilio 60/min burst 10,
//! Calendly 100/h burst 20, Stripe 100/s burst 5): each request waits for a token of a
//! shared [`TokenBucket`] before it is sent, so a long run (a Calendly backfill of
//! hundreds of requests) stays under the limit instead of running into 429s.

use std::sync::Mutex;
use std::time::Duration;

use actors::resilience::token_bucket::TokenBucket;
use chrono::Utc;

/// The longest single wait (a bucket refilling very slowly is polled again after it).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A token bucket requests wait on. Share one per provider account (`Arc`).
#[derive(Debug)]
pub struct Pacer {
    bucket: Mutex<TokenBucket>,
}

impl Pacer {
    pub fn new(bucket: TokenBucket) -> Self {
        Self {
            bucket: Mutex::new(bucket),
        }
    }

    /// Waits until a request may go, and takes its token.
    pub async fn wait_turn(&self) {
        loop {
            let wait = match self.bucket.lock() {
                Ok(mut bucket) => match bucket.try_take(Utc::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                },
                // A poisoned lock means a panic mid-update: pacing is best effort.
                Err(_) => return,
            };
            actix_web::rt::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[actix_rt::test]
    async fn requests_beyond_the_burst_wait_for_the_refill() {
        // Burst 2, then one every 100 ms.
        let pacer = Pacer::new(TokenBucket::new(2.0, 10.0, Utc::now()));
        let started = Instant::now();
        for _ in 0..4 {
            pacer.wait_turn().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
    }
}
