//! `aro migrate up | down N | status | redo`. `up` shows a progress bar (one step per
//! migration) on stderr when it is a terminal.

use anyhow::Context;

use super::MigrateAction;
use crate::config::Config;
use crate::ops::backup::Progress;
use crate::ops::install::apply_pending_with_progress;
use crate::store::{migrations, Database};

pub fn run(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    crate::telemetry::init(config);
    let db = Database::open(&config.database)?;
    let mut conn = db.get().context("cannot connect to the database")?;
    match action {
        MigrateAction::Up => {
            let applied = apply_pending_with_progress(&mut conn, Progress::stderr())?;
            if applied.is_empty() {
                println!("nothing to apply: the schema is current");
            }
            for name in applied {
                println!("applied   {name}");
            }
        }
        MigrateAction::Down { count } => {
            for name in migrations::revert(&mut conn, count)? {
                println!("reverted  {name}");
            }
        }
        MigrateAction::Status => {
            for migration in migrations::status(&mut conn)? {
                let mark = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                println!("{mark:<9} {}", migration.name);
            }
        }
        MigrateAction::Redo => match migrations::redo(&mut conn)? {
            Some(name) => println!("redone    {name}"),
            None => println!("nothing to redo: no migration is applied"),
        },
    }
    Ok(())
}
