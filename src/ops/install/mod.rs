//! `aro install`: everything the guided installer does, without its prompts (those are
//! in `cli::install_cmd`).
//!
//! - [`layout`]: where the configuration, the data and the service unit go, under a
//!   `--prefix` (tests install into a temporary directory).
//! - [`answers`]: the answers as configuration keys — read back from an existing file
//!   (re-running keeps them), checked by the real configuration loader before anything
//!   is written, and rendered into the TOML file (mode 0600: it holds the integration
//!   credentials, which the daemon reads from its configuration).
//! - [`setup`]: the system check, the data directory, the master key (never replaced),
//!   migrations with a progress bar, the first admin user (never replaced).
//! - [`connections`]: the live connection test of each provider given credentials.
//! - [`account`]: the dedicated system user of the systemd system unit.
//! - [`service`]: unit files rendered from the repository's templates.
//! - [`launch`]: starting the daemon, waiting for `/ready`, and the sandbox test
//!   booking through the signed booking webhook.

pub mod account;
pub mod answers;
pub mod connections;
pub mod launch;
pub mod layout;
pub mod migrate;
pub mod service;
pub mod setup;

pub use answers::Answers;
pub use layout::{Layout, ServiceKind};
pub use migrate::apply_pending_with_progress;

use std::path::PathBuf;

use crate::auth::AuthError;
use crate::config::ConfigError;
use crate::crypto::CryptoError;
use crate::store::StoreError;

/// Why an installation step failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("missing answers (nothing was written): {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error("{0}")]
    Invalid(String),
    #[error("the answers do not make a valid configuration (nothing was written):\n{0}")]
    Config(#[from] ConfigError),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("admin user: {0}")]
    Auth(#[from] AuthError),
    #[error("master key: {0}")]
    Crypto(#[from] CryptoError),
    #[error("service: {0}")]
    Service(String),
    #[error("daemon: {0}")]
    Daemon(String),
}

impl InstallError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
