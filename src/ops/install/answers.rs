//! The installer's answers, held as the configuration keys they become.
//!
//! An existing configuration file is read back into answers (so re-running keeps
//! them); the answers are checked by the daemon's own loader ([`Answers::validate`],
//! through the `ARO_*` names, before anything is written) and merged into the file's
//! TOML table (other keys the operator added by hand are kept). Integration
//! credentials live in this file — the daemon reads them from its configuration only —
//! so it is written with mode 0600. `Debug` never shows a secret.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::config::{env_name, Config, ConfigSources, LoadedConfig, MASK};

use super::InstallError;
use crate::credentials::SEALED_KEYS;

/// Every key the installer asks about.
pub const KEYS: &[&str] = &[
    "business.name",
    "business.phone",
    "timezone",
    "profile",
    "listen",
    "data_dir",
    "database.url",
    "quiet_hours",
    "booking.webhook_secret",
    "calendly.signing_key",
    "calendly.token",
    "calendly.api_base",
    "twilio.account_sid",
    "twilio.auth_token",
    "twilio.from",
    "twilio.api_base",
    "stripe.secret_key",
    "stripe.webhook_secret",
    "stripe.api_base",
    "llm.api_key",
];

/// The keys without which there is no installation (non-interactive mode lists the
/// missing ones).
pub const REQUIRED: &[&str] = &["business.name", "business.phone", "timezone", "profile"];

/// Keys whose values are never shown (prompts, messages, `Debug`).
pub const SECRET_KEYS: &[&str] = &[
    "database.url",
    "booking.webhook_secret",
    "calendly.signing_key",
    "calendly.token",
    "twilio.auth_token",
    "stripe.secret_key",
    "stripe.webhook_secret",
    "llm.api_key",
];

/// The header of a written configuration file.
const HEADER: &str = "# ARO configuration, written by `aro install` (re-running it keeps these \
answers).\n# Mode 0600: it holds integration credentials. Every key: docs/configuration.md.\n\n";

