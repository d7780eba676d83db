//! Appointments and their life: booked (pending, or confirmed when the office books),
//! verified, awaiting approval and approved, moved, cancelled, expired when never verified; and
//! the seats they hold, from which the free slots are computed.
//!
//! This is the heart of the store: the rules of who may book what and when, and the seat
//! numbers through which the database refuses a slot beyond its capacity (each active
//! appointment holds one seat; a unique index refuses a second holder). Every change that the
//! citizen must hear about queues its email in the same transaction. It owns the `appointment`
//! rows and how they are read (`APPOINTMENT_COLUMNS`, `appointment_from`), which `reminders`
//! and `backoffice` reuse. It reads the catalogue but never changes it, renders emails through
//! `crate::email` but does not know how the outbox stores or sends them, and knows nothing of
//! the office's notes, outcomes or refusals (`backoffice`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{self, Entry as AuditEntry};
use crate::email::{Context, Email, Kind};
use crate::model::{Appointment, Contact, Mode, Office, Service, Status};
use crate::slots::{self, CalendarRules, Slot};
use crate::validate::ValidBooking;
use crate::Error;

use super::{from_ts, person_key, random_id, ts, Backend, Store, Totals};

/// Who made a change: the citizen through their link, or the office.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Citizen,
    Office,
}

impl Actor {
    fn code(self) -> &'static str {
        match self {
            Actor::Citizen => "citizen",
            Actor::Office => "office",
        }
    }
}

/// A booking code that a person can read out on the phone: no 0/O, 1/I/L.
fn booking_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let mut s = String::from("SP-");
    for i in 0..8 {
        if i == 4 {
            s.push('-');
        }
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

pub(super) const APPOINTMENT_COLUMNS: &str = "id, code, office_id, service_id, calendar_id, operator_id, start_at, end_at, mode, status, given_name, family_name, email, phone, fiscal_code, reason, created_at, verify_deadline, sequence, language";

/// The person's columns of an appointment row, which have the names of `Contact`'s fields.
fn contact_from(r: &AnyRow) -> Result<Contact, sqlx::Error> {
    Ok(Contact {
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        fiscal_code: r.try_get("fiscal_code")?,
        reason: r.try_get("reason")?,
    })
}

pub(super) fn appointment_from(r: &AnyRow) -> Result<Appointment, Error> {
    Ok(Appointment {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        office_id: r.try_get("office_id")?,
        service_id: r.try_get("service_id")?,
        calendar_id: r.try_get("calendar_id")?,
        operator_id: r.try_get("operator_id")?,
        start: from_ts(r.try_get("start_at")?),
        end: from_ts(r.try_get("end_at")?),
        mode: Mode::parse(&r.try_get::<String, _>("mode")?).ok_or(Error::Corrupt("mode"))?,
        status: Status::parse(&r.try_get::<String, _>("status")?)
            .ok_or(Error::Corrupt("status"))?,
        contact: contact_from(r)?,
        created_at: from_ts(r.try_get("created_at")?),
        verify_deadline: from_ts(r.try_get("verify_deadline")?),
        sequence: r.try_get("sequence")?,
        language: crate::i18n::Lang::from_code(&r.try_get::<String, _>("language")?)
            .unwrap_or_default(),
    })
}

/// Which unique index a failed insert ran into.
enum Conflict {
    Seat,
    SameService,
    Code,
    Other,
}

fn conflict_of(e: &sqlx::Error) -> Option<Conflict> {
    let db = e.as_database_error()?;
    if !matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
        return None;
    }
    let m = db.message();
    let c = db.constraint().unwrap_or("");
    Some(
        if c.contains("seat") || m.contains("appointment.seat") || m.contains("appointment_seat") {
            Conflict::Seat
        } else if c.contains("one_per_person")
            || m.contains("active_service")
            || m.contains("one_per_person")
        {
            Conflict::SameService
        } else if c.contains("code") || m.contains("appointment.code") {
            Conflict::Code
        } else {
            Conflict::Other
        },
    )
}

