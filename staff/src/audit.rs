//! Reading the audit log (who changed what and when), and the entry a staff member's change
//! carries. Entries are written by the change itself, in its own transaction
//! (`booking::audit::insert`).

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::role::Principal;
use crate::Error;

pub use booking::audit::Entry;

impl Principal {
    /// An audit entry for a change this person makes.
    pub fn audit(
        &self,
        action: &str,
        target_kind: &str,
        target_id: Option<i64>,
        office_id: Option<i64>,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Entry {
        let change = booking::audit::Change {
            action,
            target: (target_kind, target_id),
            office_id,
            detail: detail.into(),
        };
        Entry::by_account(
            self.account_id,
            format!("{} <{}>", self.name, self.email),
            change,
            at,
        )
    }
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
