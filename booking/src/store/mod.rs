//! Storage: the catalogue, the appointments and the outbox, in SQLite (the embedded default) or
//! PostgreSQL, through one set of migrations and queries (sqlx's `Any` driver).
//!
//! The database, not Rust, guarantees that a slot is never booked beyond its capacity: each
//! active appointment holds one numbered seat of its slot, and a unique index refuses a second
//! holder of a seat. Every change the citizen must hear about writes its email to the outbox in
//! the same transaction.
//!
//! `Store` is one handle on the database, and each concern adds its methods to it from a file
//! of its own: `catalogue` (offices, services, calendars, operators, cached), `appointments`
//! (booking and the life of an appointment), `reminders`, `outbox` (the emails' table),
//! `retention` (removing personal data once it no longer serves) and `backoffice` (the office's
//! agenda, outcomes, notes and catalogue editing), `events` (what processes on one PostgreSQL
//! tell each other), `nodes` (which node serves which room). This file holds
//! only what they all share: connecting, the migrations, the backend and the pool, write
//! transactions and the signal that one queued an email, the business limits, the settings, and
//! how instants and ids are stored. It must not know the business of any part: a query on one
//! concern's tables belongs in that concern's file.
//!
//! The migrations in `booking/migrations` are the whole schema, the `staff` crate's tables
//! included: one migrator, one ordered history (see the `staff` crate's doc for why).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row, Transaction};
use tokio::sync::Notify;

use crate::email::Links;
use crate::Error;

mod appointments;
pub mod backoffice;
mod catalogue;
pub mod citizens;
pub mod closures;
mod events;
mod finding;
mod migrations;
pub mod nodes;
mod outbox;
mod reminders;
mod retention;
mod search;
pub mod waitlist;

pub use appointments::Actor;
use catalogue::CachedCatalogue;
pub use outbox::OutboxMessage;
pub use retention::Swept;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Business limits the store enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Active appointments one email address may hold at once.
    pub max_active_per_email: i64,
    /// How long a citizen has to follow the verification link: the unverified booking holds its
    /// seat that long, then expires silently.
    pub verify_within: Duration,
    /// Bookings of one person (email, `+tag` ignored) waiting for verification at once.
    pub max_unverified_per_email: i64,
    /// Verification emails one person may be sent in 24 hours.
    pub verifications_per_day: i64,
    /// How long before the appointment each reminder goes out (day before, hour before).
    pub reminder_day: Duration,
    pub reminder_hour: Duration,
    /// How long after an appointment's end the person's data is kept (see `retention`).
    pub keep_appointments: Duration,
    /// How long the recipient and body of a sent email are kept.
    pub keep_emails: Duration,
    /// How long a seat freed for a person on the waitlist is held for them.
    pub waitlist_hold: Duration,
    /// How long a place on a waitlist lasts once confirmed.
    pub waitlist_for: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_active_per_email: 5,
            verify_within: Duration::hours(2),
            max_unverified_per_email: 2,
            verifications_per_day: 5,
            reminder_day: Duration::hours(24),
            reminder_hour: Duration::hours(1),
            keep_appointments: Duration::days(365),
            keep_emails: Duration::days(30),
            waitlist_hold: Duration::minutes(30),
            waitlist_for: Duration::days(30),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cache: CachedCatalogue,
    /// Notified when a transaction that queued an email commits (see `mail_queued`).
    mail_queued: Arc<Notify>,
    /// What happens in this process or (on PostgreSQL) another that others must hear of.
    events: events::Events,
    totals: Arc<Totals>,
    pub links: Links,
    pub limits: Limits,
    /// The town's recurring closures (national holidays, the patron's day), which the
    /// calendars that keep them have no slots on; see `with_holidays`.
    pub holidays: crate::holidays::Holidays,
    /// Whether this connection made the schema: the database had no migration history.
    fresh: bool,
}

/// What this process's store has done since it started, for monitoring: totals that never go
/// down (Prometheus counters). An appointment the office books is created and confirmed at once.
#[derive(Debug, Default)]
pub struct Totals {
    /// Appointments booked (by citizens, pending until verified, or by the office).
    pub created: AtomicU64,
    /// Appointments that became confirmed: verified on a calendar without moderation,
    /// approved by the office, or booked by the office.
    pub confirmed: AtomicU64,
    /// Active appointments cancelled, by the citizen or by the office (not the expired ones).
    pub cancelled: AtomicU64,
}

