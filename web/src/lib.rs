//! The `sportello` binary's crate: configuration, the HTTP router with its pages (askama),
//! static assets (Bootstrap Italia, served from the binary), the background worker, and the
//! wiring of `booking`, `staff`, `signaling` and `sfu` into all of them.
//!
//! It owns no business rules and no SQL: each handler takes its request through `extract`
//! (language, CSRF-checked typed forms, typed path ids), calls `booking` or `staff`, and renders
//! a page from `views`; every failure is one `error::AppError`. How to read it: `app` merges one
//! router per group of pages (`citizen`, `mailbox`, `room`, `console`); `state` holds what
//! handlers share; `clock` is the process's one clock (everything below takes `now`);
//! `directory` and `media` are the small bridges that let `signaling` read bookings and drive
//! the relay without knowing either. Nothing imports the crate root but for its re-exports,
//! and no two files import each other (`tests/tests/structure.rs`): what `state` holds
//! (`limits`, `metrics`, `nodes`) takes its parts, never the state; the layers and pages that
//! read the whole state (`app`, `admin`, the page groups) sit above it.

pub mod admin;
pub mod app;
pub mod assets;
pub mod citizen;
pub mod clock;
pub mod closure_line;
pub mod config;
pub mod console;
pub mod contact;
pub mod directory;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod limits;
pub mod mailbox;
pub mod media;
pub mod metrics;
pub mod nodes;
pub mod notices;
pub mod oidc;
pub mod personal_data;
pub mod pow;
pub mod room;
pub mod script_texts;
pub mod state;
pub mod tls;
pub mod town;
pub mod turn;
pub mod views;
pub mod worker;

pub use app::serve;
pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use config::Config;
pub use state::{build_state, AppState};
