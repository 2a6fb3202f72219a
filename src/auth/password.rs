//! Admin passwords: the SPEC §8 policy and argon2id hashing.
//!
//! Policy: at least 12 characters (Unicode scalar values) and at most 1024, with an
//! upper-case letter, a lower-case letter, a digit and a symbol (anything that is not a
//! letter or digit, space included); not a common password — the list in
//! `common_passwords.txt`, compared case-insensitively, also after removing leading and
//! trailing digits and symbols ("Password123!") and undoing the usual letter-for-symbol
//! swaps ("P@ssw0rd2024!"); and not containing the username.
//!
//! Hashes are PHC strings from argon2id (v19, the crate's defaults: 19 MiB, 2 passes,
//! 1 lane — OWASP's recommendation) with a 16-byte random salt; verification reads the
//! parameters from the stored string, so they can be raised later without a migration.
//! Hashing and verifying are slow on purpose: call them off the async executor.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use super::AuthError;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 1024;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// One way a password falls short of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    NoUppercase,
    NoLowercase,
    NoDigit,
    NoSymbol,
    Common,
    ContainsUsername,
}

impl PasswordProblem {
    /// A stable code for API clients.
    pub fn code(self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "too_short",
            PasswordProblem::TooLong => "too_long",
            PasswordProblem::NoUppercase => "no_uppercase",
            PasswordProblem::NoLowercase => "no_lowercase",
            PasswordProblem::NoDigit => "no_digit",
            PasswordProblem::NoSymbol => "no_symbol",
            PasswordProblem::Common => "common",
            PasswordProblem::ContainsUsername => "contains_username",
        }
    }
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordProblem::TooShort => write!(f, "use at least {MIN_LENGTH} characters"),
            PasswordProblem::TooLong => write!(f, "use at most {MAX_LENGTH} characters"),
            PasswordProblem::NoUppercase => f.write_str("add an upper-case letter"),
            PasswordProblem::NoLowercase => f.write_str("add a lower-case letter"),
            PasswordProblem::NoDigit => f.write_str("add a digit"),
            PasswordProblem::NoSymbol => f.write_str("add a symbol"),
            PasswordProblem::Common => {
                f.write_str("it is a common password (or one with digits or symbols added)")
            }
            PasswordProblem::ContainsUsername => f.write_str("it contains the username"),
        }
    }
}

/// Every way `password` falls short of the policy (empty when it is acceptable).
pub fn policy_problems(password: &str, username: Option<&str>) -> Vec<PasswordProblem> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        problems.push(PasswordProblem::TooShort);
    }
    if length > MAX_LENGTH {
        problems.push(PasswordProblem::TooLong);
    }
    if !password.chars().any(char::is_uppercase) {
        problems.push(PasswordProblem::NoUppercase);
    }
    if !password.chars().any(char::is_lowercase) {
        problems.push(PasswordProblem::NoLowercase);
    }
    if !password.chars().any(|c| c.is_numeric()) {
        problems.push(PasswordProblem::NoDigit);
    }
    if !password.chars().any(|c| !c.is_alphanumeric()) {
        problems.push(PasswordProblem::NoSymbol);
    }
    if is_common(password) {
        problems.push(PasswordProblem::Common);
    }
    if let Some(username) = username {
        let username = username.trim().to_lowercase();
        if username.chars().count() >= 3 && password.to_lowercase().contains(&username) {
            problems.push(PasswordProblem::ContainsUsername);
        }
    }
    problems
}

/// `Ok` when `password` meets the policy, else every problem.
pub fn check_policy(password: &str, username: Option<&str>) -> Result<(), AuthError> {
    let problems = policy_problems(password, username);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AuthError::WeakPassword(problems))
    }
}

fn common_set() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// How many leading or trailing digits and symbols are tried off.
const MAX_DECORATION: usize = 16;

