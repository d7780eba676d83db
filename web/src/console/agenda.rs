//! The operators' side of appointments: the agenda (a day or a week, per office and per
//! operator), one appointment with its actions, the call's "join" link, and booking on behalf
//! of someone who phones.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use booking::backoffice::AgendaItem;
use booking::token::Purpose;
use booking::validate::{self, BookingForm};
use booking::{Actor, Mode, Status};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;

use super::{midnight, Fields, Staff};
use crate::error::{booking_messages, invalid, AppError, Result};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

#[derive(Deserialize, Default)]
pub struct AgendaQuery {
    #[serde(default)]
    giorno: String,
    #[serde(default)]
    vista: String,
    #[serde(default)]
    ufficio: String,
    #[serde(default)]
    operatore: String,
    #[serde(default)]
    esito: String,
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

fn opt_id(s: &str) -> Result<Option<i64>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim()
        .parse::<i64>()
        .map(Some)
        .map_err(|_| invalid("identificativo non valido", "invalid identifier"))
}

use crate::extract::{parse_id, CsrfForm, Id, Param};

fn today(st: &AppState) -> NaiveDate {
    st.now().with_timezone(&st.tz).date_naive()
}

fn outcome_message(l: Lang, code: &str) -> Option<String> {
    let (it, en) = match code {
        "approvato" => ("Appuntamento approvato: il cittadino riceve la conferma.", "Appointment approved: the citizen gets the confirmation."),
        "rifiutato" => ("Richiesta rifiutata: il cittadino è stato avvisato.", "Request refused: the citizen has been told."),
        "annullato" => ("Appuntamento annullato: il cittadino è stato avvisato con l'annullamento del calendario.", "Appointment cancelled: the citizen has been told, with the calendar cancellation."),
        "spostato" => ("Appuntamento spostato: il cittadino riceve l'invito aggiornato.", "Appointment moved: the citizen gets the updated invitation."),
        "svolto" => ("Segnato come svolto.", "Marked as done."),
        "assente" => ("Segnato come non presentato.", "Marked as no-show."),
        "nota" => ("Nota salvata.", "Note saved."),
        "prenotato" => ("Appuntamento prenotato e confermato: il cittadino riceve la conferma per email.", "Appointment booked and confirmed: the citizen gets the confirmation by email."),
        "password" => ("Password cambiata.", "Password changed."),
        _ => return None,
    };
    Some(l.t(it, en).to_string())
}

