//! The installer's steps on the host: the system check, writing the configuration file
//! (0600, atomically, only when it changes), the data directory (0700), the master key
//! (created once, never replaced), migrations and the first admin user (created once,
//! never replaced).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;

use crate::audit::Actor;
use crate::auth::{password, users, Role};
use crate::config::{Config, Secret};
use crate::crypto::{KeySource, MasterKey};
use crate::ops::backup::Progress;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::Database;

use super::InstallError;

/// Less free space than this is reported as a problem.
const LOW_DISK_BYTES: u64 = 1 << 30;

/// One line of the system check.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub ok: bool,
    pub text: String,
}

impl CheckLine {
    fn new(ok: bool, text: impl Into<String>) -> Self {
        Self {
            ok,
            text: text.into(),
        }
    }
}

/// OS, free disk and write access where the files go; the port when `listen` is known.
pub fn system_check(dirs: &[&Path], listen: Option<SocketAddr>) -> Vec<CheckLine> {
    let mut lines = vec![CheckLine::new(
        cfg!(any(target_os = "linux", target_os = "macos")),
        format!(
            "operating system: {} ({})",
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
    )];
    for dir in dirs {
        let existing = nearest_existing(dir);
        match free_bytes(&existing) {
            Some(free) => lines.push(CheckLine::new(
                free >= LOW_DISK_BYTES,
                format!("{} MiB free on {}", free >> 20, existing.display()),
            )),
            None => lines.push(CheckLine::new(
                true,
                format!("free space on {} unknown (df failed)", existing.display()),
            )),
        }
        match probe_writable(&existing) {
            Ok(()) => lines.push(CheckLine::new(true, format!("can write {}", dir.display()))),
            Err(err) => lines.push(CheckLine::new(
                false,
                format!(
                    "cannot write {} ({err}): run as a user that can, or choose another --prefix",
                    existing.display()
                ),
            )),
        }
    }
    if let Some(addr) = listen {
        lines.push(if port_free(addr) {
            CheckLine::new(true, format!("{addr} is free"))
        } else {
            CheckLine::new(
                false,
                format!("{addr} is in use (a running aro? stop it, or choose another --listen)"),
            )
        });
    }
    lines
}

/// Whether nothing listens on `addr` yet.
pub fn port_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

fn nearest_existing(dir: &Path) -> PathBuf {
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.exists() {
            return path.to_path_buf();
        }
        current = path.parent().filter(|p| !p.as_os_str().is_empty());
    }
    PathBuf::from(".")
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let capacity = fields.iter().position(|f| f.ends_with('%'))?;
    let kib: u64 = fields.get(capacity.checked_sub(1)?)?.parse().ok()?;
    Some(kib * 1024)
}

/// Creates and removes a probe file in `dir`.
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".aro-install-probe-{}", std::process::id()));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)?;
    fs::remove_file(&probe)
}

/// Creates `dir` (and its parents) with `mode` when missing.
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), InstallError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| InstallError::io("create", dir, e))
}

/// Whether the file was written or already had this content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `text` to `path` with `mode`, atomically (a temporary file in the same
/// directory, then a rename); leaves an identical file alone.
pub fn write_file(path: &Path, text: &str, mode: u32) -> Result<Written, InstallError> {
    let existed = match fs::read_to_string(path) {
        Ok(current) if current == text => {
            // Tighten the mode of a file written earlier by hand.
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| InstallError::io("set the mode of", path, e))?;
            return Ok(Written::Unchanged);
        }
        Ok(_) => true,
        Err(_) => false,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        // The mode given to open() is filtered by the umask; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        return Err(InstallError::io("write", path, err));
    }
    Ok(if existed {
        Written::Updated
    } else {
        Written::Created
    })
}

/// The master key: the existing one, or a new key file (0600). Never replaces one.
pub fn master_key(config: &Config) -> Result<KeySource, InstallError> {
    Ok(MasterKey::load_or_create(config)?.source().clone())
}

/// What the database step did.
#[derive(Debug, Clone)]
pub struct DatabaseReport {
    pub applied: Vec<String>,
}

/// Applies pending migrations (one progress step each) and makes sure the business's
/// tenant exists.
pub fn prepare_database(
    config: &Config,
    progress: Progress,
) -> Result<DatabaseReport, InstallError> {
    let db = Database::open(&config.database)?;
    let applied = {
        let mut conn = db.get()?;
        super::apply_pending_with_progress(&mut conn, progress)?
    };
    // Tenant creation is what `aro serve` does at start; reuse it.
    actix_web::rt::System::new()
        .block_on(crate::app::prepare_database(config))
        .map_err(|e| InstallError::Daemon(format!("cannot prepare the database: {e}")))?;
    Ok(DatabaseReport { applied })
}

/// The first admin user to create.
#[derive(Debug, Clone)]
pub struct AdminAnswer {
    pub username: String,
    pub password: Secret<String>,
}

/// Normalizes the username and checks the password policy (SPEC §8) — before anything
/// is written.
pub fn check_admin(answer: &AdminAnswer) -> Result<String, InstallError> {
    let username = users::normalize_username(&answer.username)?;
    password::check_policy(answer.password.expose(), Some(&username))?;
    Ok(username)
}

/// The names of the existing admin users of the default tenant.
pub fn existing_admins(config: &Config) -> Result<Vec<String>, InstallError> {
    let db = Database::open(&config.database)?;
    let mut conn = db.get()?;
    let rows = users::list(&mut conn, DEFAULT_TENANT).map_err(crate::store::StoreError::from)?;
    Ok(rows.into_iter().map(|r| r.username).collect())
}

/// Whether the admin user was created or already existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    Created(String),
    Exists(String),
}

/// Creates the owner `answer` unless a user of that name exists (then nothing changes).
pub fn create_admin(config: &Config, answer: &AdminAnswer) -> Result<AdminOutcome, InstallError> {
    let username = check_admin(answer)?;
    let db = Database::open(&config.database)?;
    let mut conn = db.get()?;
    if users::find_by_username(&mut conn, DEFAULT_TENANT, &username)
        .map_err(crate::store::StoreError::from)?
        .is_some()
    {
        return Ok(AdminOutcome::Exists(username));
    }
    let new = users::NewUser {
        tenant_id: DEFAULT_TENANT.to_string(),
        username: username.clone(),
        password_hash: password::hash(answer.password.expose())?,
        role: Role::Owner,
    };
    users::create(&mut conn, &new, &Actor::cli(), Utc::now())?;
    Ok(AdminOutcome::Created(username))
}