/// Answers by dotted configuration key; an empty value means "unset" (the default).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Answers {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.values {
            if is_secret(key) && !value.is_empty() {
                map.entry(key, &MASK);
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

pub fn is_secret(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

impl Answers {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value when set and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_string(), value.into());
    }

    /// Sets `key` when `value` is given (flags over what is already there).
    pub fn set_opt(&mut self, key: &str, value: Option<String>) {
        if let Some(value) = value {
            self.set(key, value);
        }
    }

    /// The required keys that have no non-empty value.
    pub fn missing(&self) -> Vec<String> {
        REQUIRED
            .iter()
            .filter(|key| self.non_empty(key).is_none())
            .map(|key| key.to_string())
            .collect()
    }

    /// Reads the installer's keys back from an existing configuration file; `None`
    /// when there is no file.
    pub fn read_file(path: &Path) -> Result<Option<(Answers, toml::Table)>, InstallError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(InstallError::io("read", path, err)),
        };
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            InstallError::Invalid(format!(
                "the existing configuration {} is not valid TOML: {}",
                path.display(),
                err.message()
            ))
        })?;
        let mut answers = Answers::default();
        for key in KEYS {
            let mut node: Option<&toml::Value> = None;
            let mut current = &table;
            let parts: Vec<&str> = key.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                match current.get(*part) {
                    Some(toml::Value::Table(inner)) if i + 1 < parts.len() => current = inner,
                    Some(value) if i + 1 == parts.len() => node = Some(value),
                    _ => break,
                }
            }
            match node {
                Some(toml::Value::String(s)) => answers.set(key, s.clone()),
                Some(other) => answers.set(key, other.to_string()),
                None => {}
            }
        }
        Ok(Some((answers, table)))
    }

    /// Checks the answers with the daemon's own configuration loader (as `ARO_*`
    /// variables over the defaults): every problem at once, nothing written.
    pub fn validate(&self) -> Result<LoadedConfig, InstallError> {
        let env = self
            .values
            .iter()
            .map(|(key, value)| (env_name(key), value.clone()))
            .collect();
        Ok(Config::load(&ConfigSources { file: None, env })?)
    }

    /// `base` (the existing file's table, or empty) with every answer set; keys with
    /// an empty answer that the file does not have are left out (defaults apply).
    /// Credentials ([`SEALED_KEYS`]) are never written: they go to the sealed store
    /// ([`Answers::sealed`]), and any left in the file by an earlier version are removed.
    pub fn merge_into(&self, base: &toml::Table) -> toml::Table {
        let mut table = base.clone();
        for key in SEALED_KEYS {
            let parts: Vec<&str> = key.split('.').collect();
            remove_path(&mut table, &parts);
        }
        for (key, value) in &self.values {
            if SEALED_KEYS.contains(&key.as_str()) {
                continue;
            }
            let parts: Vec<&str> = key.split('.').collect();
            set_path(&mut table, &parts, value);
        }
        // Drop sections left empty.
        table.retain(|_, v| !matches!(v, toml::Value::Table(t) if t.is_empty()));
        table
    }

    /// The answered credentials, for the sealed store: (key, value), an empty value
    /// meaning "none" (that provider runs in the sandbox).
    pub fn sealed(&self) -> Vec<(String, String)> {
        SEALED_KEYS
            .iter()
            .filter_map(|key| self.get(key).map(|v| (key.to_string(), v.to_string())))
            .collect()
    }

    /// The file's text for `table`.
    pub fn render(table: &toml::Table) -> Result<String, InstallError> {
        let body = toml::to_string(table)
            .map_err(|e| InstallError::Invalid(format!("cannot render the configuration: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }
}

/// Sets `parts` (a dotted key) to `value` in `table`, creating sections; an empty
/// value is only written over a key the table already has.
fn set_path(table: &mut toml::Table, parts: &[&str], value: &str) {
    match parts {
        [] => {}
        [last] => {
            if !value.is_empty() || table.contains_key(*last) {
                table.insert(last.to_string(), toml::Value::String(value.to_string()));
            }
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Removes `parts` (a dotted key) from `table`, if there.
fn remove_path(table: &mut toml::Table, parts: &[&str]) {
    match parts {
        [] => {}
        [last] => {
            table.remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(*first) {
                remove_path(inner, rest);
            }
        }
    }
}

/// A new random secret: 32 bytes from the OS RNG, as 64 hex digits.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_through_the_file_and_keep_other_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("aro.toml");
        std::fs::write(
            &path,
            "[log]\nlevel = \"debug\"\n[business]\nname = \"Old\"\n[stripe]\nsecret_key = \"sk_old_plain\"\n",
        )
        .expect("write");
        let (mut answers, table) = Answers::read_file(&path).expect("read").expect("exists");
        assert_eq!(answers.get("business.name"), Some("Old"));
        answers.set("business.name", "New Clinic");
        answers.set("twilio.auth_token", "s3cr3t-value");
        answers.set("quiet_hours", "");
        let merged = answers.merge_into(&table);
        let text = Answers::render(&merged).expect("render");
        std::fs::write(&path, &text).expect("write");
        let (again, _) = Answers::read_file(&path).expect("read").expect("exists");
        assert_eq!(again.get("business.name"), Some("New Clinic"));
        assert!(text.contains("level = \"debug\""));
        assert!(!text.contains("quiet_hours"));
        assert!(!format!("{again:?}").contains("s3cr3t-value"));
        assert!(
            !text.contains("s3cr3t-value"),
            "credentials go to the sealed store"
        );
        assert!(
            !text.contains("sk_old_plain"),
            "a plaintext credential is moved out"
        );
        assert_eq!(
            answers.sealed(),
            vec![
                ("twilio.auth_token".to_string(), "s3cr3t-value".to_string()),
                ("stripe.secret_key".to_string(), "sk_old_plain".to_string()),
            ]
        );
        assert_eq!(again.missing(), ["business.phone", "timezone", "profile"]);
    }
}
