//! The audit log's entries: who changed what and when, for appointments, configuration and
//! accounts. Rows are only ever added, each in the same transaction as the change it records, so
//! a change is never stored without its entry nor an entry without its change. Details name
//! things by id and say what changed, never a citizen's data. Reading the log is `staff::audit`.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

#[derive(Debug, Clone)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub account_id: Option<i64>,
    /// The account's name and email, "cittadino" or "riga di comando".
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    /// None until the change makes the thing (a new office, service, account...).
    pub target_id: Option<i64>,
    pub office_id: Option<i64>,
    pub detail: String,
}

impl Entry {
    /// A change made by a staff account (`staff` names the account as `actor`).
    pub fn by_account(account_id: i64, actor: String, change: Change, at: DateTime<Utc>) -> Entry {
        Entry::made(Some(account_id), actor, change, at)
    }

    /// A change the citizen made to their appointment through their link.
    pub fn by_citizen(
        action: &str,
        appointment_id: i64,
        office_id: i64,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Entry {
        let change = Change {
            action,
            target: ("appointment", Some(appointment_id)),
            office_id: Some(office_id),
            detail: detail.into(),
        };
        Entry::made(None, "cittadino".into(), change, at)
    }

    /// A person acting on their own data through a link sent to their address.
    pub fn by_person(action: &str, detail: impl Into<String>, at: DateTime<Utc>) -> Entry {
        let change = Change {
            action,
            target: ("person", None),
            office_id: None,
            detail: detail.into(),
        };
        Entry::made(None, "cittadino".into(), change, at)
    }

    /// A change made with `sportello` commands on the server.
    pub fn by_command_line(
        action: &str,
        target_kind: &str,
        target_id: Option<i64>,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Entry {
        let change = Change {
            action,
            target: (target_kind, target_id),
            office_id: None,
            detail: detail.into(),
        };
        Entry::made(None, "riga di comando".into(), change, at)
    }

    fn made(account_id: Option<i64>, actor: String, c: Change, at: DateTime<Utc>) -> Entry {
        Entry {
            at,
            account_id,
            actor,
            action: c.action.into(),
            target_kind: c.target.0.into(),
            target_id: c.target.1,
            office_id: c.office_id,
            detail: c.detail,
        }
    }
}

/// What a change did, before it is known who made it: the action, the thing changed (its kind
/// and id, None until the change makes it), the office it belongs to, and the detail.
pub struct Change<'a> {
    pub action: &'a str,
    pub target: (&'a str, Option<i64>),
    pub office_id: Option<i64>,
    pub detail: String,
}

/// Ids grow with time (microseconds of the system clock, and at least one more than the last),
/// so entries of the same second keep the order they were made in.
fn next_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let id = now.max(last + 1);
        match LAST.compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(seen) => last = seen,
        }
    }
}

/// Adds the entry on `conn` (the change's own transaction); `target_id` fills in the id of a
/// thing the change has just made.
pub async fn insert(
    conn: &mut AnyConnection,
    e: &Entry,
    target_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit (id, at, account_id, actor, action, target_kind, target_id, office_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(next_id())
        .bind(e.at.timestamp())
        .bind(e.account_id)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target_kind)
        .bind(e.target_id.or(target_id))
        .bind(e.office_id)
        .bind(&e.detail)
        .execute(conn)
        .await?;
    Ok(())
}
