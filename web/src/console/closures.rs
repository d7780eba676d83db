//! An office's extraordinary closures in the console (issue 17): made on the office's page (a
//! day or a range, the whole office or one calendar, the reason), then the closure's page lists
//! the appointments it hits with a proposed free time each, and moves them all there or cancels
//! them all in one action; every citizen gets the email the store sends with each move or
//! cancellation. Only those who configure the office see any of it.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use booking::store::closures::Closure;
use booking::Actor;

use super::context::*;
use super::form::{ClosureForm, OfficeRefusal};
use super::offices::office_refused;
use crate::closure_line::closure_line;
use crate::error::Result;
use crate::extract::{Id, NoFields, Param};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/config/uffici/{id}/chiusure", post(add_closure))
        .route("/ufficio/config/chiusure/{id}", get(show_closure))
        .route("/ufficio/config/chiusure/{id}/sposta", post(move_all))
        .route("/ufficio/config/chiusure/{id}/annulla", post(cancel_all))
        .route(
            "/ufficio/config/chiusure/{id}/elimina",
            post(delete_closure),
        )
}

async fn add_closure(Edit(st, s, office, f): Edit<ClosureForm>) -> Result<Response> {
    s.configure(office)?;
    let today = st.now().with_timezone(&st.tz).date_naive();
    let calendars = st.store.calendars_of(office).await?;
    let c = match f.check(office, &calendars, today) {
        Ok(c) => c,
        Err(p) => return office_refused(&st, s, office, OfficeRefusal::Closure(f, p)).await,
    };
    let entry = s.audit(
        "chiusura_aggiunta",
        "closure",
        None,
        Some(office),
        format!("{} → {}: {}", c.first_day, c.last_day, c.reason),
        &st,
    );
    let id = st.store.add_closure(&c, &entry, st.now()).await?;
    redirect(s, format!("/ufficio/config/chiusure/{id}"))
}

/// The closure, if this person configures its office.
async fn configurable(st: &AppState, s: &Staff, id: i64) -> Result<Closure> {
    let c = st.store.closure(id).await?;
    s.configure(c.office_id)?;
    Ok(c)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Outcome {
    spostati: Option<u32>,
    annullati: Option<u32>,
    restano: Option<u32>,
}

async fn show_closure(
    Console(st, s): Console,
    Param(Id(id)): Param<Id>,
    Query(q): Query<Outcome>,
) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let l = s.l();
    let hits = st
        .store
        .hit_by(&c, st.now())
        .await?
        .into_iter()
        .map(|h| HitLine {
            id: h.appointment.id.to_string(),
            when: l.when(h.appointment.start, st.tz),
            citizen: h.appointment.contact.full_name(),
            mode: h.appointment.mode.label(l).into(),
            proposal: h
                .proposal
                .map(|p| l.when(p.start, st.tz))
                .unwrap_or_default(),
        })
        .collect();
    let left = q.restano.unwrap_or(0);
    let outcome = match (q.spostati, q.annullati) {
        (Some(n), _) => Some(format!(
            "{}: {n}. {}: {left}.",
            l.t("Appuntamenti spostati"),
            l.t("Non spostati")
        )),
        (_, Some(n)) => Some(format!("{}: {n}.", l.t("Appuntamenti annullati"))),
        _ => None,
    };
    let page = ClosurePage {
        frame: s.frame("config"),
        office_id: c.office_id.to_string(),
        office: st.store.office(c.office_id).await?.name,
        closure: closure_line(&st, l, &c).await?,
        hits,
        outcome,
    };
    s.ui.page(StatusCode::OK, page)
}

/// The email's words for what happened: the closure's reason.
fn message(l: Lang, c: &Closure) -> String {
    format!("{}: {}", l.t("L'ufficio è chiuso"), c.reason)
}

/// Moves every hit appointment to its proposed time (computed again now: someone may have
/// booked meanwhile); one that finds its time taken, or has none, stays for the office to
/// handle by hand.
async fn move_all(Edit(st, s, id, _f): Edit<NoFields>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let now = st.now();
    let (mut moved, mut left) = (0u32, 0u32);
    for h in st.store.hit_by(&c, now).await? {
        let a = &h.appointment;
        let Some(p) = h.proposal else {
            left += 1;
            continue;
        };
        let entry = s.audit(
            "spostato",
            "appointment",
            Some(a.id),
            Some(a.office_id),
            format!("chiusura: {}", c.reason),
            &st,
        );
        let l = a.language;
        match st
            .store
            .reschedule(
                a.id,
                p.start,
                None,
                Actor::Office,
                &message(l, &c),
                &entry,
                now,
            )
            .await
        {
            Ok(_) => moved += 1,
            Err(e) if crate::error::is_refusal(&e) || matches!(e, booking::Error::NotActive(_)) => {
                left += 1
            }
            Err(e) => return Err(e.into()),
        }
    }
    redirect(
        s,
        format!("/ufficio/config/chiusure/{id}?spostati={moved}&restano={left}"),
    )
}

async fn cancel_all(Edit(st, s, id, _f): Edit<NoFields>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let now = st.now();
    let mut cancelled = 0u32;
    for h in st.store.hit_by(&c, now).await? {
        let a = &h.appointment;
        let entry = s.audit(
            "annullato",
            "appointment",
            Some(a.id),
            Some(a.office_id),
            format!("chiusura: {}", c.reason),
            &st,
        );
        match st
            .store
            .cancel(a.id, Actor::Office, &message(a.language, &c), &entry, now)
            .await
        {
            Ok(_) => cancelled += 1,
            Err(booking::Error::NotActive(_) | booking::Error::AlreadyHappened) => {}
            Err(e) => return Err(e.into()),
        }
    }
    redirect(
        s,
        format!("/ufficio/config/chiusure/{id}?annullati={cancelled}"),
    )
}

async fn delete_closure(Edit(st, s, id, _f): Edit<NoFields>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let entry = s.audit(
        "chiusura_eliminata",
        "closure",
        Some(c.id),
        Some(c.office_id),
        format!("{} → {}", c.first_day, c.last_day),
        &st,
    );
    st.store.delete_closure(c.id, &entry).await?;
    redirect(
        s,
        format!("/ufficio/config/uffici/{}#chiusure", c.office_id),
    )
}
