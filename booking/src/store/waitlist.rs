//! Waitlists: a person asks for a place at a service whose times are all taken (the modes and
//! weekdays they can do), confirms by email, and waits. Whenever a seat may have freed (a
//! cancellation, a move, an expired booking, the worker's round for new rules), `offer_seats`
//! gives each free seat to the first person waiting, in the order they confirmed, whose modes
//! and weekdays fit: a pending booking in their name that holds the seat `Limits::waitlist_hold`
//! and whose email offers it (its button is the booking's verification link). Not confirmed in
//! time, the booking expires like any unverified one, the person's place ends ("missed"), and
//! the seat goes to the next.
//!
//! Race-safe by the appointment table's own rules: a seat is one row (two offers of it cannot
//! both commit), and a person holds one active appointment per service (two offers to them
//! cannot both commit). Every limit of a citizen's booking applies to the held booking too.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use sqlx::Row;

use crate::email;
use crate::i18n::Lang;
use crate::model::{Contact, Mode, ModeSet};
use crate::slots::WeekdaySet;
use crate::store::person_key;
use crate::validate::ValidBooking;
use crate::{Actor, Error};

use super::{from_ts, random_id, ts, Store};

/// What a person asks for: a place for `service_id`, in one of `modes`, on one of `weekdays`.
#[derive(Debug, Clone)]
pub struct WaitlistRequest {
    pub service_id: i64,
    /// Names, email and (where the service asks for it) fiscal code, checked by the caller.
    pub contact: Contact,
    pub modes: ModeSet,
    pub weekdays: WeekdaySet,
    /// Only this day (a full day the person wants), when set; the place ends after it.
    pub only_day: Option<NaiveDate>,
    pub language: Lang,
    pub consent_version: Option<String>,
}

/// A place on a waitlist: what was asked for, and where it stands.
#[derive(Debug, Clone)]
pub struct WaitEntry {
    pub id: i64,
    pub request: WaitlistRequest,
    /// unverified, waiting, offered, booked, missed, left, expired.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// The pending booking that holds the seat offered (status "offered").
    pub appointment_id: Option<i64>,
}

fn entry_from(r: &sqlx::any::AnyRow) -> Result<WaitEntry, Error> {
    Ok(WaitEntry {
        id: r.try_get("id")?,
        request: WaitlistRequest {
            service_id: r.try_get("service_id")?,
            contact: Contact {
                given_name: r.try_get("given_name")?,
                family_name: r.try_get("family_name")?,
                email: r.try_get("email")?,
                fiscal_code: r.try_get("fiscal_code")?,
                ..Contact::default()
            },
            modes: ModeSet(r.try_get::<i64, _>("modes")? as u8),
            weekdays: WeekdaySet(r.try_get::<i64, _>("weekdays")? as u8),
            only_day: crate::catalogue::day(r.try_get("only_day")?),
            language: Lang::from_code(&r.try_get::<String, _>("language")?).unwrap_or_default(),
            consent_version: r.try_get("consent_version")?,
        },
        status: r.try_get("status")?,
        created_at: from_ts(r.try_get("created_at")?),
        verified_at: r.try_get::<Option<i64>, _>("verified_at")?.map(from_ts),
        expires_at: from_ts(r.try_get("expires_at")?),
        appointment_id: r.try_get("appointment_id")?,
    })
}

/// The statuses of a place that still counts.
const OPEN: &str = "('unverified', 'waiting', 'offered')";

