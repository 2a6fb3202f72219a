//! Provider credentials sealed in the store rather than written in the configuration
//! file (SPEC §8: no plaintext credentials at rest). `aro install` and `aro secrets set`
//! put them in `integration_secrets` (AES-256-GCM under the master key, `auth::secrets`),
//! under the configuration key's own name — `twilio.auth_token`, `stripe.secret_key`, …
//! — and the commands that talk to providers load the configuration through [`load`],
//! which layers them between the file and the environment: a sealed value wins over
//! the file, an `ARO_*` variable wins over both.
//!
//! `database.url` and `master_key` cannot live here: they are what opens the store.

use chrono::Utc;

use crate::audit::Actor;
use crate::auth::secrets::{self, SecretsError};
use crate::config::{Config, ConfigError, ConfigSources, DatabaseUrl, LoadedConfig};
use crate::crypto::{CryptoError, MasterKey};
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::{migrations, Database, DbConnection, StoreError};

/// The configuration keys whose values are kept sealed in the store.
pub const SEALED_KEYS: &[&str] = &[
    "booking.webhook_secret",
    "calendly.signing_key",
    "calendly.token",
    "twilio.auth_token",
    "stripe.secret_key",
    "stripe.webhook_secret",
    "llm.api_key",
];

/// The migration that creates `integration_secrets`.
const SECRETS_MIGRATION: &str = "000003_security";

/// Why sealed credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reading the sealed credentials: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Secrets(#[from] SecretsError),
    #[error("the sealed credentials need the master key: {0}")]
    MasterKey(#[from] CryptoError),
}

/// When the store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Fail: a daemon that started without its sealed credentials would silently run
    /// its providers in the sandbox.
    Required,
    /// Go on without them (`aro config check` on a machine whose database is down).
    BestEffort,
}

/// The configuration from `sources` with the sealed credentials layered in.
pub fn load(sources: &ConfigSources, reach: Reach) -> Result<LoadedConfig, CredentialsError> {
    let plain = Config::load(sources)?;
    let sealed = match read_sealed(&plain.config) {
        Ok(sealed) => sealed,
        Err(CredentialsError::Store(StoreError::Unavailable(_))) if reach == Reach::BestEffort => {
            return Ok(plain)
        }
        Err(err) => return Err(err),
    };
    if sealed.is_empty() {
        return Ok(plain);
    }
    Ok(Config::load_with_sealed(sources, &sealed)?)
}

/// The sealed credentials of the business, as (key, value); none when the database or
/// its secrets table does not exist yet.
pub fn read_sealed(config: &Config) -> Result<Vec<(String, String)>, CredentialsError> {
    let Some(db) = existing_database(config)? else {
        return Ok(Vec::new());
    };
    let mut conn = db.get()?;
    if !secrets_table_exists(&mut conn)? {
        return Ok(Vec::new());
    }
    let names: Vec<String> = secrets::list_secrets(&mut conn, Some(DEFAULT_TENANT))?
        .into_iter()
        .map(|info| info.name)
        .filter(|name| SEALED_KEYS.contains(&name.as_str()))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let master = MasterKey::load(config)?;
    let mut sealed = Vec::with_capacity(names.len());
    for name in names {
        if let Some(value) = secrets::get_secret(&mut conn, master.key(), DEFAULT_TENANT, &name)? {
            sealed.push((name, value.expose().clone()));
        }
    }
    Ok(sealed)
}

/// What [`store`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Keys sealed (new or changed values).
    pub sealed: Vec<String>,
    /// Keys removed (an empty answer: that provider runs in the sandbox).
    pub removed: Vec<String>,
}

/// Seals each non-empty `(key, value)` whose stored value differs, and removes the
/// stored value of each empty one. Keys outside [`SEALED_KEYS`] are refused.
pub fn store(
    conn: &mut DbConnection,
    master: &MasterKey,
    values: &[(String, String)],
    actor: &Actor,
) -> Result<Stored, CredentialsError> {
    let mut stored = Stored::default();
    for (key, value) in values {
        if !SEALED_KEYS.contains(&key.as_str()) {
            return Err(SecretsError::InvalidName.into());
        }
        if value.is_empty() {
            if secrets::delete_secret(conn, DEFAULT_TENANT, key, actor, Utc::now())? {
                stored.removed.push(key.clone());
            }
            continue;
        }
        let current = secrets::get_secret(conn, master.key(), DEFAULT_TENANT, key)?;
        if current.as_ref().map(|c| c.expose()) != Some(value) {
            secrets::set_secret(
                conn,
                master.key(),
                DEFAULT_TENANT,
                key,
                value,
                actor,
                Utc::now(),
            )?;
            stored.sealed.push(key.clone());
        }
    }
    Ok(stored)
}

/// The database when it exists: for SQLite, only if its file is there (opening it
/// would create an empty one).
fn existing_database(config: &Config) -> Result<Option<Database>, CredentialsError> {
    if let DatabaseUrl::Sqlite(path) = &config.database.url {
        if !path.is_file() {
            return Ok(None);
        }
    }
    Ok(Some(Database::open(&config.database)?))
}

fn secrets_table_exists(conn: &mut DbConnection) -> Result<bool, StoreError> {
    Ok(migrations::status(conn)?
        .iter()
        .any(|m| m.applied && m.name.contains(SECRETS_MIGRATION)))
}
