//! Booking on behalf of a caller (today too, any offered mode): confirmed at once, the citizen
//! gets the confirmation by email when there is one.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use booking::{Actor, Mode};
use chrono::NaiveDate;
use serde::Deserialize;

use super::agenda::{mode_list, office_slots};
use super::context::*;
use crate::error::{booking_message, AppError, Result};
use crate::extract::{parse_day, parse_id};
use crate::state::AppState;
use crate::views::console::*;
use booking::validate::{self, BookingForm};

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/ufficio/prenota",
        get(show_booking_form).post(submit_booking),
    )
}

// ------------------------------------------------------------------ booking on behalf

#[derive(Deserialize, Default)]
pub struct BookQuery {
    #[serde(default)]
    servizio: String,
    #[serde(default)]
    giorno: String,
}

async fn render_book(
    st: &AppState,
    s: Staff,
    service_id: Option<i64>,
    day: NaiveDate,
    form: &BookingForm,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<Response> {
    let l = s.l();
    let services = s.service_choices(st, service_id).await?;
    let mut slots = Vec::new();
    let mut modes = Vec::new();
    let mut service_title = String::new();
    if let Some(id) = service_id {
        let sv = st.store.service(id).await?;
        s.see(sv.office_id)?;
        service_title = sv.title.clone();
        for x in office_slots(st, &sv, day, day).await? {
            slots.push(Choice {
                value: x.start.timestamp().to_string(),
                label: format!(
                    "{} · {} · {} {}",
                    l.time(x.start, st.tz),
                    mode_list(l, x.modes),
                    x.free(),
                    l.t("liberi")
                ),
                checked: form.start == x.start.timestamp().to_string(),
            });
        }
        modes = Choice::modes(l, sv.modes.modes(), |m| {
            form.mode == m.code() || (form.mode.is_empty() && m == Mode::Phone)
        });
    }
    let page = BookOnBehalfPage {
        frame: s.frame("prenota"),
        services,
        service: service_id.map(|i| i.to_string()).unwrap_or_default(),
        service_title,
        day: day.to_string(),
        today: today(st).to_string(),
        day_label: l.day(day),
        slots,
        modes,
        contact: form.contact.clone(),
        errors,
    };
    s.ui.page(status, page)
}

pub async fn show_booking_form(
    Console(st, s): Console,
    Query(q): Query<BookQuery>,
) -> Result<Response> {
    let day = parse_day(&q.giorno).unwrap_or_else(|| today(&st));
    let service = opt_id(&q.servizio)?;
    render_book(
        &st,
        s,
        service,
        day,
        &BookingForm::default(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// Booking for a caller: the service and day shown, and the citizen's booking form (the caller
/// agreed on the phone: the operator ticks the consent box for them).
#[derive(Deserialize)]
pub struct CallerBookingForm {
    #[serde(default)]
    servizio: String,
    #[serde(default)]
    giorno: String,
    #[serde(flatten)]
    booking: BookingForm,
}

pub async fn submit_booking(Post(st, s, f): Post<CallerBookingForm>) -> Result<Response> {
    let l = s.l();
    let service_id = parse_id(&f.servizio)?;
    let service = st.store.service(service_id).await?;
    s.see(service.office_id)?;
    let day = parse_day(&f.giorno).unwrap_or_else(|| today(&st));
    // The office books with the calendar's proposed operator.
    let form = BookingForm {
        operator: String::new(),
        ..f.booking
    };
    let valid = match validate::validate_for_office(&service, &form) {
        // The operator ticked the consent the caller gave to the notice the site shows.
        Ok(v) => validate::ValidBooking {
            consent_version: Some(s.ui.town.privacy_notice.version.clone()),
            ..v
        },
        Err(errors) => {
            let list = errors
                .0
                .iter()
                .map(|(field, p)| format!("{}: {}", field_label(l, field), p.message(l)))
                .collect();
            return render_book(
                &st,
                s,
                Some(service_id),
                day,
                &form,
                list,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let entry = s.audit(
        "prenotato",
        "appointment",
        None,
        Some(service.office_id),
        valid.mode.label(l),
        &st,
    );
    match st
        .store
        .book(&valid, Actor::Office, Some(&entry), st.now())
        .await
    {
        Ok(a) => Ok((
            s.ui.jar,
            Redirect::to(&format!("/ufficio/appuntamenti/{}?esito=prenotato", a.id)),
        )
            .into_response()),
        Err(e) if crate::error::is_refusal(&e) => {
            let message = l.text(&booking_message(&e));
            let status = AppError::Booking(e).describe().0;
            render_book(&st, s, Some(service_id), day, &form, vec![message], status).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller form's field, as its label says it.
fn field_label(l: crate::i18n::Lang, field: &str) -> &'static str {
    match field {
        "start" => l.t("Orario"),
        "mode" => l.t("Modalità"),
        "operator" => l.t("Operatore"),
        "given_name" => l.t("Nome"),
        "family_name" => l.t("Cognome"),
        "email" => "Email",
        "phone" => l.t("Telefono"),
        "fiscal_code" => l.t("Codice fiscale"),
        "reason" => l.t("Motivo"),
        "consent" => l.t("Consenso"),
        _ => "",
    }
}
