//! The proof of work asked of the public booking form (ALTCHA, PoW v2, the `altcha` crate): the
//! browser fetches a signed challenge, its widget searches for the answer in Web Workers (a
//! second or so on a phone), and the form carries the answer. A script that books thousands of
//! times pays that second each time; a person does not notice it. No third party is involved:
//! the challenge is made and checked here, signed with a key derived from the server's secret.
//!
//! Owns: making a challenge, checking an answer once (an answer is refused when replayed, when
//! its challenge has expired, or when anything in it was changed). Knows nothing of forms or
//! bookings.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub use altcha::Challenge;
use altcha::{CreateChallengeOptions, Payload, VerifySolutionOptions};
use hmac::{Hmac, Mac};

/// The key derivation the widget runs (WebCrypto's PBKDF2 in the browser).
const ALGORITHM: &str = "PBKDF2/SHA-256";
/// The answer's derived key must start with this: one chance in 256 per try.
const KEY_PREFIX: &str = "00";
/// An encoded answer longer than this is not one (a real one is about 700 bytes).
pub const MAX_ANSWER: usize = 4096;
/// Answers remembered to refuse a replay; beyond this, no new answer is accepted until old
/// ones expire (an attacker would have had to solve this many challenges).
const MAX_REMEMBERED: usize = 200_000;

/// Why an answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No answer, or not one the widget writes.
    Missing,
    /// The challenge was not made here, or was changed, or the answer is wrong.
    Invalid,
    /// The challenge is older than its lifetime.
    Expired,
    /// This answer was already used once.
    Replayed,
}

/// The challenge maker and checker.
pub struct ProofOfWork {
    secret: String,
    /// PBKDF2 iterations per try.
    cost: u32,
    /// How long a challenge may be answered.
    lifetime_seconds: u64,
    /// Signatures of the answers already used, with their challenge's expiry.
    used: Mutex<HashMap<String, u64>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProofOfWork {
    /// `server_secret` is the server's secret key; the challenges are signed with a key derived
    /// from it for this use only. Expiry follows the real clock (as the widget's does), never
    /// the moved clock of a demonstration.
    pub fn new(server_secret: &[u8], cost: u32, lifetime_seconds: u64) -> ProofOfWork {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(server_secret).expect("any key length");
        mac.update(b"sportello proof-of-work challenges");
        let secret = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        ProofOfWork {
            secret,
            cost: cost.max(1),
            lifetime_seconds: lifetime_seconds.max(60),
            used: Mutex::new(HashMap::new()),
        }
    }

    /// A new challenge, valid for the configured lifetime.
    pub fn challenge(&self) -> Challenge {
        self.challenge_expiring_at(unix_now() + self.lifetime_seconds)
    }

    /// A new challenge that expires at `expires_at` (Unix seconds).
    pub fn challenge_expiring_at(&self, expires_at: u64) -> Challenge {
        altcha::create_challenge(CreateChallengeOptions {
            algorithm: ALGORITHM.into(),
            cost: self.cost,
            expires_at: Some(expires_at),
            hmac_signature_secret: Some(self.secret.clone()),
            key_prefix: KEY_PREFIX.into(),
            ..Default::default()
        })
        .expect("PBKDF2 challenges are always made")
    }

    /// Checks the widget's answer (base64 of JSON) and spends it: the same answer is refused
    /// from then on.
    pub fn spend(&self, answer: &str) -> Result<(), Refusal> {
        let answer = answer.trim();
        if answer.is_empty() || answer.len() > MAX_ANSWER {
            return Err(Refusal::Missing);
        }
        let json = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, answer)
            .map_err(|_| Refusal::Missing)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| Refusal::Missing)?;
        // Only challenges of the kind made here: another algorithm or cost is a changed one
        // (its signature would fail too; this keeps a costly algorithm from being computed).
        let p = &payload.challenge.parameters;
        if p.algorithm != ALGORITHM || p.cost != self.cost || p.key_prefix != KEY_PREFIX {
            return Err(Refusal::Invalid);
        }
        let expires_at = p.expires_at.ok_or(Refusal::Invalid)?;
        let checked = altcha::verify_solution(VerifySolutionOptions::new(
            &payload.challenge,
            &payload.solution,
            self.secret.clone(),
        ))
        .map_err(|_| Refusal::Invalid)?;
        if checked.expired {
            return Err(Refusal::Expired);
        }
        if !checked.verified {
            return Err(Refusal::Invalid);
        }
        let signature = payload.challenge.signature.ok_or(Refusal::Invalid)?;
        let now = unix_now();
        let mut used = self.used.lock().expect("not poisoned");
        if used.len() >= MAX_REMEMBERED {
            used.retain(|_, expiry| *expiry >= now);
            if used.len() >= MAX_REMEMBERED {
                return Err(Refusal::Replayed);
            }
        }
        if used.insert(signature, expires_at).is_some() {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }
}

/// What the widget does in the browser: finds the answer to a challenge and encodes it as the
/// form's `altcha` field. For tests and load tools (a script pays the same work this way).
pub fn solve(c: &Challenge) -> String {
    let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(c))
        .ok()
        .flatten()
        .expect("a challenge made here has an answer");
    let payload = Payload {
        challenge: c.clone(),
        solution,
    };
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&payload).expect("serialisable"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(c: &Challenge) -> String {
        solve(c)
    }

    #[test]
    fn an_answer_is_accepted_once() {
        let pow = ProofOfWork::new(b"k", 1, 600);
        let a = answer(&pow.challenge());
        assert_eq!(pow.spend(&a), Ok(()));
        assert_eq!(pow.spend(&a), Err(Refusal::Replayed));
    }

    #[test]
    fn changed_foreign_expired_and_malformed_answers_are_refused() {
        let pow = ProofOfWork::new(b"k", 1, 600);
        // Made with another server's key.
        let other = ProofOfWork::new(b"other", 1, 600);
        assert_eq!(
            pow.spend(&answer(&other.challenge())),
            Err(Refusal::Invalid)
        );
        // Expired.
        let old = pow.challenge_expiring_at(unix_now() - 1);
        assert_eq!(pow.spend(&answer(&old)), Err(Refusal::Expired));
        // An easier prefix written in, signature kept.
        let mut easy = pow.challenge();
        easy.parameters.key_prefix = String::new();
        assert_eq!(pow.spend(&answer(&easy)), Err(Refusal::Invalid));
        // A later expiry written in.
        let mut longer = pow.challenge();
        longer.parameters.expires_at = Some(unix_now() + 86_400 * 365);
        assert_eq!(pow.spend(&answer(&longer)), Err(Refusal::Invalid));
        // A wrong counter.
        let c = pow.challenge();
        let mut payload: Payload = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, answer(&c))
                .unwrap(),
        )
        .unwrap();
        payload.solution.counter += 1;
        let wrong = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            serde_json::to_vec(&payload).unwrap(),
        );
        assert_eq!(pow.spend(&wrong), Err(Refusal::Invalid));
        // The widget's test mode, garbage, nothing, too long.
        let test_mode = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            br#"{"challenge":null,"solution":null,"test":true}"#,
        );
        for bad in [
            test_mode.as_str(),
            "%%%",
            "",
            "eyJ9",
            &"A".repeat(MAX_ANSWER + 4),
        ] {
            assert_eq!(pow.spend(bad), Err(Refusal::Missing), "{bad:.40}");
        }
    }
}
