//! The three roles, ordered: viewer < staff < owner. A role allows everything the roles
//! below it allow.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an admin user or an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything an admin sees; changes nothing.
    Viewer,
    /// Day-to-day work: overrides, escalations, dead letters.
    Staff,
    /// Everything, including users, tokens, secrets and the audit log.
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Staff, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Staff => "staff",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "staff" => Ok(Role::Staff),
            "owner" => Ok(Role::Owner),
            other => Err(format!(
                "unknown role {other:?}: expected owner, staff or viewer"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Owner.allows(Role::Staff));
        assert!(Role::Staff.allows(Role::Viewer));
        assert!(Role::Staff.allows(Role::Staff));
        assert!(!Role::Viewer.allows(Role::Staff));
        assert!(!Role::Staff.allows(Role::Owner));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(" OWNER ".parse::<Role>(), Ok(Role::Owner));
        assert!("admin".parse::<Role>().is_err());
    }
}
