//! The router and its handlers: the citizen's path from the office list to a confirmed
//! appointment, the links in the emails (verify, manage, cancel, move, receipt, join), the
//! developer's mailbox and a small JSON API of free slots.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use booking::slots::Slot;
use booking::token::Purpose;
use booking::validate::{self, BookingForm, FieldErrors};
use booking::{Actor, Appointment, Mode, Service, Status};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;

use crate::error::{booking_messages, AppError, Result};
use crate::i18n::Lang;
use crate::views::*;
use crate::AppState;

/// Largest request body accepted: forms are small, anything bigger is refused before parsing.
pub const MAX_BODY: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(offices))
        .route("/uffici/{id}", get(office))
        .route("/servizi/{id}", get(service))
        .route("/servizi/{id}/prenota", get(book_form).post(book_submit))
        .route("/conferma/{token}", get(verify_page).post(verify_submit))
        .route("/prenotazione/{token}", get(manage))
        .route("/prenotazione/{token}/inviata", get(sent))
        .route(
            "/prenotazione/{token}/annulla",
            get(cancel_page).post(cancel_submit),
        )
        .route(
            "/prenotazione/{token}/sposta",
            get(move_page).post(move_submit),
        )
        .route("/prenotazione/{token}/ricevuta", get(receipt))
        .route("/stanza/{token}", get(crate::room::page))
        .route("/ws/stanza/{code}", get(crate::room::socket))
        .route("/api/servizi/{id}/orari", get(api_slots))
        .route("/posta", get(mailbox))
        .route("/posta/{id}", get(mail))
        .route("/posta/{id}/invito.ics", get(mail_ics))
        .route("/lingua/{code}", get(set_lang))
        .route("/static/{*path}", get(crate::assets::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(crate::media::metrics))
        .merge(crate::console::router())
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ------------------------------------------------------------------ request context

/// The page language and the CSRF token of this browser (double-submit: a random value in a
/// SameSite=Strict, HttpOnly cookie that every form must echo).
pub struct Ui {
    pub l: Lang,
    pub csrf: String,
    /// Whether the browser sent the CSRF cookie (a fresh one cannot validate a form).
    had_csrf: bool,
    pub jar: CookieJar,
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Infallible> {
        let jar = CookieJar::from_headers(&parts.headers);
        let l = jar
            .get("lang")
            .and_then(|c| Lang::from_code(c.value()))
            .unwrap_or_default();
        match jar.get("csrf").map(|c| c.value().to_string()) {
            Some(v) if v.len() == 43 => Ok(Ui {
                l,
                csrf: v,
                had_csrf: true,
                jar,
            }),
            _ => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                let v = base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    bytes,
                );
                let cookie = Cookie::build(("csrf", v.clone()))
                    .path("/")
                    .http_only(true)
                    .secure(parts.extensions.get::<crate::tls::Https>().is_some())
                    .same_site(SameSite::Strict)
                    .build();
                Ok(Ui {
                    l,
                    csrf: v,
                    had_csrf: false,
                    jar: jar.add(cookie),
                })
            }
        }
    }
}

impl Ui {
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<()> {
        use subtle::ConstantTimeEq;
        if self.had_csrf
            && sent.len() == self.csrf.len()
            && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes()))
        {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "il modulo è scaduto o non proviene da questo sito: ricarica la pagina e riprova",
            ))
        }
    }

    pub(crate) fn page(self, status: StatusCode, t: impl Template) -> Result<Response> {
        Ok((status, self.jar, Html(t.render()?)).into_response())
    }
}

pub(crate) fn parse_id(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or(AppError::NotFound)
}

pub(crate) fn form<T>(f: std::result::Result<Form<T>, FormRejection>) -> Result<T> {
    f.map(|Form(t)| t).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge
        } else {
            AppError::BadRequest(e.body_text())
        }
    })
}

// ------------------------------------------------------------------ catalogue

