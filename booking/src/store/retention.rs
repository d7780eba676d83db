//! Retention: a person's data is kept only as long as it serves (GDPR art. 5(1)(e)).
//! - A booking never verified loses the person's data when it expires (`expire`), but for the
//!   normalised address its abuse limits count for a day (`person_key`).
//! - Once a day (`daily_retention`): appointments that ended more than
//!   `Limits::keep_appointments` ago lose the person's data (name, email, phone, fiscal code,
//!   reason, the office's note), keeping what statistics count (office, service, time, mode,
//!   status); the recipients and bodies of emails sent more than `Limits::keep_emails` ago are
//!   deleted; expired bookings a day old lose their address key too, and requests for one's data
//!   (`request_person_data`) two days old are deleted, as are places on a waitlist two days
//!   after they ended.
//!
//! - At a person's request (GDPR arts. 15 and 17), the office finds the appointments of an email
//!   address or a fiscal code (`find_person`) to export them, or erases them (`erase_person`).
//!
//! The audit log names things by id only, so it keeps nothing to remove.

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::{ts, Store};
use crate::audit::{self, Entry as AuditEntry};
use crate::Error;

/// The columns that hold a person's data, emptied; the keys that named the person replaced by
/// one that names nobody.
const FORGET: &str = "given_name = '', family_name = '', email = '', phone = '', fiscal_code = '', reason = '', note = '', email_norm = '-anon-' || CAST(id AS TEXT), holder = '-anon-' || CAST(id AS TEXT)";

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Appointments whose person's data was removed.
    pub appointments: u64,
    /// Sent emails whose recipient and body were removed.
    pub emails: u64,
}

impl Store {
    /// The daily sweep, once per local day: None when it ran today already (here, on another
    /// node, or before a restart).
    pub async fn daily_retention(&self, now: DateTime<Utc>) -> Result<Option<Swept>, Error> {
        let today = now.with_timezone(&self.links.tz).date_naive().to_string();
        let mut tx = self.write().await?;
        let claimed = sqlx::query(
            "UPDATE setting SET value = $1 WHERE name = 'retention_day' AND value <> $1",
        )
        .bind(&today)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let swept = sweep(
            &mut tx,
            now,
            self.limits.keep_appointments,
            self.limits.keep_emails,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(swept))
    }
}

