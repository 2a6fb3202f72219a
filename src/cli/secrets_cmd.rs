//! `aro secrets set NAME | delete NAME | list | rotate-key [--new-key-file FILE]`:
//! integration secrets sealed under the master key (`auth::secrets`). Values are read
//! from stdin and never printed. A secret named after a provider credential's
//! configuration key (`twilio.auth_token`, … — `credentials::SEALED_KEYS`) is that
//! credential: the daemon uses it from its next start, over the file's value.
//!
//! `rotate-key` (stop the daemon first):
//! 1. The new key: the key in `--new-key-file` when that file exists, else a fresh
//!    random key written there (0600), or to `<data_dir>/master.key.new` without the
//!    option (which must not exist: it would be a rotation that did not finish).
//! 2. Every secret is re-sealed under the new key in one transaction (all or nothing).
//! 3. With a key file (`<data_dir>/master.key`): the old key is kept as
//!    `master.key.retired-<key id>` (backups made before the rotation need it), the new
//!    key replaces `master.key` atomically and `master.key.new` is removed. With
//!    `ARO_MASTER_KEY`: the new key stays in its file and the command says to put it in
//!    `ARO_MASTER_KEY` before starting the daemon again.
//!
//! If it stops between 2 and 3, the secrets are under the key in the new key's file;
//! `aro secrets list` shows the key id each secret is under.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use chrono::Utc;
use clap::{Args, Subcommand};