/// The lowest seat of `slot` that no active appointment of the calendar holds, as `conn` (the
/// booking's or the move's transaction) sees it; `None` when the slot is full.
async fn free_seat(
    conn: &mut AnyConnection,
    calendar_id: i64,
    slot: &Slot,
) -> Result<Option<i64>, Error> {
    let seats: Vec<i64> = sqlx::query(
        "SELECT seat FROM appointment WHERE calendar_id = $1 AND start_at = $2 AND seat IS NOT NULL",
    )
    .bind(calendar_id)
    .bind(ts(slot.start))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("seat"))
    .collect::<Result<_, _>>()?;
    Ok((0..i64::from(slot.capacity)).find(|s| !seats.contains(s)))
}

impl Store {
    /// Active appointments per slot start in a calendar between two instants.
    pub async fn taken(
        &self,
        calendar_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<DateTime<Utc>, u32>, Error> {
        let rows = sqlx::query(
            "SELECT start_at, COUNT(*) AS n FROM appointment WHERE calendar_id = $1 AND seat IS NOT NULL AND start_at >= $2 AND start_at < $3 GROUP BY start_at",
        )
        .bind(calendar_id)
        .bind(ts(from))
        .bind(ts(to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    from_ts(r.try_get("start_at")?),
                    r.try_get::<i64, _>("n")? as u32,
                ))
            })
            .collect()
    }

    /// The free slots a citizen may book for a service at `now`, restricted to the service's
    /// modes.
    pub async fn free_slots(
        &self,
        service: &Service,
        now: DateTime<Utc>,
    ) -> Result<Vec<Slot>, Error> {
        let rules = self.calendar_rules(service.calendar_id).await?;
        let (first, last) = slots::bookable_days(&rules, now);
        let taken = self
            .taken(
                service.calendar_id,
                now - Duration::days(1),
                now + Duration::days(i64::from(rules.horizon_days) + 2),
            )
            .await?;
        let mut out = slots::free_slots(&rules, &taken, now, first, last);
        out.retain_mut(|s| {
            s.modes = s.modes.intersect(service.modes);
            !s.modes.is_empty()
        });
        Ok(out)
    }

    pub async fn appointment(&self, id: i64) -> Result<Appointment, Error> {
        let row = self
            .one(
                &format!("SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE id = $1"),
                id,
                "appointment",
            )
            .await?;
        appointment_from(&row)
    }

    pub async fn appointment_by_code(&self, code: &str) -> Result<Appointment, Error> {
        let row = self
            .one(
                &format!("SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE code = $1"),
                code.to_uppercase(),
                "appointment",
            )
            .await?;
        appointment_from(&row)
    }

    /// What the emails about `a` need.
    pub(super) fn context<'a>(
        &'a self,
        a: &'a Appointment,
        office: &'a Office,
        service: &'a Service,
        now: DateTime<Utc>,
    ) -> Context<'a> {
        Context {
            appointment: a,
            office,
            service,
            links: &self.links,
            now,
        }
    }

    pub(super) async fn context_parts(&self, a: &Appointment) -> Result<(Office, Service), Error> {
        Ok((
            self.office(a.office_id).await?,
            self.service(a.service_id).await?,
        ))
    }

    /// An appointment the citizen or the office may still cancel or move: active and not over.
    async fn changeable(&self, id: i64, now: DateTime<Utc>) -> Result<Appointment, Error> {
        let a = self.appointment(id).await?;
        if !a.status.is_active() {
            return Err(Error::NotActive(a.status));
        }
        if a.end <= now {
            return Err(Error::AlreadyHappened);
        }
        Ok(a)
    }

    /// A request the office may approve or refuse, with what its email names.
    pub(super) async fn awaiting_approval(
        &self,
        id: i64,
    ) -> Result<(Appointment, Office, Service), Error> {
        let a = self.appointment(id).await?;
        if a.status != Status::AwaitingApproval {
            return Err(Error::NotActive(a.status));
        }
        let (office, service) = self.context_parts(&a).await?;
        Ok((a, office, service))
    }

    /// One guarded change of an appointment, the way every transition of its life is written:
    /// `update` (an UPDATE whose WHERE names the state it leaves) runs in a write transaction;
    /// when it touches no row, someone else changed the appointment meanwhile and the change is
    /// refused with its current status; otherwise `email` (if the citizen must hear of it) is
    /// queued and the audit entry written in the same transaction.
    pub(super) async fn change<'q>(
        &self,
        id: i64,
        update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        email: Option<&Email>,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.write().await?;
        if update.execute(&mut *tx).await?.rows_affected() != 1 {
            drop(tx);
            return Err(Error::NotActive(self.appointment(id).await?.status));
        }
        if let Some(email) = email {
            Self::enqueue(&mut tx, id, email, now).await?;
        }
        audit::insert(&mut tx, audit, Some(id)).await?;
        tx.appointment_changed(id);
        tx.commit().await?;
        Ok(())
    }

    /// Refuses an address that holds `Limits::max_active_per_email` active appointments, as
    /// `conn` (the caller's transaction) sees them.
    pub(super) async fn below_active_limit(
        &self,
        conn: &mut AnyConnection,
        email_norm: &str,
    ) -> Result<(), Error> {
        let active: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM appointment WHERE email_norm = $1 AND seat IS NOT NULL",
        )
        .bind(email_norm)
        .fetch_one(conn)
        .await?
        .try_get("n")?;
        if active >= self.limits.max_active_per_email {
            return Err(Error::TooManyActive(self.limits.max_active_per_email));
        }
        Ok(())
    }

    /// Books a slot: a pending appointment (for the citizen to verify by email) or, when the
    /// office books on someone's behalf or the citizen's identity provider vouched for the
    /// email (`ValidBooking::email_verified`), a confirmed one (or, on a moderated calendar for
    /// the citizen, one awaiting approval). The verification or confirmation email
    /// is queued in the same transaction.
    pub async fn book(
        &self,
        b: &ValidBooking,
        actor: Actor,
        audit: Option<&AuditEntry>,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        self.book_or_hold(b, actor, audit, None, now).await
    }

    /// As `book`; with `hold`, a citizen's pending booking that holds its seat that long (not
    /// the verification window) and whose email offers the seat to a person on the waitlist
    /// (`waitlist`), its button the same verification link.
    pub(super) async fn book_or_hold(
        &self,
        b: &ValidBooking,
        actor: Actor,
        audit: Option<&AuditEntry>,
        hold: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        let service = self.service(b.service_id).await?;
        if actor == Actor::Citizen && !service.published {
            return Err(Error::NotFound("service"));
        }
        if !service.modes.contains(b.mode) {
            return Err(Error::ModeNotOffered);
        }
        let rules = self.calendar_rules(service.calendar_id).await?;
        let slot = match actor {
            Actor::Citizen => {
                slots::bookable(&rules, b.start, now).ok_or(Error::SlotNotBookable)?
            }
            // The office may book today and beyond the horizon, but not in the past.
            Actor::Office => slots::capacity_at(&rules, b.start)
                .filter(|s| s.end > now)
                .ok_or(Error::SlotNotBookable)?,
        };
        if !slot.offers(b.mode) {
            return Err(Error::ModeNotOffered);
        }
        let operators = self.operators_of(service.calendar_id).await?;
        let operator_id = match b.operator_id {
            Some(id) if operators.iter().any(|o| o.id == id) => Some(id),
            Some(_) => return Err(Error::UnknownOperator),
            None => operators.first().map(|o| o.id),
        };
        let office = self.office(service.office_id).await?;
        if office.archived {
            return Err(Error::NotFound("service"));
        }
        let calendar = self.calendar(service.calendar_id).await?;
        // Without an email (the office booked for a caller) there is no person to count or to
        // hold to one appointment per service: a key of its own keeps the indexes satisfied.
        let email_norm = match b.contact.email.trim() {
            "" => format!("-{:016x}", random_id()),
            e => e.to_lowercase(),
        };
        let person = person_key(&email_norm);
        // Who "one active appointment per service" counts: the person by fiscal code where the
        // service asks for it (a parent books for each child with one email), else the email.
        let holder = if service.fiscal_code_required {
            let code = crate::fiscal::normalise(&b.contact.fiscal_code);
            format!(
                "cf:{}",
                crate::fiscal::person(&code).ok_or(Error::FiscalCodeRequired)?
            )
        } else {
            email_norm.clone()
        };
        let same_service = if service.fiscal_code_required {
            Error::PersonAlreadyBooked
        } else {
            Error::AlreadyBookedForService
        };
        let (status, kind) = match actor {
            // Verified already: as if the link in the verification email had been followed.
            Actor::Citizen if b.email_verified && calendar.moderated => {
                (Status::AwaitingApproval, Kind::RequestSent)
            }
            Actor::Citizen if b.email_verified => (Status::Confirmed, Kind::Confirmed),
            Actor::Citizen => (Status::Pending, Kind::Verify),
            Actor::Office => (Status::Confirmed, Kind::Confirmed),
        };
        // A few rounds: another booking may take the seat we saw free, then we try the next.
        for _ in 0..(slot.capacity + 3) {
            let mut tx = self.write().await?;
            // One person's bookings one at a time, so that the counts below hold under
            // concurrency (SQLite's write transactions are serial already).
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(&person)
                    .execute(&mut *tx)
                    .await?;
            }
            // The office may have been archived since the catalogue was read. On PostgreSQL
            // the share lock keeps it from being archived until this booking commits (see
            // `archive_office`).
            let lock = match self.backend {
                Backend::Postgres => " FOR SHARE",
                Backend::Sqlite => "",
            };
            let archived: Option<i64> = sqlx::query(&format!(
                "SELECT archived_at FROM office WHERE id = $1{lock}"
            ))
            .bind(office.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("archived_at")?;
            if archived.is_some() {
                return Err(Error::NotFound("service"));
            }
            self.below_active_limit(&mut tx, &email_norm).await?;
            // Each citizen booking sends a verification email: a stranger's address must not
            // become a way to send the town's mail to someone, nor to hold seats for hours.
            if actor == Actor::Citizen {
                let r = sqlx::query("SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, COUNT(*) AS sent FROM appointment WHERE person_key = $1 AND booked_by = 'citizen' AND created_at > $2")
                    .bind(&person)
                    .bind(ts(now - Duration::hours(24)))
                    .fetch_one(&mut *tx)
                    .await?;
                if r.try_get::<i64, _>("pending")? >= self.limits.max_unverified_per_email {
                    return Err(Error::TooManyUnverified(
                        self.limits.max_unverified_per_email,
                    ));
                }
                if r.try_get::<i64, _>("sent")? >= self.limits.verifications_per_day {
                    return Err(Error::TooManyVerifications(
                        self.limits.verifications_per_day,
                    ));
                }
            }
            let Some(seat) = free_seat(&mut tx, calendar.id, &slot).await? else {
                return Err(Error::SlotTaken);
            };
            let a = Appointment {
                id: random_id(),
                code: booking_code(),
                office_id: office.id,
                service_id: service.id,
                calendar_id: calendar.id,
                operator_id,
                start: slot.start,
                end: slot.end,
                mode: b.mode,
                status,
                contact: b.contact.clone(),
                created_at: now,
                verify_deadline: now + hold.unwrap_or(self.limits.verify_within),
                sequence: 0,
                language: b.language,
            };
            let inserted = sqlx::query(
                "INSERT INTO appointment (id, code, office_id, service_id, calendar_id, operator_id, start_at, end_at, mode, status, seat, active_service, given_name, family_name, email, email_norm, phone, fiscal_code, reason, consent_at, created_at, verify_deadline, verified_at, booked_by, person_key, consent_version, holder, language) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22, $23, $24, $25, $26, $27)",
            )
            .bind(a.id)
            .bind(&a.code)
            .bind(a.office_id)
            .bind(a.service_id)
            .bind(a.calendar_id)
            .bind(a.operator_id)
            .bind(ts(a.start))
            .bind(ts(a.end))
            .bind(a.mode.code())
            .bind(a.status.code())
            .bind(seat)
            .bind(a.service_id)
            .bind(&a.contact.given_name)
            .bind(&a.contact.family_name)
            .bind(&a.contact.email)
            .bind(&email_norm)
            .bind(&a.contact.phone)
            .bind(&a.contact.fiscal_code)
            .bind(&a.contact.reason)
            .bind(ts(now))
            .bind(ts(a.verify_deadline))
            .bind((status != Status::Pending).then_some(ts(now)))
            .bind(actor.code())
            .bind(&person)
            .bind(&b.consent_version)
            .bind(&holder)
            .bind(a.language.code())
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.rollback().await;
                    match conflict_of(&e) {
                        Some(Conflict::Seat) | Some(Conflict::Code) => continue,
                        Some(Conflict::SameService) => return Err(same_service),
                        Some(Conflict::Other) | None => return Err(e.into()),
                    }
                }
            }
            let ctx = self.context(&a, &office, &service, now);
            let email = match kind {
                Kind::Verify if hold.is_some() => ctx.waitlist_offer(),
                Kind::Verify => ctx.verify(),
                Kind::RequestSent => ctx.request_sent(),
                _ => ctx.confirmed(),
            };
            Self::enqueue(&mut tx, a.id, &email, now).await?;
            if let Some(e) = audit {
                audit::insert(&mut tx, e, Some(a.id)).await?;
            }
            match tx.commit().await {
                Ok(()) => {
                    Totals::add(&self.totals().created);
                    if a.status == Status::Confirmed {
                        Totals::add(&self.totals().confirmed);
                    }
                    return Ok(a);
                }
                Err(e) => match conflict_of(&e) {
                    Some(Conflict::Seat) => continue,
                    Some(Conflict::SameService) => return Err(Error::AlreadyBookedForService),
                    _ => return Err(e.into()),
                },
            }
        }
        Err(Error::SlotTaken)
    }

    /// Follows the verification link: a pending appointment becomes confirmed (or awaits the
    /// office's approval on a moderated calendar). Following the link again changes nothing.
    pub async fn verify(&self, id: i64, now: DateTime<Utc>) -> Result<Appointment, Error> {
        let a = self.appointment(id).await?;
        match a.status {
            Status::Pending => {}
            Status::Confirmed | Status::AwaitingApproval => return Ok(a),
            _ => return Err(Error::NotActive(a.status)),
        }
        if now > a.verify_deadline {
            // The worker has not expired it yet; the citizen is too late all the same.
            self.expire(&a, now).await?;
            return Err(Error::NotActive(Status::Expired));
        }
        let calendar = self.calendar(a.calendar_id).await?;
        let status = if calendar.moderated {
            Status::AwaitingApproval
        } else {
            Status::Confirmed
        };
        let (office, service) = self.context_parts(&a).await?;
        let mut tx = self.write().await?;
        let changed = sqlx::query("UPDATE appointment SET status = $1, verified_at = $2 WHERE id = $3 AND status = 'pending'")
            .bind(status.code())
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            tx.appointment_changed(id);
            let a = Appointment {
                status,
                ..a.clone()
            };
            let ctx = self.context(&a, &office, &service, now);
            let email = if calendar.moderated {
                ctx.request_sent()
            } else {
                ctx.confirmed()
            };
            Self::enqueue(&mut tx, a.id, &email, now).await?;
        }
        tx.commit().await?;
        if changed == 1 && status == Status::Confirmed {
            Totals::add(&self.totals().confirmed);
        }
        self.appointment(id).await
    }

    async fn expire(&self, a: &Appointment, now: DateTime<Utc>) -> Result<bool, Error> {
        let mut tx = self.write().await?;
        // The person's data goes with the booking (see `retention`).
        let changed = sqlx::query(&super::retention::expire_sql())
            .bind(ts(now))
            .bind(a.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Nothing is sent: the address was never confirmed, and may not be the booker's.
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Cancels the pending bookings whose verification window has passed, freeing their slots.
    pub async fn expire_unverified(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let rows = sqlx::query(&format!("SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE status = 'pending' AND verify_deadline < $1"))
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await?;
        let mut n = 0;
        for r in &rows {
            if self.expire(&appointment_from(r)?, now).await? {
                n += 1;
            }
        }
        if n > 0 {
            self.seat_freed(now).await;
        }
        Ok(n)
    }

    /// A seat may have freed: it goes to the waitlist at once. The change that freed it stands
    /// whatever happens here (the worker's next round tries again).
    async fn seat_freed(&self, now: DateTime<Utc>) {
        if let Err(e) = self.offer_seats(now).await {
            tracing::warn!(error = %e, "offering freed seats to the waitlist failed; the worker will try again");
        }
    }

    /// Cancels an active appointment and tells the citizen (iCalendar CANCEL).
    pub async fn cancel(
        &self,
        id: i64,
        actor: Actor,
        message: &str,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        let a = self.changeable(id, now).await?;
        let (office, service) = self.context_parts(&a).await?;
        let cancelled = Appointment {
            status: Status::Cancelled,
            sequence: a.sequence + 1,
            ..a.clone()
        };
        // A booking never verified was never confirmed, and its address may not be the booker's:
        // nothing is sent.
        let email = (a.status != Status::Pending).then(|| {
            self.context(&cancelled, &office, &service, now)
                .cancelled(actor == Actor::Office, message)
        });
        let update = sqlx::query("UPDATE appointment SET status = 'cancelled', seat = NULL, active_service = NULL, cancelled_at = $1, cancelled_by = $2, sequence = sequence + 1 WHERE id = $3 AND seat IS NOT NULL")
            .bind(ts(now))
            .bind(actor.code())
            .bind(id);
        self.change(id, update, email.as_ref(), audit, now).await?;
        Totals::add(&self.totals().cancelled);
        self.seat_freed(now).await;
        Ok(cancelled)
    }

    /// Moves an active appointment to another free slot of its calendar, keeping its code, UID
    /// and links, and sends the updated invitation (same UID, higher SEQUENCE).
    #[allow(clippy::too_many_arguments)] // each is a plain fact of the move; a struct would only rename them
    pub async fn reschedule(
        &self,
        id: i64,
        new_start: DateTime<Utc>,
        mode: Option<Mode>,
        actor: Actor,
        message: &str,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        let a = self.changeable(id, now).await?;
        if new_start == a.start {
            return Err(Error::SameSlot);
        }
        let service = self.service(a.service_id).await?;
        let mode = mode.unwrap_or(a.mode);
        if !service.modes.contains(mode) {
            return Err(Error::ModeNotOffered);
        }
        let rules = self.calendar_rules(a.calendar_id).await?;
        let slot = match actor {
            Actor::Citizen => slots::bookable(&rules, new_start, now),
            Actor::Office => slots::capacity_at(&rules, new_start).filter(|s| s.end > now),
        }
        .ok_or(Error::SlotNotBookable)?;
        if !slot.offers(mode) {
            return Err(Error::ModeNotOffered);
        }
        let office = self.office(a.office_id).await?;
        for _ in 0..(slot.capacity + 3) {
            let mut tx = self.write().await?;
            let Some(seat) = free_seat(&mut tx, a.calendar_id, &slot).await? else {
                return Err(Error::SlotTaken);
            };
            let updated = sqlx::query("UPDATE appointment SET start_at = $1, end_at = $2, seat = $3, mode = $4, sequence = sequence + 1, reminder_day_sent = 0, reminder_hour_sent = 0 WHERE id = $5 AND seat IS NOT NULL")
                .bind(ts(slot.start))
                .bind(ts(slot.end))
                .bind(seat)
                .bind(mode.code())
                .bind(id)
                .execute(&mut *tx)
                .await;
            match updated {
                Ok(r) if r.rows_affected() == 1 => {}
                Ok(_) => {
                    drop(tx);
                    return Err(Error::NotActive(self.appointment(id).await?.status));
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    match conflict_of(&e) {
                        Some(Conflict::Seat) => continue,
                        _ => return Err(e.into()),
                    }
                }
            }
            tx.appointment_changed(id);
            let moved = Appointment {
                start: slot.start,
                end: slot.end,
                mode,
                sequence: a.sequence + 1,
                ..a.clone()
            };
            // A pending booking is told again only when it is verified.
            if moved.status != Status::Pending {
                let ctx = self.context(&moved, &office, &service, now);
                Self::enqueue(
                    &mut tx,
                    a.id,
                    &ctx.moved(actor == Actor::Office, message),
                    now,
                )
                .await?;
            }
            audit::insert(&mut tx, audit, Some(a.id)).await?;
            match tx.commit().await {
                Ok(()) => {
                    self.seat_freed(now).await;
                    return Ok(moved);
                }
                Err(e) if matches!(conflict_of(&e), Some(Conflict::Seat)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::SlotTaken)
    }

    /// Approves or refuses an appointment awaiting approval (moderated calendars).
    pub async fn approve(
        &self,
        id: i64,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        let (a, office, service) = self.awaiting_approval(id).await?;
        let a = Appointment {
            status: Status::Confirmed,
            ..a
        };
        let mut email = self.context(&a, &office, &service, now).confirmed();
        email.kind = Kind::Approved;
        // Refused, cancelled or approved by someone else meanwhile: nothing to confirm again.
        let update = sqlx::query("UPDATE appointment SET status = 'confirmed' WHERE id = $1 AND status = 'awaiting_approval'").bind(id);
        self.change(id, update, Some(&email), audit, now).await?;
        Totals::add(&self.totals().confirmed);
        Ok(a)
    }

    /// How many appointments are in each status (for monitoring).
    pub async fn count_by_status(&self) -> Result<Vec<(Status, i64)>, Error> {
        sqlx::query("SELECT status, COUNT(*) AS n FROM appointment GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let status = Status::parse(&r.try_get::<String, _>("status")?)
                    .ok_or(Error::Corrupt("status"))?;
                Ok((status, r.try_get("n")?))
            })
            .collect()
    }

    /// Active appointments per slot, checked against the rules' capacity: the double-booking
    /// audit that tests and the load tool run. Returns the slots over capacity.
    pub async fn overbooked_slots(&self) -> Result<Vec<(i64, DateTime<Utc>, i64)>, Error> {
        let rows = sqlx::query("SELECT calendar_id, start_at, COUNT(*) AS n, COUNT(DISTINCT seat) AS seats FROM appointment WHERE seat IS NOT NULL GROUP BY calendar_id, start_at")
            .fetch_all(&self.pool)
            .await?;
        let mut bad = Vec::new();
        let mut rules_cache: HashMap<i64, CalendarRules> = HashMap::new();
        for r in &rows {
            let cal: i64 = r.try_get("calendar_id")?;
            let start = from_ts(r.try_get("start_at")?);
            let n: i64 = r.try_get("n")?;
            let seats: i64 = r.try_get("seats")?;
            let rules = match rules_cache.entry(cal) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(self.calendar_rules(cal).await?)
                }
            };
            let cap = slots::capacity_at(rules, start).map_or(0, |s| i64::from(s.capacity));
            if n > cap || seats != n {
                bad.push((cal, start, n));
            }
        }
        Ok(bad)
    }
}
