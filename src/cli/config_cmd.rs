//! `aro config check` and `aro config show`.

use super::ConfigAction;
use crate::config::LoadedConfig;

pub fn run(loaded: &LoadedConfig, action: ConfigAction) -> anyhow::Result<()> {
    match action {
        ConfigAction::Check => {
            let config = &loaded.config;
            let database = match config.sqlite_path() {
                Some(path) => format!("SQLite at {}", path.display()),
                None => "PostgreSQL".to_string(),
            };
            println!(
                "configuration OK: listen {}, {database}, profile {}, zone {}",
                config.listen, config.profile, config.timezone
            );
        }
        ConfigAction::Show => print!("{}", loaded.render_masked()),
    }
    Ok(())
}
