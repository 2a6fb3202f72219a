//! Ports: the traits through which the engine reaches the world — time, ids, storage
//! and providers. `src/` implements them with the system clock, diesel and awc; tests
//! implement them with a virtual clock, an in-memory store and scripted providers.

pub mod clock;
pub mod ids;
pub mod providers;
pub mod store;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what port methods return, so ports can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
