//! `Secret<T>`: a value that never shows itself in `Debug` or `Display` output.
//!
//! Configuration keeps credentials in this wrapper so that a stray `{:?}` in a log line
//! or an error message prints a mask instead of the credential. Reading the value takes
//! an explicit call to [`Secret::expose`].

use std::fmt;

/// The mask printed in place of any secret.
pub const MASK: &str = "********";

/// A credential or key that must not appear in logs or output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself; call this only where the value is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_value() {
        let secret = Secret::new("sk_live_abc123".to_string());
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(secret.expose(), "sk_live_abc123");
    }
}
