//! "Hai perso l'email?": a form that sends the address's active appointments, with their
//! links, to that address (`Store::send_bookings_list`). The page answers the same whether or
//! not the address has any.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::error::Result;
use crate::extract::{CsrfForm, Ui, Visitor};
use crate::state::AppState;
use crate::views::FindPage;

pub fn router() -> Router<AppState> {
    Router::new().route("/ritrova-prenotazione", get(show_form).post(submit))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Sent {
    inviata: Option<String>,
}

fn page(ui: &Ui) -> FindPage {
    FindPage {
        l: ui.l,
        csrf: ui.csrf.clone(),
        email: String::new(),
        sent: false,
        error: None,
    }
}

async fn show_form(ui: Ui, Query(q): Query<Sent>) -> Result<Response> {
    let p = FindPage {
        sent: q.inviata.is_some(),
        ..page(&ui)
    };
    ui.page(StatusCode::OK, p)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Asked {
    email: String,
}

async fn submit(Visitor(st, ui): Visitor, CsrfForm(f): CsrfForm<Asked>) -> Result<Response> {
    let email = f.email.trim();
    if !booking::validate::valid_email(email) {
        let p = FindPage {
            email: f.email.chars().take(254).collect(),
            error: Some(crate::error::bad_email(ui.l)),
            ..page(&ui)
        };
        return ui.page(StatusCode::UNPROCESSABLE_ENTITY, p);
    }
    let sent = st
        .store
        .send_bookings_list(email, ui.l, &ui.town.name, st.now())
        .await?;
    tracing::info!(sent, "list of bookings asked for");
    Ok((ui.jar, Redirect::to("/ritrova-prenotazione?inviata=1")).into_response())
}
