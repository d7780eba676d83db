//! The STUN/TURN servers handed to the browsers with each room socket's `ready`: the fixed list
//! of `ice_servers`, and, with `turn_secret`, time-limited TURN credentials in the "TURN REST
//! API" form that coturn checks with `use-auth-secret` and `static-auth-secret`:
//!
//! - username: `<expiry, Unix seconds>:<who>`;
//! - credential: base64(HMAC-SHA1(secret, username)).
//!
//! coturn refuses a username whose expiry has passed, so a credential copied out of a page
//! stops working by itself. Neither the secret nor a credential is ever logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

/// The TURN REST credentials' settings.
pub struct TurnRest {
    secret: String,
    urls: Vec<String>,
    ttl: Duration,
}

impl std::fmt::Debug for TurnRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRest")
            .field("secret", &"<hidden>")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TurnRest {
    pub fn new(secret: String, urls: Vec<String>, ttl: Duration) -> anyhow::Result<TurnRest> {
        anyhow::ensure!(
            !secret.is_empty(),
            "--turn-secret must not be empty (coturn's static-auth-secret)"
        );
        anyhow::ensure!(
            !urls.is_empty(),
            "--turn-secret needs --turn-urls (e.g. turn:turn.comune.example.it:3478)"
        );
        for u in &urls {
            anyhow::ensure!(
                ["turn:", "turns:", "stun:"]
                    .iter()
                    .any(|p| u.starts_with(p)),
                "--turn-urls: {u:?} is not a turn:, turns: or stun: URL"
            );
        }
        anyhow::ensure!(ttl.as_secs() > 0, "--turn-ttl-seconds must be positive");
        Ok(TurnRest { secret, urls, ttl })
    }

    /// The ICE server entry for `who`, valid from `now` (Unix seconds, the real clock: coturn
    /// compares with its own) for the TTL, or `at_least` if that is longer.
    pub fn server(&self, who: &str, now: u64, at_least: Duration) -> Value {
        let expiry = now + self.ttl.max(at_least).as_secs();
        let username = username(expiry, who);
        let credential = credential(self.secret.as_bytes(), &username);
        json!({ "urls": self.urls, "username": username, "credential": credential })
    }
}

/// `<expiry>:<who>`, as coturn's `use-auth-secret` reads it (the part before the first `:` is
/// the expiry time).
pub fn username(expiry: u64, who: &str) -> String {
    format!("{expiry}:{who}")
}

/// base64(HMAC-SHA1(secret, username)): the password coturn computes for `username`.
pub fn credential(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What the browsers get: the fixed list, then the TURN entry with fresh credentials.
#[derive(Debug, Default)]
pub struct IceServers {
    pub fixed: Vec<Value>,
    pub turn: Option<TurnRest>,
}

impl IceServers {
    /// The list for one socket of `who` (an appointment and a role), whose room stays open
    /// `open_for` from now.
    pub fn for_socket(&self, who: &str, open_for: Duration) -> Vec<Value> {
        let mut out = self.fixed.clone();
        if let Some(t) = &self.turn {
            // The real clock, not the server's (which tests and demonstrations move).
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            out.push(t.server(who, now, open_for));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_coturns_rest_api_form() {
        // Vector computed independently:
        //   printf %s '1700003600:42-citizen' | openssl dgst -sha1 -hmac 'north-pole-secret' -binary | base64
        assert_eq!(
            credential(b"north-pole-secret", "1700003600:42-citizen"),
            "EMsJR+10z5vHbfwaCxThAKM9qzI="
        );
        let t = TurnRest::new(
            "north-pole-secret".into(),
            vec!["turn:turn.example:3478?transport=udp".into()],
            Duration::from_secs(3600),
        )
        .unwrap();
        let s = t.server("42-citizen", 1_700_000_000, Duration::ZERO);
        assert_eq!(s["username"], "1700003600:42-citizen");
        assert_eq!(s["credential"], "EMsJR+10z5vHbfwaCxThAKM9qzI=");
        assert_eq!(s["urls"][0], "turn:turn.example:3478?transport=udp");
        // A room that stays open longer than the TTL gets credentials that last until it closes.
        let s = t.server("42-citizen", 1_700_000_000, Duration::from_secs(5400));
        assert_eq!(s["username"], "1700005400:42-citizen");
        // The secret never shows in debug output.
        assert!(!format!("{t:?}").contains("north-pole"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let urls = || vec!["turn:t.example:3478".to_string()];
        let ttl = Duration::from_secs(60);
        assert!(TurnRest::new(String::new(), urls(), ttl).is_err());
        assert!(TurnRest::new("s".into(), vec![], ttl).is_err());
        assert!(TurnRest::new("s".into(), vec!["http://t.example".into()], ttl).is_err());
        assert!(TurnRest::new("s".into(), urls(), Duration::ZERO).is_err());
    }

    #[test]
    fn the_fixed_list_comes_first_and_credentials_use_the_real_clock() {
        let ice = IceServers {
            fixed: vec![json!({"urls": ["stun:stun.example:3478"]})],
            turn: Some(
                TurnRest::new(
                    "s".into(),
                    vec!["turn:t.example:3478".into()],
                    Duration::from_secs(600),
                )
                .unwrap(),
            ),
        };
        let list = ice.for_socket("7-operator", Duration::ZERO);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["urls"][0], "stun:stun.example:3478");
        let user = list[1]["username"].as_str().unwrap();
        let (expiry, who) = user.split_once(':').unwrap();
        assert_eq!(who, "7-operator");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            expiry >= now + 590 && expiry <= now + 610,
            "{expiry} vs {now}"
        );
        assert_eq!(list[1]["credential"], credential(b"s", user));
        assert!(IceServers::default()
            .for_socket("x", Duration::ZERO)
            .is_empty());
    }
}
