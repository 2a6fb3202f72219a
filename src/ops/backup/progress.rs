//! Progress display for backup and restore: `indicatif` bars on stderr when it is a
//! terminal, nothing otherwise (scripts, the daemon's scheduled backups, tests).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether and where to draw progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Never draws.
    pub fn hidden() -> Self {
        Self { visible: false }
    }

    /// Draws on stderr when it is a terminal.
    pub fn stderr() -> Self {
        Self {
            visible: std::io::stderr().is_terminal(),
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// A bar over `total` bytes.
    pub fn bytes(&self, total: u64, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(total), self.target());
        let style = ProgressStyle::with_template(
            "{msg:<24} [{bar:32}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(message.to_string());
        bar
    }

    /// A spinner for a step of unknown length.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(message.to_string());
        if self.visible {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        bar
    }
}
