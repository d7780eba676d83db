//! The staff consoles under `/ufficio`: login and passwords, the operators' agenda and the
//! actions on an appointment, booking on behalf of a caller, configuration (offices, services,
//! calendars, accounts), statistics and the audit log.
//!
//! Every handler takes a `Staff` (`context`: a logged-in person, or a redirect to the login page)
//! and asks its `Principal` before it reads or changes anything; the rules are in `staff::role`.
//! Forms are `CsrfForm`s (the same CSRF token as the citizen's pages), and the session cookie is
//! HttpOnly, SameSite=Strict, and Secure whenever the site is served over HTTPS. One module per
//! group of pages; this file only routes.

mod accounts;
mod agenda;
mod appointment;
mod book;
mod calendars;
pub mod context;
pub mod form;
mod offices;
mod reports;
mod services;
mod session;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ufficio/accesso",
            get(session::show_login).post(session::submit_login),
        )
        .route("/ufficio/esci", post(session::submit_logout))
        .route(
            "/ufficio/password",
            get(session::show_password).post(session::submit_password),
        )
        .route("/ufficio", get(agenda::show_agenda))
        .route("/ufficio/attesa", get(agenda::list_waiting))
        .route(
            "/ufficio/appuntamenti/{id}",
            get(appointment::show_appointment),
        )
        .route(
            "/ufficio/appuntamenti/{id}/entra",
            get(appointment::join_call),
        )
        .route(
            "/ufficio/appuntamenti/{id}/{action}",
            post(appointment::act_on_appointment),
        )
        .route(
            "/ufficio/prenota",
            get(book::show_booking_form).post(book::submit_booking),
        )
        .route("/ufficio/statistiche", get(reports::show_statistics))
        .route(
            "/ufficio/statistiche.csv",
            get(reports::download_statistics),
        )
        .route("/ufficio/registro", get(reports::show_audit_log))
        .route(
            "/ufficio/config",
            get(offices::list_offices).post(offices::create_office),
        )
        .route(
            "/ufficio/config/uffici/{id}",
            get(offices::show_office).post(offices::save_office),
        )
        .route(
            "/ufficio/config/uffici/{id}/servizi",
            post(services::create_service),
        )
        .route(
            "/ufficio/config/uffici/{id}/calendari",
            post(calendars::create_calendar),
        )
        .route(
            "/ufficio/config/servizi/{id}",
            get(services::show_service).post(services::save_service),
        )
        .route(
            "/ufficio/config/calendari/{id}",
            get(calendars::show_calendar).post(calendars::save_calendar),
        )
        .route(
            "/ufficio/config/calendari/{id}/regole",
            post(calendars::add_rule),
        )
        .route(
            "/ufficio/config/calendari/{id}/regola-elimina",
            post(calendars::remove_rule),
        )
        .route(
            "/ufficio/config/calendari/{id}/eccezioni",
            post(calendars::add_exception),
        )
        .route(
            "/ufficio/config/calendari/{id}/eccezione-elimina",
            post(calendars::remove_exception),
        )
        .route(
            "/ufficio/config/calendari/{id}/operatori",
            post(calendars::set_operators),
        )
        .route(
            "/ufficio/account",
            get(accounts::list_accounts).post(accounts::create_account),
        )
        .route(
            "/ufficio/account/{id}",
            get(accounts::show_account).post(accounts::save_account),
        )
}
