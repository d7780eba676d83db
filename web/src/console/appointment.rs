//! One appointment as the office sees it, and what the office does to it: approve or refuse,
//! cancel or move (the citizen is told, with the updated invitation), done, no-show, a private
//! note; and joining its video call as the operator.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use booking::backoffice::AgendaItem;
use booking::token::Purpose;
use booking::{Actor, Mode, Status};
use chrono::Duration;
use serde::Deserialize;

use super::agenda::{mode_list, office_slots, outcome_message, row_view};
use super::context::*;
use super::form::{Label, Problems};
use crate::error::{booking_message, invalid, AppError, Result};
use crate::extract::{urlencode, CsrfForm, Id, Param};
use crate::i18n::{Lang, Text};
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/appuntamenti/{id}", get(show_appointment))
        .route("/ufficio/appuntamenti/{id}/entra", get(join_call))
        .route(
            "/ufficio/appuntamenti/{id}/{action}",
            post(act_on_appointment),
        )
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

pub async fn show_appointment(
    Console(st, s): Console,
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
                (Some(_), _) => l.t("inviata").into(),
                (None, Some(e)) => format!("{}: {e}", l.t("non ancora inviata")),
                (None, None) => l.t("in coda").into(),
            },
        })
        .collect();
    let active = a.status.is_active() && a.end > now;
    let page = AppointmentPage {
        frame: s.frame("agenda"),
        when: l.when(a.start, st.tz),
        day: a.start.with_timezone(&st.tz).date_naive().to_string(),
        contact: a.contact.clone(),
        booked_by_office: item.booked_by == "office",
        consent: match &item.consent {
            (at, Some(v)) => format!(
                "{}, {} {v}",
                l.when(*at, st.tz),
                l.t("informativa versione")
            ),
            (at, None) => l.when(*at, st.tz),
        },
        awaiting: a.status == Status::AwaitingApproval,
        can_cancel: active,
        can_move: active,
        can_close: a.status == Status::Confirmed && a.start <= now,
        moves: if active {
            move_choices(&st, l, &item).await?
        } else {
            Vec::new()
        },
        modes: Choice::modes(
            l,
            st.store.service(a.service_id).await?.modes.modes(),
            |m| m == a.mode,
        ),
        row,
        history,
        emails,
        message: outcome_message(l, &q.esito),
        error: (!q.errore.is_empty()).then(|| q.errore.clone()),
    };
    s.ui.page(StatusCode::OK, page)
}

/// Opens the call as the operator.
pub async fn join_call(Console(st, s): Console, Param(Id(id)): Param<Id>) -> Result<Response> {
    let item = visible(&st, &s, id).await?;
    if item.appointment.mode != Mode::Video {
        return Err(invalid("non è un appuntamento in video"));
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

/// What the appointment page's forms send (each action uses its part).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActionForm {
    /// The office's message to the citizen (refuse, cancel, move).
    messaggio: String,
    /// The new start (move), as a Unix timestamp.
    inizio: String,
    /// The new mode (move); empty keeps it.
    modalita: String,
    /// The private note.
    nota: String,
}

pub async fn act_on_appointment(
    Console(st, s): Console,
    Param((Id(id), action)): Param<(Id, AppointmentAction)>,
    CsrfForm(f): CsrfForm<ActionForm>,
) -> Result<Response> {
    let item = visible(&st, &s, id).await?;
    let a = &item.appointment;
    let now = st.now();
    let l = s.l();
    let mut p = Problems::default();
    let message = p.text(
        "messaggio",
        Label("Messaggio al cittadino"),
        &f.messaggio,
        1000,
    );
    let note = p.text("nota", Label("Nota"), &f.nota, 2000);
    let start = f
        .inizio
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    if matches!(action, AppointmentAction::Move) && start.is_none() {
        p.add(
            "inizio",
            Text::new("Nuovo orario: scegline uno dall'elenco."),
        );
    }
    let mode = match f.modalita.trim() {
        "" => None,
        m => Mode::parse(m).or_else(|| {
            p.add("modalita", Text::new("Modalità: scelta non valida."));
            None
        }),
    };
    // The office calls a phone appointment, and sends a video call's link by email.
    if mode == Some(Mode::Phone) && a.contact.phone.trim().is_empty() {
        p.add(
            "modalita",
            Text::new("Al telefono: manca il numero del cittadino."),
        );
    }
    if mode == Some(Mode::Video) && a.contact.email.trim().is_empty() {
        p.add(
            "modalita",
            Text::new("In videochiamata: manca l'email del cittadino, a cui va il link."),
        );
    }
    if !p.is_empty() {
        return refused(s, a.id, &p.all(l).join(" "));
    }
    let start = start.unwrap_or_default();
    // What the audit log says of it (the store writes it with the change).
    let (done, detail) = match action {
        AppointmentAction::Approve => ("approvato", String::new()),
        AppointmentAction::Refuse => ("rifiutato", message.clone()),
        AppointmentAction::Cancel => ("annullato", message.clone()),
        AppointmentAction::Move => (
            "spostato",
            format!("{} → {}", l.when(a.start, st.tz), l.when(start, st.tz)),
        ),
        AppointmentAction::Done => ("svolto", String::new()),
        AppointmentAction::NoShow => ("assente", String::new()),
        AppointmentAction::Note => ("nota", String::new()),
    };
    let entry = s.audit(
        done,
        "appointment",
        Some(a.id),
        Some(a.office_id),
        detail,
        &st,
    );
    let result = match action {
        AppointmentAction::Approve => st.store.approve(a.id, &entry, now).await.map(drop),
        AppointmentAction::Refuse => st.store.refuse(a.id, &message, &entry, now).await.map(drop),
        AppointmentAction::Cancel => st
            .store
            .cancel(a.id, Actor::Office, &message, &entry, now)
            .await
            .map(drop),
        AppointmentAction::Move => st
            .store
            .reschedule(a.id, start, mode, Actor::Office, &message, &entry, now)
            .await
            .map(drop),
        AppointmentAction::Done => st
            .store
            .set_outcome(a.id, Status::Done, &entry, now)
            .await
            .map(drop),
        AppointmentAction::NoShow => st
            .store
            .set_outcome(a.id, Status::NoShow, &entry, now)
            .await
            .map(drop),
        AppointmentAction::Note => st.store.set_note(a.id, &note, &entry).await,
    };
    match result {
        Ok(()) => Ok((
            s.ui.jar,
            Redirect::to(&format!("/ufficio/appuntamenti/{}?esito={done}", a.id)),
        )
            .into_response()),
        Err(e)
            if crate::error::is_refusal(&e)
                || matches!(
                    e,
                    booking::Error::NotActive(_)
                        | booking::Error::AlreadyHappened
                        | booking::Error::NotYet
                ) =>
        {
            refused(s, a.id, &l.text(&booking_message(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Back to the appointment, with what was refused said above its forms.
fn refused(s: Staff, id: i64, msg: &str) -> Result<Response> {
    Ok((
        s.ui.jar,
        Redirect::to(&format!(
            "/ufficio/appuntamenti/{id}?errore={}",
            urlencode(msg)
        )),
    )
        .into_response())
}
