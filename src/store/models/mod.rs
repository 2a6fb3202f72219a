//! Row types for the tables in `schema.rs`: one module per area, each struct mapping one
//! table (or the columns of it a query reads). Conversions to and from the engine's
//! records live beside the rows they convert.

mod engine;
mod inbox;
mod tenant;

pub use engine::*;
pub use inbox::{inbox_status, InboxRow};
pub use tenant::Tenant;
