//! Booking a slot: the form for a chosen time (with the slot's own modes and operators) and its
//! submission, which stores a pending appointment and sends the verification email.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use booking::token::Purpose;
use booking::validate::{self, BookingForm, FieldErrors};
use booking::{Actor, Service};
use chrono::Duration;
use serde::Deserialize;

use super::catalogue::published_service;
use super::login::logged_in;
use crate::error::{booking_message, is_refusal, AppError, Result};
use crate::extract::Visitor;
use crate::extract::{urlencode, CsrfForm, Id, Param, Ui};
use crate::pow::Refusal;
use crate::state::AppState;
use crate::views::*;
use booking::citizens::Citizen;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/servizi/{id}/prenota",
            get(show_booking_form).post(submit_booking),
        )
        .route("/antiabuso/sfida", get(pow_challenge))
}

/// A fresh proof-of-work challenge for the booking form's widget.
async fn pow_challenge(State(st): State<AppState>) -> Result<Response> {
    let pow = st.pow.as_ref().ok_or(AppError::NotFound)?;
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(pow.challenge()),
    )
        .into_response())
}

/// The booking form as sent: the citizen's fields and, when asked for, the proof of work.
#[derive(Deserialize, Default)]
struct Submission {
    #[serde(flatten)]
    form: BookingForm,
    #[serde(default)]
    altcha: String,
}

/// The message for a proof of work that is refused.
fn pow_message(l: crate::i18n::Lang, r: Refusal) -> String {
    match r {
        Refusal::Missing => l.t("Manca la verifica anti-abuso: attendi che la casella risulti verificata, poi invia di nuovo il modulo (serve JavaScript attivo)."),
        Refusal::Invalid => l.t("La verifica anti-abuso non è valida: attendi che la casella risulti verificata e invia di nuovo il modulo."),
        Refusal::Expired => l.t("La verifica anti-abuso è scaduta: attendi che la casella risulti verificata e invia di nuovo il modulo."),
        Refusal::Replayed => l.t("Questa verifica anti-abuso è già stata usata: attendi che la casella risulti verificata e invia di nuovo il modulo."),
    }
    .to_string()
}

#[derive(Deserialize)]
struct StartQuery {
    inizio: Option<String>,
}

struct FormState<'a> {
    form: &'a BookingForm,
    /// With an identity provider: who is logged in (`None`: nobody).
    citizen: Option<Option<&'a Citizen>>,
    errors: &'a FieldErrors,
    alert: Option<String>,
}

async fn render_book(
    st: &AppState,
    ui: Ui,
    s: &Service,
    start: i64,
    fs: FormState<'_>,
    status: StatusCode,
) -> Result<Response> {
    let l = ui.l;
    let now = st.now();
    let o = st.store.office(s.office_id).await?;
    // The slot's own modes (one day of rules, not the whole horizon).
    let rules = st.store.calendar_rules(s.calendar_id).await?;
    let slot = chrono::DateTime::from_timestamp(start, 0)
        .and_then(|t| booking::slots::bookable(&rules, t, now));
    let when = chrono::DateTime::from_timestamp(start, 0)
        .map(|t| l.when(t, st.tz))
        .unwrap_or_default();
    let modes = slot
        .as_ref()
        .map_or(s.modes, |x| x.modes.intersect(s.modes))
        .modes();
    let only_one = modes.len() == 1;
    let modes = Choice::modes(l, modes, |m| only_one || fs.form.mode == m.code());
    let operators = st.store.operators_of(s.calendar_id).await?;
    let operators = operators
        .iter()
        .enumerate()
        .map(|(i, op)| Choice {
            value: op.id.to_string(),
            label: if i == 0 {
                format!("{} ({})", op.name, l.t("proposto"))
            } else {
                op.name.clone()
            },
            checked: fs.form.operator == op.id.to_string(),
        })
        .collect();
    let problem = |f: &str| fs.errors.get(f).map(|p| p.message(l));
    let field = |name: &str, value: &str| Field {
        value: value.to_string(),
        error: problem(name),
    };
    let page = BookPage {
        l,
        csrf: ui.csrf.clone(),
        service_id: s.id,
        office_name: o.name.clone(),
        service_title: s.title.clone(),
        max_minutes: s.max_minutes,
        fiscal_code_required: s.fiscal_code_required,
        start,
        when,
        modes,
        operators,
        given_name: field("given_name", &fs.form.contact.given_name),
        family_name: field("family_name", &fs.form.contact.family_name),
        email: field("email", &fs.form.contact.email),
        phone: field("phone", &fs.form.contact.phone),
        fiscal_code: field("fiscal_code", &fs.form.contact.fiscal_code),
        reason: field("reason", &fs.form.contact.reason),
        consent_checked: fs.form.consent.is_some(),
        consent_error: problem("consent"),
        mode_error: problem("mode"),
        operator_error: problem("operator"),
        alert: fs.alert,
        error_count: fs.errors.0.len(),
        pow: st.pow.is_some(),
        login_required: s.login_required,
        login_needed: s.login_required && fs.citizen.flatten().is_none(),
        login: fs.citizen.map(|c| LoginBox {
            name: c
                .map(|c| {
                    format!("{} {}", c.given_name, c.family_name)
                        .trim()
                        .to_string()
                })
                .unwrap_or_default(),
            url: format!(
                "/accedi?dopo={}",
                urlencode(&format!("/servizi/{}/prenota?inizio={start}", s.id))
            ),
        }),
    };
    ui.page(status, page)
}

