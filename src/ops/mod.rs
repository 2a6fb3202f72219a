//! Operations on a whole installation, outside the request path: encrypted backup and
//! restore (`backup`), the daemon's daily backup (`backup_schedule`), `aro diagnose`
//! with its support bundle (`diagnose`), and the nightly risk recompute (`nightly`).

pub mod backup;
pub mod backup_schedule;
pub mod diagnose;
pub mod install;
pub mod nightly;
