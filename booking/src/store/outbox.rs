//! The outbox table: emails waiting to go out, and what became of them.
//!
//! Every change a citizen must hear about queues its email here inside the change's own
//! transaction, so that a booking is never saved without its email nor an email sent for a
//! booking that was rolled back. This file owns the `outbox` rows: queueing (which marks the
//! transaction so that its commit wakes the delivery worker through `Store::mail_queued`), what
//! is due, sent or failed with its back-off, and reading them back for the developer's mailbox
//! and the tests.
//! It knows an email only once rendered (`crate::email::Email`) and an appointment only by id:
//! no statuses, no catalogue. Delivering is not its job either: that is the mailer,
//! `crate::outbox::Mailer`, which reads from here.

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::email::Email;
use crate::Error;

use super::{from_ts, random_id, ts, Store, WriteTx};

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
    /// transaction commits, and committing it then wakes the delivery worker (`mail_queued`).
    /// An email without a recipient is not queued.
    pub(super) async fn enqueue(
        tx: &mut WriteTx,
        appointment_id: impl Into<Option<i64>>,
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
            // Its place after the appointment's earlier emails (the transaction that queues it
            // changed the appointment first, so two of them for one appointment run in turn).
            "INSERT INTO outbox (id, appointment_id, kind, to_addr, subject, text_body, html_body, ics, ics_method, created_at, attempts, next_attempt_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $10, (SELECT COALESCE(MAX(o.position), 0) + 1 FROM outbox o WHERE o.appointment_id = $2))",
        )
        .bind(random_id())
        .bind(appointment_id.into())
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
        tx.queued_mail = true;
        Ok(())
    }

    /// Claims up to `limit` emails due at `now`, oldest first, in one transaction: each is this
    /// worker's for `lease` (its next attempt is moved past it), so another worker, another
    /// node, or this one after a crash, sends it only once the lease has run out unsent. A
    /// crash therefore sends again at most the emails that were in flight, with the same
    /// Message-ID.
    ///
    /// An appointment's emails go out in the order they were queued: one waits while an
    /// earlier one of the same appointment is unsent (in flight, or waiting to retry), so a
    /// batch holds at most one email of each appointment.
    pub async fn claim_due_emails(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, Error> {
        loop {
            let mut tx = self.write().await?;
            let rows = sqlx::query("SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.appointment_id = outbox.appointment_id AND e.sent_at IS NULL AND e.position < outbox.position) ORDER BY next_attempt_at, created_at, position, id LIMIT $2")
                .bind(ts(now))
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                let m = message_from(row)?;
                // Another worker (on PostgreSQL) took it since the SELECT: it is skipped.
                let n = sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND sent_at IS NULL AND next_attempt_at <= $3")
                    .bind(ts(now + lease))
                    .bind(m.id)
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    claimed.push(m);
                }
            }
            tx.commit().await?;
            // All taken by others between the two statements: look for the next ones.
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
    }

    /// Emails not sent yet, and how many seconds the oldest of them has waited (for monitoring).
    pub async fn outbox_backlog(&self, now: DateTime<Utc>) -> Result<(i64, i64), Error> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE sent_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = r.try_get("n")?;
        let oldest: Option<i64> = r.try_get("oldest")?;
        Ok((n, oldest.map_or(0, |o| (ts(now) - o).max(0))))
    }

    /// Records how attempts went, in one transaction: a sent email is done; a failed one is
    /// tried again later (exponential back-off, at most an hour).
    pub async fn record_attempts(
        &self,
        attempts: &[(OutboxMessage, Result<(), String>)],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.write().await?;
        for (m, result) in attempts {
            match result {
                Ok(()) => sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
                    .bind(ts(now))
                    .bind(m.id),
                Err(error) => {
                    let wait = Duration::seconds((5i64 << m.attempts.min(10)).min(3600));
                    let error: String = error.chars().take(500).collect();
                    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
                        .bind(error)
                        .bind(ts(now + wait))
                        .bind(m.id)
                }
            }
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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
        let row = self
            .one("SELECT * FROM outbox WHERE id = $1", id, "message")
            .await?;
        message_from(&row)
    }

    /// Emails queued for one appointment, oldest first (for tests and the operator's view).
    pub async fn messages_for(&self, appointment_id: i64) -> Result<Vec<OutboxMessage>, Error> {
        let rows = sqlx::query(
            "SELECT * FROM outbox WHERE appointment_id = $1 ORDER BY position, created_at",
        )
        .bind(appointment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration as StdDuration;

    use chrono::TimeZone;
    use tokio::sync::Notify;
    use tokio::time::timeout;

    use crate::slots::Slot;
    use crate::validate::ValidBooking;
    use crate::{demo, Actor, Service};

    use super::*;

    /// Waits on `signal` as the delivery worker does: registered as a waiter before anything is
    /// queued, so that what wakes it is a `notify_one` made while it waits.
    async fn woken_by(signal: &Notify, act: impl Future<Output = ()>, within: StdDuration) -> bool {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        act.await;
        timeout(within, notified).await.is_ok()
    }

    /// A store on a fresh SQLite file with the demo comune (keep the folder while it is used).
    async fn demo_store() -> (tempfile::TempDir, Store) {
        let (dir, store) = Store::for_test().await;
        demo::seed_if_empty(&store).await.unwrap();
        (dir, store)
    }

    fn booking(service: &Service, slot: &Slot, email: &str) -> ValidBooking {
        ValidBooking {
            service_id: service.id,
            start: slot.start,
            mode: slot.modes.intersect(service.modes).modes()[0],
            operator_id: None,
            contact: crate::Contact {
                given_name: "Maria".into(),
                family_name: "Rossi".into(),
                email: email.into(),
                phone: "+39 333 1234567".into(),
                fiscal_code: "RSSMRA85T10A562S".into(),
                ..Default::default()
            },
            consent_version: None,
            language: crate::i18n::Lang::IT,
            email_verified: false,
        }
    }

    #[tokio::test]
    async fn queueing_an_email_wakes_the_mail_queued_waiter() {
        let (_dir, store) = demo_store().await;
        // A Monday morning; the store takes "now" as an argument, so the day is fixed.
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let mut service_and_slots = None;
        for office in store.offices().await.unwrap() {
            for service in store.services_of(office.id, true).await.unwrap() {
                let free = store.free_slots(&service, now).await.unwrap();
                if free.len() >= 2 && service_and_slots.is_none() {
                    service_and_slots = Some((service, free));
                }
            }
        }
        let (service, free) = service_and_slots.expect("a demo service with free slots");
        let signal = store.mail_queued();

        // A citizen books: the verification email is queued, and the waiter wakes.
        let mut id = 0;
        let woke = woken_by(
            &signal,
            async {
                let b = booking(&service, &free[0], "maria.rossi@example.it");
                id = store.book(&b, Actor::Citizen, None, now).await.unwrap().id;
            },
            StdDuration::from_secs(5),
        )
        .await;
        assert!(woke, "booking queued an email without waking the waiter");
        let queued = store.messages_for(id).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].kind, "verify");

        // The office books for a caller without an email: nothing is queued, nothing wakes.
        let mut id = 0;
        let woke = woken_by(
            &signal,
            async {
                let b = booking(&service, &free[1], "");
                id = store.book(&b, Actor::Office, None, now).await.unwrap().id;
            },
            StdDuration::from_millis(200),
        )
        .await;
        assert!(!woke, "woken though no email was queued");
        assert!(store.messages_for(id).await.unwrap().is_empty());
    }

    /// An appointment's emails leave in the order they were queued, even when queued in the
    /// same second: a later one waits while an earlier one is in flight or waiting to retry.
    #[tokio::test]
    async fn an_appointments_emails_leave_in_order() {
        let (_dir, store) = demo_store().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        // The carta d'identità (Anagrafe, open every working day, no approval).
        let service = store.service(11).await.unwrap();
        let free = store.free_slots(&service, now).await.unwrap();
        let b = booking(&service, &free[0], "maria.rossi@example.it");
        let id = store.book(&b, Actor::Citizen, None, now).await.unwrap().id;
        store.verify(id, now).await.unwrap();
        let entry = crate::audit::Entry::by_command_line("x", "appointment", Some(id), "t", now);
        store
            .cancel(id, Actor::Office, "Chiuso", &entry, now)
            .await
            .unwrap();
        // verify, confirmed, cancelled: all queued at the same second.
        let kinds: Vec<String> = store
            .messages_for(id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(kinds, ["verify", "confirmed", "cancelled"]);
        // A batch as large as a worker asks for still holds one email of the appointment.
        let claim = |store: &Store, at: DateTime<Utc>| {
            let store = store.clone();
            async move {
                let mut batch = store
                    .claim_due_emails(at, Duration::seconds(60), 10)
                    .await
                    .unwrap();
                assert!(batch.len() <= 1, "{batch:?}");
                batch.pop()
            }
        };
        let sent = |store: &Store, m: &OutboxMessage, at: DateTime<Utc>| {
            let (store, m) = (store.clone(), m.clone());
            async move {
                store.record_attempts(&[(m, Ok(()))], at).await.unwrap();
            }
        };
        let first = claim(&store, now).await.unwrap();
        assert_eq!(first.kind, "verify");
        // While it is in flight, the next one of the same appointment waits.
        assert!(claim(&store, now).await.is_none());
        sent(&store, &first, now).await;
        let second = claim(&store, now).await.unwrap();
        assert_eq!(second.kind, "confirmed");
        // It fails: the cancellation still waits for it, through its retry.
        store
            .record_attempts(&[(second.clone(), Err("relay down".into()))], now)
            .await
            .unwrap();
        assert!(claim(&store, now).await.is_none());
        let later = now + Duration::minutes(5);
        let again = claim(&store, later).await.unwrap();
        assert_eq!(again.kind, "confirmed");
        sent(&store, &again, later).await;
        let third = claim(&store, later).await.unwrap();
        assert_eq!(third.kind, "cancelled");
    }
}
