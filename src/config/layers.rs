//! Layering of configuration sources: built-in defaults, an optional TOML file, the
//! credentials kept sealed in the store (`aro secrets set`), then `ARO_*` environment
//! variables.
//!
//! The built-in `config/default.toml` is also the registry of keys: every key it holds
//! is valid, every other key in a file or in the environment is reported as unknown.
//! The result is a flat map from dotted key to value and the source it came from, so
//! that errors and `aro config show` can say where each value was set.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::ConfigProblem;

/// The built-in defaults, compiled into the binary.
pub const DEFAULTS_TOML: &str = include_str!("../../config/default.toml");

/// Environment variable naming the configuration file.
pub const CONFIG_FILE_ENV: &str = "ARO_CONFIG";

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    /// The sealed store (`integration_secrets`), under the key's own name.
    Sealed,
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Sealed => f.write_str("sealed store"),
            Source::Env(name) => write!(f, "environment {name}"),
        }
    }
}

/// One key's effective value.
#[derive(Debug, Clone)]
pub struct Setting {
    pub value: toml::Value,
    pub source: Source,
}

/// Every key's effective value, plus the problems met while layering.
#[derive(Debug, Default)]
pub struct Layers {
    pub settings: BTreeMap<String, Setting>,
    pub problems: Vec<ConfigProblem>,
}

/// The environment variable that overrides `key`: `twilio.auth_token` → `ARO_TWILIO_AUTH_TOKEN`.
pub fn env_name(key: &str) -> String {
    format!("ARO_{}", key.replace('.', "_").to_ascii_uppercase())
}

impl Layers {
    /// Builds the layered view from the defaults, an optional file, sealed credentials
    /// (key, value) and the environment.
    pub fn build(
        file: Option<&Path>,
        sealed: &[(String, String)],
        env: &[(String, String)],
    ) -> Self {
        let mut layers = Layers::default();
        let defaults: toml::Table = match DEFAULTS_TOML.parse() {
            Ok(table) => table,
            // The defaults are compiled in and covered by tests; failing here is a build defect.
            Err(err) => panic!("built-in config/default.toml is invalid: {err}"),
        };
        flatten(&defaults, "", &mut |key, value| {
            layers.settings.insert(
                key,
                Setting {
                    value: value.clone(),
                    source: Source::Default,
                },
            );
        });
        if let Some(path) = file {
            layers.apply_file(path);
        }
        layers.apply_sealed(sealed);
        layers.apply_env(env);
        layers
    }

    fn apply_file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                self.problems.push(ConfigProblem::new(
                    "config file",
                    Source::File(path.to_path_buf()),
                    "a readable TOML file",
                    format!("cannot read {}: {err}", path.display()),
                ));
                return;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(err) => {
                self.problems.push(ConfigProblem::new(
                    "config file",
                    Source::File(path.to_path_buf()),
                    "valid TOML",
                    err.message().to_string(),
                ));
                return;
            }
        };
        let mut unknown = Vec::new();
        flatten(
            &table,
            "",
            &mut |key, value| match self.settings.get_mut(&key) {
                Some(setting) => {
                    setting.value = value.clone();
                    setting.source = Source::File(path.to_path_buf());
                }
                None => unknown.push(key),
            },
        );
        for key in unknown {
            self.problems.push(ConfigProblem::new(
                &key,
                Source::File(path.to_path_buf()),
                "a known key",
                unknown_key_reason(&key, &self.settings),
            ));
        }
    }

    fn apply_sealed(&mut self, sealed: &[(String, String)]) {
        for (key, value) in sealed {
            match self.settings.get_mut(key) {
                Some(setting) => {
                    setting.value = toml::Value::String(value.clone());
                    setting.source = Source::Sealed;
                }
                None => self.problems.push(ConfigProblem::new(
                    key,
                    Source::Sealed,
                    "a known key",
                    "a sealed secret names no configuration key (`aro secrets list`)".to_string(),
                )),
            }
        }
    }

    fn apply_env(&mut self, env: &[(String, String)]) {
        let by_env: BTreeMap<String, String> = self
            .settings
            .keys()
            .map(|key| (env_name(key), key.clone()))
            .collect();
        for (name, value) in env {
            if !name.starts_with("ARO_") || name == CONFIG_FILE_ENV {
                continue;
            }
            match by_env.get(name).and_then(|key| self.settings.get_mut(key)) {
                Some(setting) => {
                    setting.value = toml::Value::String(value.clone());
                    setting.source = Source::Env(name.clone());
                }
                None => self.problems.push(ConfigProblem::new(
                    name,
                    Source::Env(name.clone()),
                    "a known ARO_* variable",
                    "no configuration key has this name (see docs/configuration.md)".to_string(),
                )),
            }
        }
    }
}

fn unknown_key_reason(key: &str, known: &BTreeMap<String, Setting>) -> String {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let split = |candidate: &str| -> (String, String) {
        match candidate.rsplit_once('.') {
            Some((s, l)) => (s.to_string(), l.to_string()),
            None => (String::new(), candidate.to_string()),
        }
    };
    let same_section = known.keys().find(|candidate| {
        let (s, l) = split(candidate);
        s == section && (l.contains(leaf) || leaf.contains(l.as_str()))
    });
    let same_leaf = || {
        known
            .keys()
            .find(|candidate| split(candidate).1 == leaf && candidate.as_str() != key)
    };
    match same_section.or_else(same_leaf) {
        Some(candidate) => format!("unknown key; did you mean `{candidate}`?"),
        None => "unknown key (see docs/configuration.md)".to_string(),
    }
}

