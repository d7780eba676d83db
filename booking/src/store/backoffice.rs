//! What the office does, beside the citizen's path: the agenda, the outcome of an appointment
//! (done, no-show), refusing a request on a moderated calendar (approving it confirms the
//! appointment, so it lives in `appointments`), private notes, statistics' raw rows, and editing
//! the catalogue (offices, services, calendars with their rules, exceptions and operators). Edits never touch appointments: `misfits` lists those that no
//! longer fit the rules, for the office to move or cancel.
//!
//! It exists apart from `appointments` because these are the consoles' needs, not the citizen's
//! path, and grow with them. It owns the office's own columns of an appointment (note, outcome,
//! refusal), the rows behind statistics, and every write to the catalogue tables, dropping the
//! catalogue cache after each. It knows nothing of staff accounts, roles or the audit log
//! (`staff::role` decides who may call what, before the console calls here) and nothing of
//! HTTP. Published at the crate root as `booking::backoffice`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{self, Entry as AuditEntry};
use crate::catalogue::day;
use crate::model::{Appointment, Mode, ModeSet, Office, Service, Status};
use crate::slots::{self, Misfit};
use crate::Error;

use super::appointments::{appointment_from, APPOINTMENT_COLUMNS};
use super::{from_ts, random_id, ts, Store, WriteTx};

/// An appointment as the office's agenda shows it.
#[derive(Debug, Clone)]
pub struct AgendaItem {
    pub appointment: Appointment,
    pub note: String,
    /// "citizen" or "office".
    pub booked_by: String,
    pub cancelled_by: Option<String>,
    /// When the person consented to the processing of their data, and to which version of the
    /// privacy notice (None: booked before versions were kept).
    pub consent: (DateTime<Utc>, Option<String>),
}

/// One appointment, as much as statistics need (no personal data).
#[derive(Debug, Clone)]
pub struct StatRecord {
    pub office: String,
    pub service: String,
    pub status: Status,
    pub mode: Mode,
    /// "citizen", "office" or "system" for cancelled or expired ones.
    pub cancelled_by: Option<String>,
    /// Verified by the citizen, or booked by the office.
    pub verified: bool,
    pub created_at: DateTime<Utc>,
    pub start: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CalendarSettings {
    pub id: i64,
    pub office_id: i64,
    pub name: String,
    pub horizon_days: i64,
    pub min_notice_days: i64,
    pub moderated: bool,
    /// No slots on national holidays and the patron's day (`crate::holidays`).
    pub closed_on_holidays: bool,
}

/// A weekly opening rule as stored (minutes from midnight).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: i64,
    pub weekdays: u8,
    pub start_minute: i64,
    pub end_minute: i64,
    pub slot_minutes: i64,
    pub buffer_minutes: i64,
    pub capacity: i64,
    pub modes: ModeSet,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

/// A closed day, or special hours that replace the weekly rules that day.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRow {
    pub id: i64,
    pub day: NaiveDate,
    pub label: String,
    /// `None`: closed all day.
    pub hours: Option<(i64, i64)>,
}

#[derive(Debug, Clone)]
pub struct OperatorRow {
    pub id: i64,
    pub office_id: i64,
    pub name: String,
    pub email: String,
}

fn in_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "NULL".to_string()
    } else {
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    }
}

/// An agenda row: the appointment's columns, then `note`, `booked_by` and `cancelled_by`.
fn agenda_item_from(r: &AnyRow) -> Result<AgendaItem, Error> {
    Ok(AgendaItem {
        appointment: appointment_from(r)?,
        note: r.try_get("note")?,
        booked_by: r.try_get("booked_by")?,
        cancelled_by: r.try_get("cancelled_by")?,
        consent: (
            from_ts(r.try_get("consent_at")?),
            r.try_get("consent_version")?,
        ),
    })
}

