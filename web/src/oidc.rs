//! Citizens' login through the town's OpenID Connect provider (SPID and CIE reach Sportello
//! this way): the authorization code flow with PKCE, `state` and `nonce`, the ID token's
//! signature, issuer, audience, expiry, nonce and level (`acr`) checked by the `openidconnect`
//! crate, and the person read from the claims the settings name. The provider's discovery
//! document and keys are read at each login's start, kept for its answer (at most `REFRESH`),
//! and read again when a token is signed with a key not among them (the provider rotated its
//! keys).
//!
//! It owns the protocol and nothing else: where a login under way and a session are kept is
//! the store's (`booking::citizens`), the pages are `citizen::login`'s.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use booking::citizens::{Citizen, LoginAttempt};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// How long the provider's discovery document and keys are used before they are read again.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// How long Sportello waits for the provider.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The settings (see `Config::oidc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// `<public_url>/accedi/ritorno`.
    pub redirect: String,
    /// The accepted levels, the first one asked for; empty: any.
    pub acr: Vec<String>,
    pub claims: ClaimNames,
}

/// Which claims carry the person's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub fiscal_code: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The provider could not be reached or answered with an error page: nothing the citizen
    /// did; booking by email still works.
    ProviderDown,
    /// The provider's answer does not belong to a login started here (unknown or replayed
    /// `state`, one too old), or the citizen cancelled at the provider.
    NotThisLogin,
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce, level), or
    /// lacks the fiscal code: never a session from it.
    Refused(String),
    /// A staff login for a person with no enabled account under the email the provider
    /// vouched for (accounts are never made by a login).
    NoAccount,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider, its metadata cached.
pub struct Provider {
    settings: Settings,
    http: reqwest::Client,
    cached: Mutex<Option<(Instant, Client)>>,
}

impl Provider {
    pub fn new(settings: Settings) -> anyhow::Result<Provider> {
        let http = reqwest::Client::builder()
            // Never follow a redirect from the provider's endpoints (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        Ok(Provider {
            settings,
            http,
            cached: Mutex::new(None),
        })
    }

    /// The client, from the cache or the provider's discovery document read again.
    async fn client(&self, fresh: bool) -> Result<Client, Failure> {
        if !fresh {
            if let Some((at, c)) = self.cached.lock().expect("oidc cache").as_ref() {
                if at.elapsed() < REFRESH {
                    return Ok(c.clone());
                }
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| Failure::Refused(format!("issuer: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "identity provider unreachable");
                Failure::ProviderDown
            })?;
        let redirect = RedirectUrl::new(self.settings.redirect.clone())
            .map_err(|e| Failure::Refused(format!("redirect: {e}")))?;
        let c = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        *self.cached.lock().expect("oidc cache") = Some((Instant::now(), c.clone()));
        Ok(c)
    }

    /// Where to send the browser, and what to keep until the provider's answer (under the
    /// returned `state`). The discovery document and keys are read afresh: a provider that is
    /// down is told before the citizen is sent to it, and the keys of the answer are current.
    pub async fn begin(&self, after: &str) -> Result<(String, String, LoginAttempt), Failure> {
        let client = self.client(true).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        if let Some(acr) = self.settings.acr.first() {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, state, nonce) = request.url();
        let attempt = LoginAttempt {
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            after: after.to_string(),
        };
        Ok((url.to_string(), state.secret().clone(), attempt))
    }

    /// Exchanges the code for tokens and checks the ID token; the person it names.
    pub async fn finish(&self, code: &str, attempt: &LoginAttempt) -> Result<Citizen, Failure> {
        let client = self.client(false).await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Failure::Refused(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()));
        let tokens = request.request_async(&self.http).await.map_err(|e| {
            tracing::warn!(error = %e, "identity provider refused the code");
            match e {
                openidconnect::RequestTokenError::ServerResponse(_) => {
                    Failure::Refused("the provider refused the code".into())
                }
                _ => Failure::ProviderDown,
            }
        })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Failure::Refused("no ID token".into()))?;
        let nonce = Nonce::new(attempt.nonce.clone());
        match self.check(&client, id_token, &nonce) {
            // A key not among those cached: the provider may have rotated its keys.
            Err(Failure::Refused(why)) if why.starts_with("signature") => {
                let client = self.client(true).await?;
                self.check(&client, id_token, &nonce)
            }
            other => other,
        }
    }

    fn check(
        &self,
        client: &Client,
        token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<Citizen, Failure> {
        let acr = self.settings.acr.clone();
        let verifier = client.id_token_verifier();
        let claims = token.claims(&verifier, nonce).map_err(|e| {
            let why = match e {
                openidconnect::ClaimsVerificationError::SignatureVerification(e) => {
                    format!("signature: {e}")
                }
                e => e.to_string(),
            };
            Failure::Refused(why)
        })?;
        if !acr.is_empty() {
            let got = claims.auth_context_ref().map(|a| a.as_str().to_string());
            if !got.as_ref().is_some_and(|g| acr.contains(g)) {
                return Err(Failure::Refused(format!("level {got:?} not accepted")));
            }
        }
        let payload = payload(&token.to_string())
            .ok_or_else(|| Failure::Refused("unreadable ID token".into()))?;
        citizen_from(&payload, &self.settings.claims).map_err(Failure::Refused)
    }
}

