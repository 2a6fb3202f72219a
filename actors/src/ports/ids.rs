//! Identifier generation. Ids are UUIDv7 text: unique across nodes, ordered by creation.

/// Makes new ids.
pub trait IdGen: Send + Sync + 'static {
    fn new_id(&self) -> String;
}

/// UUIDv7 ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7;

impl IdGen for UuidV7 {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
}
