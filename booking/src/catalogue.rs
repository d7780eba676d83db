//! The catalogue — offices, services, calendars with their rules, operators — read in one go
//! and kept in memory for a few seconds. It is a few hundred rows that change only when an
//! administrator edits them, while every page and every booking reads it: without the cache a
//! booking made a dozen queries, with it five. Local edits drop the cache at once; another
//! server sharing the database sees them within the time-to-live. Capacity is still enforced by
//! the database, whatever the cache holds.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::holidays::Holidays;
use crate::model::{Calendar, ModeSet, Office, Operator, Service};
use crate::slots::{CalendarRules, Exception, OpeningRule, WeekdaySet, Window};
use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// In display order.
    pub offices: Vec<Office>,
    /// In display order.
    pub services: Vec<Service>,
    pub calendars: HashMap<i64, (Calendar, CalendarRules)>,
    /// Per calendar, the proposed operator first.
    pub operators: HashMap<i64, Vec<Operator>>,
    pub all_operators: HashMap<i64, Operator>,
}

fn minute_time(m: i64) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt((m.clamp(0, 24 * 60 - 1) * 60) as u32, 0)
        .unwrap_or_default()
}

/// A stored day (`YYYY-MM-DD`, as rules' validity and exceptions keep it); `None` if absent or
/// unreadable.
pub(crate) fn day(s: Option<String>) -> Option<NaiveDate> {
    s.and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
}

fn office_from(r: &AnyRow) -> Result<Office, Error> {
    Ok(Office {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        department: r.try_get("department")?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        address: r.try_get("address")?,
        hours_text: r.try_get("hours_text")?,
        archived: r.try_get::<Option<i64>, _>("archived_at")?.is_some(),
    })
}

fn service_from(r: &AnyRow) -> Result<Service, Error> {
    Ok(Service {
        id: r.try_get("id")?,
        office_id: r.try_get("office_id")?,
        calendar_id: r.try_get("calendar_id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        max_minutes: r.try_get("max_minutes")?,
        instructions: r.try_get("instructions")?,
        documents: r.try_get("documents")?,
        modes: ModeSet(r.try_get::<i64, _>("modes")? as u8),
        published: r.try_get::<i64, _>("published")? != 0,
        fiscal_code_required: r.try_get::<i64, _>("fiscal_code_required")? != 0,
        login_required: r.try_get::<i64, _>("login_required")? != 0,
    })
}

fn window(r: &AnyRow, defaults: bool) -> Option<Window> {
    let get = |c: &str| r.try_get::<Option<i64>, _>(c).ok().flatten();
    Some(Window {
        from: minute_time(get("start_minute")?),
        to: minute_time(get("end_minute")?),
        slot_minutes: get("slot_minutes").or(defaults.then_some(30))? as u32,
        buffer_minutes: get("buffer_minutes").unwrap_or(0) as u32,
        capacity: get("capacity").or(defaults.then_some(1))? as u32,
        modes: ModeSet(get("modes").unwrap_or(7) as u8),
    })
}

impl Catalogue {
    pub async fn load(pool: &AnyPool, holidays: &Holidays) -> Result<Catalogue, Error> {
        let offices = sqlx::query("SELECT * FROM office ORDER BY position, name")
            .fetch_all(pool)
            .await?
            .iter()
            .map(office_from)
            .collect::<Result<Vec<_>, _>>()?;
        let services = sqlx::query("SELECT * FROM service ORDER BY office_id, position, title")
            .fetch_all(pool)
            .await?
            .iter()
            .map(service_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules: HashMap<i64, Vec<OpeningRule>> = HashMap::new();
        for r in sqlx::query("SELECT * FROM opening_rule ORDER BY calendar_id, id")
            .fetch_all(pool)
            .await?
        {
            let Some(w) = window(&r, false) else {
                return Err(Error::Corrupt("opening rule"));
            };
            rules
                .entry(r.try_get("calendar_id")?)
                .or_default()
                .push(OpeningRule {
                    weekdays: WeekdaySet(r.try_get::<i64, _>("weekdays")? as u8),
                    window: w,
                    valid_from: day(r.try_get("valid_from")?),
                    valid_to: day(r.try_get("valid_to")?),
                });
        }
        let mut exceptions: HashMap<i64, Vec<Exception>> = HashMap::new();
        for r in
            sqlx::query("SELECT * FROM calendar_exception ORDER BY calendar_id, day, closed DESC")
                .fetch_all(pool)
                .await?
        {
            let Some(d) = day(r.try_get("day")?) else {
                return Err(Error::Corrupt("exception day"));
            };
            let label: String = r.try_get("label")?;
            let e = if r.try_get::<i64, _>("closed")? != 0 {
                Exception::Closed { day: d, label }
            } else {
                let w = window(&r, true).ok_or(Error::Corrupt("exception hours"))?;
                Exception::SpecialHours {
                    day: d,
                    windows: vec![w],
                    label,
                }
            };
            exceptions
                .entry(r.try_get("calendar_id")?)
                .or_default()
                .push(e);
        }
        let mut calendars = HashMap::new();
        for r in sqlx::query("SELECT * FROM calendar")
            .fetch_all(pool)
            .await?
        {
            let id: i64 = r.try_get("id")?;
            let tz = Tz::from_str(&r.try_get::<String, _>("timezone")?)
                .map_err(|_| Error::Corrupt("timezone"))?;
            let cal = Calendar {
                id,
                office_id: r.try_get("office_id")?,
                name: r.try_get("name")?,
                moderated: r.try_get::<i64, _>("moderated")? != 0,
            };
            let rules = CalendarRules {
                tz,
                rules: rules.remove(&id).unwrap_or_default(),
                exceptions: exceptions.remove(&id).unwrap_or_default(),
                holidays: (r.try_get::<i64, _>("closed_on_holidays")? != 0)
                    .then(|| holidays.clone()),
                horizon_days: r.try_get::<i64, _>("horizon_days")? as u32,
                min_notice_days: r.try_get::<i64, _>("min_notice_days")? as u32,
            };
            calendars.insert(id, (cal, rules));
        }
        let mut all_operators = HashMap::new();
        for r in sqlx::query("SELECT id, office_id, name FROM operator")
            .fetch_all(pool)
            .await?
        {
            let op = Operator {
                id: r.try_get("id")?,
                office_id: r.try_get("office_id")?,
                name: r.try_get("name")?,
            };
            all_operators.insert(op.id, op);
        }
        let mut operators: HashMap<i64, Vec<Operator>> = HashMap::new();
        for r in sqlx::query("SELECT calendar_id, operator_id FROM calendar_operator ORDER BY calendar_id, position, operator_id")
            .fetch_all(pool)
            .await?
        {
            if let Some(op) = all_operators.get(&r.try_get::<i64, _>("operator_id")?) {
                operators.entry(r.try_get("calendar_id")?).or_default().push(op.clone());
            }
        }
        Ok(Catalogue {
            offices,
            services,
            calendars,
            operators,
            all_operators,
        })
    }
}
