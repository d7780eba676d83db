//! Reminders: the emails that go out the day before and the hour before a confirmed
//! appointment, each at most once.
//!
//! It exists because reminders are driven by the clock, not by anyone's action: the worker calls
//! `queue_reminders` every few seconds. It owns the choice of which appointments are due and the
//! `reminder_*_sent` marks that keep each reminder to one; the email is queued in the outbox with
//! the mark, in one transaction. It does not send anything, nor change an appointment's status
//! or time (a moved appointment has its marks reset by `reschedule`).

use chrono::{DateTime, Utc};

use crate::email::Kind;
use crate::Error;

use super::appointments::{appointment_from, APPOINTMENT_COLUMNS};
use super::{ts, Store};

impl Store {
    /// Queues the reminders that are due: the day before and the hour before, each once.
    pub async fn queue_reminders(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut sent = 0;
        for (kind, column, before) in [
            (
                Kind::ReminderDay,
                "reminder_day_sent",
                self.limits.reminder_day,
            ),
            (
                Kind::ReminderHour,
                "reminder_hour_sent",
                self.limits.reminder_hour,
            ),
        ] {
            let rows = sqlx::query(&format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE status = 'confirmed' AND {column} = 0 AND start_at > $1 AND start_at <= $2"
            ))
            .bind(ts(now))
            .bind(ts(now + before))
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let a = appointment_from(r)?;
                // An appointment booked less than an hour before its day-before reminder would be
                // due gets only the hour-before one.
                if kind == Kind::ReminderDay && a.start - now <= self.limits.reminder_hour {
                    continue;
                }
                let (office, service) = self.context_parts(&a).await?;
                let ctx = self.context(&a, &office, &service, now);
                let mut tx = self.write().await?;
                let changed = sqlx::query(&format!(
                    "UPDATE appointment SET {column} = 1 WHERE id = $1 AND {column} = 0"
                ))
                .bind(a.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    Self::enqueue(&mut tx, a.id, &ctx.reminder(kind), now).await?;
                    sent += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(sent)
    }
}