impl Store {
    /// The appointments, not yet anonymised, of the person with this email address or this
    /// fiscal code (any of its omocode variants), earliest first. Empty values match nothing.
    pub async fn find_person(&self, email: &str, fiscal_code: &str) -> Result<Vec<i64>, Error> {
        let email = email.trim().to_lowercase();
        let code = crate::fiscal::normalise(fiscal_code);
        let holder = crate::fiscal::person(&code)
            .map(|p| format!("cf:{p}"))
            .unwrap_or_default();
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM appointment WHERE anonymised_at IS NULL \
             AND ((email_norm = $1 AND $1 <> '') OR (fiscal_code = $2 AND $2 <> '') OR (holder = $3 AND $3 <> '')) \
             ORDER BY start_at, id",
        )
        .bind(&email)
        .bind(&code)
        .bind(&holder)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A person asks for their data with their email address: when it has appointments, a
    /// request valid a day is stored and the link to it emailed (in `l`, signed by `town`), in
    /// one transaction; an address with none gets nothing (the page says the same either way, so
    /// that nobody learns whose address is known). At most `Limits::verifications_per_day`
    /// requests per person a day.
    pub async fn request_person_data(
        &self,
        email: &str,
        l: crate::i18n::Lang,
        town: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, Error> {
        let email_norm = email.trim().to_lowercase();
        let person = super::person_key(&email_norm);
        let mut tx = self.write().await?;
        let (recent,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM data_request WHERE person_key = $1 AND created_at > $2",
        )
        .bind(&person)
        .bind(ts(now - Duration::hours(24)))
        .fetch_one(&mut *tx)
        .await?;
        if recent >= self.limits.verifications_per_day {
            return Err(Error::TooManyVerifications(
                self.limits.verifications_per_day,
            ));
        }
        let (known,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM appointment WHERE email_norm = $1 AND anonymised_at IS NULL",
        )
        .bind(&email_norm)
        .fetch_one(&mut *tx)
        .await?;
        if known == 0 {
            return Ok(None);
        }
        let id = super::random_id();
        sqlx::query(
            "INSERT INTO data_request (id, email_norm, person_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&email_norm)
        .bind(&person)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let url = self.links.person_data_url(id);
        let mail = crate::email::data_request(l, email.trim(), town, &url);
        Store::enqueue(&mut tx, None, &mail, now).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The email address of a data request still valid at `now` (a day), or None.
    pub async fn person_data_request(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Error> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT email_norm, created_at FROM data_request WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .filter(|(_, at)| *at > ts(now - Duration::hours(24)))
            .map(|(email, _)| email))
    }

    /// Records that a person's data was exported (the entry names how many appointments, never
    /// whose).
    pub async fn record_export(&self, entry: &AuditEntry) -> Result<(), Error> {
        let mut tx = self.write().await?;
        audit::insert(&mut tx, entry, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Erases the person's data from these appointments (`find_person`'s, for `email` and
    /// `fiscal_code`) and deletes their places on waitlists, in one transaction with its audit
    /// entry: appointments still active are cancelled first (no email: the address is what
    /// goes), emails not yet sent are dropped and the sent ones lose recipient and body. Returns
    /// how many appointments were erased (ones anonymised already are left as they are).
    pub async fn erase_person(
        &self,
        ids: &[i64],
        (email, fiscal_code): (&str, &str),
        entry: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let mut tx = self.write().await?;
        let person = match email.trim() {
            "" => String::new(),
            e => super::person_key(e),
        };
        sqlx::query("DELETE FROM waitlist_entry WHERE (person_key = $1 AND $1 <> '') OR (fiscal_code = $2 AND $2 <> '')")
            .bind(&person)
            .bind(crate::fiscal::normalise(fiscal_code))
            .execute(&mut *tx)
            .await?;
        let mut erased = 0;
        for &id in ids {
            erased += sqlx::query(&format!(
                "UPDATE appointment SET \
                 status = CASE WHEN seat IS NOT NULL THEN 'cancelled' ELSE status END, \
                 cancelled_by = CASE WHEN seat IS NOT NULL THEN 'office' ELSE cancelled_by END, \
                 cancelled_at = CASE WHEN seat IS NOT NULL THEN $1 ELSE cancelled_at END, \
                 seat = NULL, active_service = NULL, {FORGET}, \
                 person_key = '-anon-' || CAST(id AS TEXT), anonymised_at = $1 \
                 WHERE id = $2 AND anonymised_at IS NULL"
            ))
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM outbox WHERE appointment_id = $1 AND sent_at IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE outbox SET to_addr = '', text_body = '', html_body = '', ics = NULL WHERE appointment_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        audit::insert(&mut tx, entry, None).await?;
        tx.commit().await?;
        Ok(erased)
    }
}

async fn sweep(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    keep_appointments: Duration,
    keep_emails: Duration,
) -> Result<Swept, Error> {
    let appointments = sqlx::query(&format!(
        "UPDATE appointment SET {FORGET}, person_key = '-anon-' || CAST(id AS TEXT), anonymised_at = $1 \
         WHERE (anonymised_at IS NULL AND end_at < $2) \
            OR (status = 'expired' AND person_key NOT LIKE '-anon-%' AND cancelled_at < $3)"
    ))
    .bind(ts(now))
    .bind(ts(now - keep_appointments))
    .bind(ts(now - Duration::days(1)))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let emails = sqlx::query(
        "UPDATE outbox SET to_addr = '', text_body = '', html_body = '', ics = NULL \
         WHERE sent_at IS NOT NULL AND sent_at < $1 AND (to_addr <> '' OR text_body <> '')",
    )
    .bind(ts(now - keep_emails))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // A data request names an address: kept a day for its link and the daily limit, then gone.
    sqlx::query("DELETE FROM data_request WHERE created_at < $1")
        .bind(ts(now - Duration::days(2)))
        .execute(&mut *conn)
        .await?;
    // A place on a waitlist that ended (booked, missed, left, expired, never confirmed) has
    // served: gone two days after its term (so at most `Limits::waitlist_for` and two days).
    sqlx::query("DELETE FROM waitlist_entry WHERE status NOT IN ('unverified', 'waiting', 'offered') AND expires_at < $1")
        .bind(ts(now - Duration::days(2)))
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM waitlist_entry WHERE status = 'unverified' AND expires_at < $1")
        .bind(ts(now - Duration::days(2)))
        .execute(&mut *conn)
        .await?;
    Ok(Swept {
        appointments,
        emails,
    })
}

/// The update that removes a person's data from one expiring booking (`$1`: now, `$2`: its id),
/// keeping `person_key` for a day (see the module's doc).
pub(super) fn expire_sql() -> String {
    format!(
        "UPDATE appointment SET status = 'expired', seat = NULL, active_service = NULL, \
         cancelled_at = $1, cancelled_by = 'system', {FORGET}, anonymised_at = $1 \
         WHERE id = $2 AND status = 'pending'"
    )
}
