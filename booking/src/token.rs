//! Signed links. A token names one appointment and one purpose and carries an HMAC-SHA256 of
//! both made with the server's secret, so it cannot be guessed or changed: a token made for
//! appointment A does not open appointment B, and a manage token is not a room token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A fresh secret for a cookie or a one-time value: 32 random bytes, base64url (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirm the email address of a pending booking.
    Verify,
    /// See the "check your email" page of a booking just made: what was booked and where the
    /// email went (masked), and nothing that acts on the booking.
    Sent,
    /// See, cancel or reschedule a booking.
    Manage,
    /// Enter the video room as the citizen.
    RoomCitizen,
    /// Enter the video room as the operator.
    RoomOperator,
    /// See, download or erase one's data (a request made with one's email address).
    PersonData,
    /// Confirm, see or leave one's place on a service's waitlist.
    Waitlist,
    /// A room's socket forwarded by another node of the service to the node that holds the
    /// room (several nodes on one database).
    Forward,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::Verify => b'v',
            Purpose::Sent => b's',
            Purpose::Manage => b'm',
            Purpose::RoomCitizen => b'c',
            Purpose::RoomOperator => b'o',
            Purpose::PersonData => b'd',
            Purpose::Waitlist => b'w',
            Purpose::Forward => b'f',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link is for another purpose")]
    WrongPurpose,
}

/// Signs and checks tokens with the server's secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        assert!(
            secret.len() >= 32,
            "the secret key must have at least 32 bytes"
        );
        Signer {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"sportello-token-v1");
        mac.update(body);
        mac
    }

    pub fn sign(&self, purpose: Purpose, appointment_id: i64) -> String {
        let mut body = vec![purpose.byte()];
        body.extend_from_slice(&appointment_id.to_be_bytes());
        let tag = self.mac(&body).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The appointment id a token names, if its signature is right and its purpose is `purpose`.
    /// The signature is compared in constant time.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<i64, TokenError> {
        if token.len() > 128 {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        if body.len() != 9 {
            return Err(TokenError::Malformed);
        }
        self.mac(&body)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if body[0] != purpose.byte() {
            return Err(TokenError::WrongPurpose);
        }
        Ok(i64::from_be_bytes(body[1..9].try_into().expect("9 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(&[7u8; 32])
    }

    #[test]
    fn a_token_round_trips() {
        let s = signer();
        let t = s.sign(Purpose::Manage, 42);
        assert_eq!(s.verify(Purpose::Manage, &t), Ok(42));
    }

    #[test]
    fn a_token_for_one_purpose_does_not_serve_another() {
        let s = signer();
        let t = s.sign(Purpose::RoomCitizen, 42);
        assert_eq!(
            s.verify(Purpose::RoomOperator, &t),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(s.verify(Purpose::Manage, &t), Err(TokenError::WrongPurpose));
    }

    #[test]
    fn a_changed_id_or_another_key_is_refused() {
        let s = signer();
        let t = s.sign(Purpose::Manage, 42);
        let other = s.sign(Purpose::Manage, 43);
        // Body of 43 with the signature of 42.
        let forged = format!(
            "{}.{}",
            other.split('.').next().unwrap(),
            t.split('.').nth(1).unwrap()
        );
        assert_eq!(
            s.verify(Purpose::Manage, &forged),
            Err(TokenError::BadSignature)
        );
        let s2 = Signer::new(&[8u8; 32]);
        assert_eq!(
            s2.verify(Purpose::Manage, &t),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let s = signer();
        for bad in ["", ".", "abc", "a.b.c", "!!!.???", &"x".repeat(500)] {
            assert!(s.verify(Purpose::Manage, bad).is_err(), "{bad}");
        }
    }
}
