//! Accounts and sessions in the database. A session cookie holds 32 random bytes; the table
//! keeps only their SHA-256, so a copy of the database opens no session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use booking::store::{from_ts, random_id, ts};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::audit::Entry;
use crate::role::{Principal, Role};
use crate::{password, throttle, Error};

/// How long a session lasts from login, whatever happens meanwhile.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

#[derive(Clone)]
pub struct Accounts {
    pool: AnyPool,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub offices: Vec<i64>,
    pub operator_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub offices: Vec<i64>,
    pub operator_id: Option<i64>,
    pub disabled: bool,
    pub locked_until: Option<DateTime<Utc>>,
}

/// What a login attempt comes to. The page says the same thing for an unknown email and a
/// wrong password.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The session cookie's value.
    Welcome {
        cookie: String,
        principal: Principal,
    },
    Refused,
    LockedUntil(DateTime<Utc>),
}

fn digest(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cookie.as_bytes()))
}
pub fn normalize_email(e: &str) -> String {
    e.trim().to_lowercase()
}

impl Accounts {
    pub fn new(pool: AnyPool) -> Self {
        Accounts { pool }
    }

    /// The account's `columns`, or `Error::NotFound`.
    async fn account_row(&self, columns: &str, id: i64) -> Result<AnyRow, Error> {
        sqlx::query(&format!("SELECT {columns} FROM account WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("account"))
    }

    /// Creates an account with a provisional password (changed at first login) and returns its id
    /// and that password.
    pub async fn create(
        &self,
        a: &NewAccount,
        audit: &Entry,
        now: DateTime<Utc>,
    ) -> Result<(i64, String), Error> {
        let email = normalize_email(&a.email);
        if email.is_empty() || !email.contains('@') || a.name.trim().is_empty() {
            return Err(Error::NotFound("email or name"));
        }
        let provisional = password::provisional();
        let hash = password::hash_in_turn(&provisional).await?;
        let id = random_id();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO account (id, email, name, role, password_hash, must_change_password, operator_id, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)")
            .bind(id)
            .bind(&email)
            .bind(a.name.trim())
            .bind(a.role.code())
            .bind(&hash)
            .bind(a.operator_id)
            .bind(ts(now))
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            if e.as_database_error()
                .is_some_and(|d| matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation))
            {
                return Err(Error::DuplicateEmail);
            }
            return Err(e.into());
        }
        for o in &a.offices {
            sqlx::query("INSERT INTO account_office (account_id, office_id) VALUES ($1, $2)")
                .bind(id)
                .bind(o)
                .execute(&mut *tx)
                .await?;
        }
        booking::audit::insert(&mut tx, audit, Some(id)).await?;
        tx.commit().await?;
        Ok((id, provisional))
    }