async fn show_booking_form(
    Visitor(st, ui): Visitor,
    Param(Id(id)): Param<Id>,
    Query(q): Query<StartQuery>,
) -> Result<Response> {
    let s = published_service(&st, id).await?;
    let start = q
        .inizio
        .as_deref()
        .and_then(|x| x.parse::<i64>().ok())
        .ok_or(AppError::BadRequest(
            "manca l'orario scelto (parametro inizio)".into(),
        ))?;
    let now = st.now();
    let rules = st.store.calendar_rules(s.calendar_id).await?;
    let slot = chrono::DateTime::from_timestamp(start, 0)
        .and_then(|t| booking::slots::bookable(&rules, t, now))
        .filter(|x| !x.modes.intersect(s.modes).is_empty())
        .ok_or(booking::Error::SlotNotBookable)?;
    let taken = st
        .store
        .taken(s.calendar_id, slot.start, slot.start + Duration::seconds(1))
        .await?;
    if taken.get(&slot.start).copied().unwrap_or(0) >= slot.capacity {
        return Err(booking::Error::SlotTaken.into());
    }
    let citizen = logged_in(&st, &ui).await?;
    let mut prefilled = BookingForm::default();
    if let Some(c) = &citizen {
        prefilled.contact.given_name = c.given_name.clone();
        prefilled.contact.family_name = c.family_name.clone();
        prefilled.contact.email = c.email.clone();
        prefilled.contact.fiscal_code = c.fiscal_code.clone();
    }
    let fs = FormState {
        form: &prefilled,
        citizen: st.oidc.as_ref().map(|_| citizen.as_ref()),
        errors: &FieldErrors::default(),
        alert: None,
    };
    render_book(&st, ui, &s, start, fs, StatusCode::OK).await
}

async fn submit_booking(
    Visitor(st, ui): Visitor,
    Param(Id(id)): Param<Id>,
    CsrfForm(Submission { form: f, altcha }): CsrfForm<Submission>,
) -> Result<Response> {
    let s = published_service(&st, id).await?;
    let start = f.start.trim().parse::<i64>().unwrap_or(0);
    let citizen = logged_in(&st, &ui).await?;
    let shown = st.oidc.as_ref().map(|_| citizen.as_ref());
    // A service that needs the login books the person the provider vouched for.
    let mut f = f;
    if s.login_required {
        let Some(c) = &citizen else {
            tracing::info!(service = s.id, "booking refused: login required");
            let fs = FormState {
                form: &f,
                citizen: shown,
                errors: &FieldErrors::default(),
                alert: None,
            };
            return render_book(&st, ui, &s, start, fs, StatusCode::FORBIDDEN).await;
        };
        f.contact.given_name = c.given_name.clone();
        f.contact.family_name = c.family_name.clone();
        f.contact.fiscal_code = c.fiscal_code.clone();
    }
    // The proof of work first, and spent even if the form then has errors: a script cannot
    // try field values for free.
    if let Some(pow) = &st.pow {
        if let Err(r) = pow.spend(&altcha) {
            tracing::info!(refusal = ?r, "booking refused: proof of work");
            let alert = Some(pow_message(ui.l, r));
            let fs = FormState {
                form: &f,
                citizen: shown,
                errors: &FieldErrors::default(),
                alert,
            };
            return render_book(&st, ui, &s, start, fs, StatusCode::BAD_REQUEST).await;
        }
    }
    let valid = match validate::validate(&s, &f) {
        Ok(v) => validate::ValidBooking {
            consent_version: Some(ui.town.privacy_notice.version.clone()),
            language: ui.l,
            // The provider vouched for this very address: no verification email.
            email_verified: citizen.as_ref().is_some_and(|c| {
                c.email_verified && c.email.eq_ignore_ascii_case(v.contact.email.trim())
            }),
            ..v
        },
        Err(errors) => {
            let fs = FormState {
                form: &f,
                citizen: shown,
                errors: &errors,
                alert: None,
            };
            return render_book(&st, ui, &s, start, fs, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match st.store.book(&valid, Actor::Citizen, None, st.now()).await {
        Ok(a) => {
            tracing::info!(
                appointment = a.id,
                service = s.id,
                verified = valid.email_verified,
                "booked"
            );
            // Until the email is verified, the booker holds no link that acts on the booking;
            // one the provider vouched for is verified already.
            let to = if valid.email_verified {
                format!("/prenotazione/{}", st.signer.sign(Purpose::Manage, a.id))
            } else {
                format!("/inviata/{}", st.signer.sign(Purpose::Sent, a.id))
            };
            Ok((ui.jar, Redirect::to(&to)).into_response())
        }
        Err(e) if is_refusal(&e) => {
            let alert = Some(ui.l.text(&booking_message(&e)));
            let status = AppError::Booking(e).describe().0;
            let fs = FormState {
                form: &f,
                citizen: shown,
                errors: &FieldErrors::default(),
                alert,
            };
            render_book(&st, ui, &s, start, fs, status).await
        }
        Err(e) => Err(e.into()),
    }
}
