//! Several nodes of one service on one database: each node's heartbeat, and which node holds
//! each video room. A room is held by one node at a time through a short lease that its node
//! renews while it serves the room; another node that gets a socket of that room forwards it
//! there. A node that dies stops renewing, and once its leases run out the next socket of each
//! of its rooms places the room on the node it reached. Nothing here knows sockets or HTTP.

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use super::{from_ts, ts, Store};
use crate::Error;

/// Where a room is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On the node that asked: it now holds the room's lease.
    Here,
    /// On another node, alive as far as its lease says, reached at this URL.
    Elsewhere { node: String, url: String },
}

impl Store {
    /// This node is alive (and takes new rooms, or is stopping): written every few seconds.
    pub async fn node_heartbeat(
        &self,
        node: &str,
        url: &str,
        accepting: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO node (id, url, heartbeat_at, accepting) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET url = excluded.url, heartbeat_at = excluded.heartbeat_at, accepting = excluded.accepting")
            .bind(node)
            .bind(url)
            .bind(ts(now))
            .bind(i64::from(accepting))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The nodes that said they were alive since `since`: (id, url, accepting).
    pub async fn live_nodes(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, bool)>, Error> {
        let rows =
            sqlx::query("SELECT id, url, accepting FROM node WHERE heartbeat_at >= $1 ORDER BY id")
                .bind(ts(since))
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("url")?,
                    r.try_get::<i64, _>("accepting")? == 1,
                ))
            })
            .collect()
    }

    /// Places room `code` on `node` unless another node holds it: a lease that has not run
    /// out, of a node that said it was alive since `alive_since` and takes rooms. One statement
    /// decides, so two nodes placing the same room at once agree. A dead node's rooms thus move
    /// as soon as its heartbeat is stale, before their leases run out; a stopping node's at once.
    pub async fn place_room(
        &self,
        code: &str,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        alive_since: DateTime<Utc>,
    ) -> Result<Placement, Error> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO room_lease (code, node_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at WHERE room_lease.node_id = excluded.node_id OR room_lease.expires_at < $4 OR NOT EXISTS (SELECT 1 FROM node WHERE node.id = room_lease.node_id AND node.heartbeat_at >= $5 AND node.accepting = 1)")
            .bind(code)
            .bind(node)
            .bind(ts(now + lease))
            .bind(ts(now))
            .bind(ts(alive_since))
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT l.node_id, n.url FROM room_lease l LEFT JOIN node n ON n.id = l.node_id WHERE l.code = $1")
            .bind(code)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let owner: String = row.try_get("node_id")?;
        if owner == node {
            return Ok(Placement::Here);
        }
        Ok(Placement::Elsewhere {
            url: row.try_get::<Option<String>, _>("url")?.unwrap_or_default(),
            node: owner,
        })
    }

    /// Renews the lease of a room this node serves. False when the lease is no longer this
    /// node's (it ran out and another node took it).
    pub async fn renew_room(
        &self,
        code: &str,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, Error> {
        let mut tx = self.write().await?;
        let n =
            sqlx::query("UPDATE room_lease SET expires_at = $1 WHERE code = $2 AND node_id = $3")
                .bind(ts(now + lease))
                .bind(code)
                .bind(node)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// This node no longer serves room `code` (its last socket closed), or any room (`None`:
    /// the node is stopping): the next socket places it anew, on whichever node it reaches.
    pub async fn release_rooms(&self, code: Option<&str>, node: &str) -> Result<(), Error> {
        let mut tx = self.write().await?;
        match code {
            Some(code) => sqlx::query("DELETE FROM room_lease WHERE code = $1 AND node_id = $2")
                .bind(code)
                .bind(node),
            None => sqlx::query("DELETE FROM room_lease WHERE node_id = $1").bind(node),
        }
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// When a node last said it was alive, if ever.
    pub async fn node_seen(&self, node: &str) -> Result<Option<DateTime<Utc>>, Error> {
        let row = sqlx::query("SELECT heartbeat_at FROM node WHERE id = $1")
            .bind(node)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(from_ts(r.try_get("heartbeat_at")?)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_room_is_held_by_one_live_node_at_a_time() {
        let (_dir, s) = Store::for_test().await;
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |secs: i64| t0 + Duration::seconds(secs);
        let lease = Duration::seconds(10);
        // Alive: a heartbeat in the last 5 s.
        let place = |code: &'static str, node: &'static str, now: DateTime<Utc>| {
            let s = s.clone();
            async move {
                s.place_room(code, node, now, lease, now - Duration::seconds(5))
                    .await
                    .unwrap()
            }
        };
        let beat = |node: &'static str, accepting: bool, now: DateTime<Utc>| {
            let s = s.clone();
            async move {
                let url = format!("http://{node}:8080");
                s.node_heartbeat(node, &url, accepting, now).await.unwrap()
            }
        };
        beat("a", true, t0).await;
        beat("b", true, t0).await;
        assert_eq!(place("SP-1", "a", t0).await, Placement::Here);
        // Another node is sent to the holder while it lives and renews.
        let at_a = Placement::Elsewhere {
            node: "a".into(),
            url: "http://a:8080".into(),
        };
        assert_eq!(place("SP-1", "b", t0).await, at_a);
        beat("a", true, at(8)).await;
        assert!(s.renew_room("SP-1", "a", at(8), lease).await.unwrap());
        assert_eq!(place("SP-1", "b", at(12)).await, at_a);
        // The holder dies: once its heartbeat is stale (its lease still runs), the room goes to
        // the node a socket reached.
        assert_eq!(place("SP-1", "b", at(14)).await, Placement::Here);
        assert!(!s.renew_room("SP-1", "a", at(14), lease).await.unwrap());
        // Released, the next socket places it where it lands.
        s.release_rooms(Some("SP-1"), "b").await.unwrap();
        beat("a", true, at(15)).await;
        assert_eq!(place("SP-1", "a", at(15)).await, Placement::Here);
        // A stopping node takes no room, and its rooms move at once.
        beat("b", false, at(15)).await;
        assert_eq!(place("SP-2", "a", at(15)).await, Placement::Here);
        beat("a", false, at(16)).await;
        beat("b", true, at(16)).await;
        assert_eq!(place("SP-1", "b", at(16)).await, Placement::Here);
        s.release_rooms(None, "b").await.unwrap();
        assert_eq!(place("SP-1", "a", at(16)).await, Placement::Here, "a's own");
        assert_eq!(s.node_seen("a").await.unwrap(), Some(at(16)));
        assert_eq!(s.live_nodes(at(10)).await.unwrap().len(), 2);
    }
}
