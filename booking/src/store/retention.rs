//! Retention: a person's data is kept only as long as it serves (GDPR art. 5(1)(e)).
//! - A booking never verified loses the person's data when it expires (`expire`), but for the
//!   normalised address its abuse limits count for a day (`person_key`).
//! - Once a day (`daily_retention`): appointments that ended more than
//!   `Limits::keep_appointments` ago lose the person's data (name, email, phone, fiscal code,
//!   reason, the office's note), keeping what statistics count (office, service, time, mode,
//!   status); the recipients and bodies of emails sent more than `Limits::keep_emails` ago are
//!   deleted; expired bookings a day old lose their address key too.
//!
//! The audit log names things by id only, so it keeps nothing to remove.

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::{ts, Store};
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
