//! Passwords: argon2id with the crate's recommended parameters (19 MiB, 2 passes), a policy
//! for new ones, and provisional passwords for new accounts.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use crate::Error;

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 200;

pub fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Argon2 runs this many at a time, on the blocking pool: a flood of logins waits its turn
/// instead of taking the threads that serve every page.
static ARGON2_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `verify` off the async workers, at most `ARGON2_SLOTS` at once.
pub async fn verify_in_turn(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    let Ok(_slot) = ARGON2_SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false)
}

/// `hash` off the async workers, at most `ARGON2_SLOTS` at once.
pub async fn hash_in_turn(password: &str) -> Result<String, Error> {
    let password = password.to_string();
    let _slot = ARGON2_SLOTS
        .acquire()
        .await
        .map_err(|e| Error::Hash(e.to_string()))?;
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| Error::Hash(e.to_string()))?
}

/// Whether `password` matches the stored `hash` (a malformed hash never matches).
pub fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing anyone can type, to spend the same time on unknown emails as on known ones.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&provisional()).unwrap_or_default())
}

/// Checks a password chosen by its owner.
pub fn check_new(password: &str, email: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(Error::WeakPassword("too_short"));
    }
    if chars > MAX_LENGTH {
        return Err(Error::WeakPassword("too_long"));
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 3 && password.to_lowercase().contains(&local) {
        return Err(Error::WeakPassword("contains_email"));
    }
    let first = password.chars().next().unwrap_or(' ');
    if password.chars().all(|c| c == first) {
        return Err(Error::WeakPassword("repetitive"));
    }
    Ok(())
}

/// A provisional password to hand over once: 16 characters that read unambiguously.
pub fn provisional() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|i| {
            let c = ALPHABET[rng.gen_range(0..ALPHABET.len())] as char;
            if i == 4 || i == 8 || i == 12 {
                format!("-{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_salted_argon2id_and_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct"));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn the_policy_refuses_short_repetitive_and_email_passwords() {
        assert!(check_new("short", "a@b.it").is_err());
        assert!(check_new("aaaaaaaaaaaa", "a@b.it").is_err());
        assert!(check_new("mario.rossi2026", "mario.rossi@comune.it").is_err());
        assert!(check_new("una frase lunga", "mario.rossi@comune.it").is_ok());
    }

    #[test]
    fn provisional_passwords_pass_the_policy_and_differ() {
        let a = provisional();
        assert_eq!(a.len(), 19);
        assert!(check_new(&a, "x@y.it").is_ok());
        assert_ne!(a, provisional());
    }
}
