//! The town office's staff: accounts and what each role may do, passwords (argon2) and the
//! lock-out after repeated failures, sessions, the audit log, and the statistics the consoles
//! show (with their SVG chart and CSV export).
//!
//! Pure parts first: `role` (who may see or change what), `throttle` (when a login is refused
//! for a while), `stats` (counting, chart, CSV). `accounts` and `audit` are the database side,
//! over the same pool as `booking`. It knows nothing of HTTP: `web` turns cookies and forms into
//! calls here.

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
