//! The staff consoles under `/ufficio`: login and passwords, the operators' agenda and the
//! actions on an appointment, booking on behalf of a caller, configuration (offices, services,
//! calendars, closures, accounts), statistics, the audit log, and a person's data at their request.
//!
//! Every handler takes a `Staff` (`context`: a logged-in person, or a redirect to the login page)
//! and asks its `Principal` before it reads or changes anything; the rules are in `staff::role`.
//! Forms are `CsrfForm`s (the same CSRF token as the citizen's pages), and the session cookie is
//! HttpOnly, SameSite=Strict, and Secure whenever the site is served over HTTPS. One module per
//! group of pages, each with its own `router()`, merged here.

mod accounts;
mod agenda;
mod appointment;
mod book;
mod calendars;
mod closures;
pub mod context;
pub mod form;
mod offices;
mod privacy;
mod reports;
mod search;
mod services;
mod session;
mod waitlist;

use axum::Router;

use crate::state::AppState;

/// Logging in and out and the password: the login counts against the client's limit.
pub fn session_router() -> Router<AppState> {
    session::router()
}

/// Every other console page.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(agenda::router())
        .merge(appointment::router())
        .merge(book::router())
        .merge(reports::router())
        .merge(search::router())
        .merge(waitlist::router())
        .merge(offices::router())
        .merge(services::router())
        .merge(calendars::router())
        .merge(closures::router())
        .merge(accounts::router())
        .merge(privacy::router())
}