/// Calls `visit` with every leaf of `table` as a dotted key.
fn flatten(table: &toml::Table, prefix: &str, visit: &mut dyn FnMut(String, &toml::Value)) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => flatten(inner, &key, visit),
            leaf => visit(key, leaf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_public_contract() {
        assert_eq!(env_name("listen"), "ARO_LISTEN");
        assert_eq!(env_name("database.url"), "ARO_DATABASE_URL");
        assert_eq!(env_name("twilio.auth_token"), "ARO_TWILIO_AUTH_TOKEN");
        assert_eq!(
            env_name("booking.webhook_secret"),
            "ARO_BOOKING_WEBHOOK_SECRET"
        );
    }

    #[test]
    fn every_spec_variable_is_a_known_key() {
        let layers = Layers::build(None, &[], &[]);
        let names: Vec<String> = layers.settings.keys().map(|k| env_name(k)).collect();
        for spec_name in [
            "ARO_LISTEN",
            "ARO_DATA_DIR",
            "ARO_DATABASE_URL",
            "ARO_PUBLIC_URL",
            "ARO_PROFILE",
            "ARO_TIMEZONE",
            "ARO_QUIET_HOURS",
            "ARO_MASTER_KEY",
            "ARO_CALENDLY_SIGNING_KEY",
            "ARO_CALENDLY_TOKEN",
            "ARO_CALENDLY_API_BASE",
            "ARO_TWILIO_ACCOUNT_SID",
            "ARO_TWILIO_AUTH_TOKEN",
            "ARO_TWILIO_FROM",
            "ARO_TWILIO_API_BASE",
            "ARO_STRIPE_SECRET_KEY",
            "ARO_STRIPE_WEBHOOK_SECRET",
            "ARO_STRIPE_API_BASE",
            "ARO_TWILIO_RATE",
            "ARO_BOOKING_WEBHOOK_SECRET",
            "ARO_LLM_API_BASE",
            "ARO_LLM_API_KEY",
            "ARO_LLM_MODEL",
        ] {
            assert!(names.iter().any(|n| n == spec_name), "{spec_name} missing");
        }
    }

    #[test]
    fn environment_overrides_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aro.toml");
        std::fs::write(
            &path,
            "timezone = \"Europe/Paris\"\nlisten = \"127.0.0.1:9000\"\n",
        )
        .expect("write");
        let env = vec![("ARO_LISTEN".to_string(), "127.0.0.1:9100".to_string())];
        let layers = Layers::build(Some(&path), &[], &env);
        assert!(layers.problems.is_empty(), "{:?}", layers.problems);
        let tz = &layers.settings["timezone"];
        assert_eq!(tz.value.as_str(), Some("Europe/Paris"));
        assert_eq!(tz.source, Source::File(path.clone()));
        let listen = &layers.settings["listen"];
        assert_eq!(listen.value.as_str(), Some("127.0.0.1:9100"));
        assert_eq!(listen.source, Source::Env("ARO_LISTEN".into()));
    }

    #[test]
    fn sealed_credentials_override_the_file_and_the_environment_overrides_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aro.toml");
        std::fs::write(&path, "[twilio]\nauth_token = \"from-file\"\n").expect("write");
        let sealed = vec![
            ("twilio.auth_token".to_string(), "sealed-token".to_string()),
            ("stripe.secret_key".to_string(), "sk_sealed".to_string()),
        ];
        let env = vec![("ARO_STRIPE_SECRET_KEY".to_string(), "sk_env".to_string())];
        let layers = Layers::build(Some(&path), &sealed, &env);
        assert!(layers.problems.is_empty(), "{:?}", layers.problems);
        let token = &layers.settings["twilio.auth_token"];
        assert_eq!(
            (token.value.as_str(), &token.source),
            (Some("sealed-token"), &Source::Sealed)
        );
        let key = &layers.settings["stripe.secret_key"];
        assert_eq!(key.value.as_str(), Some("sk_env"));

        let unknown = Layers::build(None, &[("twilio.tokn".to_string(), "x".to_string())], &[]);
        assert_eq!(unknown.problems.len(), 1);
        assert_eq!(unknown.problems[0].source, Source::Sealed);
    }

    #[test]
    fn unknown_keys_in_file_and_environment_are_all_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aro.toml");
        std::fs::write(&path, "colour = \"blue\"\n[twilio]\ntoken = \"x\"\n").expect("write");
        let env = vec![("ARO_TWILLIO_FROM".to_string(), "+15550001111".to_string())];
        let layers = Layers::build(Some(&path), &[], &env);
        let keys: Vec<&str> = layers.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["colour", "twilio.token", "ARO_TWILLIO_FROM"]);
        assert!(layers.problems[1].reason.contains("twilio.auth_token"));
    }
}