async fn office_card(st: &AppState, o: &booking::Office) -> Result<OfficeCard> {
    let now = st.now();
    let mut open_now = false;
    for cal in st.store.calendars_of(o.id).await? {
        open_now |= booking::slots::is_open_at(&st.store.calendar_rules(cal).await?, now);
    }
    Ok(OfficeCard {
        id: o.id,
        name: o.name.clone(),
        department: o.department.clone(),
        email: o.email.clone(),
        phone: o.phone.clone(),
        hours: o.hours_text.clone(),
        open_now,
    })
}

fn modes_text(l: Lang, modes: &[Mode]) -> String {
    modes
        .iter()
        .map(|m| l.mode(*m))
        .collect::<Vec<_>>()
        .join(", ")
}

fn service_card(l: Lang, s: &Service) -> ServiceCard {
    ServiceCard {
        id: s.id,
        title: s.title.clone(),
        description: s.description.clone(),
        max_minutes: s.max_minutes,
        modes: modes_text(l, &s.modes.modes()),
    }
}

async fn offices(State(st): State<AppState>, ui: Ui) -> Result<Response> {
    let mut cards = Vec::new();
    for o in st.store.offices().await? {
        cards.push(office_card(&st, &o).await?);
    }
    let l = ui.l;
    ui.page(StatusCode::OK, OfficesPage { l, offices: cards })
}

async fn office(State(st): State<AppState>, ui: Ui, Path(id): Path<String>) -> Result<Response> {
    let o = st.store.office(parse_id(&id)?).await?;
    let services = st.store.services_of(o.id, true).await?;
    let l = ui.l;
    let page = OfficePage {
        l,
        office: office_card(&st, &o).await?,
        address: o.address.clone(),
        services: services.iter().map(|s| service_card(l, s)).collect(),
    };
    ui.page(StatusCode::OK, page)
}

fn day_views(st: &AppState, l: Lang, slots: &[Slot]) -> Vec<DayView> {
    let mut days: BTreeMap<NaiveDate, Vec<SlotView>> = BTreeMap::new();
    for s in slots {
        let time = l.time(s.start, st.tz);
        let modes = modes_text(l, &s.modes.modes());
        let free = s.free();
        let label = format!(
            "{}, {} {} · {} · {} {}",
            l.day(s.local_day),
            l.t("ore", "at"),
            time,
            modes,
            free,
            if free == 1 {
                l.t("posto libero", "place free")
            } else {
                l.t("posti liberi", "places free")
            }
        );
        days.entry(s.local_day).or_default().push(SlotView {
            start: s.start.timestamp(),
            time,
            modes,
            free,
            label,
        });
    }
    days.into_iter()
        .map(|(d, slots)| DayView {
            label: l.day(d),
            slots,
        })
        .collect()
}