impl Totals {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The person behind an address, for the limits on unverified bookings: lower case, and a
/// `+tag` of the local part removed (`a+1@x.it` and `a+2@x.it` are one person).
pub fn person_key(email: &str) -> String {
    let email = email.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => email,
    }
}

// How the database stores instants (Unix seconds) and chooses ids (random, positive BIGINTs):
// the store's parts and staff's tables alike.
/// An instant as stored.
pub fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}
/// A stored instant.
pub fn from_ts(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}
/// A new row id.
pub fn random_id() -> i64 {
    rand::thread_rng().gen_range(1..i64::MAX)
}

/// Whether a database error means the database is not there for now — down, restarting, the
/// connection cut, or no connection free within `ACQUIRE_TIMEOUT` — rather than a fault of the
/// request. The web layer answers these with 503 and "try again shortly".
pub fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // Connection exceptions (08…), the server shutting down or starting up (57P…), no
        // connection slot left (53300).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

/// How long a request waits for a PostgreSQL connection before it is answered "unavailable".
/// While the server is down or restarting, every connection attempt fails and the pool would
/// retry for sqlx's default 30 s: pages would hang that long. SQLite is a local file whose
/// writers queue on the busy timeout instead, so its pool keeps the default.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The store's write transaction: a sqlx transaction (queries run on `&mut *tx`) that also
/// remembers whether `enqueue` put an email in it. Committing it is the one place that signals
/// `Store::mail_queued`, after the commit, so the worker never looks for an email that is not
/// there yet, nor for one that was rolled back. Dropped without a commit, it rolls back.
struct WriteTx {
    tx: Transaction<'static, Any>,
    queued_mail: bool,
    mail_queued: Arc<Notify>,
    /// Appointments whose time or state this transaction changes, announced on commit.
    changed: Vec<i64>,
    changes: tokio::sync::broadcast::Sender<i64>,
    backend: Backend,
}

impl WriteTx {
    async fn commit(mut self) -> Result<(), sqlx::Error> {
        // Other processes on the database hear it when the transaction commits, not before.
        if self.backend == Backend::Postgres {
            for id in &self.changed {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(events::APPOINTMENTS)
                    .bind(id.to_string())
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.tx.commit().await?;
        if self.queued_mail {
            self.mail_queued.notify_one();
        }
        for id in self.changed {
            let _ = self.changes.send(id);
        }
        Ok(())
    }

    /// Appointment `id`'s time or state changes in this transaction: its room is told on commit.
    fn appointment_changed(&mut self, id: i64) {
        self.changed.push(id);
    }

    async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// The backend a database URL names.
fn backend_of(url: &str) -> Result<Backend, Error> {
    sqlx::any::install_default_drivers();
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(Error::Config(format!(
            "unsupported database URL (use sqlite:// or postgres://): {}",
            url.split('@').next_back().unwrap_or("")
        )))
    }
}

/// The file of a `sqlite:` URL (empty or `:memory:` for none).
fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("")
}

/// A `sqlite:` URL with an open mode (`rwc` creates the file, `rw` does not), unless it says
/// its own.
fn sqlite_url_with_mode(url: &str, mode: &str) -> String {
    if url.contains("mode=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode={mode}")
}

/// How many migrations the database records (0 when it has no migration table yet).
async fn migrations_applied(pool: &AnyPool, backend: Backend) -> Result<i64, Error> {
    let table_exists = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let n: i64 = sqlx::query(table_exists)
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    if n == 0 {
        return Ok(0);
    }
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
        .fetch_one(pool)
        .await?
        .try_get("n")?)
}