use crate::audit::Actor;
use crate::auth::secrets::{self, SetOutcome};
use crate::config::Config;
use crate::crypto::{Key, KeySource, MasterKey, MASTER_KEY_FILE};
use crate::store::tenant_queries::DEFAULT_TENANT;

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub action: SecretsAction,
    /// The tenant whose secrets to set or list.
    #[arg(long, global = true, default_value = DEFAULT_TENANT, value_name = "ID")]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// Store a secret, read from stdin (prompted without echo on a terminal).
    Set {
        /// e.g. twilio.auth_token (letters, digits and . _ -).
        name: String,
    },
    /// Remove a secret (a provider credential: that provider runs in the sandbox from the
    /// daemon's next start, unless the file or the environment sets it).
    Delete { name: String },
    /// List the secrets: names, master key id and update time, never values.
    List,
    /// Re-seal every secret under a new master key (stop the daemon first). See
    /// docs/security.md.
    RotateKey {
        /// The new key (64 hex digits, mode 0600); created with a random key when the
        /// file does not exist. Default: <data_dir>/master.key.new.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

pub fn run(config: Config, args: SecretsArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    match args.action {
        SecretsAction::Set { name } => set(&config, &args.tenant, &name),
        SecretsAction::Delete { name } => delete(&config, &args.tenant, &name),
        SecretsAction::List => list(&config, &args.tenant),
        SecretsAction::RotateKey { new_key_file } => rotate_key(&config, new_key_file),
    }
}

fn set(config: &Config, tenant: &str, name: &str) -> anyhow::Result<()> {
    secrets::validate_name(name)?;
    let value = if std::io::stdin().is_terminal() {
        super::admin_cmd::prompt_hidden(&format!("Value for {name}: "))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the value from stdin")?;
        let trimmed = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        crate::config::Secret::new(trimmed.to_string())
    };
    let master = MasterKey::load_or_create(config)?;
    let mut conn = super::admin_cmd::open_database(config)?;
    let outcome = secrets::set_secret(
        &mut conn,
        master.key(),
        tenant,
        name,
        value.expose(),
        &Actor::cli(),
        Utc::now(),
    )?;
    let verb = match outcome {
        SetOutcome::Created => "stored",
        SetOutcome::Updated => "replaced",
    };
    println!(
        "{verb} secret {name} (sealed under master key {})",
        secrets::key_id(master.key())
    );
    if crate::credentials::SEALED_KEYS.contains(&name) {
        println!("the daemon uses it as {name} from its next start (restart it to apply)");
    }
    Ok(())
}

fn delete(config: &Config, tenant: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = super::admin_cmd::open_database(config)?;
    if secrets::delete_secret(&mut conn, tenant, name, &Actor::cli(), Utc::now())? {
        println!("deleted secret {name}");
    } else {
        println!("no secret {name}");
    }
    Ok(())
}

fn list(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let mut conn = super::admin_cmd::open_database(config)?;
    let rows = secrets::list_secrets(&mut conn, Some(tenant))?;
    if rows.is_empty() {
        println!("no secrets");
        return Ok(());
    }
    println!("{:<40}  {:<16}  UPDATED", "NAME", "KEY ID");
    for row in rows {
        println!(
            "{:<40}  {:<16}  {}",
            row.name,
            row.key_id,
            row.updated_at.and_utc().format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

fn rotate_key(config: &Config, new_key_file: Option<PathBuf>) -> anyhow::Result<()> {
    let current = MasterKey::load(config)?;
    let default_staging =
        MasterKey::key_file(&config.data_dir).with_file_name(format!("{MASTER_KEY_FILE}.new"));
    let (staged, new_key, generated) = match new_key_file {
        Some(path) if path.exists() => {
            let key = read_key_file(&path)?;
            (path, key, false)
        }
        Some(path) => {
            let key = Key::generate();
            write_key_file(&path, &key)?;
            (path, key, true)
        }
        None => {
            if default_staging.exists() {
                bail!(
                    "{} exists: an earlier rotation did not finish. Compare its key id with the \
                     ids `aro secrets list` shows: if the secrets are under it, move it to {}; \
                     otherwise delete it. Then run this again.",
                    default_staging.display(),
                    MasterKey::key_file(&config.data_dir).display()
                );
            }
            let key = Key::generate();
            write_key_file(&default_staging, &key)?;
            (default_staging.clone(), key, true)
        }
    };
    if new_key.id() == current.id() {
        bail!("the new key is the current master key");
    }
    let rotated = super::admin_cmd::open_database(config).and_then(|mut conn| {
        Ok(secrets::rotate_key(
            &mut conn,
            current.key(),
            &new_key,
            &Actor::cli(),
            Utc::now(),
        )?)
    });
    let report = match rotated {
        Ok(report) => report,
        Err(err) => {
            if generated {
                let _ = fs::remove_file(&staged);
            }
            return Err(err.context("nothing was changed"));
        }
    };
    let new_id = secrets::key_id(&new_key);
    println!(
        "re-sealed {} secret(s) under master key {new_id}{}",
        report.resealed,
        if report.already_new > 0 {
            format!(" ({} were already under it)", report.already_new)
        } else {
            String::new()
        }
    );
    match current.source() {
        KeySource::File(path) | KeySource::Created(path) => {
            install_key_file(path, current.key(), &new_key).with_context(|| {
                format!(
                    "the secrets are now under the key in {}; move that file to {} by hand",
                    staged.display(),
                    path.display()
                )
            })?;
            if staged == default_staging {
                let _ = fs::remove_file(&staged);
            }
            println!(
                "{} now holds the new key; the old one is kept beside it as \
                 master.key.retired-* for backups made before now (keep it with them, \
                 then delete it)",
                path.display()
            );
        }
        KeySource::Configured | KeySource::Provided => {
            println!(
                "ARO_MASTER_KEY still holds the old key: set it to the contents of {} \
                 (ARO_MASTER_KEY=$(cat {})) before starting the daemon, then remove that \
                 file. Keep the old key with backups made before now.",
                staged.display(),
                staged.display()
            );
        }
    }
    Ok(())
}

/// Keeps the old key as `master.key.retired-<key id>`, then replaces `path` with the new
/// key atomically (temporary file, rename, directory sync).
fn install_key_file(path: &Path, old: &Key, new: &Key) -> anyhow::Result<()> {
    let retired = path.with_file_name(format!(
        "{MASTER_KEY_FILE}.retired-{}",
        secrets::key_id(old)
    ));
    let kept = retired.exists() && read_key_file(&retired).is_ok_and(|k| k.id() == old.id());
    if !kept {
        write_key_file(&retired, old)?;
    }
    let tmp = path.with_file_name(format!(
        ".{MASTER_KEY_FILE}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    write_key_file(&tmp, new)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent() {
        if let Ok(handle) = fs::File::open(dir) {
            let _ = handle.sync_all();
        }
    }
    Ok(())
}

/// Writes a new key file: 64 hex digits and a newline, mode 0600, synced; refuses to
/// overwrite.
fn write_key_file(path: &Path, key: &Key) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(format!("{}\n", hex::encode(key.bytes())).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a key file written by [`write_key_file`] (or by hand): owner-only, 64 hex
/// digits.
fn read_key_file(path: &Path) -> anyhow::Result<Key> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is accessible to group or others (mode {:04o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            );
        }
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = [0u8; 32];
    let hex_text = text.trim();
    if hex_text.len() != 64 {
        return Err(anyhow!(
            "{} does not hold a key (expected 64 hex digits)",
            path.display()
        ));
    }
    hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| {
        anyhow!(
            "{} does not hold a key (expected 64 hex digits)",
            path.display()
        )
    })?;
    Ok(Key::from_bytes(bytes))
}
