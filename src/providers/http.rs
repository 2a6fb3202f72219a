//! The provider-neutral HTTP plumbing the Stripe and Calendly adapters share: running an
//! awc exchange behind a `Send` port future, a client whose timeouts tell "never sent"
//! from "sent, no answer", reading an answer, and classifying transport failures.
//! (Twilio's adapter still carries its own copy of the same pattern; folding it in is
//! open work.)
//!
//! Futures and threads: awc's client is `!Send` (it holds `Rc`s), but the ports return
//! `Send` futures. [`on_local_set`] therefore runs the exchange in a task spawned with
//! `tokio::task::spawn_local` on the current thread's `LocalSet` and returns a future
//! that only awaits the task's `JoinHandle` (which is `Send`); dropping that future
//! aborts the task. The futures must be polled inside a `LocalSet`: any actix arbiter or
//! `actix_rt` system is one, which is where the engine runs them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actors::ports::providers::ProviderError;
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use awc::error::{ConnectError, SendRequestError};
use chrono::{DateTime, Utc};

/// The largest answer body read from a provider.
const MAX_BODY: usize = 1 << 20;
/// The longest a TCP/TLS connect may take, whatever the request timeout.
const MAX_CONNECT: Duration = Duration::from_secs(5);

/// Aborts the spawned task when the caller drops the future awaiting it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the `!Send` future `make` builds on the current thread's `LocalSet` and returns
/// a `Send` future of its result. Only `make` (which captures `Send` values) crosses
/// into the returned future; the awc future is created inside the local task.
/// `may_have_arrived`: the request is not idempotent and a task that ends early (it
/// panicked) may have sent it.
pub(crate) fn on_local_set<T, F, Fut>(
    provider: &'static str,
    make: F,
    may_have_arrived: bool,
) -> BoxFuture<'static, Result<T, ProviderError>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProviderError>> + 'static,
{
    Box::pin(async move {
        let task = AbortOnDrop(tokio::task::spawn_local(async move { make().await }));
        task.await.unwrap_or_else(|join_error| {
            Err(ProviderError {
                class: ErrorClass::Network,
                message: format!("{provider} request task ended early: {join_error}"),
                outcome_unknown: may_have_arrived,
            })
        })
    })
}

/// This thread's awc client (built once per system and timeout): the connect timeout is shorter than the request timeout, so a
/// request `Timeout` means the connection was made and the request (probably) sent.
/// Redirects are not followed: a redirect would carry the credentials elsewhere.
pub(crate) fn http_client(timeout: Duration) -> awc::Client {
    let system = actix_web::rt::System::try_current().map_or(0, |s| s.id());
    CLIENTS.with(|clients| {
        clients
            .borrow_mut()
            .entry((system, timeout))
            .or_insert_with(|| {
                let connect = (timeout / 2).min(MAX_CONNECT);
                awc::Client::builder()
                    .connector(awc::Connector::new().timeout(connect))
                    .timeout(timeout)
                    .disable_redirects()
                    .finish()
            })
            .clone()
    })
}

thread_local! {
    /// One awc client per (actix system, timeout) on each thread: building a client
    /// builds an OpenSSL context (tens of milliseconds, on the arbiter's thread), and a
    /// shared client keeps connections alive between requests. Keyed by system because
    /// a client's connection pool lives on the runtime that created it.
    static CLIENTS: std::cell::RefCell<std::collections::HashMap<(usize, Duration), awc::Client>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The error for a request that got no answer. `may_have_arrived`: the request is not
/// idempotent and might have reached the provider before the failure.
pub(crate) fn transport_error(
    provider: &'static str,
    error: &SendRequestError,
    may_have_arrived: bool,
) -> ProviderError {
    let (class, outcome_unknown) = match error {
        // awc's h1 client reports a connection closed after the request was written,
        // before any answer, as `Disconnected`: the request may have been processed.
        SendRequestError::Connect(ConnectError::Disconnected) => {
            (ErrorClass::Network, may_have_arrived)
        }
        // Nothing was sent: no connection was ever made.
        SendRequestError::Connect(_) => (ErrorClass::Network, false),
        SendRequestError::Url(_) | SendRequestError::Http(_) => (ErrorClass::ClientError, false),
        // The request was (or may have been) written and no answer came in time.
        SendRequestError::Timeout => (ErrorClass::Timeout, may_have_arrived),
        // Connection lost while sending or before the answer was complete.
        _ => (ErrorClass::Network, may_have_arrived),
    };
    ProviderError {
        class,
        message: format!("{provider} request failed: {error}"),
        outcome_unknown,
    }
}

/// What a provider answered: status, headers, and the body (`Err` when it could not be
/// read: cut off, timed out, too large).
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Result<Vec<u8>, String>,
}

impl Answer {
    pub async fn read<S>(mut response: awc::ClientResponse<S>) -> Self
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body()
            .limit(MAX_BODY)
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|e| e.to_string());
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A 3xx is never followed (it would carry the credentials elsewhere): it means the
    /// provider's `api_base` is misconfigured.
    pub fn unexpected_redirect(&self, provider: &'static str) -> Option<ProviderError> {
        (300..400).contains(&self.status).then(|| ProviderError {
            class: ErrorClass::ClientError,
            message: format!(
                "{provider} HTTP {}: unexpected redirect (check {provider}.api_base)",
                self.status
            ),
            outcome_unknown: false,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The 2xx body as `T`. A body that cannot be read or parsed is a server error;
    /// `outcome_unknown` says whether the request may nevertheless have taken effect.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        provider: &'static str,
        outcome_unknown: bool,
    ) -> Result<T, ProviderError> {
        let unreadable = |why: String| ProviderError {
            class: ErrorClass::ServerError,
            message: format!("{provider} HTTP {}: unreadable answer: {why}", self.status),
            outcome_unknown,
        };
        let body = self.body.as_deref().map_err(|e| unreadable(e.clone()))?;
        serde_json::from_slice(body).map_err(|e| unreadable(e.to_string()))
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (a date in the past is zero).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer, if any.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(actix_web::http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 10:00:12 GMT", now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn transport_errors_classify() {
        let timeout = transport_error("x", &SendRequestError::Timeout, true);
        assert_eq!(timeout.class, ErrorClass::Timeout);
        assert!(timeout.outcome_unknown);
        assert!(!transport_error("x", &SendRequestError::Timeout, false).outcome_unknown);
        let refused = transport_error("x", &SendRequestError::Connect(ConnectError::Timeout), true);
        assert_eq!(refused.class, ErrorClass::Network);
        assert!(!refused.outcome_unknown, "nothing was sent");
        let cut = transport_error(
            "x",
            &SendRequestError::Connect(ConnectError::Disconnected),
            true,
        );
        assert_eq!(cut.class, ErrorClass::Network);
        assert!(cut.outcome_unknown);
        assert!(cut.message.starts_with("x request failed"));
    }
}
