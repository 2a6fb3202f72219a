//! Waiting in engine tests: the engine runs on other tasks, so a test polls (in real
//! time, briefly) for the effect it expects, or lets in-flight work run.

use std::time::{Duration, Instant};

/// Polls `check` every 2 ms until it holds; panics naming `what` after 5 s.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Lets in-flight work run without expecting anything in particular.
pub async fn settle() {
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
