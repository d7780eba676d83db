//! Configuring calendars: settings, weekly rules, closures and special hours, operators. After
//! every change the page lists the appointments that no longer fit the rules: nothing is
//! dropped, the office moves or cancels them.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use booking::backoffice::CalendarSettings;
use booking::slots::Misfit;
use chrono::Datelike;

use booking::audit::Entry as AuditEntry;

use super::context::*;
use super::form::{
    CalendarForm, CalendarForms, CalendarRefusal, ExceptionForm, ItemForm, Label, OfficeRefusal,
    OperatorsForm, Problems, RuleForm,
};
use super::offices::office_refused;
use crate::error::{AppError, Result};
use crate::extract::{parse_id, Id, Param};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ufficio/config/uffici/{id}/calendari",
            post(create_calendar),
        )
        .route(
            "/ufficio/config/calendari/{id}",
            get(show_calendar).post(save_calendar),
        )
        .route("/ufficio/config/calendari/{id}/regole", post(add_rule))
        .route(
            "/ufficio/config/calendari/{id}/regola-elimina",
            post(remove_rule),
        )
        .route(
            "/ufficio/config/calendari/{id}/eccezioni",
            post(add_exception),
        )
        .route(
            "/ufficio/config/calendari/{id}/eccezione-elimina",
            post(remove_exception),
        )
        .route(
            "/ufficio/config/calendari/{id}/operatori",
            post(set_operators),
        )
}

pub async fn create_calendar(Edit(st, s, office, f): Edit<CalendarForm>) -> Result<Response> {
    s.configure(office)?;
    let c = match f.check(0, office) {
        Ok(c) => c,
        Err(p) => return office_refused(&st, s, office, OfficeRefusal::Calendar(f, p)).await,
    };
    let entry = s.audit(
        "calendario_creato",
        "calendar",
        None,
        Some(office),
        &c.name,
        &st,
    );
    let cid = st.store.save_calendar(&c, &entry).await?;
    redirect(s, format!("/ufficio/config/calendari/{cid}"))
}

fn misfit_label(l: Lang, m: Misfit) -> &'static str {
    match m {
        Misfit::NoSlot => l.t("l'orario non esiste più (chiusura, orari o durata cambiati)"),
        Misfit::ModeNotOffered => l.t("la modalità non è più offerta a quell'ora"),
        Misfit::OverCapacity => l.t("oltre la capienza ridotta dello slot"),
    }
}

pub async fn show_calendar(Console(st, s): Console, Param(Id(id)): Param<Id>) -> Result<Response> {
    let c = st.store.calendar_settings(id).await?;
    let forms = CalendarForms {
        settings: CalendarForm::of(&c),
        ..CalendarForms::default()
    };
    render_calendar(&st, s, id, forms, StatusCode::OK).await
}

