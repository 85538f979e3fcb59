//! The deployment's keys and how they are checked: the app key and the test key derived
//! from the admin token when none is configured, and every token compared in constant time.
//! Pure functions: who may call what is `auth`'s.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Whether `given` is the token `want`, in time that depends on neither (both are hashed to
/// 32 bytes first, then compared with `subtle`). An empty `want` matches nothing.
pub(crate) fn token_matches(want: &str, given: &str) -> bool {
    if want.is_empty() {
        return false;
    }
    let want = Sha256::digest(want.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    bool::from(want.as_slice().ct_eq(given.as_slice()))
}

/// The token of `Authorization: Bearer <token>`, or `""`.
pub(crate) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The app key of a deployment whose admin token is `admin_token`, when none is configured.
pub fn app_key_for(admin_token: &str) -> String {
    let digest = Sha256::digest(format!("tutela app key\n{admin_token}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("ak_{}", &hex[..40])
}

/// The test key of a deployment whose admin token is `admin_token` (`X-Tutela-Test-Key`).
pub fn test_key_for(admin_token: &str) -> String {
    let digest = Sha256::digest(format!("tutela test traffic\n{admin_token}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("tt_{}", &hex[..40])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        assert!(token_matches("0123456789abcdef", "0123456789abcdef"));
        assert!(!token_matches("0123456789abcdef", "0123456789abcdeg"));
        assert!(!token_matches("0123456789abcdef", "0123456789abcde"));
        assert!(!token_matches("0123456789abcdef", ""));
        assert!(!token_matches("", ""));
        for k in [1, 255, 256, 512] {
            let longer = format!("0123456789abcdef{}", "A".repeat(k));
            assert!(!token_matches("0123456789abcdef", &longer), "+{k} bytes");
        }
    }

    #[test]
    fn the_app_key_depends_on_the_admin_token_and_is_not_it() {
        assert_eq!(app_key_for("a"), app_key_for("a"));
        assert_ne!(app_key_for("a"), app_key_for("b"));
        assert_ne!(app_key_for("a"), test_key_for("a"));
        assert!(app_key_for("a").starts_with("ak_"));
    }
}
