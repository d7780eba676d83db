//! An office's extraordinary closures (a strike, a flood): a day or a range of days, the whole
//! office or one calendar, with a reason. A closure writes a closed calendar exception for each
//! of its days and calendars (labelled with the reason, so that the citizen's week says why) and
//! keeps a row of its own for the office's public notice; deleting it takes its days back.
//!
//! It also lists the active appointments a closure hits and proposes each a free slot of its
//! service, in its mode, outside the closure (`hit_by`), for the console's "move them all" or
//! "cancel them all"; the moves and cancellations themselves are `reschedule` and `cancel`,
//! which send each citizen the email. It knows nothing of HTTP or of who may call it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use sqlx::Row;

use crate::audit::Entry as AuditEntry;
use crate::catalogue::day;
use crate::model::Appointment;
use crate::slots::Slot;
use crate::Error;

use super::appointments::{appointment_from, APPOINTMENT_COLUMNS};
use super::{random_id, ts, Store};

/// The longest closure, in days: beyond that an office changes its calendar instead.
pub const MAX_CLOSURE_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub id: i64,
    pub office_id: i64,
    /// `None`: every calendar of the office.
    pub calendar_id: Option<i64>,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub reason: String,
}

impl Closure {
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.first_day
            .iter_days()
            .take_while(move |d| *d <= self.last_day)
    }
}

/// An appointment a closure hits, with the free slot proposed for it (`None`: no free slot of
/// its service in its mode within the booking horizon).
#[derive(Debug, Clone)]
pub struct Hit {
    pub appointment: Appointment,
    pub proposal: Option<Slot>,
}

fn closure_from(r: &sqlx::any::AnyRow) -> Result<Closure, Error> {
    Ok(Closure {
        id: r.try_get("id")?,
        office_id: r.try_get("office_id")?,
        calendar_id: r.try_get("calendar_id")?,
        first_day: day(r.try_get("first_day")?).ok_or(Error::Corrupt("closure day"))?,
        last_day: day(r.try_get("last_day")?).ok_or(Error::Corrupt("closure day"))?,
        reason: r.try_get("reason")?,
    })
}

impl Store {
    /// Closes the office (or one of its calendars) from `c.first_day` to `c.last_day`: one
    /// closed exception per day and calendar, with the reason, and the closure's own row, in
    /// one transaction with its audit entry. Returns the closure's id.
    pub async fn add_closure(
        &self,
        c: &Closure,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<i64, Error> {
        let span = (c.last_day - c.first_day).num_days();
        if !(0..MAX_CLOSURE_DAYS).contains(&span) {
            return Err(Error::ClosureDays);
        }
        let calendars = match c.calendar_id {
            Some(id) if self.calendars_of(c.office_id).await?.contains(&id) => vec![id],
            Some(_) => return Err(Error::NotFound("calendar")),
            None => self.calendars_of(c.office_id).await?,
        };
        let id = random_id();
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO closure (id, office_id, calendar_id, first_day, last_day, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(c.office_id)
            .bind(c.calendar_id)
            .bind(c.first_day.to_string())
            .bind(c.last_day.to_string())
            .bind(&c.reason)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        for cal in calendars {
            for d in c.days() {
                sqlx::query("INSERT INTO calendar_exception (id, calendar_id, day, label, closed, closure_id) VALUES ($1, $2, $3, $4, 1, $5)")
                    .bind(random_id())
                    .bind(cal)
                    .bind(d.to_string())
                    .bind(&c.reason)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        self.commit_catalogue(tx, audit, id).await?;
        Ok(id)
    }

    pub async fn closure(&self, id: i64) -> Result<Closure, Error> {
        let r = self
            .one("SELECT * FROM closure WHERE id = $1", id, "closure")
            .await?;
        closure_from(&r)
    }

    /// The office's closures that end on `from` or later (every calendar's), soonest first.
    pub async fn closures_of(
        &self,
        office_id: i64,
        from: NaiveDate,
    ) -> Result<Vec<Closure>, Error> {
        sqlx::query(
            "SELECT * FROM closure WHERE office_id = $1 AND last_day >= $2 ORDER BY first_day, id",
        )
        .bind(office_id)
        .bind(from.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(closure_from)
        .collect()
    }

    /// Opens the closure's days again (the appointments moved or cancelled stay so).
    pub async fn delete_closure(&self, id: i64, audit: &AuditEntry) -> Result<(), Error> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM calendar_exception WHERE closure_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if sqlx::query("DELETE FROM closure WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 0
        {
            return Err(Error::NotFound("closure"));
        }
        self.commit_catalogue(tx, audit, id).await
    }

    /// The active appointments on the closure's days (still to come at `now`), in time order,
    /// each with a proposed free slot: the first one of its service that offers its mode, from
    /// what a citizen could book now, each slot's free seats shared out in that order.
    pub async fn hit_by(&self, c: &Closure, now: DateTime<Utc>) -> Result<Vec<Hit>, Error> {
        let tz = self.links.tz;
        let midnight = |d: NaiveDate| {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(from), Some(to)) = (
            midnight(c.first_day),
            midnight(c.last_day + Duration::days(1)),
        ) else {
            return Ok(Vec::new());
        };
        let calendars = match c.calendar_id {
            Some(id) => vec![id],
            None => self.calendars_of(c.office_id).await?,
        };
        let mut hits = Vec::new();
        let mut free: HashMap<i64, Vec<Slot>> = HashMap::new();
        for cal in calendars {
            let rows = sqlx::query(&format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE calendar_id = $1 AND seat IS NOT NULL AND start_at >= $2 AND start_at < $3 AND end_at > $4 ORDER BY start_at, id"
            ))
            .bind(cal)
            .bind(ts(from))
            .bind(ts(to))
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let a = appointment_from(r)?;
                let slots = match free.entry(a.service_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let service = self.service(a.service_id).await?;
                        e.insert(self.free_slots(&service, now).await?)
                    }
                };
                let proposal = slots
                    .iter_mut()
                    .find(|s| s.offers(a.mode) && s.free() > 0)
                    .map(|s| {
                        s.taken += 1;
                        s.clone()
                    });
                hits.push(Hit {
                    appointment: a,
                    proposal,
                });
            }
        }
        hits.sort_by_key(|h| (h.appointment.start, h.appointment.id));
        Ok(hits)
    }
}
