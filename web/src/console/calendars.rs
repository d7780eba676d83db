//! Configuring calendars: settings, weekly rules, closures and special hours, operators. After
//! every change the page lists the appointments that no longer fit the rules: nothing is
//! dropped, the office moves or cancels them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use booking::backoffice::{CalendarSettings, ExceptionRow, RuleRow};
use booking::slots::Misfit;
use booking::ModeSet;

use super::context::*;
use crate::error::{invalid, Result};
use crate::extract::{parse_id, CsrfForm, Id, Param};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

// ------------------------------------------------------------------ calendars

fn calendar_input(f: &Fields, id: i64, office_id: i64) -> Result<CalendarSettings> {
    Ok(CalendarSettings {
        id,
        office_id,
        name: f.required("name", 200)?,
        horizon_days: f.number("horizon_days", 1, 730)?,
        min_notice_days: f.number("min_notice_days", 0, 60)?,
        moderated: f.flag("moderated"),
    })
}

pub async fn create_calendar(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let office = id;
    s.configure(office)?;
    let c = calendar_input(&f, 0, office)?;
    let cid = st.store.save_calendar(&c).await?;
    audit(
        &st,
        s.audit(
            "calendario_creato",
            "calendar",
            cid,
            Some(office),
            c.name,
            &st,
        ),
    )
    .await?;
    redirect(s, format!("/ufficio/config/calendari/{cid}"))
}

fn misfit_label(l: Lang, m: Misfit) -> &'static str {
    match m {
        Misfit::NoSlot => l.t(
            "l'orario non esiste più (chiusura, orari o durata cambiati)",
            "the time no longer exists (closure, changed hours or slot length)",
        ),
        Misfit::ModeNotOffered => l.t(
            "la modalità non è più offerta a quell'ora",
            "the mode is no longer offered at that time",
        ),
        Misfit::OverCapacity => l.t(
            "oltre la capienza ridotta dello slot",
            "beyond the slot's reduced capacity",
        ),
    }
}

pub async fn show_calendar(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
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
                .map(|(_, (it, en))| if l.is_en() { *en } else { *it })
                .collect::<Vec<_>>()
                .join(", "),
            hours: format!("{}–{}", hhmm(r.start_minute), hhmm(r.end_minute)),
            slot: r.slot_minutes,
            buffer: r.buffer_minutes,
            capacity: r.capacity,
            modes: r
                .modes
                .modes()
                .into_iter()
                .map(|m| l.mode(m))
                .collect::<Vec<_>>()
                .join(", "),
            validity: match (r.valid_from, r.valid_to) {
                (None, None) => String::new(),
                (a, b) => format!(
                    "{} {}",
                    a.map(|d| format!("{} {}", l.t("dal", "from"), l.day(d)))
                        .unwrap_or_default(),
                    b.map(|d| format!("{} {}", l.t("al", "to"), l.day(d)))
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
                None => l.t("chiuso", "closed").into(),
                Some((a, b)) => format!("{}–{}", hhmm(a), hhmm(b)),
            },
            slot: 0,
            buffer: 0,
            capacity: 0,
            modes: String::new(),
            validity: e.label,
        })
        .collect();
    let mut misfits = Vec::new();
    for (a, m) in st.store.misfits(c.id, st.now()).await? {
        misfits.push(MisfitLine {
            id: a.id.to_string(),
            when: l.when(a.start, st.tz),
            citizen: format!("{} {}", a.given_name, a.family_name),
            mode: l.mode(a.mode).into(),
            why: misfit_label(l, m).into(),
        });
    }
    let page = CalendarConfigPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("config"),
        id: c.id.to_string(),
        office_id: c.office_id.to_string(),
        office: st.store.office(c.office_id).await?.name,
        name: c.name.clone(),
        horizon_days: c.horizon_days,
        min_notice_days: c.min_notice_days,
        moderated: c.moderated,
        rules,
        exceptions,
        weekdays: WEEKDAY_NAMES
            .iter()
            .enumerate()
            .map(|(i, (it, en))| Choice {
                value: i.to_string(),
                label: if l.is_en() {
                    (*en).into()
                } else {
                    (*it).into()
                },
                checked: i < 5,
            })
            .collect(),
        modes: mode_choices(l, ModeSet::ALL),
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
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn save_calendar(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let c = st.store.calendar_settings(id).await?;
    s.configure(c.office_id)?;
    let new = calendar_input(&f, c.id, c.office_id)?;
    st.store.save_calendar(&new).await?;
    let detail = format!(
        "orizzonte {} g, preavviso {} g, moderato {}",
        new.horizon_days,
        new.min_notice_days,
        if new.moderated { "sì" } else { "no" }
    );
    audit(
        &st,
        s.audit(
            "calendario_modificato",
            "calendar",
            c.id,
            Some(c.office_id),
            detail,
            &st,
        ),
    )
    .await?;
    redirect(s, format!("/ufficio/config/calendari/{}", c.id))
}

