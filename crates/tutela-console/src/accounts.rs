//! Passwords and secrets of staff accounts: argon2id hashes (the `argon2` crate's defaults, the
//! OWASP minimum: 19 MiB, 2 passes, 1 lane), random tokens from the operating system, and a
//! compare that does not stop at the first differing byte.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// The shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a password or a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The password is too short.
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// The operating system gave no random bytes.
    #[error("no secure random source: {0}")]
    Random(String),
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// An argon2id PHC string for a new password.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::TooShort);
    }
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| AccountError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash to verify against when the username is unknown, so that answer takes as long as a
/// wrong password does.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-password-never-valid").unwrap_or_default())
}

/// 32 random bytes as 64 hex characters (session cookies, form tokens).
pub fn random_token() -> Result<String, AccountError> {
    let mut buf = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| AccountError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

/// What the store keeps of a session cookie: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Equal, compared without an early exit (lengths are not secret).
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(AccountError::TooShort)
        ));
        // Salted: the same password hashes differently.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
        assert!(!verify_password("decoy-password-never-valid", ""));
        assert!(verify_password("decoy-password-never-valid", decoy_hash()));
    }

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let a = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token().unwrap());
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &a[..63]));
        assert!(!same("", ""));
        assert_eq!(token_hash("x").len(), 64);
        assert_ne!(token_hash("x"), token_hash("y"));
    }
}
