//! Booking for a town office's counter: the catalogue (offices, services, calendars), the slot
//! engine, appointments and their life (pending → confirmed → done, or cancelled), signed
//! links, the emails with their iCalendar invitations, and the outbox that delivers them.
//!
//! It owns the rules and the data, and knows nothing of HTTP or WebRTC: `web` turns requests
//! into calls here, and every function that depends on the time takes `now` as an argument.
//! Start with `slots` (pure), then `store` (the database) and `email` (what the citizen gets).

pub mod audit;
pub mod catalogue;
pub mod demo;
pub mod email;
pub mod fiscal;
pub mod holidays;
pub mod i18n;
pub mod ics;
pub mod model;
pub mod outbox;
pub mod slots;
pub mod store;
pub mod token;
pub mod validate;

pub use model::*;
// The office's side of the store, where `web` and `staff` have always found it.
pub use store::backoffice;
pub use store::citizens;
pub use store::{Actor, Limits, Store};

/// The one error type of the booking crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this time is no longer available")]
    SlotTaken,
    #[error("this time cannot be booked")]
    SlotNotBookable,
    #[error("this mode is not offered at this time")]
    ModeNotOffered,
    #[error("this operator does not serve this calendar")]
    UnknownOperator,
    #[error("an active appointment for this service already exists for this email address")]
    AlreadyBookedForService,
    #[error("an active appointment for this service already exists for this person (fiscal code)")]
    PersonAlreadyBooked,
    #[error("this service needs the person's valid fiscal code")]
    FiscalCodeRequired,
    #[error("at most {0} active appointments per email address")]
    TooManyActive(i64),
    #[error("at most {0} bookings per email address wait for verification at once")]
    TooManyUnverified(i64),
    #[error("at most {0} verification emails per address in a day")]
    TooManyVerifications(i64),
    #[error("the appointment is {0:?}")]
    NotActive(Status),
    #[error("the appointment has already taken place")]
    AlreadyHappened,
    #[error("the appointment has not started yet")]
    NotYet,
    #[error("the appointment is already at that time")]
    SameSlot,
    #[error("configuration: {0}")]
    Config(String),
    /// The office still has this many active appointments that have not ended: it cannot be
    /// archived until they are moved, cancelled or over.
    #[error("the office has {0} active appointments still to come")]
    OfficeInUse(i64),
    /// A closure that ends before it starts, or longer than `store::closures::MAX_CLOSURE_DAYS`.
    #[error("a closure lasts from one day to a year")]
    ClosureDays,
    /// A waitlist link whose place ended (not confirmed in time, left, or over).
    #[error("this place on the waitlist is no longer open")]
    WaitlistClosed,
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether the database could not be reached (see `store::unavailable`): the same request
    /// may succeed in a moment.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Db(e) if store::unavailable(e))
    }
}