fn monday_of(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

async fn published_service(st: &AppState, id: &str) -> Result<Service> {
    let s = st.store.service(parse_id(id)?).await?;
    if !s.published {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

#[derive(Deserialize)]
struct WeekQuery {
    settimana: Option<String>,
}

async fn service(
    State(st): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(q): Query<WeekQuery>,
) -> Result<Response> {
    let s = published_service(&st, &id).await?;
    let o = st.store.office(s.office_id).await?;
    let now = st.now();
    let rules = st.store.calendar_rules(s.calendar_id).await?;
    let (first, last) = booking::slots::bookable_days(&rules, now);
    let free = st.store.free_slots(&s, now).await?;
    let first_week = monday_of(first);
    // Unless a week is asked for, the first week with a free time: on a Friday evening the
    // citizen sees next week's times, not an empty weekend.
    let week = q
        .settimana
        .as_deref()
        .and_then(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok())
        .map(monday_of)
        .filter(|w| *w >= first_week && *w <= last)
        .or_else(|| free.first().map(|x| monday_of(x.local_day)))
        .unwrap_or(first_week);
    let week_end = week + Duration::days(6);
    let in_week: Vec<Slot> = free
        .iter()
        .filter(|x| x.local_day >= week && x.local_day <= week_end)
        .cloned()
        .collect();
    let next_free = free
        .iter()
        .find(|x| x.local_day > week_end)
        .map(|x| monday_of(x.local_day).to_string());
    let l = ui.l;
    let page = ServicePage {
        l,
        office_id: o.id,
        office_name: o.name.clone(),
        service: service_card(l, &s),
        instructions: s.instructions.clone(),
        documents: s.document_list().iter().map(|d| d.to_string()).collect(),
        days: day_views(&st, l, &in_week),
        week_label: format!(
            "{} {} {} {}",
            l.t("Dal", "From"),
            l.day(week.max(first)),
            l.t("al", "to"),
            l.day(week_end.min(last))
        ),
        prev_week: (week > first_week).then(|| (week - Duration::days(7)).to_string()),
        next_week: (week_end < last).then(|| (week + Duration::days(7)).to_string()),
        next_free,
    };
    ui.page(StatusCode::OK, page)
}

#[derive(serde::Serialize)]
struct ApiSlot {
    start: String,
    start_ts: i64,
    end: String,
    local_day: String,
    local_time: String,
    modes: Vec<Mode>,
    free: u32,
}

async fn api_slots(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let s = published_service(&st, &id).await?;
    let free = st.store.free_slots(&s, st.now()).await?;
    let out: Vec<ApiSlot> = free
        .iter()
        .map(|x| ApiSlot {
            start: x.start.to_rfc3339(),
            start_ts: x.start.timestamp(),
            end: x.end.to_rfc3339(),
            local_day: x.local_day.to_string(),
            local_time: x.local_time.format("%H:%M").to_string(),
            modes: x.modes.modes(),
            free: x.free(),
        })
        .collect();
    Ok(Json(out).into_response())
}

// ------------------------------------------------------------------ booking

#[derive(Deserialize)]
struct StartQuery {
    inizio: Option<String>,
}

#[derive(Deserialize)]
struct BookSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: BookingForm,
}

struct FormState<'a> {
    form: &'a BookingForm,
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
    let modes = modes
        .into_iter()
        .map(|m| Choice {
            value: m.code().into(),
            label: l.mode(m).into(),
            checked: only_one || fs.form.mode == m.code(),
        })
        .collect();
    let operators = st.store.operators_of(s.calendar_id).await?;
    let operators = operators
        .iter()
        .enumerate()
        .map(|(i, op)| Choice {
            value: op.id.to_string(),
            label: if i == 0 {
                format!("{} ({})", op.name, l.t("proposto", "proposed"))
            } else {
                op.name.clone()
            },
            checked: fs.form.operator == op.id.to_string(),
        })
        .collect();
    let problem = |f: &str| {
        fs.errors
            .get(f)
            .map(|p| if l.is_en() { p.en() } else { p.it() })
    };
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
        start,
        when,
        modes,
        operators,
        given_name: field("given_name", &fs.form.given_name),
        family_name: field("family_name", &fs.form.family_name),
        email: field("email", &fs.form.email),
        phone: field("phone", &fs.form.phone),
        fiscal_code: field("fiscal_code", &fs.form.fiscal_code),
        reason: field("reason", &fs.form.reason),
        consent_checked: fs.form.consent.is_some(),
        consent_error: problem("consent"),
        mode_error: problem("mode"),
        operator_error: problem("operator"),
        alert: fs.alert,
        error_count: fs.errors.0.len(),
    };
    ui.page(status, page)
}

