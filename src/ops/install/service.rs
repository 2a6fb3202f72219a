//! Service units rendered from the repository's own templates (`systemd/aro.service`,
//! `systemd/aro-user.service`, `launchd/com.aro.daemon.plist`, compiled in), with the
//! installation's paths: the binary, the configuration file and the data directory.
//! Everything else — notify, watchdog, restart policy, sandboxing — stays as reviewed
//! in the templates.

use std::path::Path;
use std::process::Command;

use super::layout::ServiceKind;
use super::InstallError;

const SYSTEM_UNIT: &str = include_str!("../../../systemd/aro.service");
const USER_UNIT: &str = include_str!("../../../systemd/aro-user.service");
const LAUNCHD_JOB: &str = include_str!("../../../launchd/com.aro.daemon.plist");

/// The paths a unit names.
#[derive(Debug, Clone, Copy)]
pub struct UnitPaths<'a> {
    pub bin: &'a Path,
    pub config_file: &'a Path,
    pub data_dir: &'a Path,
    /// The system unit's `User=` and `Group=` (the user and launchd units run as
    /// whoever loads them).
    pub user: &'a str,
    pub group: &'a str,
}

/// The unit file's text for `kind`; `None` for [`ServiceKind::None`].
pub fn render(kind: ServiceKind, paths: UnitPaths<'_>) -> Result<Option<String>, InstallError> {
    let text = |p: &Path| -> Result<String, InstallError> {
        let s = p
            .to_str()
            .ok_or_else(|| InstallError::Invalid(format!("{} is not valid UTF-8", p.display())))?;
        if s.chars()
            .any(|c| c.is_whitespace() || c == '%' || c == '"' || c == '\\')
        {
            return Err(InstallError::Invalid(format!(
                "{s:?}: a path in a service unit may not contain spaces, quotes, % or \\"
            )));
        }
        Ok(s.to_string())
    };
    let bin = text(paths.bin)?;
    let config = text(paths.config_file)?;
    let data = text(paths.data_dir)?;
    Ok(match kind {
        ServiceKind::None => None,
        ServiceKind::SystemdSystem => Some(systemd(
            SYSTEM_UNIT,
            &bin,
            &config,
            &data,
            data.strip_prefix("/var/lib/"),
        ))
        .map(|unit| run_as(&unit, paths.user, paths.group)),
        ServiceKind::SystemdUser => {
            let state = std::env::var("XDG_STATE_HOME").ok().or_else(|| {
                std::env::var("HOME")
                    .ok()
                    .map(|h| format!("{h}/.local/state"))
            });
            let state_dir = state
                .as_deref()
                .and_then(|s| data.strip_prefix(s))
                .and_then(|rest| rest.strip_prefix('/'));
            Some(systemd(USER_UNIT, &bin, &config, &data, state_dir))
        }
        ServiceKind::Launchd => Some(
            LAUNCHD_JOB
                .replace("/usr/local/bin/aro", &xml(&bin))
                .replace("/usr/local/etc/aro/aro.toml", &xml(&config))
                .replace("/usr/local/var/aro", &xml(&data)),
        ),
    })
}

/// The systemd template with ExecStart, the data directory and (when the data
/// directory is one systemd manages) StateDirectory rewritten.
fn systemd(template: &str, bin: &str, config: &str, data: &str, state_dir: Option<&str>) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    for line in template.lines() {
        let replaced = if line.starts_with("ExecStart=") {
            Some(format!("ExecStart={bin} serve --config {config}"))
        } else if line.starts_with("Environment=ARO_DATA_DIR=") {
            Some(format!("Environment=ARO_DATA_DIR={data}"))
        } else if line.starts_with("WorkingDirectory=") {
            Some(format!("WorkingDirectory={data}"))
        } else if line.starts_with("ReadWritePaths=") {
            Some(format!("ReadWritePaths={data}"))
        } else if line.starts_with("StateDirectory=") {
            match state_dir {
                Some(dir) if !dir.is_empty() => Some(format!("StateDirectory={dir}")),
                // Not under the manager's state directory: the installer created it.
                _ => Some(String::new()),
            }
        } else if line.starts_with("StateDirectoryMode=") && state_dir.is_none() {
            Some(String::new())
        } else {
            None
        };
        match replaced {
            Some(new) if new.is_empty() => {}
            Some(new) => {
                out.push_str(&new);
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The unit with its `User=` and `Group=` lines naming `user` and `group`.
fn run_as(unit: &str, user: &str, group: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for line in unit.lines() {
        if line.starts_with("User=") {
            out.push_str(&format!("User={user}"));
        } else if line.starts_with("Group=") {
            out.push_str(&format!("Group={group}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Asks the service manager to load and start the unit (prefix `/` only).
pub fn enable_and_start(kind: ServiceKind, unit_file: &Path) -> Result<(), InstallError> {
    let run = |program: &str, args: &[&str]| -> Result<(), InstallError> {
        let status = Command::new(program)
            .args(args)
            .status()
            .map_err(|e| InstallError::Service(format!("cannot run {program}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(InstallError::Service(format!(
                "`{program} {}` failed ({status})",
                args.join(" ")
            )))
        }
    };
    match kind {
        ServiceKind::None => Ok(()),
        ServiceKind::SystemdSystem => {
            run("systemctl", &["daemon-reload"])?;
            run("systemctl", &["enable", "--now", "aro"])
        }
        ServiceKind::SystemdUser => {
            run("systemctl", &["--user", "daemon-reload"])?;
            run("systemctl", &["--user", "enable", "--now", "aro"])
        }
        ServiceKind::Launchd => {
            let file = unit_file.to_str().ok_or_else(|| {
                InstallError::Service(format!("{} is not valid UTF-8", unit_file.display()))
            })?;
            run("launchctl", &["bootstrap", "system", file])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_unit_names_the_installation_paths() {
        let text = render(
            ServiceKind::SystemdSystem,
            UnitPaths {
                bin: Path::new("/opt/aro/bin/aro"),
                config_file: Path::new("/opt/aro/etc/aro.toml"),
                data_dir: Path::new("/srv/aro"),
                user: "aro-svc",
                group: "nogroup",
            },
        )
        .expect("render")
        .expect("a unit");
        assert!(
            text.contains("\nExecStart=/opt/aro/bin/aro serve --config /opt/aro/etc/aro.toml\n")
        );
        assert!(text.contains("\nEnvironment=ARO_DATA_DIR=/srv/aro\n"));
        assert!(text.contains("\nReadWritePaths=/srv/aro\n"));
        assert!(!text.contains("StateDirectory"));
        assert!(text.contains("\nType=notify\n"));
        assert!(text.contains("\nUser=aro-svc\nGroup=nogroup\n"), "{text}");
        let standard = render(
            ServiceKind::SystemdSystem,
            UnitPaths {
                bin: Path::new("/usr/local/bin/aro"),
                config_file: Path::new("/etc/aro/aro.toml"),
                data_dir: Path::new("/var/lib/aro"),
                user: "aro",
                group: "aro",
            },
        )
        .expect("render")
        .expect("a unit");
        assert!(standard.contains("\nStateDirectory=aro\n"));
        assert!(render(
            ServiceKind::Launchd,
            UnitPaths {
                bin: Path::new("/a b/aro"),
                config_file: Path::new("/c"),
                data_dir: Path::new("/d"),
                user: "aro",
                group: "aro",
            }
        )
        .is_err());
    }
}
