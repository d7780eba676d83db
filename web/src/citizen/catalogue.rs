//! Browsing the catalogue: the office list, an office, a service with its free times week by
//! week, the JSON list of free slots, and the language switch. Reads only; changes nothing.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::extract::cookie::SameSite;
use booking::slots::Slot;
use booking::{Mode, Service};
use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;

use crate::error::{AppError, Result};
use crate::extract::Visitor;
use crate::extract::{parse_day, Id, Param, Ui, LANG_COOKIE};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_offices))
        .route("/uffici/{id}", get(show_office))
        .route("/servizi/{id}", get(show_service))
        .route("/api/servizi/{id}/orari", get(list_free_slots))
        .route("/lingua/{code}", get(set_language))
}

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

fn service_card(l: Lang, s: &Service) -> ServiceCard {
    ServiceCard {
        id: s.id,
        title: s.title.clone(),
        description: s.description.clone(),
        max_minutes: s.max_minutes,
        modes: s.modes.label(l),
    }
}

async fn list_offices(Visitor(st, ui): Visitor) -> Result<Response> {
    let mut cards = Vec::new();
    for o in st.store.offices().await? {
        cards.push(office_card(&st, &o).await?);
    }
    let l = ui.l;
    ui.page(StatusCode::OK, OfficesPage { l, offices: cards })
}

async fn show_office(Visitor(st, ui): Visitor, Param(Id(id)): Param<Id>) -> Result<Response> {
    let o = st.store.office(id).await?;
    if o.archived {
        return Err(AppError::NotFound);
    }
    let services = st.store.services_of(o.id, true).await?;
    let l = ui.l;
    let page = OfficePage {
        l,
        office: office_card(&st, &o).await?,
        address: o.address.clone(),
        services: services.iter().map(|s| service_card(l, s)).collect(),
        closures: {
            let today = st.now().with_timezone(&st.tz).date_naive();
            let mut out = Vec::new();
            for c in st.store.closures_of(o.id, today).await? {
                let line = crate::closure_line::closure_line(&st, l, &c).await?;
                out.push(format!("{} ({}): {}", line.period, line.scope, line.reason));
            }
            out
        },
    };
    ui.page(StatusCode::OK, page)
}

pub(crate) fn day_views(st: &AppState, l: Lang, slots: &[Slot]) -> Vec<DayView> {
    let mut days: BTreeMap<NaiveDate, Vec<SlotView>> = BTreeMap::new();
    for s in slots {
        let time = l.time(s.start, st.tz);
        let modes = s.modes.label(l);
        let free = s.free();
        let label = format!(
            "{}, {} {} · {} · {} {}",
            l.day(s.local_day),
            l.t("ore"),
            time,
            modes,
            free,
            if free == 1 {
                l.t("posto libero")
            } else {
                l.t("posti liberi")
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

/// A service citizens may see: published, of an office in service.
pub(crate) async fn published_service(st: &AppState, id: i64) -> Result<Service> {
    let s = st.store.service(id).await?;
    if !s.published || st.store.office(s.office_id).await?.archived {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

#[derive(Deserialize)]
struct WeekQuery {
    settimana: Option<String>,
}

async fn show_service(
    Visitor(st, ui): Visitor,
    Param(Id(id)): Param<Id>,
    Query(q): Query<WeekQuery>,
) -> Result<Response> {
    let s = published_service(&st, id).await?;
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
        .and_then(parse_day)
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
        closed: (0..7)
            .map(|i| week + Duration::days(i))
            .filter(|d| (first..=last).contains(d))
            .filter_map(|d| {
                booking::slots::closure_on(&rules, d).map(|why| match why.is_empty() {
                    true => l.day(d),
                    false => format!("{} ({why})", l.day(d)),
                })
            })
            .collect(),
        week_label: format!(
            "{} {} {} {}",
            l.t("Dal"),
            l.day(week.max(first)),
            l.t("al"),
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

async fn list_free_slots(State(st): State<AppState>, Param(Id(id)): Param<Id>) -> Result<Response> {
    let s = published_service(&st, id).await?;
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

async fn set_language(ui: Ui, Path(code): Path<String>, headers: HeaderMap) -> Result<Response> {
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
    let mut cookie = LANG_COOKIE.build(l.code().to_string(), ui.https, SameSite::Lax);
    cookie.make_permanent();
    Ok((ui.jar.add(cookie), Redirect::to(&back)).into_response())
}
