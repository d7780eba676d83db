//! The town office's staff: accounts and what each role may do, passwords (argon2) and the
//! lock-out after repeated failures, sessions, the audit log, and the statistics the consoles
//! show (with their SVG chart and CSV export).
//!
//! Pure parts first: `role` (who may see or change what), `throttle` (when a login is refused
//! for a while), `stats` (counting, chart, CSV). `accounts` and `audit` are the database side,
//! over the same pool as `booking`. It knows nothing of HTTP: `web` turns cookies and forms into
//! calls here.
//!
//! # Where the staff tables are created
//!
//! The tables this crate reads and writes (`account`, `account_office`, `staff_session`,
//! `audit`) are created by `booking/migrations/0002_staff.sql`, not by a migration folder of
//! this crate, and that is deliberate:
//!
//! - There is one database and one migration history. `booking::Store::connect` runs the one
//!   sqlx migrator, which records each applied version in the database's single
//!   `_sqlx_migrations` table and refuses to start when that table holds a version it does not
//!   know. A second migrator here would see booking's versions as unknown, and booking's would
//!   see ours, on every start.
//! - The order matters across both crates: 0002 refers to booking's `office` and `operator`
//!   tables, and it also adds the office's columns of an appointment (`note`, `outcome_at`) that
//!   `booking::backoffice` reads. One numbered sequence states that order; two could not.
//! - Deployed databases have 0002 recorded under its number and checksum: moving, renumbering or
//!   editing it would stop them from starting.
//!
//! So a change to the staff tables is a new, next-numbered file in `booking/migrations`, and
//! this crate relies on `Store::connect` having run it (`Accounts::new` takes the store's pool).

pub mod accounts;
pub mod audit;
pub mod password;
pub mod role;
pub mod stats;
pub mod throttle;

pub use accounts::{AccountSummary, Accounts, LoginOutcome, NewAccount};
pub use role::{Principal, Role};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("an account with this email address already exists")]
    DuplicateEmail,
    #[error("{0}")]
    WeakPassword(&'static str),
    #[error("not allowed")]
    Forbidden,
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}
