//! The `sportello` server: configuration, the HTTP router with its pages (askama), static
//! assets (Bootstrap Italia, served from the binary), the background worker, and the wiring of
//! `booking` into all of them.
//!
//! It owns no business rules: each handler parses a request, calls `booking`, and renders the
//! answer. The one clock of the process lives here (`Clock`), and everything below takes `now`.

pub mod app;
pub mod assets;
pub mod citizen;
pub mod config;
pub mod console;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod mailbox;
pub mod media;
pub mod room;
pub mod state;
pub mod tls;
pub mod views;
pub mod worker;

pub use app::serve;
pub use config::Config;
pub use state::{build_state, AppState, Clock, ManualClock, OffsetClock, SystemClock};