/// Whether `password` is a listed password, possibly with digits and symbols before or
/// after it, or spelled with symbol swaps.
pub fn is_common(password: &str) -> bool {
    let set = common_set();
    let chars: Vec<char> = password.to_lowercase().chars().collect();
    let len = chars.len();
    let decoration = |c: &&char| !c.is_alphabetic();
    let lead = chars
        .iter()
        .take_while(decoration)
        .count()
        .min(MAX_DECORATION);
    let trail = chars
        .iter()
        .rev()
        .take_while(decoration)
        .count()
        .min(MAX_DECORATION);
    for start in 0..=lead {
        for end in (len.saturating_sub(trail)..=len).rev() {
            if start >= end {
                continue;
            }
            let candidate: String = chars[start..end].iter().collect();
            if set.contains(&candidate) || set.contains(&unswap(&candidate)) {
                return true;
            }
        }
    }
    false
}

fn unswap(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '8' => 'b',
            '3' => 'e',
            '1' | '!' | '|' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' | '+' => 't',
            other => other,
        })
        .collect()
}

fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// The argon2id PHC string for `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (false for a malformed one).
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification against a hash nobody has the password of, so
/// that a login for an unknown user takes as long as one with a wrong password.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash(&super::random_token()).ok());
    if let Some(stored) = dummy {
        let _ = verify(password, stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strong_password_passes() {
        assert_eq!(policy_problems("Velvet-Harbor-42-Quill", None), vec![]);
        assert_eq!(policy_problems("Zq7!mRw2#pLx", Some("ann")), vec![]);
        assert!(check_policy("Correct horse 9 battery", None).is_ok());
    }

    #[test]
    fn each_rule_is_enforced() {
        use PasswordProblem::*;
        assert!(policy_problems("Aa1!short", None).contains(&TooShort));
        assert_eq!(policy_problems("velvet-harbor-42", None), vec![NoUppercase]);
        assert_eq!(policy_problems("VELVET-HARBOR-42", None), vec![NoLowercase]);
        assert_eq!(policy_problems("Velvet-Harbor-xx", None), vec![NoDigit]);
        assert_eq!(policy_problems("VelvetHarbor42x", None), vec![NoSymbol]);
        let long = format!("Aa1!{}", "x".repeat(MAX_LENGTH));
        assert!(policy_problems(&long, None).contains(&TooLong));
        assert_eq!(
            policy_problems("Velvet-ann-Harbor-42", Some("Ann")),
            vec![ContainsUsername]
        );
        // Length counts characters, not bytes.
        assert!(policy_problems("Ää1!ääääääää", None).is_empty());
        assert!(policy_problems("Ää1!äää", None).contains(&TooShort));
    }

    #[test]
    fn common_passwords_are_refused_with_decorations_and_swaps() {
        for weak in [
            "Password123!",
            "password",
            "PASSWORD",
            "P@ssw0rd2024!",
            "!!Qwertyuiop1",
            "Iloveyou2024!!",
            "Welcome#2025",
            "Letmein!12345",
            "123456789012!",
            "Trustno1!2345",
            "Dragon!!!!!!1",
        ] {
            assert!(is_common(weak), "{weak} should be common");
            assert!(
                policy_problems(weak, None).contains(&PasswordProblem::Common),
                "{weak}"
            );
        }
        for fine in [
            "Velvet-Harbor-42",
            "Password-Velvet-Harbor-42",
            "Zq7!mRw2#pLx",
            "Tr0ub4dor&3xK",
        ] {
            assert!(!is_common(fine), "{fine} should not be common");
        }
    }

    #[test]
    fn the_list_is_loaded() {
        assert!(common_set().len() > 300);
        assert!(common_set().contains("qwerty"));
        assert!(!common_set().iter().any(|p| p.starts_with('#')));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("Velvet-Harbor-42").expect("hash");
        let b = hash("Velvet-Harbor-42").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "fresh salt each time");
        assert!(verify("Velvet-Harbor-42", &a));
        assert!(!verify("Velvet-Harbor-43", &a));
        assert!(!verify("Velvet-Harbor-42", "not a hash"));
        verify_dummy("anything");
    }
}