impl Store {
    /// The one row `sql` selects for `key` (bound as `$1`), or `Error::NotFound(what)`.
    async fn one<'q, K>(&self, sql: &'q str, key: K, what: &'static str) -> Result<AnyRow, Error>
    where
        K: 'q + Send + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound(what))
    }

    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    /// `sqlite://data/sportello.db` or `postgres://user@host/db`. `fresh()` then says whether
    /// the schema was made by this call.
    pub async fn connect(url: &str, links: Links, limits: Limits) -> Result<Store, Error> {
        let backend = backend_of(url)?;
        let mut url = url.to_string();
        if backend == Backend::Sqlite {
            let path = sqlite_path(&url).to_string();
            if !path.is_empty() && path != ":memory:" {
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| Error::Config(format!("cannot create {dir:?}: {e}")))?;
                    }
                }
            }
            url = sqlite_url_with_mode(&url, "rwc");
        }
        let mut options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 8 } else { 32 });
        if backend == Backend::Postgres {
            options = options.acquire_timeout(ACQUIRE_TIMEOUT);
        }
        let pool = options
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers go on while one writer commits; writers queue on the
                        // busy timeout instead of failing.
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let fresh = migrations_applied(&pool, backend).await? == 0;
        migrations::migrator().await?.run(&pool).await?;
        let cache = CachedCatalogue::default();
        let events = events::Events::new();
        if backend == Backend::Postgres {
            events::follow(&url, cache.clone(), events.clone()).await;
        }
        Ok(Store {
            pool,
            backend,
            cache,
            mail_queued: Arc::new(Notify::new()),
            events,
            totals: Arc::default(),
            links,
            limits,
            holidays: Default::default(),
            fresh,
        })
    }

    /// The town's patron saint's day closes the calendars that keep holidays, as the national
    /// holidays do (they are always kept).
    pub fn with_holidays(mut self, holidays: crate::holidays::Holidays) -> Store {
        self.holidays = holidays;
        self.invalidate_catalogue();
        self
    }

    /// The migration an installed database is at, or `None` when there is no installation at
    /// `url`: no SQLite file there, or a database that Sportello's migrations never touched.
    /// Creates and changes nothing, so that a maintenance command pointed at the wrong place
    /// says so instead of making a second, empty database.
    pub async fn installed(url: &str) -> Result<Option<i64>, Error> {
        let backend = backend_of(url)?;
        let mut url = url.to_string();
        if backend == Backend::Sqlite {
            let path = sqlite_path(&url);
            if path.is_empty() || path == ":memory:" || !std::path::Path::new(path).is_file() {
                return Ok(None);
            }
            // Read and write, never create.
            url = sqlite_url_with_mode(&url, "rw");
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await?;
        let applied = migrations_applied(&pool, backend).await;
        let version = match applied {
            Ok(0) => None,
            Ok(_) => Some(
                sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await?
                    .try_get("v")?,
            ),
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        pool.close().await;
        Ok(version)
    }

    /// Whether this store's connection made the schema (the database was new).
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// This process's totals of bookings created, confirmed and cancelled.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Woken each time an email has been queued and its transaction committed: the outbox
    /// delivery worker waits on it (`notified().await`), so that a new email goes out at once
    /// instead of at the worker's next round. It is `notify_one`: one waiter wakes, and when no
    /// one is waiting (the worker is busy delivering) the next wait returns at once, so a
    /// message queued meanwhile is not left for the next round either.
    pub fn mail_queued(&self) -> Arc<Notify> {
        self.mail_queued.clone()
    }

    /// A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so that
    /// what it reads cannot change before it writes; PostgreSQL relies on the unique indexes.
    /// An empty store on a fresh SQLite file, for unit tests (keep the folder while it is used).
    #[cfg(test)]
    pub(crate) async fn for_test() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let links = Links {
            base_url: "http://localhost".into(),
            signer: crate::token::Signer::new(&[7u8; 32]),
            tz: chrono_tz::Europe::Rome,
        };
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = Store::connect(&url, links, Limits::default())
            .await
            .unwrap();
        (dir, store)
    }

    async fn write(&self) -> Result<WriteTx, Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            queued_mail: false,
            mail_queued: self.mail_queued.clone(),
            changed: Vec::new(),
            changes: self.events.appointments.clone(),
            backend: self.backend,
        })
    }

    // ---------------------------------------------------------------- settings

    /// A value of the `setting` table (name → text), e.g. `demo` once the demo comune is seeded.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query("SELECT value FROM setting WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("value"))
            .transpose()?)
    }

    /// A consistent copy of an SQLite database at `file` (which must not exist), taken while
    /// others go on reading and writing (`VACUUM INTO`).
    pub async fn backup_to(&self, file: &std::path::Path) -> Result<(), Error> {
        if self.backend != Backend::Sqlite {
            return Err(Error::Config("backup copies SQLite databases only".into()));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(file.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last migration applied.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        Ok(
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations")
                .fetch_one(&self.pool)
                .await?
                .try_get("v")?,
        )
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database has no office at all, archived ones included (the demo comune is
    /// seeded only into such a one).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM office")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::unavailable;

    #[test]
    fn a_database_that_is_not_there_is_unavailable_not_a_fault() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(unavailable(&sqlx::Error::Io(refused)));
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
        assert!(!unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
