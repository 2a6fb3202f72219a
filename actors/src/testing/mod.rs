//! Test support shipped with the engine: an in-memory `Store` with the same commit
//! semantics as the diesel one, and a scripted messaging provider. Used by the
//! engine's own tests and by property tests; never by the daemon.

pub mod fixtures;
pub mod memory_store;
pub mod scripted_messaging;
pub mod wait;

pub use memory_store::MemoryStore;
pub use scripted_messaging::ScriptedMessaging;
