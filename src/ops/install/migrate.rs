//! Applying pending migrations one at a time with a progress bar (one step per
//! migration): used by `aro install` and `aro migrate up`. The bar is drawn on stderr
//! only when it is a terminal ([`Progress`]).

use diesel_migrations::MigrationHarness;
use indicatif::ProgressStyle;

use crate::ops::backup::Progress;
use crate::store::{migrations, DbConnection, StoreError};

/// Applies every pending migration, oldest first; returns their names.
pub fn apply_pending_with_progress(
    conn: &mut DbConnection,
    progress: Progress,
) -> Result<Vec<String>, StoreError> {
    let pending: Vec<String> = migrations::status(conn)?
        .into_iter()
        .filter(|m| !m.applied)
        .map(|m| m.name)
        .collect();
    if pending.is_empty() {
        return Ok(pending);
    }
    let bar = progress.spinner("migrating");
    bar.set_length(pending.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:<40} [{bar:32}] {pos}/{len} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    for name in &pending {
        bar.set_message(name.clone());
        let step = match conn {
            DbConnection::Sqlite(c) => c.run_next_migration(migrations::SQLITE).map(|_| ()),
            DbConnection::Postgres(c) => c.run_next_migration(migrations::POSTGRES).map(|_| ()),
        };
        if let Err(err) = step {
            bar.abandon();
            return Err(StoreError::Migration(format!("{name}: {err}")));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(pending)
}
