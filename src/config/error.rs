//! Configuration errors: every problem found is collected, so one run reports all of
//! them at once, each naming the key, where it came from, the class of value expected
//! and the reason.

use std::fmt;

use super::layers::Source;

/// One bad key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key (or the environment variable, for unknown ones).
    pub key: String,
    /// Where the bad value came from.
    pub source: Source,
    /// The class of value the key takes, e.g. "an IANA time zone".
    pub expected: String,
    /// Why the value was refused. Never contains a secret value.
    pub reason: String,
}

impl ConfigProblem {
    pub fn new(key: &str, source: Source, expected: &str, reason: String) -> Self {
        Self {
            key: key.to_string(),
            source,
            expected: expected.to_string(),
            reason,
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (from {}): expected {}: {}",
            self.key, self.source, self.expected, self.reason
        )
    }
}

/// The configuration could not be loaded; holds every problem found.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}