    /// Changes role, offices, operator and whether the account may log in. Disabling closes its
    /// sessions.
    #[allow(clippy::too_many_arguments)] // the account page's fields, and the audit entry
    pub async fn update(
        &self,
        id: i64,
        name: &str,
        role: Role,
        offices: &[i64],
        operator_id: Option<i64>,
        disabled: bool,
        audit: &Entry,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE account SET name = $1, role = $2, operator_id = $3, disabled = $4 WHERE id = $5")
            .bind(name.trim())
            .bind(role.code())
            .bind(operator_id)
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("account"));
        }
        sqlx::query("DELETE FROM account_office WHERE account_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for o in offices {
            sqlx::query("INSERT INTO account_office (account_id, office_id) VALUES ($1, $2)")
                .bind(id)
                .bind(o)
                .execute(&mut *tx)
                .await?;
        }
        if disabled {
            sqlx::query("DELETE FROM staff_session WHERE account_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        booking::audit::insert(&mut tx, audit, Some(id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the account a new provisional password (the owner forgot theirs) and closes its
    /// sessions; returns that password.
    pub async fn reset_password(&self, id: i64, audit: &Entry) -> Result<String, Error> {
        let provisional = password::provisional();
        let mut tx = self.pool.begin().await?;
        Self::store_password(
            &mut tx,
            id,
            &password::hash_in_turn(&provisional).await?,
            true,
        )
        .await?;
        booking::audit::insert(&mut tx, audit, Some(id)).await?;
        tx.commit().await?;
        Ok(provisional)
    }

    /// The owner's own change: checks the current password and the policy, stores the new one,
    /// and closes every other session.
    pub async fn change_password(
        &self,
        p: &Principal,
        current: &str,
        new: &str,
        keep_session: &str,
        audit: &Entry,
    ) -> Result<(), Error> {
        let row = self.account_row("password_hash", p.account_id).await?;
        let stored: String = row.try_get("password_hash")?;
        if !password::verify_in_turn(current, &stored).await {
            return Err(Error::WeakPassword("wrong_current"));
        }
        password::check_new(new, &p.email)?;
        if new == current {
            return Err(Error::WeakPassword("same_as_before"));
        }
        let hash = password::hash_in_turn(new).await?;
        let mut tx = self.pool.begin().await?;
        Self::store_password(&mut tx, p.account_id, &hash, false).await?;
        sqlx::query("DELETE FROM staff_session WHERE account_id = $1 AND id_hash <> $2")
            .bind(p.account_id)
            .bind(digest(keep_session))
            .execute(&mut *tx)
            .await?;
        booking::audit::insert(&mut tx, audit, Some(p.account_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn store_password(
        conn: &mut sqlx::AnyConnection,
        id: i64,
        hash: &str,
        provisional: bool,
    ) -> Result<(), Error> {
        let n = sqlx::query("UPDATE account SET password_hash = $1, must_change_password = $2, failed_logins = 0, locked_until = NULL WHERE id = $3")
            .bind(hash)
            .bind(i64::from(provisional))
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("account"));
        }
        if provisional {
            sqlx::query("DELETE FROM staff_session WHERE account_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Checks an email and password; on success opens a session.
    pub async fn login(
        &self,
        email: &str,
        pass: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome, Error> {
        let row = sqlx::query("SELECT id, password_hash, disabled, failed_logins, locked_until FROM account WHERE email = $1")
            .bind(normalize_email(email))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            // Same work as for a known account, so timing does not tell which emails exist.
            password::verify_in_turn(pass, password::decoy_hash()).await;
            return Ok(LoginOutcome::Refused);
        };
        let id: i64 = row.try_get("id")?;
        if let Some(until) = row.try_get::<Option<i64>, _>("locked_until")?.map(from_ts) {
            if until > now {
                return Ok(LoginOutcome::LockedUntil(until));
            }
        }
        let hash: String = row.try_get("password_hash")?;
        let disabled = row.try_get::<i64, _>("disabled")? != 0;
        if !password::verify_in_turn(pass, &hash).await || disabled {
            // Counted in the database itself, so that parallel guesses each count; after a
            // quiet day the count starts again.
            let failures: i64 = sqlx::query("UPDATE account SET failed_logins = CASE WHEN last_failed_at IS NULL OR last_failed_at < $1 THEN 1 ELSE failed_logins + 1 END, last_failed_at = $2 WHERE id = $3 RETURNING failed_logins")
                .bind(ts(now - throttle::QUIET))
                .bind(ts(now))
                .bind(id)
                .fetch_one(&self.pool)
                .await?
                .try_get("failed_logins")?;
            let until = throttle::lock_after(failures, now);
            if let Some(u) = until {
                sqlx::query("UPDATE account SET locked_until = $1 WHERE id = $2")
                    .bind(ts(u))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            return Ok(match until {
                Some(u) => LoginOutcome::LockedUntil(u),
                None => LoginOutcome::Refused,
            });
        }
        sqlx::query("UPDATE account SET failed_logins = 0, locked_until = NULL, last_failed_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let (cookie, principal) = self.open_session(id, now).await?;
        Ok(LoginOutcome::Welcome { cookie, principal })
    }

    /// Opens a session, without a password, for the enabled account with this email, which the
    /// town's identity provider (SPID/CIE) vouched for; `None` when no enabled account has it.
    /// Accounts are never made this way.
    pub async fn login_vouched(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, Principal)>, Error> {
        let row = sqlx::query("SELECT id FROM account WHERE email = $1 AND disabled = 0")
            .bind(normalize_email(email))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.open_session(r.try_get("id")?, now).await?)),
            None => Ok(None),
        }
    }

    /// A new session for the account: the cookie's value and who it is.
    async fn open_session(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal), Error> {
        let cookie = booking::token::random_secret();
        sqlx::query("INSERT INTO staff_session (id_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(digest(&cookie))
            .bind(id)
            .bind(ts(now))
            .bind(ts(now + SESSION_LIFETIME))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM staff_session WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        let principal = self.principal(id).await?;
        Ok((cookie, principal))
    }

    /// The person behind a session cookie, if the session is open and the account enabled.
    pub async fn session(
        &self,
        cookie: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>, Error> {
        if cookie.len() != 43 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT s.account_id FROM staff_session s JOIN account a ON a.id = s.account_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND a.disabled = 0")
            .bind(digest(cookie))
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.principal(r.try_get("account_id")?).await?)),
            None => Ok(None),
        }
    }

    pub async fn logout(&self, cookie: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM staff_session WHERE id_hash = $1")
            .bind(digest(cookie))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn principal(&self, id: i64) -> Result<Principal, Error> {
        let r = self
            .account_row(
                "id, email, name, role, operator_id, must_change_password",
                id,
            )
            .await?;
        Ok(Principal {
            account_id: id,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            role: Role::parse(&r.try_get::<String, _>("role")?).ok_or(Error::Corrupt("role"))?,
            offices: self.offices_of(id).await?,
            operator_id: r.try_get("operator_id")?,
            must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        })
    }

    async fn offices_of(&self, id: i64) -> Result<Vec<i64>, Error> {
        sqlx::query("SELECT office_id FROM account_office WHERE account_id = $1 ORDER BY office_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("office_id").map_err(Error::from))
            .collect()
    }

    fn summary(&self, r: &AnyRow, offices: Vec<i64>) -> Result<AccountSummary, Error> {
        Ok(AccountSummary {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            role: Role::parse(&r.try_get::<String, _>("role")?).ok_or(Error::Corrupt("role"))?,
            offices,
            operator_id: r.try_get("operator_id")?,
            disabled: r.try_get::<i64, _>("disabled")? != 0,
            locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(from_ts),
        })
    }

    /// Every account, by name.
    pub async fn list(&self) -> Result<Vec<AccountSummary>, Error> {
        let rows = sqlx::query("SELECT id, email, name, role, operator_id, disabled, locked_until FROM account ORDER BY name, email")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let offices = self.offices_of(r.try_get("id")?).await?;
            out.push(self.summary(r, offices)?);
        }
        Ok(out)
    }

    pub async fn get(&self, id: i64) -> Result<AccountSummary, Error> {
        let r = self
            .account_row(
                "id, email, name, role, operator_id, disabled, locked_until",
                id,
            )
            .await?;
        self.summary(&r, self.offices_of(id).await?)
    }

    pub async fn count(&self) -> Result<i64, Error> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM account")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}
