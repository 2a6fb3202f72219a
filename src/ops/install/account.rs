//! The dedicated system user the systemd system unit runs as (`User=`, `Group=`; `aro`
//! unless `--service-user` names another): looked up with `getent`, created with
//! `useradd --system` when missing, and given what the installer, running as root,
//! created for it — the data directory (database, master key, backups) and the 0600
//! configuration file, whose directory it may enter through its group.

use std::path::Path;
use std::process::Command;

use super::InstallError;

/// The user a system service runs as when none is named.
pub const DEFAULT_USER: &str = "aro";

/// A system account, resolved to numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
}

/// Whether the account was there or had to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOutcome {
    Existed(ServiceAccount),
    Created(ServiceAccount),
}

impl AccountOutcome {
    pub fn account(&self) -> &ServiceAccount {
        match self {
            AccountOutcome::Existed(a) | AccountOutcome::Created(a) => a,
        }
    }
}

/// A name `useradd` accepts on every common distribution: a lowercase letter or `_`,
/// then up to 31 lowercase letters, digits, `_` or `-`.
pub fn check_name(name: &str) -> Result<(), InstallError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= 32 {
        Ok(())
    } else {
        Err(InstallError::Invalid(format!(
            "{name:?} is not a valid user name (a lowercase letter or _, then up to 31 \
             lowercase letters, digits, _ or -)"
        )))
    }
}

/// Whether this process runs as root (only root can create users and change owners).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The account named `user`, when it exists.
pub fn lookup(user: &str) -> Result<Option<ServiceAccount>, InstallError> {
    check_name(user)?;
    let Some(passwd) = getent("passwd", user)? else {
        return Ok(None);
    };
    // name:password:uid:gid:gecos:home:shell
    let fields: Vec<&str> = passwd.split(':').collect();
    let parse = |i: usize| -> Result<u32, InstallError> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| InstallError::Service(format!("unexpected passwd entry for {user}")))
    };
    let (uid, gid) = (parse(2)?, parse(3)?);
    let group = getent("group", &gid.to_string())?
        .and_then(|entry| entry.split(':').next().map(str::to_string))
        .unwrap_or_else(|| gid.to_string());
    Ok(Some(ServiceAccount {
        user: user.to_string(),
        group,
        uid,
        gid,
    }))
}

/// `useradd`'s arguments for a system account without a login shell, whose home is the
/// data directory (not created by useradd: the installer owns it).
pub fn useradd_args(user: &str, home: &Path) -> Vec<String> {
    vec![
        "--system".to_string(),
        "--user-group".to_string(),
        "--home-dir".to_string(),
        home.display().to_string(),
        "--no-create-home".to_string(),
        "--shell".to_string(),
        "/usr/sbin/nologin".to_string(),
        "--comment".to_string(),
        "ARO appointment no-show reducer".to_string(),
        user.to_string(),
    ]
}

/// The account, created first when missing.
pub fn ensure(user: &str, home: &Path) -> Result<AccountOutcome, InstallError> {
    if let Some(account) = lookup(user)? {
        return Ok(AccountOutcome::Existed(account));
    }
    let status = Command::new("useradd")
        .args(useradd_args(user, home))
        .status()
        .map_err(|e| InstallError::Service(format!("cannot run useradd: {e}")))?;
    if !status.success() {
        return Err(InstallError::Service(format!(
            "useradd {user} failed ({status}); create the user yourself and run the \
             installer again"
        )));
    }
    lookup(user)?
        .map(AccountOutcome::Created)
        .ok_or_else(|| InstallError::Service(format!("useradd succeeded but {user} is not there")))
}

/// Makes `account` the owner of everything under `data_dir` and of `config_file`, and
/// the group of `config_dir` (which stays root's, mode 0750), so the service can read
/// its configuration and write its data but not rewrite its own configuration's
/// directory.
pub fn hand_over(
    account: &ServiceAccount,
    data_dir: &Path,
    config_file: &Path,
    config_dir: &Path,
) -> Result<(), InstallError> {
    chown_tree(data_dir, account)?;
    chown(config_file, Some(account.uid), Some(account.gid))?;
    chown(config_dir, None, Some(account.gid))
}

fn chown_tree(path: &Path, account: &ServiceAccount) -> Result<(), InstallError> {
    chown(path, Some(account.uid), Some(account.gid))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| InstallError::io("inspect", path, e))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| InstallError::io("read", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| InstallError::io("read", path, e))?;
            chown_tree(&entry.path(), account)?;
        }
    }
    Ok(())
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), InstallError> {
    std::os::unix::fs::lchown(path, uid, gid)
        .map_err(|e| InstallError::io("change the owner of", path, e))
}

/// One `getent DATABASE KEY` line, or `None` when the key is unknown (exit status 2).
fn getent(database: &str, key: &str) -> Result<Option<String>, InstallError> {
    let out = Command::new("getent")
        .args([database, key])
        .output()
        .map_err(|e| InstallError::Service(format!("cannot run getent: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_useradd_would_refuse_are_refused_first() {
        for ok in ["aro", "_aro", "aro-svc", "aro_2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Aro", "2aro", "aro svc", "aro;rm", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_account_is_a_system_user_without_a_login_or_a_created_home() {
        let args = useradd_args("aro", Path::new("/var/lib/aro"));
        for expected in [
            "--system",
            "--user-group",
            "--no-create-home",
            "/usr/sbin/nologin",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected}: {args:?}");
        }
        let home = args.iter().position(|a| a == "--home-dir").expect("home");
        assert_eq!(args[home + 1], "/var/lib/aro");
        assert_eq!(args.last().map(String::as_str), Some("aro"));
    }

    #[test]
    fn an_existing_account_resolves_and_an_unknown_one_is_none() {
        let root = lookup("root").expect("getent").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.group, "root");
        assert_eq!(lookup("aro-no-such-user-x").expect("getent"), None);
    }
}
