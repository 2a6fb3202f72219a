//! Typed reading of layered settings: each key is parsed by a small parser for its
//! class of value, and every failure is recorded instead of stopping at the first.

use std::collections::BTreeSet;

use super::error::ConfigProblem;
use super::layers::{Layers, Source};

/// Reads typed values out of [`Layers`], collecting problems and remembering which keys
/// hold secrets.
pub struct Reader<'a> {
    layers: &'a Layers,
    pub problems: Vec<ConfigProblem>,
    pub secret_keys: BTreeSet<String>,
}

/// A parser for one class of value; `Err` carries the reason.
pub type Parser<T> = fn(&toml::Value) -> Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(layers: &'a Layers) -> Self {
        Self {
            layers,
            problems: layers.problems.clone(),
            secret_keys: BTreeSet::new(),
        }
    }

    /// Reads `key`, which takes values of class `expected`.
    pub fn read<T>(&mut self, key: &str, expected: &str, parse: Parser<T>) -> Option<T> {
        self.read_inner(key, expected, parse, false)
    }

    /// Reads a secret `key`: failures never quote the value.
    pub fn read_secret<T>(&mut self, key: &str, expected: &str, parse: Parser<T>) -> Option<T> {
        self.secret_keys.insert(key.to_string());
        self.read_inner(key, expected, parse, true)
    }

    fn read_inner<T>(
        &mut self,
        key: &str,
        expected: &str,
        parse: Parser<T>,
        secret: bool,
    ) -> Option<T> {
        let Some(setting) = self.layers.settings.get(key) else {
            self.problems.push(ConfigProblem::new(
                key,
                Source::Default,
                expected,
                "key missing from the built-in defaults".to_string(),
            ));
            return None;
        };
        match parse(&setting.value) {
            Ok(value) => Some(value),
            Err(reason) => {
                let reason = if secret {
                    reason
                } else {
                    format!("got {}: {reason}", describe(&setting.value))
                };
                self.problems.push(ConfigProblem::new(
                    key,
                    setting.source.clone(),
                    expected,
                    reason,
                ));
                None
            }
        }
    }

    /// Records a problem that involves several keys (reported against `key`).
    pub fn problem(&mut self, key: &str, expected: &str, reason: &str) {
        let source = self
            .layers
            .settings
            .get(key)
            .map(|s| s.source.clone())
            .unwrap_or(Source::Default);
        self.problems.push(ConfigProblem::new(
            key,
            source,
            expected,
            reason.to_string(),
        ));
    }
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A text value (TOML string).
pub fn text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.trim().to_string()),
        other => Err(format!("a {} is not a string", other.type_str())),
    }
}

/// An integer, from a TOML integer or a numeric string (environment values are strings).
pub fn integer(value: &toml::Value) -> Result<i64, String> {
    match value {
        toml::Value::Integer(i) => Ok(*i),
        toml::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| "not a whole number".to_string()),
        other => Err(format!("a {} is not a whole number", other.type_str())),
    }
}

/// A number, from a TOML float or integer or a numeric string.
pub fn number(value: &toml::Value) -> Result<f64, String> {
    match value {
        toml::Value::Float(f) => Ok(*f),
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::String(s) => s.trim().parse().map_err(|_| "not a number".to_string()),
        other => Err(format!("a {} is not a number", other.type_str())),
    }
}

/// A boolean, from a TOML boolean or one of true/false/yes/no/on/off/1/0.
pub fn boolean(value: &toml::Value) -> Result<bool, String> {
    match value {
        toml::Value::Boolean(b) => Ok(*b),
        toml::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err("not one of true, false, yes, no, on, off, 1, 0".to_string()),
        },
        other => Err(format!("a {} is not a boolean", other.type_str())),
    }
}