pub(super) async fn row_view(st: &AppState, l: Lang, item: &AgendaItem) -> Result<AgendaRow> {
    let a = &item.appointment;
    let service = st.store.service(a.service_id).await?;
    let office = st.store.office(a.office_id).await?;
    let operator = match a.operator_id {
        Some(id) => st
            .store
            .operator(id)
            .await
            .map(|o| o.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(AgendaRow {
        id: a.id.to_string(),
        code: a.code.clone(),
        time: format!("{}–{}", l.time(a.start, st.tz), l.time(a.end, st.tz)),
        citizen: format!("{} {}", a.given_name, a.family_name),
        contact: [a.phone.as_str(), a.email.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · "),
        service: service.title,
        office: office.name,
        operator,
        mode: l.mode(a.mode).into(),
        reason: a.reason.clone(),
        status: l.status(a.status).into(),
        status_code: a.status.code(),
        video: a.mode == Mode::Video && a.status == Status::Confirmed && a.end > st.now(),
        note: item.note.clone(),
    })
}

pub async fn agenda(
    State(st): State<AppState>,
    s: Staff,
    Query(q): Query<AgendaQuery>,
) -> Result<Response> {
    let l = s.l();
    let today = today(&st);
    let day = parse_day(&q.giorno).unwrap_or(today);
    let week = q.vista == "settimana";
    let offices = s.offices(&st).await?;
    let office = opt_id(&q.ufficio)?;
    if let Some(o) = office {
        s.see(o)?;
    }
    let operator = opt_id(&q.operatore)?;
    let scope: Vec<i64> = match office {
        Some(o) => vec![o],
        None => offices.iter().map(|o| o.id).collect(),
    };
    let (first, days) = if week {
        (
            day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            7,
        )
    } else {
        (day, 1)
    };
    let items = st
        .store
        .agenda(
            Some(&scope),
            operator,
            midnight(&st, first),
            midnight(&st, first + Duration::days(days)),
        )
        .await?;
    let mut by_day: BTreeMap<NaiveDate, Vec<AgendaRow>> = BTreeMap::new();
    for d in 0..days {
        by_day.insert(first + Duration::days(d), Vec::new());
    }
    let now = st.now();
    let mut next_video = None;
    for it in &items {
        let a = &it.appointment;
        let row = row_view(&st, l, it).await?;
        if row.video
            && next_video.is_none()
            && a.start.with_timezone(&st.tz).date_naive() == today
            && a.end > now
        {
            next_video = Some(row.clone());
        }
        by_day
            .entry(a.start.with_timezone(&st.tz).date_naive())
            .or_default()
            .push(row);
    }
    let mut operators = Vec::new();
    for o in &offices {
        if office.is_none() || office == Some(o.id) {
            for op in st.store.office_operators(o.id).await? {
                operators.push(Choice {
                    value: op.id.to_string(),
                    label: format!("{} ({})", op.name, o.name),
                    checked: Some(op.id) == operator,
                });
            }
        }
    }
    let shift = |n: i64| (day + Duration::days(n)).to_string();
    let page = AgendaPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("agenda"),
        title: if week {
            format!(
                "{} {} – {}",
                l.t("Settimana", "Week"),
                l.day(first),
                l.day(first + Duration::days(6))
            )
        } else {
            l.day(day)
        },
        day: day.to_string(),
        week,
        previous: shift(if week { -7 } else { -1 }),
        next: shift(if week { 7 } else { 1 }),
        is_today: day == today && !week,
        offices: offices
            .iter()
            .map(|o| Choice {
                value: o.id.to_string(),
                label: o.name.clone(),
                checked: Some(o.id) == office,
            })
            .collect(),
        office: q.ufficio.clone(),
        operators,
        operator: q.operatore.clone(),
        days: by_day
            .into_iter()
            .map(|(d, rows)| DayRows {
                label: l.day(d),
                rows,
            })
            .collect(),
        next_video,
        message: outcome_message(l, &q.esito),
    };
    s.ui.page(StatusCode::OK, page)
}

/// Which of today's video appointments in this person's offices have a citizen waiting in the
/// room (the agenda asks every few seconds).
pub async fn waiting(State(st): State<AppState>, s: Staff) -> Result<Response> {
    let day = today(&st);
    let scope: Vec<i64> = s.offices(&st).await?.iter().map(|o| o.id).collect();
    let items = st
        .store
        .agenda(
            Some(&scope),
            None,
            midnight(&st, day),
            midnight(&st, day + Duration::days(1)),
        )
        .await?;
    let waiting: Vec<String> = items
        .iter()
        .filter(|i| i.appointment.mode == Mode::Video && st.hub.citizen_waiting(i.appointment.id))
        .map(|i| i.appointment.id.to_string())
        .collect();
    Ok(Json(serde_json::json!({ "waiting": waiting })).into_response())
}

async fn visible(st: &AppState, s: &Staff, id: i64) -> Result<AgendaItem> {
    let item = st.store.agenda_item(id).await?;
    // Another office's appointment is "not found", not "forbidden": ids tell nothing.
    if !s.p.sees_office(item.appointment.office_id) {
        return Err(AppError::NotFound);
    }
    Ok(item)
}

#[derive(Deserialize, Default)]
pub struct Outcome {
    #[serde(default)]
    esito: String,
    #[serde(default)]
    errore: String,
}

/// The slots the office may still book in a service's calendar from `first` to `last` (local
/// days): not yet over (the store's rule for the office, today included), with a free seat, and
/// their modes narrowed to the service's; `taken` counts the seats already held.
async fn office_slots(
    st: &AppState,
    service: &booking::Service,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<booking::slots::Slot>> {
    let rules = st.store.calendar_rules(service.calendar_id).await?;
    let taken = st
        .store
        .taken(
            service.calendar_id,
            midnight(st, first),
            midnight(st, last + Duration::days(1)),
        )
        .await?;
    let now = st.now();
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        for mut x in booking::slots::slots_on(&rules, d) {
            x.taken = taken.get(&x.start).copied().unwrap_or(0);
            x.modes = x.modes.intersect(service.modes);
            if x.end > now && x.free() > 0 && !x.modes.is_empty() {
                out.push(x);
            }
        }
        d += Duration::days(1);
    }
    Ok(out)
}

fn mode_list(l: Lang, m: booking::ModeSet) -> String {
    m.modes()
        .into_iter()
        .map(|m| l.mode(m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the office may move an appointment: the free slots of the next 90 days (at most the
/// calendar's horizon), today included, grouped by day.
async fn move_choices(st: &AppState, l: Lang, item: &AgendaItem) -> Result<Vec<SlotGroup>> {
    let a = &item.appointment;
    let service = st.store.service(a.service_id).await?;
    let horizon = st.store.calendar_rules(a.calendar_id).await?.horizon_days;
    let first = today(st);
    let last = first + Duration::days(i64::from(horizon.min(90)));
    let mut groups: Vec<SlotGroup> = Vec::new();
    for x in office_slots(st, &service, first, last).await? {
        if x.start == a.start {
            continue;
        }
        let label = l.day(x.local_day);
        let choice = SlotChoice {
            value: x.start.timestamp().to_string(),
            label: format!("{} ({})", l.time(x.start, st.tz), mode_list(l, x.modes)),
        };
        match groups.last_mut() {
            Some(g) if g.label == label => g.slots.push(choice),
            _ => groups.push(SlotGroup {
                label,
                slots: vec![choice],
            }),
        }
    }
    Ok(groups)
}

pub async fn appointment(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    Query(q): Query<Outcome>,
) -> Result<Response> {
    let l = s.l();
    let item = visible(&st, &s, id).await?;
    let a = &item.appointment;
    let now = st.now();
    let row = row_view(&st, l, &item).await?;
    let history = staff::audit::latest(st.store.pool(), None, Some(("appointment", a.id)), 50)
        .await?
        .into_iter()
        .map(|e| HistoryLine {
            when: l.when(e.at, st.tz),
            who: e.actor,
            what: super::reports::action_label(l, &e.action).to_string(),
            detail: e.detail,
        })
        .collect();
    let emails = st
        .store
        .messages_for(a.id)
        .await?
        .into_iter()
        .map(|m| HistoryLine {
            when: l.when(m.created_at, st.tz),
            who: m.to,
            what: m.subject,
            detail: match (m.sent_at, m.last_error) {
                (Some(_), _) => l.t("inviata", "sent").into(),
                (None, Some(e)) => format!("{}: {e}", l.t("non ancora inviata", "not sent yet")),
                (None, None) => l.t("in coda", "queued").into(),
            },
        })
        .collect();
    let active = a.status.is_active() && a.end > now;
    let page = AppointmentPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("agenda"),
        when: l.when(a.start, st.tz),
        day: a.start.with_timezone(&st.tz).date_naive().to_string(),
        email: a.email.clone(),
        phone: a.phone.clone(),
        fiscal_code: a.fiscal_code.clone(),
        booked_by_office: item.booked_by == "office",
        awaiting: a.status == Status::AwaitingApproval,
        can_cancel: active,
        can_move: active,
        can_close: a.status == Status::Confirmed && a.start <= now,
        moves: if active {
            move_choices(&st, l, &item).await?
        } else {
            Vec::new()
        },
        modes: st
            .store
            .service(a.service_id)
            .await?
            .modes
            .modes()
            .into_iter()
            .map(|m| Choice {
                value: m.code().into(),
                label: l.mode(m).into(),
                checked: m == a.mode,
            })
            .collect(),
        row,
        history,
        emails,
        message: outcome_message(l, &q.esito),
        error: (!q.errore.is_empty()).then(|| q.errore.clone()),
    };
    s.ui.page(StatusCode::OK, page)
}

/// Opens the call as the operator.
pub async fn join(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    let item = visible(&st, &s, id).await?;
    if item.appointment.mode != Mode::Video {
        return Err(invalid(
            "non è un appuntamento in video",
            "not a video appointment",
        ));
    }
    let token = st.signer.sign(Purpose::RoomOperator, item.appointment.id);
    Ok(Redirect::to(&format!("/stanza/{token}")).into_response())
}

/// What the office does to an appointment (`/ufficio/appuntamenti/{id}/{action}`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum AppointmentAction {
    #[serde(rename = "approva")]
    Approve,
    #[serde(rename = "rifiuta")]
    Refuse,
    #[serde(rename = "annulla")]
    Cancel,
    #[serde(rename = "sposta")]
    Move,
    #[serde(rename = "svolto")]
    Done,
    #[serde(rename = "assente")]
    NoShow,
    #[serde(rename = "nota")]
    Note,
}

pub async fn act(
    State(st): State<AppState>,
    s: Staff,
    Param((Id(id), action)): Param<(Id, AppointmentAction)>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let item = visible(&st, &s, id).await?;
    let a = &item.appointment;
    let now = st.now();
    let message = f.text("messaggio", 1000)?;
    let l = s.l();
    let result = match action {
        AppointmentAction::Approve => st
            .store
            .approve(a.id, now)
            .await
            .map(|_| ("approvato", String::new())),
        AppointmentAction::Refuse => st
            .store
            .refuse(a.id, &message, now)
            .await
            .map(|_| ("rifiutato", message.clone())),
        AppointmentAction::Cancel => st
            .store
            .cancel(a.id, Actor::Office, &message, now)
            .await
            .map(|_| ("annullato", message.clone())),
        AppointmentAction::Move => {
            let start = f
                .get("inizio")
                .parse::<i64>()
                .ok()
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .ok_or_else(|| invalid("scegli il nuovo orario", "choose the new time"))?;
            let mode = match f.get("modalita") {
                "" => None,
                m => Some(
                    Mode::parse(m)
                        .ok_or_else(|| invalid("modalità sconosciuta", "unknown mode"))?,
                ),
            };
            st.store
                .reschedule(a.id, start, mode, Actor::Office, &message, now)
                .await
                .map(|m| {
                    (
                        "spostato",
                        format!("{} → {}", l.when(a.start, st.tz), l.when(m.start, st.tz)),
                    )
                })
        }
        AppointmentAction::Done => st
            .store
            .set_outcome(a.id, Status::Done, now)
            .await
            .map(|_| ("svolto", String::new())),
        AppointmentAction::NoShow => st
            .store
            .set_outcome(a.id, Status::NoShow, now)
            .await
            .map(|_| ("assente", String::new())),
        AppointmentAction::Note => {
            let note = f.text("nota", 2000)?;
            st.store
                .set_note(a.id, &note)
                .await
                .map(|_| ("nota", String::new()))
        }
    };
    match result {
        Ok((done, detail)) => {
            st.kick.notify_one();
            staff::audit::record(
                st.store.pool(),
                &s.audit(done, "appointment", a.id, Some(a.office_id), detail, &st),
            )
            .await?;
            Ok((
                s.ui.jar,
                Redirect::to(&format!("/ufficio/appuntamenti/{}?esito={done}", a.id)),
            )
                .into_response())
        }
        Err(e)
            if crate::error::is_refusal(&e)
                || matches!(
                    e,
                    booking::Error::NotActive(_)
                        | booking::Error::AlreadyHappened
                        | booking::Error::NotYet
                ) =>
        {
            let (it, en) = booking_messages(&e);
            let msg = if l.is_en() { en } else { it };
            Ok((
                s.ui.jar,
                Redirect::to(&format!(
                    "/ufficio/appuntamenti/{}?errore={}",
                    a.id,
                    super::urlencode(&msg)
                )),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
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
                    l.t("liberi", "free")
                ),
                checked: form.start == x.start.timestamp().to_string(),
            });
        }
        modes = sv
            .modes
            .modes()
            .into_iter()
            .map(|m| Choice {
                value: m.code().into(),
                label: l.mode(m).into(),
                checked: form.mode == m.code() || (form.mode.is_empty() && m == Mode::Phone),
            })
            .collect();
    }
    let page = BookOnBehalfPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("prenota"),
        services,
        service: service_id.map(|i| i.to_string()).unwrap_or_default(),
        service_title,
        day: day.to_string(),
        today: today(st).to_string(),
        day_label: l.day(day),
        slots,
        modes,
        given_name: form.given_name.clone(),
        family_name: form.family_name.clone(),
        email: form.email.clone(),
        phone: form.phone.clone(),
        fiscal_code: form.fiscal_code.clone(),
        reason: form.reason.clone(),
        errors,
    };
    s.ui.page(status, page)
}

pub async fn book_page(
    State(st): State<AppState>,
    s: Staff,
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

pub async fn book_submit(
    State(st): State<AppState>,
    s: Staff,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let l = s.l();
    let service_id = parse_id(f.get("servizio"))?;
    let service = st.store.service(service_id).await?;
    s.see(service.office_id)?;
    let day = parse_day(f.get("giorno")).unwrap_or_else(|| today(&st));
    let form = BookingForm {
        start: f.get("start").into(),
        mode: f.get("mode").into(),
        operator: String::new(),
        given_name: f.get("given_name").into(),
        family_name: f.get("family_name").into(),
        email: f.get("email").into(),
        phone: f.get("phone").into(),
        fiscal_code: f.get("fiscal_code").into(),
        reason: f.get("reason").into(),
        // The caller agreed on the phone: the operator ticks the box for them.
        consent: f.flag("consent").then(|| "on".to_string()),
    };
    let valid = match validate::validate_for_office(service_id, &form) {
        Ok(v) => v,
        Err(errors) => {
            let list = errors
                .0
                .iter()
                .map(|(_, p)| if l.is_en() { p.en() } else { p.it() })
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
    match st.store.book(&valid, Actor::Office, st.now()).await {
        Ok(a) => {
            st.kick.notify_one();
            staff::audit::record(
                st.store.pool(),
                &s.audit(
                    "prenotato",
                    "appointment",
                    a.id,
                    Some(a.office_id),
                    l.mode(a.mode).to_string(),
                    &st,
                ),
            )
            .await?;
            Ok((
                s.ui.jar,
                Redirect::to(&format!("/ufficio/appuntamenti/{}?esito=prenotato", a.id)),
            )
                .into_response())
        }
        Err(e) if crate::error::is_refusal(&e) => {
            let (it, en) = booking_messages(&e);
            let status = AppError::Booking(e).describe().0;
            render_book(
                &st,
                s,
                Some(service_id),
                day,
                &form,
                vec![if l.is_en() { en } else { it }],
                status,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