impl Store {
    /// Puts a person on a service's waitlist, unconfirmed, and queues the email that confirms
    /// it. `Ok(false)` when the person already has a place there (nothing is sent: the page
    /// answers the same). Refused like a booking: an unpublished service, the person's
    /// active appointments at the maximum, too many emails to them in a day.
    pub async fn join_waitlist(
        &self,
        r: &WaitlistRequest,
        town: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let service = self.service(r.service_id).await?;
        let office = self.office(service.office_id).await?;
        if !service.published || service.login_required || office.archived {
            return Err(Error::NotFound("service"));
        }
        if r.modes.0 & service.modes.0 == 0 || r.weekdays.0 == 0 {
            return Err(Error::ModeNotOffered);
        }
        let email_norm = r.contact.email.trim().to_lowercase();
        let person = person_key(&email_norm);
        let id = random_id();
        let mut tx = self.write().await?;
        let sent: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM waitlist_entry WHERE person_key = $1 AND created_at > $2",
        )
        .bind(&person)
        .bind(ts(now - Duration::hours(24)))
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if sent >= self.limits.verifications_per_day {
            return Err(Error::TooManyVerifications(
                self.limits.verifications_per_day,
            ));
        }
        self.below_active_limit(&mut tx, &email_norm).await?;
        let already: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM waitlist_entry WHERE service_id = $1 AND person_key = $2 AND status IN {OPEN}"
        ))
        .bind(service.id)
        .bind(&person)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if already > 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO waitlist_entry (id, service_id, given_name, family_name, email, person_key, fiscal_code, modes, weekdays, language, consent_version, status, created_at, expires_at, only_day) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'unverified', $12, $13, $14)")
            .bind(id)
            .bind(service.id)
            .bind(&r.contact.given_name)
            .bind(&r.contact.family_name)
            .bind(r.contact.email.trim())
            .bind(&person)
            .bind(&r.contact.fiscal_code)
            .bind(i64::from(r.modes.0 & service.modes.0))
            .bind(i64::from(r.weekdays.0))
            .bind(r.language.code())
            .bind(&r.consent_version)
            .bind(ts(now))
            .bind(ts(now + self.limits.verify_within))
            .bind(r.only_day.map(|d| d.to_string()))
            .execute(&mut *tx)
            .await?;
        let mail = email::waitlist_verify(
            r.language,
            r.contact.email.trim(),
            town,
            &service.title,
            &self.links.waitlist_url(id),
        );
        Store::enqueue(&mut tx, None, &mail, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn waitlist_entry(&self, id: i64) -> Result<WaitEntry, Error> {
        let r = self
            .one("SELECT * FROM waitlist_entry WHERE id = $1", id, "waitlist")
            .await?;
        entry_from(&r)
    }

    /// Follows the email's link: the place starts counting (in the order of confirmation) for
    /// `Limits::waitlist_for`, and a seat free already is offered at once. Again: no change.
    pub async fn confirm_waitlist(&self, id: i64, now: DateTime<Utc>) -> Result<WaitEntry, Error> {
        let changed = sqlx::query("UPDATE waitlist_entry SET status = 'waiting', verified_at = $1, expires_at = $2, position = (SELECT COALESCE(MAX(w.position), 0) + 1 FROM waitlist_entry w) WHERE id = $3 AND status = 'unverified' AND expires_at > $1")
            .bind(ts(now))
            .bind(ts(now + self.limits.waitlist_for))
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let e = self.waitlist_entry(id).await?;
        if changed == 0 && e.status == "unverified" {
            return Err(Error::WaitlistClosed);
        }
        if changed == 1 {
            self.offer_seats(now).await?;
        }
        self.waitlist_entry(id).await
    }

    /// The person leaves the list (a seat offered already stays held until its time ends).
    pub async fn leave_waitlist(&self, id: i64) -> Result<(), Error> {
        sqlx::query(&format!(
            "UPDATE waitlist_entry SET status = 'left' WHERE id = $1 AND status IN {OPEN}"
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Who waits for a service (confirmed or not yet), in the order seats go to them.
    pub async fn waitlist_of(&self, service_id: i64) -> Result<Vec<WaitEntry>, Error> {
        sqlx::query(&format!(
            "SELECT * FROM waitlist_entry WHERE service_id = $1 AND status IN {OPEN} ORDER BY CASE WHEN position IS NULL THEN 1 ELSE 0 END, position, id"
        ))
        .bind(service_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(entry_from)
        .collect()
    }

    /// Settles the places whose offer ended (booked, or missed), ends those past their time,
    /// then offers every free seat to the first person waiting whom it fits. Returns how many
    /// seats were offered. Safe to run at the same time in several places (see the module).
    pub async fn offer_seats(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        // Run at every cancellation and every worker pass: with nobody on a waitlist (the usual
        // case) one read, and no write to compete with bookings for the database.
        let open: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM waitlist_entry WHERE status IN {OPEN} LIMIT 1) AS w"
        ))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        if open == 0 {
            return Ok(0);
        }
        sqlx::query("UPDATE waitlist_entry SET status = 'booked' WHERE status = 'offered' AND appointment_id IN (SELECT id FROM appointment WHERE status IN ('confirmed', 'awaiting_approval', 'done', 'no_show'))")
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE waitlist_entry SET status = 'missed' WHERE status = 'offered' AND appointment_id IN (SELECT id FROM appointment WHERE status IN ('expired', 'cancelled', 'refused'))")
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE waitlist_entry SET status = 'expired' WHERE status IN ('unverified', 'waiting') AND (expires_at < $1 OR only_day < $2)")
            .bind(ts(now))
            .bind(now.with_timezone(&self.links.tz).date_naive().to_string())
            .execute(&self.pool)
            .await?;
        // Someone who booked the service by themselves waits no more.
        sqlx::query("UPDATE waitlist_entry SET status = 'booked' WHERE status = 'waiting' AND EXISTS (SELECT 1 FROM appointment a WHERE a.service_id = waitlist_entry.service_id AND a.person_key = waitlist_entry.person_key AND a.seat IS NOT NULL AND a.status <> 'pending')")
            .execute(&self.pool)
            .await?;
        let services: Vec<i64> = sqlx::query(
            "SELECT DISTINCT service_id FROM waitlist_entry WHERE status = 'waiting' ORDER BY service_id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("service_id"))
        .collect::<Result<_, _>>()?;
        let mut offered = 0;
        for service_id in services {
            let service = self.service(service_id).await?;
            let mut free = self.free_slots(&service, now).await?;
            let waiting: Vec<WaitEntry> = sqlx::query("SELECT * FROM waitlist_entry WHERE service_id = $1 AND status = 'waiting' ORDER BY position, id")
                .bind(service_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(entry_from)
                .collect::<Result<_, _>>()?;
            for e in waiting {
                // The first free seat that fits, and the person's first mode it offers.
                while let Some(slot) = free.iter_mut().find(|s| {
                    s.free() > 0
                        && e.request.only_day.is_none_or(|d| d == s.local_day)
                        && e.request.weekdays.contains(s.local_day.weekday())
                        && s.modes.0 & e.request.modes.0 != 0
                }) {
                    let mode = [Mode::InPerson, Mode::Phone, Mode::Video]
                        .into_iter()
                        .find(|m| e.request.modes.contains(*m) && slot.offers(*m))
                        .expect("the masks overlap");
                    let booking = ValidBooking {
                        service_id,
                        start: slot.start,
                        mode,
                        operator_id: None,
                        contact: e.request.contact.clone(),
                        consent_version: None,
                        language: e.request.language,
                        email_verified: false,
                    };
                    let hold = Some(self.limits.waitlist_hold);
                    match self
                        .book_or_hold(&booking, Actor::Citizen, None, hold, now)
                        .await
                    {
                        Ok(a) => {
                            slot.taken += 1;
                            sqlx::query("UPDATE waitlist_entry SET status = 'offered', appointment_id = $1 WHERE id = $2 AND status = 'waiting'")
                                .bind(a.id)
                                .bind(e.id)
                                .execute(&self.pool)
                                .await?;
                            offered += 1;
                            break;
                        }
                        // Taken meanwhile: the next seat.
                        Err(Error::SlotTaken) => slot.taken = slot.capacity,
                        // The person holds one already (an offer made elsewhere a moment
                        // ago, or their own booking), or is at a limit: not now.
                        Err(
                            Error::AlreadyBookedForService
                            | Error::PersonAlreadyBooked
                            | Error::TooManyActive(_)
                            | Error::TooManyUnverified(_)
                            | Error::TooManyVerifications(_)
                            | Error::FiscalCodeRequired
                            | Error::SlotNotBookable
                            | Error::ModeNotOffered,
                        ) => break,
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        Ok(offered)
    }
}
