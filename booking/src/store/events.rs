//! What the processes sharing one PostgreSQL tell each other, over `LISTEN/NOTIFY`: the
//! catalogue changed (drop the cached copy), an appointment's time or state changed (its room
//! looks again), a room's citizen came in or left (every node's agenda shows it).
//!
//! It owns the channels' names, their payloads and the one listening connection. It knows
//! nothing of what the listeners do with an event: the cache is `catalogue`'s, rooms and
//! agendas are the web crate's. On SQLite there is one process, and events stay in it.

use tokio::sync::broadcast;

use super::catalogue::CachedCatalogue;
use super::{Backend, Store};
use crate::Error;

/// A change to the catalogue (on commit).
pub(super) const CATALOGUE: &str = "sportello_catalogue";
/// A change of an appointment's time or state; the payload is its id.
pub(super) const APPOINTMENTS: &str = "sportello_appointment";
/// A room's citizen came in or left; the payload is `id:1` or `id:0`.
const CITIZENS: &str = "sportello_citizen";

/// The receiving ends that the rest of the process subscribes to.
#[derive(Clone)]
pub(super) struct Events {
    pub(super) appointments: broadcast::Sender<i64>,
    pub(super) citizens: broadcast::Sender<(i64, bool)>,
}

impl Events {
    pub(super) fn new() -> Events {
        Events {
            appointments: broadcast::channel(1024).0,
            citizens: broadcast::channel(1024).0,
        }
    }
}

/// Listens on every channel on a connection of its own: drops `cache` at each catalogue change,
/// so that a change made by another Sportello process on the same database is seen at once,
/// and passes the other events on to `events`. If the listening connection cannot be made,
/// the cache keeps its lifetime as the only bound (and says so in the log); if it breaks,
/// sqlx's listener reconnects, and the cache is dropped too since a change may have been
/// missed meanwhile.
pub(super) async fn follow(url: &str, cache: CachedCatalogue, events: Events) {
    let mut listener = match sqlx::postgres::PgListener::connect(url).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other processes' changes: catalogue changes show when the cache runs out, rooms hear of moves at their next check");
            return;
        }
    };
    if let Err(e) = listener
        .listen_all([CATALOGUE, APPOINTMENTS, CITIZENS])
        .await
    {
        tracing::warn!(error = %e, "cannot listen for other processes' changes");
        return;
    }
    tokio::spawn(async move {
        loop {
            let got = listener.try_recv().await;
            match &got {
                Ok(Some(n)) if n.channel() == APPOINTMENTS => {
                    if let Ok(id) = n.payload().parse() {
                        let _ = events.appointments.send(id);
                    }
                    continue;
                }
                Ok(Some(n)) if n.channel() == CITIZENS => {
                    if let Some(change) = citizen_payload(n.payload()) {
                        let _ = events.citizens.send(change);
                    }
                    continue;
                }
                _ => {}
            }
            super::catalogue::drop_cache(&cache);
            if let Err(e) = got {
                tracing::warn!(error = %e, "listening for other processes' changes failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    });
}

fn citizen_payload(p: &str) -> Option<(i64, bool)> {
    let (id, waiting) = p.split_once(':')?;
    Some((id.parse().ok()?, waiting == "1"))
}

impl Store {
    /// The appointments whose time or state changes from now on (cancelled, moved, confirmed,
    /// done, expired...), in this process and, on PostgreSQL, in every other process on the
    /// database: a room that is open looks again at once.
    pub fn appointment_changes(&self) -> broadcast::Receiver<i64> {
        self.events.appointments.subscribe()
    }

    /// Tells every process on the database (this one included) that room `id`'s citizen came
    /// in (`waiting`) or left.
    pub async fn announce_citizen(&self, id: i64, waiting: bool) -> Result<(), Error> {
        match self.backend {
            Backend::Postgres => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CITIZENS)
                    .bind(format!("{id}:{}", u8::from(waiting)))
                    .execute(self.pool())
                    .await?;
            }
            Backend::Sqlite => {
                let _ = self.events.citizens.send((id, waiting));
            }
        }
        Ok(())
    }

    /// Every `announce_citizen` from now on, from any process on the database.
    pub fn citizen_changes(&self) -> broadcast::Receiver<(i64, bool)> {
        self.events.citizens.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_citizen_payload_is_an_id_and_a_flag() {
        assert_eq!(super::citizen_payload("42:1"), Some((42, true)));
        assert_eq!(super::citizen_payload("42:0"), Some((42, false)));
        assert_eq!(super::citizen_payload("42"), None);
        assert_eq!(super::citizen_payload("x:1"), None);
    }
}
