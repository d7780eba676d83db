//! "I lost my email": a person's active appointments sent again, in one email, to the address
//! they were booked with. The answer to the asker is the same whether or not the address has
//! any, and at most `verifications_per_day` lists go to one address a day, so the form tells a
//! stranger nothing and cannot flood an inbox.

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use super::appointments::{appointment_from, APPOINTMENT_COLUMNS};
use super::{ts, Store};
use crate::email::{self, Kind, Listed};
use crate::i18n::Lang;
use crate::Error;

impl Store {
    /// Queues the list of the address's active appointments, if it has any and is under the
    /// day's limit; whether a list was queued (the web layer answers the same either way).
    pub async fn send_bookings_list(
        &self,
        address: &str,
        l: Lang,
        town: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let email_norm = address.trim().to_lowercase();
        let mut tx = self.write().await?;
        let sent: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = $1 AND to_addr = $2 AND created_at > $3",
        )
        .bind(Kind::BookingsList.code())
        .bind(&email_norm)
        .bind(ts(now - Duration::hours(24)))
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if sent >= self.limits.verifications_per_day {
            return Ok(false);
        }
        let rows = sqlx::query(&format!(
            "SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE email_norm = $1 AND seat IS NOT NULL AND end_at > $2 ORDER BY start_at"
        ))
        .bind(&email_norm)
        .bind(ts(now))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let a = appointment_from(r)?;
            let office = self.office(a.office_id).await?;
            let service = self.service(a.service_id).await?;
            items.push(Listed {
                code: a.code.clone(),
                when: l.when(a.start, self.links.tz),
                what: format!("{} - {}", office.name, service.title),
                manage_url: self.links.manage_url(a.id),
            });
        }
        let mail = email::bookings_list(l, &email_norm, town, &items);
        Store::enqueue(&mut tx, None, &mail, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
