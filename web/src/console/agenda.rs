//! The operators' agenda: a day or a week of appointments per office and operator, with the
//! live "citizen waiting" mark; and the slots the office may still book or move to.

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use axum::Router;
use booking::backoffice::AgendaItem;
use booking::{Mode, Status};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;

use super::context::*;
use crate::error::Result;
use crate::extract::parse_day;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio", get(show_agenda))
        .route("/ufficio/attesa", get(list_waiting))
}

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

pub fn outcome_message(l: Lang, code: &str) -> Option<String> {
    Some(match code {
        "approvato" => l.t("Appuntamento approvato: il cittadino riceve la conferma."),
        "rifiutato" => l.t("Richiesta rifiutata: il cittadino è stato avvisato."),
        "annullato" => l.t("Appuntamento annullato: il cittadino è stato avvisato con l'annullamento del calendario."),
        "spostato" => l.t("Appuntamento spostato: il cittadino riceve l'invito aggiornato."),
        "svolto" => l.t("Segnato come svolto."),
        "assente" => l.t("Segnato come non presentato."),
        "nota" => l.t("Nota salvata."),
        "prenotato" => l.t("Appuntamento prenotato e confermato: il cittadino riceve la conferma per email."),
        "password" => l.t("Password cambiata."),
        _ => return None,
    }
    .to_string())
}

pub async fn row_view(st: &AppState, l: Lang, item: &AgendaItem) -> Result<AgendaRow> {
    let a = &item.appointment;
    let service = st.store.service(a.service_id).await?;
    let office = st.store.office(a.office_id).await?;
    let operator = st.store.operator_name(a.operator_id).await;
    Ok(AgendaRow {
        id: a.id.to_string(),
        code: a.code.clone(),
        time: format!("{}–{}", l.time(a.start, st.tz), l.time(a.end, st.tz)),
        citizen: a.contact.full_name(),
        contact: [a.contact.phone.as_str(), a.contact.email.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · "),
        service: service.title,
        office: office.name,
        operator,
        mode: a.mode.label(l).into(),
        reason: a.contact.reason.clone(),
        status: a.status.label(l).into(),
        status_code: a.status.code(),
        video: a.mode == Mode::Video && a.status == Status::Confirmed && a.end > st.now(),
        note: item.note.clone(),
    })
}

pub async fn show_agenda(
    Console(st, s): Console,
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
        frame: s.frame("agenda"),
        title: if week {
            format!(
                "{} {} – {}",
                l.t("Settimana"),
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
pub async fn list_waiting(Console(st, s): Console) -> Result<Response> {
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
        .filter(|i| {
            i.appointment.mode == Mode::Video
                && (st.hub.citizen_waiting(i.appointment.id)
                    || st
                        .cluster
                        .as_ref()
                        .is_some_and(|c| c.citizen_waiting(i.appointment.id)))
        })
        .map(|i| i.appointment.id.to_string())
        .collect();
    Ok(Json(serde_json::json!({ "waiting": waiting })).into_response())
}
/// The slots the office may still book in a service's calendar from `first` to `last` (local
/// days): not yet over (the store's rule for the office, today included), with a free seat, and
/// their modes narrowed to the service's; `taken` counts the seats already held.
pub async fn office_slots(
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

pub fn mode_list(l: Lang, m: booking::ModeSet) -> String {
    m.modes()
        .into_iter()
        .map(|m| m.label(l))
        .collect::<Vec<_>>()
        .join(", ")
}
