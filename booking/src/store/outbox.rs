//! The outbox table: emails waiting to go out, and what became of them.
//!
//! Every change a citizen must hear about queues its email here inside the change's own
//! transaction, so that a booking is never saved without its email nor an email sent for a
//! booking that was rolled back. This file owns the `outbox` rows: queueing, what is due, sent
//! or failed with its back-off, and reading them back for the developer's mailbox and the tests.
//! It knows an email only once rendered (`crate::email::Email`) and an appointment only by id:
//! no statuses, no catalogue. Delivering is not its job either: that is the mailer,
//! `crate::outbox::Mailer`, which reads from here.

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::email::Email;
use crate::Error;

use super::{from_ts, random_id, ts, Store};

/// An email in the outbox, as the delivery worker and the developer's mailbox see it.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub appointment_id: Option<i64>,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub ics: Option<String>,
    pub ics_method: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

fn message_from(r: &AnyRow) -> Result<OutboxMessage, Error> {
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        appointment_id: r.try_get("appointment_id")?,
        kind: r.try_get("kind")?,
        to: r.try_get("to_addr")?,
        subject: r.try_get("subject")?,
        text: r.try_get("text_body")?,
        html: r.try_get("html_body")?,
        ics: r.try_get("ics")?,
        ics_method: r.try_get("ics_method")?,
        created_at: from_ts(r.try_get("created_at")?),
        attempts: r.try_get("attempts")?,
        sent_at: r.try_get::<Option<i64>, _>("sent_at")?.map(from_ts),
        last_error: r.try_get("last_error")?,
    })
}

impl Store {
    /// Queues `email` about an appointment in the caller's transaction: it is sent only if that
    /// transaction commits. An email without a recipient is not queued.
    pub(super) async fn enqueue(
        tx: &mut Transaction<'static, Any>,
        appointment_id: i64,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if email.to.trim().is_empty() {
            // Booked by the office for someone without an email: the office tells them.
            return Ok(());
        }
        let (method, ics) = match &email.ics {
            Some((m, s)) => (Some(m.as_str().to_string()), Some(s.clone())),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO outbox (id, appointment_id, kind, to_addr, subject, text_body, html_body, ics, ics_method, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $10)",
        )
        .bind(random_id())
        .bind(appointment_id)
        .bind(email.kind.code())
        .bind(&email.to)
        .bind(&email.subject)
        .bind(&email.text)
        .bind(&email.html)
        .bind(ics)
        .bind(method)
        .bind(ts(now))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Emails due for delivery at `now`, oldest first.
    pub async fn due_emails(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, Error> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY created_at, id LIMIT $2")
            .bind(ts(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from).collect()
    }

    pub async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), Error> {
        sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
            .bind(ts(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again (exponential back-off, at most an hour).
    pub async fn mark_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let attempts: i64 = sqlx::query("SELECT attempts FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get("attempts")?;
        let wait = Duration::seconds((5i64 << attempts.min(10)).min(3600));
        let error: String = error.chars().take(500).collect();
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
            .bind(error)
            .bind(ts(now + wait))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest emails, for the developer's mailbox.
    pub async fn mailbox(&self, limit: i64) -> Result<Vec<OutboxMessage>, Error> {
        let rows = sqlx::query("SELECT * FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from).collect()
    }

    pub async fn message(&self, id: i64) -> Result<OutboxMessage, Error> {
        let row = sqlx::query("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("message"))?;
        message_from(&row)
    }

    /// Emails queued for one appointment, oldest first (for tests and the operator's view).
    pub async fn messages_for(&self, appointment_id: i64) -> Result<Vec<OutboxMessage>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM outbox WHERE appointment_id = $1 ORDER BY created_at, attempts",
        )
        .bind(appointment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from).collect()
    }
}
