//! The waitlist (issue 17): on a service's page, "no time that suits you?" leads to a form
//! (names, email, the fiscal code where the service asks for it, the modes and weekdays one can
//! do, consent); the email's link confirms the place, shows it, and leaves the list. Seats go to
//! the people waiting in `booking::store::waitlist`. The form's answer is the same whether or
//! not the address was on the list already.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use booking::store::waitlist::WaitlistRequest;
use booking::token::Purpose;
use booking::{Contact, Mode, ModeSet};
use chrono::Weekday;
use serde::Deserialize;

use crate::error::{AppError, Result};
use crate::extract::{CsrfForm, Id, Link, NoFields, Param, Visitor};
use crate::state::AppState;
use crate::views::{Choice, WaitlistPage, WaitlistPlacePage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/servizi/{id}/lista-attesa", get(show_form).post(submit))
        .route("/lista-attesa/{token}", get(show_place).post(confirm))
        .route("/lista-attesa/{token}/esci", post(leave))
}

/// The weekdays a person may choose (offices do not open at weekends).
const DAYS: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct WaitForm {
    nome: String,
    cognome: String,
    email: String,
    codice_fiscale: String,
    modalita: Vec<String>,
    giorni: Vec<String>,
    /// Only this day (YYYY-MM-DD), optional.
    giorno: String,
    consenso: Option<String>,
}

