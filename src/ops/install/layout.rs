//! Where an installation puts its files. Every absolute path is taken under `--prefix`
//! (`/` for a real installation; a temporary directory in tests), and the defaults
//! follow the service manager: `/etc/aro` + `/var/lib/aro` for a system service,
//! `~/.config/aro` + `~/.local/state/aro` for a user service, `/usr/local/etc/aro` +
//! `/usr/local/var/aro` for launchd.

use std::path::{Path, PathBuf};

/// The configuration file's name inside the configuration directory.
pub const CONFIG_FILE: &str = "aro.toml";

/// Which service manager runs the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceKind {
    /// No unit file: run `aro serve --config …` yourself (or with `--start`).
    None,
    /// A systemd user unit (`systemctl --user`).
    SystemdUser,
    /// A systemd system unit, run as the `aro` user.
    SystemdSystem,
    /// A launchd job (macOS).
    Launchd,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::None => "none",
            ServiceKind::SystemdUser => "systemd-user",
            ServiceKind::SystemdSystem => "systemd-system",
            ServiceKind::Launchd => "launchd",
        }
    }
}

/// The paths of one installation.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: PathBuf,
    pub service: ServiceKind,
    pub config_dir: PathBuf,
    pub config_file: PathBuf,
    /// The data directory used when the answers name none.
    pub default_data_dir: PathBuf,
    /// The unit file or launchd job, when a service manager is chosen.
    pub unit_file: Option<PathBuf>,
}

/// `path` (absolute) under `prefix`: `/tmp/p` + `/etc/aro` → `/tmp/p/etc/aro`.
pub fn under(prefix: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(relative) => prefix.join(relative),
        Err(_) => prefix.join(path),
    }
}

impl Layout {
    /// The layout for `service` under `prefix`; `config_dir` overrides the default
    /// configuration directory (taken as given, not under the prefix).
    pub fn new(prefix: &Path, service: ServiceKind, config_dir: Option<&Path>) -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        let at = |p: &str| under(prefix, Path::new(p));
        let at_home = |p: &str| under(prefix, &home.join(p));
        let (default_config_dir, default_data_dir, unit_file) = match service {
            ServiceKind::None => (at("/etc/aro"), at("/var/lib/aro"), None),
            ServiceKind::SystemdSystem => (
                at("/etc/aro"),
                at("/var/lib/aro"),
                Some(at("/etc/systemd/system/aro.service")),
            ),
            ServiceKind::SystemdUser => (
                at_home(".config/aro"),
                at_home(".local/state/aro"),
                Some(at_home(".config/systemd/user/aro.service")),
            ),
            ServiceKind::Launchd => (
                at("/usr/local/etc/aro"),
                at("/usr/local/var/aro"),
                Some(at("/Library/LaunchDaemons/com.aro.daemon.plist")),
            ),
        };
        let config_dir = config_dir
            .map(Path::to_path_buf)
            .unwrap_or(default_config_dir);
        Self {
            prefix: prefix.to_path_buf(),
            service,
            config_file: config_dir.join(CONFIG_FILE),
            config_dir,
            default_data_dir,
            unit_file,
        }
    }

    /// A real installation (prefix `/`): the only one where `--start` asks the service
    /// manager.
    pub fn is_root_prefix(&self) -> bool {
        self.prefix == Path::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_under_the_prefix() {
        let layout = Layout::new(Path::new("/tmp/p"), ServiceKind::SystemdSystem, None);
        assert_eq!(layout.config_file, Path::new("/tmp/p/etc/aro/aro.toml"));
        assert_eq!(layout.default_data_dir, Path::new("/tmp/p/var/lib/aro"));
        assert_eq!(
            layout.unit_file.as_deref(),
            Some(Path::new("/tmp/p/etc/systemd/system/aro.service"))
        );
        let root = Layout::new(Path::new("/"), ServiceKind::None, None);
        assert_eq!(root.config_file, Path::new("/etc/aro/aro.toml"));
        assert!(root.is_root_prefix());
    }
}
