//! Citizens logged in through the town's identity provider (SPID or CIE over OpenID Connect):
//! the logins under way (the `state` sent to the provider, the nonce its ID token must carry,
//! the PKCE verifier), the sessions, and a person's appointments. It knows nothing of the
//! protocol: the web layer talks to the provider and hands over what it vouched for.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::appointments::{appointment_from, APPOINTMENT_COLUMNS};
use super::{from_ts, ts, Store};
use crate::{Appointment, Error};

/// How long a login may take at the provider.
pub const LOGIN_WITHIN: Duration = Duration::minutes(10);
/// How long a citizen stays logged in.
pub const SESSION_LIFETIME: Duration = Duration::hours(1);

/// What the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    /// In capitals, checked (see `fiscal`).
    pub fiscal_code: String,
    pub given_name: String,
    pub family_name: String,
    /// Possibly empty.
    pub email: String,
    /// The provider says the email is the person's: no verification email is needed.
    pub email_verified: bool,
}

/// A login under way, kept from the redirect to the provider until its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub nonce: String,
    pub verifier: String,
    /// The site's path to go back to.
    pub after: String,
}

fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Keeps a login under way under its `state`; forgets those too old to finish.
    pub async fn start_citizen_login(
        &self,
        state: &str,
        a: &LoginAttempt,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM citizen_login WHERE created_at < $1")
            .bind(ts(now - LOGIN_WITHIN))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO citizen_login (state_hash, nonce, verifier, after_path, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(state))
        .bind(&a.nonce)
        .bind(&a.verifier)
        .bind(&a.after)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The login under way with this `state`, taken once (a replayed answer finds nothing),
    /// and only within `LOGIN_WITHIN`.
    pub async fn take_citizen_login(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LoginAttempt>, Error> {
        let row = sqlx::query(
            "DELETE FROM citizen_login WHERE state_hash = $1 RETURNING nonce, verifier, after_path, created_at",
        )
        .bind(digest(state))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        if from_ts(r.try_get("created_at")?) < now - LOGIN_WITHIN {
            return Ok(None);
        }
        Ok(Some(LoginAttempt {
            nonce: r.try_get("nonce")?,
            verifier: r.try_get("verifier")?,
            after: r.try_get("after_path")?,
        }))
    }

    /// Opens a session for the person and gives the cookie's value (43 random characters).
    pub async fn open_citizen_session(
        &self,
        c: &Citizen,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        sqlx::query("DELETE FROM citizen_session WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        let cookie = crate::token::random_secret();
        sqlx::query(
            "INSERT INTO citizen_session (id_hash, fiscal_code, given_name, family_name, email, email_verified, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(digest(&cookie))
        .bind(&c.fiscal_code)
        .bind(&c.given_name)
        .bind(&c.family_name)
        .bind(&c.email)
        .bind(i64::from(c.email_verified))
        .bind(ts(now))
        .bind(ts(now + SESSION_LIFETIME))
        .execute(&self.pool)
        .await?;
        Ok(cookie)
    }

    /// The person behind a session cookie, while the session lasts.
    pub async fn citizen_session(
        &self,
        cookie: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Citizen>, Error> {
        if cookie.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT fiscal_code, given_name, family_name, email, email_verified FROM citizen_session WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(digest(cookie))
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Citizen {
            fiscal_code: r.try_get("fiscal_code")?,
            given_name: r.try_get("given_name")?,
            family_name: r.try_get("family_name")?,
            email: r.try_get("email")?,
            email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        }))
    }

    /// Logs out: the session is gone.
    pub async fn close_citizen_session(&self, cookie: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM citizen_session WHERE id_hash = $1")
            .bind(digest(cookie))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The person's appointments, the latest first: those booked for their fiscal code (any
    /// omocode form), and, when the provider vouched for their email, those booked with it.
    pub async fn citizen_appointments(&self, c: &Citizen) -> Result<Vec<Appointment>, Error> {
        let person = crate::fiscal::person(&c.fiscal_code).unwrap_or_default();
        let email = if c.email_verified {
            c.email.trim().to_lowercase()
        } else {
            String::new()
        };
        let rows = sqlx::query(&format!(
            "SELECT {APPOINTMENT_COLUMNS} FROM appointment \
             WHERE anonymised_at IS NULL AND (holder = $1 OR fiscal_code = $2 OR ($3 <> '' AND email_norm = $3)) \
             ORDER BY start_at DESC LIMIT 200"
        ))
        .bind(format!("cf:{person}"))
        .bind(&c.fiscal_code)
        .bind(&email)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(appointment_from).collect()
    }
}