async fn book_form(
    State(st): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response> {
    let s = published_service(&st, &id).await?;
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
    let empty = BookingForm::default();
    let fs = FormState {
        form: &empty,
        errors: &FieldErrors::default(),
        alert: None,
    };
    render_book(&st, ui, &s, start, fs, StatusCode::OK).await
}

async fn book_submit(
    State(st): State<AppState>,
    ui: Ui,
    Path(id): Path<String>,
    f: std::result::Result<Form<BookSubmit>, FormRejection>,
) -> Result<Response> {
    let f = form(f)?;
    ui.check_csrf(&f.csrf)?;
    let s = published_service(&st, &id).await?;
    let start = f.form.start.trim().parse::<i64>().unwrap_or(0);
    let valid = match validate::validate(s.id, &f.form) {
        Ok(v) => v,
        Err(errors) => {
            let fs = FormState {
                form: &f.form,
                errors: &errors,
                alert: None,
            };
            return render_book(&st, ui, &s, start, fs, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match st.store.book(&valid, Actor::Citizen, st.now()).await {
        Ok(a) => {
            st.kick.notify_one();
            tracing::info!(
                appointment = a.id,
                service = s.id,
                "booked, waiting for email verification"
            );
            let token = st.signer.sign(Purpose::Manage, a.id);
            Ok((
                ui.jar,
                Redirect::to(&format!("/prenotazione/{token}/inviata")),
            )
                .into_response())
        }
        Err(e) if is_refusal(&e) => {
            let (it, en) = booking_messages(&e);
            let status = AppError::Booking(e).describe().0;
            let alert = Some(if ui.l.is_en() { en } else { it });
            let fs = FormState {
                form: &f.form,
                errors: &FieldErrors::default(),
                alert,
            };
            render_book(&st, ui, &s, start, fs, status).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn is_refusal(e: &booking::Error) -> bool {
    use booking::Error as B;
    matches!(
        e,
        B::SlotTaken
            | B::SlotNotBookable
            | B::ModeNotOffered
            | B::UnknownOperator
            | B::AlreadyBookedForService
            | B::TooManyActive(_)
            | B::SameSlot
    )
}

// ------------------------------------------------------------------ links in the emails

pub(crate) async fn appointment_view(
    st: &AppState,
    l: Lang,
    a: &Appointment,
) -> Result<AppointmentView> {
    let o = st.store.office(a.office_id).await?;
    let s = st.store.service(a.service_id).await?;
    let operator = match a.operator_id {
        Some(id) => st
            .store
            .operator(id)
            .await
            .map(|op| op.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(AppointmentView {
        code: a.code.clone(),
        office: o.name.clone(),
        office_email: o.email.clone(),
        office_phone: o.phone.clone(),
        address: if a.mode == Mode::InPerson {
            o.address.clone()
        } else {
            String::new()
        },
        service: s.title.clone(),
        when: l.when(a.start, st.tz),
        max_minutes: s.max_minutes,
        mode: l.mode(a.mode).into(),
        is_video: a.mode == Mode::Video,
        status: l.status(a.status).into(),
        active: a.status.is_active(),
        pending: a.status == Status::Pending,
        awaiting_approval: a.status == Status::AwaitingApproval,
        name: format!("{} {}", a.given_name, a.family_name),
        operator,
        documents: s.document_list().iter().map(|d| d.to_string()).collect(),
        instructions: s.instructions.clone(),
    })
}

async fn by_token(st: &AppState, purpose: Purpose, token: &str) -> Result<Appointment> {
    let id = st
        .signer
        .verify(purpose, token)
        .map_err(|_| AppError::BadLink)?;
    Ok(st.store.appointment(id).await?)
}

fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

async fn sent(State(st): State<AppState>, ui: Ui, Path(token): Path<String>) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let l = ui.l;
    let page = SentPage {
        l,
        masked_email: mask_email(&a.email),
        deadline: l.when(a.verify_deadline, st.tz),
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

async fn verify_page(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Verify, &token).await?;
    match a.status {
        Status::Pending if st.now() <= a.verify_deadline => {}
        Status::Pending => return Err(booking::Error::NotActive(Status::Expired).into()),
        Status::Confirmed | Status::AwaitingApproval => {
            let manage = st.signer.sign(Purpose::Manage, a.id);
            return Ok(Redirect::to(&format!("/prenotazione/{manage}")).into_response());
        }
        s => return Err(booking::Error::NotActive(s).into()),
    }
    let l = ui.l;
    let page = VerifyPage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn verify_submit(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
    f: std::result::Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response> {
    let f = form(f)?;
    ui.check_csrf(&f.csrf)?;
    let a = by_token(&st, Purpose::Verify, &token).await?;
    let a = st.store.verify(a.id, st.now()).await?;
    st.kick.notify_one();
    let manage = st.signer.sign(Purpose::Manage, a.id);
    let outcome = if a.status == Status::AwaitingApproval {
        "richiesta"
    } else {
        "confermata"
    };
    Ok((
        ui.jar,
        Redirect::to(&format!("/prenotazione/{manage}?esito={outcome}")),
    )
        .into_response())
}

#[derive(Deserialize)]
struct OutcomeQuery {
    esito: Option<String>,
}

async fn manage(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
    Query(q): Query<OutcomeQuery>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let l = ui.l;
    let notice = match q.esito.as_deref() {
        Some("confermata") => Some(l.t("Prenotazione confermata. Ti abbiamo inviato una email con il riepilogo e l'invito per il calendario.", "Booking confirmed. We have sent you an email with the summary and a calendar invitation.")),
        Some("richiesta") => Some(l.t("Email verificata: la richiesta è stata inviata all'ufficio.", "Email verified: the request has been sent to the office.")),
        Some("annullata") => Some(l.t("L'appuntamento è stato annullato. Ti abbiamo inviato una email di conferma.", "The appointment has been cancelled. We have sent you a confirmation email.")),
        Some("spostata") => Some(l.t("L'appuntamento è stato spostato. Ti abbiamo inviato l'invito aggiornato.", "The appointment has been moved. We have sent you the updated invitation.")),
        _ => None,
    }
    .map(str::to_string);
    let can_change = a.status.is_active() && a.end > st.now();
    let join_url = (a.mode == Mode::Video && a.status == Status::Confirmed)
        .then(|| format!("/stanza/{}", st.signer.sign(Purpose::RoomCitizen, a.id)));
    let page = ManagePage {
        l,
        token,
        a: appointment_view(&st, l, &a).await?,
        join_url,
        notice,
        can_change,
    };
    ui.page(StatusCode::OK, page)
}

async fn cancel_page(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    if !a.status.is_active() {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let l = ui.l;
    let page = CancelPage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

async fn cancel_submit(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
    f: std::result::Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response> {
    let f = form(f)?;
    ui.check_csrf(&f.csrf)?;
    let a = by_token(&st, Purpose::Manage, &token).await?;
    st.store.cancel(a.id, Actor::Citizen, "", st.now()).await?;
    st.kick.notify_one();
    tracing::info!(appointment = a.id, "cancelled by the citizen");
    staff::audit::record(
        st.store.pool(),
        &staff::audit::Entry::by_citizen("annullato_cittadino", a.id, a.office_id, "", st.now()),
    )
    .await?;
    Ok((
        ui.jar,
        Redirect::to(&format!("/prenotazione/{token}?esito=annullata")),
    )
        .into_response())
}

async fn render_move(
    st: &AppState,
    ui: Ui,
    token: String,
    a: &Appointment,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    if !a.status.is_active() {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let s = st.store.service(a.service_id).await?;
    let mut free = st.store.free_slots(&s, st.now()).await?;
    free.retain(|x| x.start != a.start);
    let l = ui.l;
    let page = MovePage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(st, l, a).await?,
        days: day_views(st, l, &free),
        alert,
    };
    ui.page(status, page)
}

async fn move_page(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    render_move(&st, ui, token, &a, None, StatusCode::OK).await
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    start: String,
}

async fn move_submit(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
    f: std::result::Result<Form<MoveForm>, FormRejection>,
) -> Result<Response> {
    let f = form(f)?;
    ui.check_csrf(&f.csrf)?;
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let Some(start) = f
        .start
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    else {
        let alert = Some(validate::Problem::BadSlot.it());
        return render_move(&st, ui, token, &a, alert, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match st
        .store
        .reschedule(a.id, start, None, Actor::Citizen, "", st.now())
        .await
    {
        Ok(moved) => {
            st.kick.notify_one();
            let detail = format!(
                "{} → {}",
                ui.l.when(a.start, st.tz),
                ui.l.when(moved.start, st.tz)
            );
            staff::audit::record(
                st.store.pool(),
                &staff::audit::Entry::by_citizen(
                    "spostato_cittadino",
                    a.id,
                    a.office_id,
                    detail,
                    st.now(),
                ),
            )
            .await?;
            Ok((
                ui.jar,
                Redirect::to(&format!("/prenotazione/{token}?esito=spostata")),
            )
                .into_response())
        }
        Err(e) if is_refusal(&e) => {
            let (it, en) = booking_messages(&e);
            let status = AppError::Booking(e).describe().0;
            let alert = Some(if ui.l.is_en() { en } else { it });
            render_move(&st, ui, token, &a, alert, status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn receipt(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let l = ui.l;
    let page = ReceiptPage {
        l,
        booked_on: l.when(a.created_at, st.tz),
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

// ------------------------------------------------------------------ developer's mailbox

/// The local mailbox holds personal data: it exists only without SMTP, and answers only to
/// clients on this machine.
fn mailbox_allowed(st: &AppState, peer: SocketAddr) -> Result<()> {
    if !st.mailer.is_local() {
        return Err(AppError::NotFound);
    }
    if peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "la posta locale è visibile solo da questo computer",
        ))
    }
}

fn mail_row(st: &AppState, l: Lang, m: &booking::store::OutboxMessage) -> MailRow {
    MailRow {
        id: m.id,
        when: l.when(m.created_at, st.tz),
        to: m.to.clone(),
        subject: m.subject.clone(),
        kind: m.kind.clone(),
        status: if m.sent_at.is_some() {
            l.t("consegnata", "delivered").into()
        } else {
            l.t("in coda", "queued").into()
        },
    }
}

async fn mailbox(
    State(st): State<AppState>,
    ui: Ui,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response> {
    mailbox_allowed(&st, peer)?;
    let l = ui.l;
    let messages = st
        .store
        .mailbox(200)
        .await?
        .iter()
        .map(|m| mail_row(&st, l, m))
        .collect();
    ui.page(StatusCode::OK, MailboxPage { l, messages })
}

async fn mail(
    State(st): State<AppState>,
    ui: Ui,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response> {
    mailbox_allowed(&st, peer)?;
    let id = id.parse::<i64>().map_err(|_| AppError::NotFound)?;
    let m = st.store.message(id).await?;
    let l = ui.l;
    let page = MailPage {
        l,
        m: mail_row(&st, l, &m),
        text: m.text.clone(),
        html: m.html.clone(),
        ics: m.ics.clone(),
    };
    ui.page(StatusCode::OK, page)
}

async fn mail_ics(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response> {
    mailbox_allowed(&st, peer)?;
    let id = id.parse::<i64>().map_err(|_| AppError::NotFound)?;
    let m = st.store.message(id).await?;
    let ics = m.ics.ok_or(AppError::NotFound)?;
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        ics,
    )
        .into_response())
}

// ------------------------------------------------------------------ language

async fn set_lang(
    ui: Ui,
    Path(code): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let l = Lang::from_code(&code).ok_or(AppError::NotFound)?;
    // Back to the page the switch was on, if it was one of ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or("/")
        .to_string();
    let cookie = Cookie::build(("lang", l.code()))
        .path("/")
        .permanent()
        .same_site(SameSite::Lax)
        .build();
    Ok((ui.jar.add(cookie), Redirect::to(&back)).into_response())
}