/// What a calendar form changes (`/ufficio/config/calendari/{id}/{what}`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub enum CalendarChange {
    #[serde(rename = "regole")]
    Rules,
    #[serde(rename = "eccezioni")]
    Exceptions,
    #[serde(rename = "regola-elimina")]
    RemoveRule,
    #[serde(rename = "eccezione-elimina")]
    RemoveException,
    #[serde(rename = "operatori")]
    Operators,
}

/// Adds or removes a rule or an exception, or sets the operators.
pub async fn change_calendar(
    State(st): State<AppState>,
    s: Staff,
    Param((Id(id), what)): Param<(Id, CalendarChange)>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let c = st.store.calendar_settings(id).await?;
    s.configure(c.office_id)?;
    let (action, detail) = match what {
        CalendarChange::Rules => {
            let mut weekdays = 0u8;
            for d in f.ids("giorni")? {
                if !(0..7).contains(&d) {
                    return Err(invalid("giorno non valido", "invalid day"));
                }
                weekdays |= 1 << d;
            }
            if weekdays == 0 {
                return Err(invalid(
                    "scegli almeno un giorno",
                    "choose at least one day",
                ));
            }
            let r = RuleRow {
                id: 0,
                weekdays,
                start_minute: minutes(&f, "dalle")?,
                end_minute: minutes(&f, "alle")?,
                slot_minutes: f.number("durata", 5, 480)?,
                buffer_minutes: f.number("pausa", 0, 240)?,
                capacity: f.number("capienza", 1, 100)?,
                modes: modes_of(&f)?,
                valid_from: opt_day(&f, "valido_dal")?,
                valid_to: opt_day(&f, "valido_al")?,
            };
            if r.end_minute <= r.start_minute {
                return Err(invalid(
                    "l'orario di fine deve seguire quello di inizio",
                    "the end time must come after the start time",
                ));
            }
            st.store.add_rule(c.id, &r).await?;
            (
                "regola_aggiunta",
                format!(
                    "{}–{} ogni {} min, capienza {}",
                    hhmm(r.start_minute),
                    hhmm(r.end_minute),
                    r.slot_minutes,
                    r.capacity
                ),
            )
        }
        CalendarChange::RemoveRule => {
            let rid = parse_id(f.get("id"))?;
            st.store.delete_rule(c.id, rid).await?;
            ("regola_eliminata", rid.to_string())
        }
        CalendarChange::Exceptions => {
            let day = opt_day(&f, "giorno")?
                .ok_or_else(|| invalid("manca il giorno", "the day is missing"))?;
            let hours = if f.get("tipo") == "orario" {
                let (a, b) = (minutes(&f, "dalle")?, minutes(&f, "alle")?);
                if b <= a {
                    return Err(invalid(
                        "l'orario di fine deve seguire quello di inizio",
                        "the end time must come after the start time",
                    ));
                }
                Some((a, b))
            } else {
                None
            };
            let e = ExceptionRow {
                id: 0,
                day,
                label: f.text("etichetta", 200)?,
                hours,
            };
            st.store.add_exception(c.id, &e).await?;
            ("eccezione_aggiunta", format!("{day} {}", e.label))
        }
        CalendarChange::RemoveException => {
            let eid = parse_id(f.get("id"))?;
            st.store.delete_exception(c.id, eid).await?;
            ("eccezione_eliminata", eid.to_string())
        }
        CalendarChange::Operators => {
            let ids = f.ids("operatori")?;
            st.store.set_calendar_operators(c.id, &ids).await?;
            ("operatori_calendario", format!("{} operatori", ids.len()))
        }
    };
    audit(
        &st,
        s.audit(action, "calendar", c.id, Some(c.office_id), detail, &st),
    )
    .await?;
    redirect(
        s,
        format!("/ufficio/config/calendari/{}#fuori-regola", c.id),
    )
}
