//! A person's own data (GDPR arts. 15, 17 and 20), without an account: they give their email
//! address at `/i-miei-dati`, and a link valid a day, sent there, shows every appointment with
//! that address, to download (JSON, CSV) or erase. Nobody learns from the page whether an
//! address is known: the answer is the same, and only a known address gets an email.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use booking::token::Purpose;
use serde::Deserialize;

use crate::error::{invalid, AppError, Result};
use crate::extract::{CsrfForm, Ui};
use crate::extract::{Link, Visitor};
use crate::personal_data::{file, records, Format};
use crate::state::AppState;
use crate::views::{MyDataLine, MyDataPage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/i-miei-dati", get(show_request).post(submit_request))
        .route("/i-miei-dati/{token}", get(show_data))
        .route(
            "/i-miei-dati/{token}/dati.json",
            get(|Visitor(st, ui): Visitor, Path(t): Path<String>| {
                download_as(st, ui, t, Format::Json)
            }),
        )
        .route(
            "/i-miei-dati/{token}/dati.csv",
            get(|Visitor(st, ui): Visitor, Path(t): Path<String>| {
                download_as(st, ui, t, Format::Csv)
            }),
        )
        .route("/i-miei-dati/{token}/cancella", post(erase))
}

#[derive(Deserialize, Default)]
pub struct Outcome {
    #[serde(default)]
    inviata: Option<String>,
    #[serde(default)]
    cancellati: Option<u64>,
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    conferma: Option<String>,
}

fn page(ui: &Ui) -> MyDataPage {
    MyDataPage {
        l: ui.l,
        csrf: ui.csrf.clone(),
        token: None,
        email: String::new(),
        sent: false,
        error: None,
        expired: false,
        lines: Vec::new(),
        erased: None,
    }
}

async fn show_request(ui: Ui, Query(o): Query<Outcome>) -> Result<Response> {
    let p = MyDataPage {
        sent: o.inviata.is_some(),
        ..page(&ui)
    };
    ui.page(StatusCode::OK, p)
}

async fn submit_request(
    Visitor(st, ui): Visitor,
    CsrfForm(f): CsrfForm<RequestForm>,
) -> Result<Response> {
    let email = f.email.trim();
    if !booking::validate::valid_email(email) {
        let p = MyDataPage {
            email: f.email.chars().take(254).collect(),
            error: Some(crate::error::bad_email(ui.l)),
            ..page(&ui)
        };
        return ui.page(StatusCode::UNPROCESSABLE_ENTITY, p);
    }
    match st
        .store
        .request_person_data(email, ui.l, &ui.town.name, st.now())
        .await
    {
        Ok(_) => Ok((ui.jar, Redirect::to("/i-miei-dati?inviata=1")).into_response()),
        Err(booking::Error::TooManyVerifications(n)) => {
            let p = MyDataPage {
                error: Some(ui.l.f(
                    "A questo indirizzo abbiamo già inviato {n} collegamenti nelle ultime 24 ore: usa uno di quelli o riprova domani.",
                    &[("n", &n)],
                )),
                ..page(&ui)
            };
            ui.page(StatusCode::TOO_MANY_REQUESTS, p)
        }
        Err(e) => Err(e.into()),
    }
}

/// The email address of the request the link names, if the link is genuine and still valid.
async fn requested(st: &AppState, token: &str) -> Result<Option<String>> {
    let id = st
        .signer
        .verify(Purpose::PersonData, token)
        .map_err(|_| AppError::BadLink)?;
    Ok(st.store.person_data_request(id, st.now()).await?)
}

fn expired(ui: Ui) -> Result<Response> {
    let p = MyDataPage {
        expired: true,
        ..page(&ui)
    };
    ui.page(StatusCode::GONE, p)
}

async fn show_data(Link(st, ui, token): Link, Query(o): Query<Outcome>) -> Result<Response> {
    let Some(email) = requested(&st, &token).await? else {
        return expired(ui);
    };
    let lines = records(&st, &email, "")
        .await?
        .into_iter()
        .map(|r| MyDataLine {
            code: r.code,
            when: r.start,
            service: format!("{} · {}", r.office, r.service),
            status: r.status.to_string(),
        })
        .collect();
    let p = MyDataPage {
        token: Some(token),
        email,
        lines,
        erased: o.cancellati,
        ..page(&ui)
    };
    ui.page(StatusCode::OK, p)
}

async fn download_as(st: AppState, ui: Ui, token: String, format: Format) -> Result<Response> {
    let Some(email) = requested(&st, &token).await? else {
        return expired(ui);
    };
    file(&records(&st, &email, "").await?, format, "i-miei-dati")
}

async fn erase(Link(st, ui, token): Link, CsrfForm(f): CsrfForm<EraseForm>) -> Result<Response> {
    let Some(email) = requested(&st, &token).await? else {
        return expired(ui);
    };
    if f.conferma.as_deref() != Some("1") {
        return Err(invalid(
            "spunta la conferma: la cancellazione non si può annullare",
        ));
    }
    let ids = st.store.find_person(&email, "").await?;
    let now = st.now();
    let entry = booking::audit::Entry::by_person(
        "dati_cancellati",
        format!("{} appuntamenti, su richiesta della persona", ids.len()),
        now,
    );
    let n = st
        .store
        .erase_person(&ids, (&email, ""), &entry, now)
        .await?;
    Ok((
        ui.jar,
        Redirect::to(&format!("/i-miei-dati/{token}?cancellati={n}")),
    )
        .into_response())
}