impl Store {
    /// Appointments starting in `[from, to)`, in the given offices (all when `None`), optionally
    /// of one operator, earliest first. Expired bookings (never verified) are left out.
    pub async fn agenda(
        &self,
        offices: Option<&[i64]>,
        operator: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AgendaItem>, Error> {
        let mut sql = format!(
            "SELECT {APPOINTMENT_COLUMNS}, note, booked_by, cancelled_by, consent_at, consent_version FROM appointment WHERE start_at >= $1 AND start_at < $2 AND status <> 'expired'"
        );
        if let Some(ids) = offices {
            sql.push_str(&format!(" AND office_id IN ({})", in_list(ids)));
        }
        if operator.is_some() {
            sql.push_str(" AND operator_id = $3");
        }
        sql.push_str(" ORDER BY start_at, family_name");
        let mut q = sqlx::query(&sql).bind(ts(from)).bind(ts(to));
        if let Some(op) = operator {
            q = q.bind(op);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(agenda_item_from)
            .collect()
    }

    pub async fn agenda_item(&self, id: i64) -> Result<AgendaItem, Error> {
        let r = self.one(&format!("SELECT {APPOINTMENT_COLUMNS}, note, booked_by, cancelled_by, consent_at, consent_version FROM appointment WHERE id = $1"), id, "appointment").await?;
        agenda_item_from(&r)
    }

    /// Records how a confirmed appointment went: done or no-show. Only once it has started; it
    /// frees the person's place for the service (they may book it again).
    pub async fn set_outcome(
        &self,
        id: i64,
        outcome: Status,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        if !matches!(outcome, Status::Done | Status::NoShow) {
            return Err(Error::NotActive(outcome));
        }
        let a = self.appointment(id).await?;
        if a.status != Status::Confirmed {
            return Err(Error::NotActive(a.status));
        }
        if a.start > now {
            return Err(Error::NotYet);
        }
        let update = sqlx::query("UPDATE appointment SET status = $1, seat = NULL, active_service = NULL, outcome_at = $2 WHERE id = $3 AND status = 'confirmed'")
            .bind(outcome.code())
            .bind(ts(now))
            .bind(id);
        self.change(id, update, None, audit, now).await?;
        Ok(Appointment {
            status: outcome,
            ..a
        })
    }

    /// Refuses a request awaiting approval: the slot is freed and the citizen told why.
    pub async fn refuse(
        &self,
        id: i64,
        message: &str,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<Appointment, Error> {
        let (a, office, service) = self.awaiting_approval(id).await?;
        let a = Appointment {
            status: Status::Refused,
            ..a
        };
        let email = self.context(&a, &office, &service, now).refused(message);
        let update = sqlx::query("UPDATE appointment SET status = 'refused', seat = NULL, active_service = NULL, cancelled_at = $1, cancelled_by = 'office' WHERE id = $2 AND status = 'awaiting_approval'")
            .bind(ts(now))
            .bind(id);
        self.change(id, update, Some(&email), audit, now).await?;
        Ok(a)
    }

    /// The office's private note on an appointment (never shown to the citizen).
    pub async fn set_note(&self, id: i64, note: &str, audit: &AuditEntry) -> Result<(), Error> {
        let mut tx = self.write().await?;
        let n = sqlx::query("UPDATE appointment SET note = $1 WHERE id = $2")
            .bind(note)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("appointment"));
        }
        audit::insert(&mut tx, audit, Some(id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Statistics' rows: appointments starting in `[from, to)` (expired ones included: they
    /// were booked).
    pub async fn stat_records(
        &self,
        offices: Option<&[i64]>,
        service: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatRecord>, Error> {
        let mut sql = String::from("SELECT a.status, a.mode, a.cancelled_by, a.verified_at, a.created_at, a.start_at, o.name AS office_name, s.title AS service_title FROM appointment a JOIN office o ON o.id = a.office_id JOIN service s ON s.id = a.service_id WHERE a.start_at >= $1 AND a.start_at < $2");
        if let Some(ids) = offices {
            sql.push_str(&format!(" AND a.office_id IN ({})", in_list(ids)));
        }
        if service.is_some() {
            sql.push_str(" AND a.service_id = $3");
        }
        let mut q = sqlx::query(&sql).bind(ts(from)).bind(ts(to));
        if let Some(s) = service {
            q = q.bind(s);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let status = Status::parse(&r.try_get::<String, _>("status")?)
                    .ok_or(Error::Corrupt("status"))?;
                Ok(StatRecord {
                    office: r.try_get("office_name")?,
                    service: r.try_get("service_title")?,
                    status,
                    mode: Mode::parse(&r.try_get::<String, _>("mode")?)
                        .ok_or(Error::Corrupt("mode"))?,
                    cancelled_by: r.try_get("cancelled_by")?,
                    verified: r.try_get::<Option<i64>, _>("verified_at")?.is_some()
                        && status != Status::Refused,
                    created_at: from_ts(r.try_get("created_at")?),
                    start: from_ts(r.try_get("start_at")?),
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ catalogue editing

    /// Creates an office (`id` None) or changes one; returns its id. Of `o`, the id and the
    /// archive mark are not read: they are `id`'s and `archive_office`'s.
    pub async fn save_office(
        &self,
        id: Option<i64>,
        o: &Office,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let target = id.unwrap_or_else(random_id);
        let write = match id {
            Some(id) => sqlx::query("UPDATE office SET name = $1, department = $2, email = $3, phone = $4, address = $5, hours_text = $6 WHERE id = $7")
                .bind(&o.name).bind(&o.department).bind(&o.email).bind(&o.phone).bind(&o.address).bind(&o.hours_text).bind(id),
            None => sqlx::query("INSERT INTO office (id, name, department, email, phone, address, hours_text, position) VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(position), 0) + 1 FROM office))")
                .bind(target).bind(&o.name).bind(&o.department).bind(&o.email).bind(&o.phone).bind(&o.address).bind(&o.hours_text),
        };
        self.write_catalogue("office", target, write, audit).await
    }

    /// The active appointments of an office that have not ended at `now`, soonest first: while
    /// there are any, the office cannot be archived.
    pub async fn appointments_to_come(
        &self,
        office_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, Error> {
        sqlx::query(&format!(
            "SELECT {APPOINTMENT_COLUMNS} FROM appointment WHERE office_id = $1 AND seat IS NOT NULL AND end_at > $2 ORDER BY start_at, id"
        ))
        .bind(office_id)
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(appointment_from)
        .collect()
    }

    /// Archives an office: citizens no longer see it nor book it, and the console's lists leave
    /// it out, while its appointments, statistics and audit entries stay (they name it). Refused
    /// with `Error::OfficeInUse` while it has active appointments that have not ended.
    ///
    /// The office's row is updated first, then its appointments counted: on PostgreSQL a
    /// booking holds a share lock on that row from its check to its commit (see `book`), so
    /// either the booking commits first and is counted here, or it waits and then sees the
    /// office archived. SQLite's write transactions are serial anyway.
    pub async fn archive_office(
        &self,
        id: i64,
        audit: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.write().await?;
        let n =
            sqlx::query("UPDATE office SET archived_at = $1 WHERE id = $2 AND archived_at IS NULL")
                .bind(ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("office"));
        }
        let to_come: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM appointment WHERE office_id = $1 AND seat IS NOT NULL AND end_at > $2",
        )
        .bind(id)
        .bind(ts(now))
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if to_come > 0 {
            tx.rollback().await?;
            return Err(Error::OfficeInUse(to_come));
        }
        self.commit_catalogue(tx, audit, id).await
    }

    /// Puts an archived office back in service, as it was.
    pub async fn restore_office(&self, id: i64, audit: &AuditEntry) -> Result<(), Error> {
        let write = sqlx::query(
            "UPDATE office SET archived_at = NULL WHERE id = $1 AND archived_at IS NOT NULL",
        )
        .bind(id);
        self.write_catalogue("office", id, write, audit).await?;
        Ok(())
    }

    /// Creates a service (`id` None) or changes one; its calendar must belong to its office.
    /// Of `s`, the id is not read: it is `id`'s.
    pub async fn save_service(
        &self,
        id: Option<i64>,
        s: &Service,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let cal = self.calendar_settings(s.calendar_id).await?;
        if cal.office_id != s.office_id {
            return Err(Error::NotFound("calendar"));
        }
        let target = id.unwrap_or_else(random_id);
        let write = match id {
            Some(id) => sqlx::query("UPDATE service SET calendar_id = $1, title = $2, description = $3, max_minutes = $4, instructions = $5, documents = $6, modes = $7, published = $8, fiscal_code_required = $11, login_required = $12 WHERE id = $9 AND office_id = $10")
                .bind(s.calendar_id).bind(&s.title).bind(&s.description).bind(s.max_minutes).bind(&s.instructions).bind(&s.documents).bind(i64::from(s.modes.0)).bind(i64::from(s.published)).bind(id).bind(s.office_id).bind(i64::from(s.fiscal_code_required)).bind(i64::from(s.login_required)),
            None => sqlx::query("INSERT INTO service (id, office_id, calendar_id, title, description, max_minutes, instructions, documents, modes, published, position, fiscal_code_required, login_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT COALESCE(MAX(position), 0) + 1 FROM service), $11, $12)")
                .bind(target).bind(s.office_id).bind(s.calendar_id).bind(&s.title).bind(&s.description).bind(s.max_minutes).bind(&s.instructions).bind(&s.documents).bind(i64::from(s.modes.0)).bind(i64::from(s.published)).bind(i64::from(s.fiscal_code_required)).bind(i64::from(s.login_required)),
        };
        self.write_catalogue("service", target, write, audit).await
    }

    pub async fn calendar_settings(&self, id: i64) -> Result<CalendarSettings, Error> {
        let r = self.one("SELECT id, office_id, name, horizon_days, min_notice_days, moderated, closed_on_holidays FROM calendar WHERE id = $1", id, "calendar").await?;
        Ok(CalendarSettings {
            id,
            office_id: r.try_get("office_id")?,
            name: r.try_get("name")?,
            horizon_days: r.try_get("horizon_days")?,
            min_notice_days: r.try_get("min_notice_days")?,
            moderated: r.try_get::<i64, _>("moderated")? != 0,
            closed_on_holidays: r.try_get::<i64, _>("closed_on_holidays")? != 0,
        })
    }

    pub async fn calendars_settings_of(
        &self,
        office_id: i64,
    ) -> Result<Vec<CalendarSettings>, Error> {
        let mut out = Vec::new();
        for id in self.calendars_of(office_id).await? {
            out.push(self.calendar_settings(id).await?);
        }
        Ok(out)
    }

    /// Creates a calendar (`c.id` 0) or changes one's name, horizon, notice, moderation and
    /// holidays.
    pub async fn save_calendar(
        &self,
        c: &CalendarSettings,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let (target, write) = if c.id == 0 {
            let id = random_id();
            (id, sqlx::query("INSERT INTO calendar (id, office_id, name, horizon_days, min_notice_days, moderated, closed_on_holidays) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(id).bind(c.office_id).bind(&c.name).bind(c.horizon_days).bind(c.min_notice_days).bind(i64::from(c.moderated)).bind(i64::from(c.closed_on_holidays)))
        } else {
            (c.id, sqlx::query("UPDATE calendar SET name = $1, horizon_days = $2, min_notice_days = $3, moderated = $4, closed_on_holidays = $7 WHERE id = $5 AND office_id = $6")
                .bind(&c.name).bind(c.horizon_days).bind(c.min_notice_days).bind(i64::from(c.moderated)).bind(c.id).bind(c.office_id).bind(i64::from(c.closed_on_holidays)))
        };
        self.write_catalogue("calendar", target, write, audit).await
    }

    pub async fn rules_of(&self, calendar_id: i64) -> Result<Vec<RuleRow>, Error> {
        sqlx::query("SELECT * FROM opening_rule WHERE calendar_id = $1 ORDER BY weekdays DESC, start_minute, id")
            .bind(calendar_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(RuleRow {
                    id: r.try_get("id")?,
                    weekdays: r.try_get::<i64, _>("weekdays")? as u8,
                    start_minute: r.try_get("start_minute")?,
                    end_minute: r.try_get("end_minute")?,
                    slot_minutes: r.try_get("slot_minutes")?,
                    buffer_minutes: r.try_get("buffer_minutes")?,
                    capacity: r.try_get("capacity")?,
                    modes: ModeSet(r.try_get::<i64, _>("modes")? as u8),
                    valid_from: day(r.try_get("valid_from")?),
                    valid_to: day(r.try_get("valid_to")?),
                })
            })
            .collect()
    }

    pub async fn add_rule(
        &self,
        calendar_id: i64,
        r: &RuleRow,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let id = random_id();
        let write = sqlx::query("INSERT INTO opening_rule (id, calendar_id, weekdays, start_minute, end_minute, slot_minutes, buffer_minutes, capacity, modes, valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(id).bind(calendar_id).bind(i64::from(r.weekdays)).bind(r.start_minute).bind(r.end_minute).bind(r.slot_minutes).bind(r.buffer_minutes).bind(r.capacity).bind(i64::from(r.modes.0))
            .bind(r.valid_from.map(|d| d.to_string())).bind(r.valid_to.map(|d| d.to_string()));
        self.write_catalogue("rule", id, write, audit).await
    }

    /// One change to the catalogue: `write` runs in a write transaction (a change that touches
    /// no row is refused as `what` not found), its audit entry (naming `target`) commits with
    /// it, then the cached catalogue is dropped so that citizens see the change at once.
    async fn write_catalogue<'q>(
        &self,
        what: &'static str,
        target: i64,
        write: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let mut tx = self.write().await?;
        if write.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(Error::NotFound(what));
        }
        self.commit_catalogue(tx, audit, target).await?;
        Ok(target)
    }

    /// Ends a change to the catalogue: its audit entry and the change commit together, then the
    /// cached catalogue is dropped so that citizens see the change at once.
    /// Tells the other processes on the same PostgreSQL database that the catalogue changed
    /// (delivered when `conn`'s transaction commits; at once outside one). Nothing on SQLite,
    /// which one process owns.
    async fn announce_catalogue_change(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::events::CATALOGUE)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn commit_catalogue(
        &self,
        mut tx: WriteTx,
        audit: &AuditEntry,
        target: i64,
    ) -> Result<(), Error> {
        audit::insert(&mut tx, audit, Some(target)).await?;
        self.announce_catalogue_change(&mut tx).await?;
        tx.commit().await?;
        self.invalidate_catalogue();
        Ok(())
    }

    pub async fn delete_rule(
        &self,
        calendar_id: i64,
        rule_id: i64,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        self.delete_of_calendar("opening_rule", "rule", calendar_id, rule_id, audit)
            .await
    }

    /// Deletes a row of a calendar's rules or exceptions; another calendar's row is not found.
    async fn delete_of_calendar(
        &self,
        table: &'static str,
        what: &'static str,
        calendar_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        let query = format!("DELETE FROM {table} WHERE id = $1 AND calendar_id = $2");
        let write = sqlx::query(&query).bind(id).bind(calendar_id);
        self.write_catalogue(what, calendar_id, write, audit)
            .await?;
        Ok(())
    }

    pub async fn exceptions_of(&self, calendar_id: i64) -> Result<Vec<ExceptionRow>, Error> {
        sqlx::query("SELECT id, day, label, closed, start_minute, end_minute FROM calendar_exception WHERE calendar_id = $1 ORDER BY day")
            .bind(calendar_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let closed = r.try_get::<i64, _>("closed")? != 0;
                Ok(ExceptionRow {
                    id: r.try_get("id")?,
                    day: day(r.try_get("day")?).ok_or(Error::Corrupt("exception day"))?,
                    label: r.try_get("label")?,
                    hours: if closed {
                        None
                    } else {
                        Some((
                            r.try_get::<Option<i64>, _>("start_minute")?.unwrap_or(0),
                            r.try_get::<Option<i64>, _>("end_minute")?.unwrap_or(0),
                        ))
                    },
                })
            })
            .collect()
    }

    /// Adds a closed day or special hours (slot length, capacity and modes of the calendar's
    /// first rule, or 30 minutes, 1, all modes).
    pub async fn add_exception(
        &self,
        calendar_id: i64,
        e: &ExceptionRow,
        audit: &AuditEntry,
    ) -> Result<i64, Error> {
        let first = self.rules_of(calendar_id).await?.into_iter().next();
        let id = random_id();
        let (closed, start, end) = match e.hours {
            None => (1, None, None),
            Some((s, t)) => (0, Some(s), Some(t)),
        };
        let write = sqlx::query("INSERT INTO calendar_exception (id, calendar_id, day, label, closed, start_minute, end_minute, slot_minutes, buffer_minutes, capacity, modes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(id).bind(calendar_id).bind(e.day.to_string()).bind(&e.label).bind(closed).bind(start).bind(end)
            .bind(first.as_ref().map_or(30, |r| r.slot_minutes))
            .bind(first.as_ref().map_or(0, |r| r.buffer_minutes))
            .bind(first.as_ref().map_or(1, |r| r.capacity))
            .bind(first.as_ref().map_or(7, |r| i64::from(r.modes.0)));
        self.write_catalogue("exception", id, write, audit).await
    }

    pub async fn delete_exception(
        &self,
        calendar_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        self.delete_of_calendar("calendar_exception", "exception", calendar_id, id, audit)
            .await
    }

    pub async fn office_operators(&self, office_id: i64) -> Result<Vec<OperatorRow>, Error> {
        sqlx::query(
            "SELECT id, office_id, name, email FROM operator WHERE office_id = $1 ORDER BY name",
        )
        .bind(office_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(OperatorRow {
                id: r.try_get("id")?,
                office_id: r.try_get("office_id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
            })
        })
        .collect()
    }

    /// The booking-side operator of an office with this email, created if missing.
    pub async fn ensure_operator(
        &self,
        office_id: i64,
        name: &str,
        email: &str,
    ) -> Result<i64, Error> {
        let found =
            sqlx::query("SELECT id FROM operator WHERE office_id = $1 AND LOWER(email) = $2")
                .bind(office_id)
                .bind(email.trim().to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        if let Some(r) = found {
            return Ok(r.try_get("id")?);
        }
        let id = random_id();
        sqlx::query("INSERT INTO operator (id, office_id, name, email) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(office_id)
            .bind(name.trim())
            .bind(email.trim().to_lowercase())
            .execute(&self.pool)
            .await?;
        self.announce_catalogue_change(&mut *self.pool.acquire().await?)
            .await?;
        self.invalidate_catalogue();
        Ok(id)
    }

    /// Which of the office's operators serve a calendar, in the order given (the first is the
    /// one proposed to citizens).
    pub async fn set_calendar_operators(
        &self,
        calendar_id: i64,
        operators: &[i64],
        audit: &AuditEntry,
    ) -> Result<(), Error> {
        let cal = self.calendar_settings(calendar_id).await?;
        let valid: Vec<i64> = self
            .office_operators(cal.office_id)
            .await?
            .iter()
            .map(|o| o.id)
            .collect();
        if operators.iter().any(|o| !valid.contains(o)) {
            return Err(Error::UnknownOperator);
        }
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM calendar_operator WHERE calendar_id = $1")
            .bind(calendar_id)
            .execute(&mut *tx)
            .await?;
        for (i, o) in operators.iter().enumerate() {
            add_calendar_operator(&mut tx, calendar_id, *o, i).await?;
        }
        self.commit_catalogue(tx, audit, calendar_id).await?;
        Ok(())
    }

    /// Active appointments from `now` on that the calendar's current rules no longer allow:
    /// no such slot any more, the mode no longer offered, or more people than the capacity.
    pub async fn misfits(
        &self,
        calendar_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Appointment, Misfit)>, Error> {
        self.invalidate_catalogue();
        let rules = self.calendar_rules(calendar_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {APPOINTMENT_COLUMNS}, seat FROM appointment WHERE calendar_id = $1 AND seat IS NOT NULL AND end_at > $2 ORDER BY start_at"
        ))
        .bind(calendar_id)
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let a = appointment_from(r)?;
            let seat: i64 = r.try_get("seat")?;
            if let Some(m) = slots::misfit(&rules, a.start, a.mode, seat) {
                out.push((a, m));
            }
        }
        Ok(out)
    }
}

/// Puts operator `operator_id` at `position` in the calendar's list of operators (the order in
/// which bookings are given to them).
pub(crate) async fn add_calendar_operator(
    conn: &mut sqlx::AnyConnection,
    calendar_id: i64,
    operator_id: i64,
    position: usize,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO calendar_operator (calendar_id, operator_id, position) VALUES ($1, $2, $3)",
    )
    .bind(calendar_id)
    .bind(operator_id)
    .bind(position as i64)
    .execute(conn)
    .await?;
    Ok(())
}