/// The calendar's page again after one of its forms was refused, with that form as typed and
/// its problems in place of the blank one.
async fn calendar_refused(
    st: &AppState,
    s: Staff,
    c: &CalendarSettings,
    refused: CalendarRefusal,
) -> Result<Response> {
    let forms = CalendarForms::refused(CalendarForm::of(c), refused);
    render_calendar(st, s, c.id, forms, StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn render_calendar(
    st: &AppState,
    s: Staff,
    id: i64,
    forms: CalendarForms,
    status: StatusCode,
) -> Result<Response> {
    let c = st.store.calendar_settings(id).await?;
    s.configure(c.office_id)?;
    let l = s.l();
    let serving: Vec<i64> = st
        .store
        .operators_of(c.id)
        .await?
        .iter()
        .map(|o| o.id)
        .collect();
    let rules = st
        .store
        .rules_of(c.id)
        .await?
        .into_iter()
        .map(|r| RuleLine {
            id: r.id.to_string(),
            days: WEEKDAY_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| r.weekdays & (1 << i) != 0)
                .map(|(_, day)| l.t(day))
                .collect::<Vec<_>>()
                .join(", "),
            hours: format!("{}–{}", hhmm(r.start_minute), hhmm(r.end_minute)),
            slot: r.slot_minutes,
            buffer: r.buffer_minutes,
            capacity: r.capacity,
            modes: r.modes.label(l),
            validity: match (r.valid_from, r.valid_to) {
                (None, None) => String::new(),
                (a, b) => format!(
                    "{} {}",
                    a.map(|d| format!("{} {}", l.t("dal"), l.day(d)))
                        .unwrap_or_default(),
                    b.map(|d| format!("{} {}", l.t("al"), l.day(d)))
                        .unwrap_or_default()
                ),
            },
        })
        .collect();
    let today = st.now().with_timezone(&st.tz).date_naive();
    let exceptions = st
        .store
        .exceptions_of(c.id)
        .await?
        .into_iter()
        .filter(|e| e.day >= today)
        .map(|e| RuleLine {
            id: e.id.to_string(),
            days: l.day(e.day),
            hours: match e.hours {
                None => l.t("chiuso").into(),
                Some((a, b)) => format!("{}–{}", hhmm(a), hhmm(b)),
            },
            slot: 0,
            buffer: 0,
            capacity: 0,
            modes: String::new(),
            validity: e.label,
        })
        .collect();
    let holidays = c.closed_on_holidays.then(|| {
        let last = today + chrono::Duration::days(c.horizon_days);
        (today.year()..=last.year())
            .flat_map(|y| st.store.holidays.of_year(y))
            .filter(|(d, _)| (today..=last).contains(d))
            .map(|(d, name)| (l.day(d), name))
            .collect()
    });
    let mut misfits = Vec::new();
    for (a, m) in st.store.misfits(c.id, st.now()).await? {
        misfits.push(MisfitLine {
            id: a.id.to_string(),
            when: l.when(a.start, st.tz),
            citizen: a.contact.full_name(),
            mode: a.mode.label(l).into(),
            why: misfit_label(l, m).into(),
        });
    }
    let page = CalendarConfigPage {
        frame: s.frame("config"),
        id: c.id.to_string(),
        office_id: c.office_id.to_string(),
        office: st.store.office(c.office_id).await?.name,
        name: c.name.clone(),
        rules,
        exceptions,
        holidays,
        weekdays: WEEKDAY_NAMES
            .iter()
            .enumerate()
            .map(|(i, day)| Choice {
                value: i.to_string(),
                label: l.t(day).into(),
                checked: forms.rule.has_day(i),
            })
            .collect(),
        modes: mode_choices(l, |m| forms.rule.offers(m)),
        operators: st
            .store
            .office_operators(c.office_id)
            .await?
            .into_iter()
            .map(|op| Choice {
                value: op.id.to_string(),
                label: op.name,
                checked: serving.contains(&op.id),
            })
            .collect(),
        misfits,
        forms,
    };
    s.ui.page(status, page)
}

pub async fn save_calendar(Edit(st, s, id, f): Edit<CalendarForm>) -> Result<Response> {
    let c = st.store.calendar_settings(id).await?;
    s.configure(c.office_id)?;
    let new = match f.check(c.id, c.office_id) {
        Ok(new) => new,
        Err(p) => return calendar_refused(&st, s, &c, CalendarRefusal::Settings(f, p)).await,
    };
    let detail = format!(
        "orizzonte {} g, preavviso {} g, moderato {}, chiuso nelle festività {}",
        new.horizon_days,
        new.min_notice_days,
        if new.moderated { "sì" } else { "no" },
        if new.closed_on_holidays { "sì" } else { "no" }
    );
    let entry = s.audit(
        "calendario_modificato",
        "calendar",
        Some(c.id),
        Some(c.office_id),
        detail,
        &st,
    );
    st.store.save_calendar(&new, &entry).await?;
    redirect(s, format!("/ufficio/config/calendari/{}", c.id))
}

/// A calendar that this person may configure.
async fn configurable(st: &AppState, s: &Staff, id: i64) -> Result<CalendarSettings> {
    let c = st.store.calendar_settings(id).await?;
    s.configure(c.office_id)?;
    Ok(c)
}

/// The audit entry of a change to the calendar's rules, closures or operators.
fn entry(
    st: &AppState,
    s: &Staff,
    c: &CalendarSettings,
    action: &str,
    detail: String,
) -> AuditEntry {
    s.audit(
        action,
        "calendar",
        Some(c.id),
        Some(c.office_id),
        detail,
        st,
    )
}

/// After a change: back to the calendar, at the list of appointments that no longer fit.
fn changed(s: Staff, c: &CalendarSettings) -> Result<Response> {
    redirect(
        s,
        format!("/ufficio/config/calendari/{}#fuori-regola", c.id),
    )
}

pub async fn add_rule(Edit(st, s, id, f): Edit<RuleForm>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let r = match f.check() {
        Ok(r) => r,
        Err(p) => return calendar_refused(&st, s, &c, CalendarRefusal::Rule(f, p)).await,
    };
    let detail = format!(
        "{}–{} ogni {} min, capienza {}",
        hhmm(r.start_minute),
        hhmm(r.end_minute),
        r.slot_minutes,
        r.capacity
    );
    let e = entry(&st, &s, &c, "regola_aggiunta", detail);
    st.store.add_rule(c.id, &r, &e).await?;
    changed(s, &c)
}

pub async fn remove_rule(Edit(st, s, id, f): Edit<ItemForm>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let rid = parse_id(&f.id)?;
    let e = entry(&st, &s, &c, "regola_eliminata", rid.to_string());
    st.store.delete_rule(c.id, rid, &e).await?;
    changed(s, &c)
}

pub async fn add_exception(Edit(st, s, id, f): Edit<ExceptionForm>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let e = match f.check() {
        Ok(e) => e,
        Err(p) => return calendar_refused(&st, s, &c, CalendarRefusal::Exception(f, p)).await,
    };
    let audit = entry(
        &st,
        &s,
        &c,
        "eccezione_aggiunta",
        format!("{} {}", e.day, e.label),
    );
    st.store.add_exception(c.id, &e, &audit).await?;
    changed(s, &c)
}

pub async fn remove_exception(Edit(st, s, id, f): Edit<ItemForm>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let eid = parse_id(&f.id)?;
    let e = entry(&st, &s, &c, "eccezione_eliminata", eid.to_string());
    st.store.delete_exception(c.id, eid, &e).await?;
    changed(s, &c)
}

pub async fn set_operators(Edit(st, s, id, f): Edit<OperatorsForm>) -> Result<Response> {
    let c = configurable(&st, &s, id).await?;
    let mut p = Problems::default();
    let ids = p.ids("op", Label("Operatori"), &f.operatori);
    if !p.is_empty() {
        return Err(AppError::BadRequest("operatore non valido".into()));
    }
    let e = entry(
        &st,
        &s,
        &c,
        "operatori_calendario",
        format!("{} operatori", ids.len()),
    );
    st.store.set_calendar_operators(c.id, &ids, &e).await?;
    changed(s, &c)
}