/// The JSON payload of a compact JWT (already verified by the caller).
fn payload(jwt: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The person named by verified claims: the fiscal code required and checked (SPID's
/// "TINIT-" prefix removed), names and email as given, trimmed, without control characters.
pub fn citizen_from(claims: &serde_json::Value, names: &ClaimNames) -> Result<Citizen, String> {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| {
                s.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_default()
    };
    let raw = text(&names.fiscal_code);
    let code = booking::fiscal::normalise(raw.strip_prefix("TINIT-").unwrap_or(&raw));
    if booking::fiscal::person(&code).is_none() {
        return Err(format!(
            "no valid fiscal code in claim {}",
            names.fiscal_code
        ));
    }
    let email = text(&names.email);
    let email_verified =
        !email.is_empty() && claims.get("email_verified").and_then(|v| v.as_bool()) == Some(true);
    Ok(Citizen {
        fiscal_code: code,
        given_name: text(&names.given_name),
        family_name: text(&names.family_name),
        email,
        email_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> ClaimNames {
        ClaimNames {
            fiscal_code: "https://attributes.eid.gov.it/fiscal_number".into(),
            given_name: "given_name".into(),
            family_name: "family_name".into(),
            email: "email".into(),
        }
    }

    #[test]
    fn the_italian_profile_claims_name_the_person() {
        let c = citizen_from(
            &json!({
                "https://attributes.eid.gov.it/fiscal_number": "TINIT-rssmra80a01h501u",
                "given_name": " Mario ",
                "family_name": "Rossi\u{7}",
                "email": "mario@example.it",
                "email_verified": true,
            }),
            &names(),
        )
        .unwrap();
        assert_eq!(c.fiscal_code, "RSSMRA80A01H501U");
        assert_eq!(c.given_name, "Mario");
        assert_eq!(c.family_name, "Rossi");
        assert!(c.email_verified);
    }

    #[test]
    fn an_email_is_verified_only_when_the_provider_says_so() {
        let mut claims = json!({
            "https://attributes.eid.gov.it/fiscal_number": "RSSMRA80A01H501U",
            "email": "mario@example.it",
        });
        assert!(!citizen_from(&claims, &names()).unwrap().email_verified);
        claims["email_verified"] = json!("true");
        assert!(!citizen_from(&claims, &names()).unwrap().email_verified);
    }

    #[test]
    fn without_a_valid_fiscal_code_there_is_no_login() {
        for bad in [
            json!({}),
            json!({"https://attributes.eid.gov.it/fiscal_number": "RSSMRA80A01H501X"}),
            json!({"https://attributes.eid.gov.it/fiscal_number": 42}),
        ] {
            assert!(citizen_from(&bad, &names()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_payload_is_read_from_a_compact_token() {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"a":1}"#);
        assert_eq!(payload(&format!("x.{body}.y")), Some(json!({"a": 1})));
        assert_eq!(payload("garbage"), None);
    }
}