async fn published(st: &AppState, id: i64) -> Result<booking::Service> {
    let s = st.store.service(id).await.map_err(|_| AppError::NotFound)?;
    let o = st.store.office(s.office_id).await?;
    if !s.published || s.login_required || o.archived {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

fn page(
    ui: &crate::extract::Ui,
    s: &booking::Service,
    f: &WaitForm,
    errors: Vec<String>,
    sent: bool,
) -> WaitlistPage {
    let l = ui.l;
    WaitlistPage {
        l,
        csrf: ui.csrf.clone(),
        service_id: s.id,
        service: s.title.clone(),
        fiscal_code: s.fiscal_code_required,
        giorno: f.giorno.clone(),
        nome: f.nome.clone(),
        cognome: f.cognome.clone(),
        email: f.email.clone(),
        codice_fiscale: f.codice_fiscale.clone(),
        modes: s
            .modes
            .modes()
            .into_iter()
            .map(|m| Choice {
                value: m.code().into(),
                label: m.label(l).into(),
                checked: f.modalita.is_empty() || f.modalita.iter().any(|x| x == m.code()),
            })
            .collect(),
        days: DAYS
            .iter()
            .map(|d| Choice {
                value: d.num_days_from_monday().to_string(),
                label: l.weekday(d.num_days_from_monday() as usize).into(),
                checked: f.giorni.is_empty()
                    || f.giorni.contains(&d.num_days_from_monday().to_string()),
            })
            .collect(),
        errors,
        sent,
        consent: f.consenso.is_some(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Sent {
    inviata: Option<String>,
}

async fn show_form(
    Visitor(st, ui): Visitor,
    Param(Id(id)): Param<Id>,
    axum::extract::Query(q): axum::extract::Query<Sent>,
) -> Result<Response> {
    let s = published(&st, id).await?;
    let p = page(&ui, &s, &WaitForm::default(), vec![], q.inviata.is_some());
    ui.page(StatusCode::OK, p)
}

async fn submit(
    Visitor(st, ui): Visitor,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<WaitForm>,
) -> Result<Response> {
    let s = published(&st, id).await?;
    let l = ui.l;
    let mut errors = Vec::new();
    let line = |v: &str, label: &str, errors: &mut Vec<String>| {
        let v = v.trim();
        if v.is_empty()
            || v.chars().count() > 100
            || !v.chars().all(booking::validate::allowed_in_line)
        {
            errors.push(format!(
                "{}: {}",
                label,
                l.t("obbligatorio, fino a 100 caratteri, senza caratteri di controllo.")
            ));
        }
        v.to_string()
    };
    let given = line(&f.nome, l.t("Nome"), &mut errors);
    let family = line(&f.cognome, l.t("Cognome"), &mut errors);
    let email = f.email.trim().to_string();
    if !booking::validate::valid_email(&email) {
        errors.push(crate::error::bad_email(l));
    }
    let fiscal = booking::fiscal::normalise(&f.codice_fiscale);
    if s.fiscal_code_required && booking::fiscal::person(&fiscal).is_none() {
        errors.push(
            l.t("Codice fiscale: serve quello valido della persona che si presenterà.")
                .into(),
        );
    }
    let modes: Vec<Mode> = f.modalita.iter().filter_map(|m| Mode::parse(m)).collect();
    let modes = ModeSet::of(&modes);
    if modes.0 & s.modes.0 == 0 || f.modalita.iter().any(|m| Mode::parse(m).is_none()) {
        errors.push(
            l.t("Modalità: scegline almeno una tra quelle proposte.")
                .into(),
        );
    }
    // One day the person wants, if any: one the calendar lets citizens book.
    let rules = st.store.calendar_rules(s.calendar_id).await?;
    let (first, last) = booking::slots::bookable_days(&rules, st.now());
    let only_day = match f.giorno.trim() {
        "" => None,
        d => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) if (first..=last).contains(&d) => Some(d),
            _ => {
                errors.push(format!(
                    "{} {} {} {}.",
                    l.t("Giorno: una data tra quelle prenotabili, dal"),
                    l.day(first),
                    l.t("al"),
                    l.day(last)
                ));
                None
            }
        },
    };
    let mut days: Vec<Weekday> = DAYS
        .iter()
        .filter(|d| f.giorni.contains(&d.num_days_from_monday().to_string()))
        .copied()
        .collect();
    if let Some(d) = only_day {
        days = vec![chrono::Datelike::weekday(&d)];
    } else if days.is_empty() || days.len() != f.giorni.len() {
        errors.push(
            l.t("Giorni: scegline almeno uno tra quelli proposti.")
                .into(),
        );
    }
    if f.consenso.is_none() {
        errors.push(
            l.t("Consenso: devi acconsentire al trattamento dei dati per entrare in lista.")
                .into(),
        );
    }
    if !errors.is_empty() {
        let mut shown = f.clone();
        shown.email = shown.email.chars().take(254).collect();
        let p = page(&ui, &s, &shown, errors, false);
        return ui.page(StatusCode::UNPROCESSABLE_ENTITY, p);
    }
    let r = WaitlistRequest {
        service_id: s.id,
        contact: Contact {
            given_name: given,
            family_name: family,
            email,
            fiscal_code: if s.fiscal_code_required {
                fiscal
            } else {
                String::new()
            },
            ..Contact::default()
        },
        modes,
        weekdays: booking::slots::WeekdaySet::of(&days),
        only_day,
        language: l,
        consent_version: Some(ui.town.privacy_notice.version.clone()),
    };
    let joined = st.store.join_waitlist(&r, &ui.town.name, st.now()).await?;
    tracing::info!(joined, "waitlist request");
    Ok((
        ui.jar,
        Redirect::to(&format!("/servizi/{}/lista-attesa?inviata=1", s.id)),
    )
        .into_response())
}

async fn place(st: &AppState, token: &str) -> Result<booking::store::waitlist::WaitEntry> {
    let id = st
        .signer
        .verify(Purpose::Waitlist, token)
        .map_err(|_| AppError::BadLink)?;
    Ok(st.store.waitlist_entry(id).await?)
}

async fn show_place(Link(st, ui, token): Link) -> Result<Response> {
    let e = place(&st, &token).await?;
    let s = st.store.service(e.request.service_id).await?;
    let l = ui.l;
    let p = WaitlistPlacePage {
        l,
        csrf: ui.csrf.clone(),
        token,
        service: s.title,
        status: e.status.clone(),
        until: l.day(e.expires_at.with_timezone(&st.tz).date_naive()),
    };
    ui.page(StatusCode::OK, p)
}

async fn confirm(Link(st, ui, token): Link, _: CsrfForm<NoFields>) -> Result<Response> {
    let e = place(&st, &token).await?;
    st.store.confirm_waitlist(e.id, st.now()).await?;
    Ok((ui.jar, Redirect::to(&format!("/lista-attesa/{token}"))).into_response())
}

async fn leave(Link(st, ui, token): Link, _: CsrfForm<NoFields>) -> Result<Response> {
    let e = place(&st, &token).await?;
    st.store.leave_waitlist(e.id).await?;
    Ok((ui.jar, Redirect::to(&format!("/lista-attesa/{token}"))).into_response())
}
