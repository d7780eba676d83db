//! The audit log: who changed what and when, for appointments and configuration. Rows are
//! only ever added. Details name things by id and say what changed, never a citizen's data.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::role::Principal;
use crate::Error;

#[derive(Debug, Clone)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub account_id: Option<i64>,
    /// The account's name, "cittadino" or "sistema".
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub office_id: Option<i64>,
    pub detail: String,
}

impl Entry {
    pub fn by(
        p: &Principal,
        action: &str,
        target_kind: &str,
        target_id: i64,
        office_id: Option<i64>,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Entry {
        Entry {
            at,
            account_id: Some(p.account_id),
            actor: format!("{} <{}>", p.name, p.email),
            action: action.into(),
            target_kind: target_kind.into(),
            target_id: Some(target_id),
            office_id,
            detail: detail.into(),
        }
    }
    pub fn by_citizen(
        action: &str,
        appointment_id: i64,
        office_id: i64,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Entry {
        Entry {
            at,
            account_id: None,
            actor: "cittadino".into(),
            action: action.into(),
            target_kind: "appointment".into(),
            target_id: Some(appointment_id),
            office_id: Some(office_id),
            detail: detail.into(),
        }
    }
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

pub async fn record(pool: &AnyPool, e: &Entry) -> Result<(), Error> {
    let id = next_id();
    sqlx::query("INSERT INTO audit (id, at, account_id, actor, action, target_kind, target_id, office_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(id)
        .bind(e.at.timestamp())
        .bind(e.account_id)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target_kind)
        .bind(e.target_id)
        .bind(e.office_id)
        .bind(&e.detail)
        .execute(pool)
        .await?;
    Ok(())
}

/// The latest entries, newest first; `offices` limits them to those offices (and to entries
/// about no office are left out then).
pub async fn latest(
    pool: &AnyPool,
    offices: Option<&[i64]>,
    target: Option<(&str, i64)>,
    limit: i64,
) -> Result<Vec<Entry>, Error> {
    let mut sql = String::from("SELECT at, account_id, actor, action, target_kind, target_id, office_id, detail FROM audit WHERE 1 = 1");
    if let Some(list) = offices {
        let ids: Vec<String> = list.iter().map(|i| i.to_string()).collect();
        sql.push_str(&format!(
            " AND office_id IN ({})",
            if ids.is_empty() {
                "NULL".to_string()
            } else {
                ids.join(",")
            }
        ));
    }
    if target.is_some() {
        sql.push_str(" AND target_kind = $2 AND target_id = $3");
    }
    sql.push_str(" ORDER BY at DESC, id DESC LIMIT $1");
    let mut q = sqlx::query(&sql).bind(limit);
    if let Some((k, id)) = target {
        q = q.bind(k).bind(id);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Entry {
                at: DateTime::from_timestamp(r.try_get("at")?, 0).unwrap_or_default(),
                account_id: r.try_get("account_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target_kind: r.try_get("target_kind")?,
                target_id: r.try_get("target_id")?,
                office_id: r.try_get("office_id")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
