//! Configuration: offices, services, calendars (settings, weekly rules, closures and special
//! hours, operators) and accounts. After every calendar change its page lists the appointments
//! that no longer fit the rules: nothing is dropped, the office moves or cancels them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use booking::backoffice::{CalendarSettings, ExceptionRow, OfficeInput, RuleRow, ServiceInput};
use booking::slots::Misfit;
use booking::{Mode, ModeSet};
use chrono::{NaiveDate, NaiveTime, Timelike};
use staff::{NewAccount, Role};

use super::{role_of, Fields, Staff};
use crate::error::{invalid, AppError, Result};
use crate::extract::{parse_id, CsrfForm, Id, Param};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

const WEEKDAY_NAMES: [(&str, &str); 7] = [
    ("lun", "Mon"),
    ("mar", "Tue"),
    ("mer", "Wed"),
    ("gio", "Thu"),
    ("ven", "Fri"),
    ("sab", "Sat"),
    ("dom", "Sun"),
];

fn redirect(s: Staff, to: String) -> Result<Response> {
    Ok((s.ui.jar, Redirect::to(&to)).into_response())
}

fn modes_of(f: &Fields) -> Result<ModeSet> {
    let mut modes = Vec::new();
    for m in f.all("modalita") {
        modes.push(Mode::parse(m).ok_or_else(|| invalid("modalità sconosciuta", "unknown mode"))?);
    }
    if modes.is_empty() {
        return Err(invalid(
            "scegli almeno una modalità",
            "choose at least one mode",
        ));
    }
    Ok(ModeSet::of(&modes))
}

fn mode_choices(l: Lang, set: ModeSet) -> Vec<Choice> {
    [Mode::InPerson, Mode::Phone, Mode::Video]
        .into_iter()
        .map(|m| Choice {
            value: m.code().into(),
            label: l.mode(m).into(),
            checked: set.contains(m),
        })
        .collect()
}

fn minutes(f: &Fields, name: &str) -> Result<i64> {
    NaiveTime::parse_from_str(f.get(name).trim(), "%H:%M")
        .map(|t| i64::from(t.hour() * 60 + t.minute()))
        .map_err(|_| {
            invalid(
                format!("orario non valido in {name} (HH:MM)"),
                format!("invalid time in {name} (HH:MM)"),
            )
        })
}

fn hhmm(m: i64) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn opt_day(f: &Fields, name: &str) -> Result<Option<NaiveDate>> {
    match f.get(name).trim() {
        "" => Ok(None),
        v => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                invalid(
                    format!("data non valida in {name}"),
                    format!("invalid date in {name}"),
                )
            }),
    }
}

async fn audit(st: &AppState, e: staff::audit::Entry) -> Result<()> {
    staff::audit::record(st.store.pool(), &e).await?;
    Ok(())
}

// ------------------------------------------------------------------ offices

fn office_input(f: &Fields) -> Result<OfficeInput> {
    Ok(OfficeInput {
        name: f.required("name", 200)?,
        department: f.text("department", 300)?,
        email: f.required("email", 254)?,
        phone: f.text("phone", 50)?,
        address: f.text("address", 300)?,
        hours_text: f.text("hours_text", 1000)?,
    })
}

pub async fn offices(State(st): State<AppState>, s: Staff) -> Result<Response> {
    if !s.p.configures_anything() {
        return Err(AppError::Forbidden(
            "la configurazione è per coordinatori e amministratori",
        ));
    }
    let page = OfficesConfigPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav("config"),
        offices: s
            .offices(&st)
            .await?
            .into_iter()
            .filter(|o| s.p.configures_office(o.id))
            .map(|o| Choice {
                value: o.id.to_string(),
                label: o.name,
                checked: false,
            })
            .collect(),
        can_create: s.p.creates_offices(),
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn office_create(
    State(st): State<AppState>,
    s: Staff,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    if !s.p.creates_offices() {
        return Err(AppError::Forbidden("solo un amministratore crea uffici"));
    }
    let input = office_input(&f)?;
    let id = st.store.save_office(None, &input).await?;
    audit(
        &st,
        s.audit("ufficio_creato", "office", id, Some(id), input.name, &st),
    )
    .await?;
    redirect(s, format!("/ufficio/config/uffici/{id}"))
}

pub async fn office(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    s.configure(id)?;
    let l = s.l();
    let o = st.store.office(id).await?;
    let calendars = st.store.calendars_settings_of(id).await?;
    let services = st
        .store
        .services_of(id, false)
        .await?
        .into_iter()
        .map(|sv| Choice {
            value: sv.id.to_string(),
            label: format!(
                "{}{}",
                sv.title,
                if sv.published {
                    ""
                } else {
                    l.t(" (privato)", " (private)")
                }
            ),
            checked: sv.published,
        })
        .collect();
    let page = OfficeConfigPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("config"),
        id: id.to_string(),
        name: o.name,
        department: o.department,
        email: o.email,
        phone: o.phone,
        address: o.address,
        hours_text: o.hours_text,
        services,
        calendars: calendars
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name.clone(),
                checked: c.moderated,
            })
            .collect(),
        operators: st
            .store
            .office_operators(id)
            .await?
            .into_iter()
            .map(|op| format!("{} <{}>", op.name, op.email))
            .collect(),
        modes: mode_choices(l, ModeSet::ALL),
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn office_save(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    s.configure(id)?;
    let input = office_input(&f)?;
    st.store.save_office(Some(id), &input).await?;
    audit(
        &st,
        s.audit(
            "ufficio_modificato",
            "office",
            id,
            Some(id),
            input.name,
            &st,
        ),
    )
    .await?;
    redirect(s, format!("/ufficio/config/uffici/{id}"))
}

// ------------------------------------------------------------------ services

fn service_input(f: &Fields, office_id: i64) -> Result<ServiceInput> {
    Ok(ServiceInput {
        office_id,
        calendar_id: parse_id(f.get("calendar"))?,
        title: f.required("title", 200)?,
        description: f.text("description", 2000)?,
        max_minutes: f.number("max_minutes", 5, 480)?,
        instructions: f.text("instructions", 2000)?,
        documents: f.text("documents", 2000)?,
        modes: modes_of(f)?,
        published: f.flag("published"),
    })
}

pub async fn service_create(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let office = id;
    s.configure(office)?;
    let input = service_input(&f, office)?;
    let sid = st.store.save_service(None, &input).await?;
    audit(
        &st,
        s.audit(
            "servizio_creato",
            "service",
            sid,
            Some(office),
            input.title,
            &st,
        ),
    )
    .await?;
    redirect(s, format!("/ufficio/config/servizi/{sid}"))
}

pub async fn service(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    let sv = st.store.service(id).await?;
    s.configure(sv.office_id)?;
    let l = s.l();
    let page = ServiceConfigPage {
        l,
        csrf: s.ui.csrf.clone(),
        nav: s.nav("config"),
        id: sv.id.to_string(),
        office_id: sv.office_id.to_string(),
        office: st.store.office(sv.office_id).await?.name,
        title: sv.title.clone(),
        description: sv.description.clone(),
        max_minutes: sv.max_minutes,
        instructions: sv.instructions.clone(),
        documents: sv.documents.clone(),
        published: sv.published,
        modes: mode_choices(l, sv.modes),
        calendars: st
            .store
            .calendars_settings_of(sv.office_id)
            .await?
            .into_iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name,
                checked: c.id == sv.calendar_id,
            })
            .collect(),
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn service_save(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let sv = st.store.service(id).await?;
    s.configure(sv.office_id)?;
    let input = service_input(&f, sv.office_id)?;
    st.store.save_service(Some(sv.id), &input).await?;
    audit(
        &st,
        s.audit(
            "servizio_modificato",
            "service",
            sv.id,
            Some(sv.office_id),
            input.title,
            &st,
        ),
    )
    .await?;
    redirect(s, format!("/ufficio/config/servizi/{}", sv.id))
}

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

pub async fn calendar_create(
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

pub async fn calendar(
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

pub async fn calendar_save(
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
pub async fn calendar_change(
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

// ------------------------------------------------------------------ accounts

async fn account_lines(st: &AppState, s: &Staff) -> Result<Vec<AccountLine>> {
    let l = s.l();
    let offices = st.store.offices().await?;
    Ok(st
        .accounts
        .list()
        .await?
        .into_iter()
        .filter(|a| s.p.manages_account(a.role, &a.offices))
        .map(|a| AccountLine {
            id: a.id.to_string(),
            name: a.name,
            email: a.email,
            role: if l.is_en() {
                a.role.label_en()
            } else {
                a.role.label_it()
            }
            .into(),
            offices: a
                .offices
                .iter()
                .filter_map(|id| offices.iter().find(|o| o.id == *id))
                .map(|o| o.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            disabled: a.disabled,
        })
        .collect())
}

fn role_choices(s: &Staff, current: Role) -> Vec<Choice> {
    let l = s.l();
    [Role::Operator, Role::Coordinator, Role::Admin]
        .into_iter()
        .filter(|r| s.p.manages_account(*r, &s.p.offices) || s.p.is_admin())
        .map(|r| Choice {
            value: r.code().into(),
            label: if l.is_en() {
                r.label_en()
            } else {
                r.label_it()
            }
            .into(),
            checked: r == current,
        })
        .collect()
}

async fn office_choices(st: &AppState, s: &Staff, selected: &[i64]) -> Result<Vec<Choice>> {
    Ok(s.offices(st)
        .await?
        .into_iter()
        .filter(|o| s.p.configures_office(o.id))
        .map(|o| Choice {
            value: o.id.to_string(),
            label: o.name,
            checked: selected.contains(&o.id),
        })
        .collect())
}

pub async fn accounts(State(st): State<AppState>, s: Staff) -> Result<Response> {
    if !s.p.configures_anything() {
        return Err(AppError::Forbidden(
            "gli account sono gestiti da coordinatori e amministratori",
        ));
    }
    render_accounts(&st, s, None).await
}

async fn render_accounts(
    st: &AppState,
    s: Staff,
    created: Option<(String, String)>,
) -> Result<Response> {
    let page = AccountsPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav("account"),
        accounts: account_lines(st, &s).await?,
        roles: role_choices(&s, Role::Operator),
        offices: office_choices(st, &s, &[]).await?,
        created,
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn account_create(
    State(st): State<AppState>,
    s: Staff,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let role = role_of(f.get("role"))?;
    let offices = f.ids("uffici")?;
    if !s.p.manages_account(role, &offices) {
        return Err(AppError::Forbidden(
            "non puoi creare un account con questo ruolo o questi uffici",
        ));
    }
    if role != Role::Admin && offices.is_empty() {
        return Err(invalid(
            "scegli almeno un ufficio",
            "choose at least one office",
        ));
    }
    let email = f.required("email", 254)?;
    let name = f.required("name", 200)?;
    // Operators host appointments: they are the office's operator with the same email.
    let operator_id = match (role, offices.first()) {
        (Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &name, &email).await?)
        }
        _ => None,
    };
    let new = NewAccount {
        email: email.clone(),
        name,
        role,
        offices: offices.clone(),
        operator_id,
    };
    match st.accounts.create(&new, st.now()).await {
        Ok((id, provisional)) => {
            audit(
                &st,
                s.audit(
                    "account_creato",
                    "account",
                    id,
                    offices.first().copied(),
                    role.code(),
                    &st,
                ),
            )
            .await?;
            render_accounts(
                &st,
                s,
                Some((staff::accounts::normalize_email(&email), provisional)),
            )
            .await
        }
        Err(staff::Error::DuplicateEmail) => Err(invalid(
            "esiste già un account con questa email",
            "an account with this email already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn account_page(
    st: &AppState,
    s: Staff,
    a: &staff::AccountSummary,
    provisional: Option<String>,
) -> Result<Response> {
    let page = AccountPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav("account"),
        id: a.id.to_string(),
        name: a.name.clone(),
        email: a.email.clone(),
        disabled: a.disabled,
        locked: provisional.is_none() && a.locked_until.is_some_and(|t| t > st.now()),
        roles: role_choices(&s, a.role),
        offices: office_choices(st, &s, &a.offices).await?,
        provisional,
        is_self: a.id == s.p.account_id,
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn account(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    account_page(&st, s, &a, None).await
}

pub async fn account_save(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    if f.get("azione") == "password" {
        let provisional = st.accounts.reset_password(a.id).await?;
        audit(
            &st,
            s.audit(
                "password_reimpostata",
                "account",
                a.id,
                a.offices.first().copied(),
                "",
                &st,
            ),
        )
        .await?;
        return account_page(&st, s, &a, Some(provisional)).await;
    }
    let role = role_of(f.get("role"))?;
    let offices = f.ids("uffici")?;
    if !s.p.manages_account(role, &offices) {
        return Err(AppError::Forbidden(
            "non puoi dare questo ruolo o questi uffici",
        ));
    }
    let disabled = f.flag("disabled");
    if a.id == s.p.account_id && (disabled || role != a.role) {
        return Err(AppError::Forbidden(
            "non puoi disattivare il tuo account né cambiarne il ruolo",
        ));
    }
    let name = f.required("name", 200)?;
    let operator_id = match (a.operator_id, role, offices.first()) {
        (Some(op), _, _) => Some(op),
        (None, Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &name, &a.email).await?)
        }
        _ => None,
    };
    st.accounts
        .update(a.id, &name, role, &offices, operator_id, disabled)
        .await?;
    let detail = format!(
        "{}{}",
        role.code(),
        if disabled { ", disattivato" } else { "" }
    );
    audit(
        &st,
        s.audit(
            "account_modificato",
            "account",
            a.id,
            offices.first().copied(),
            detail,
            &st,
        ),
    )
    .await?;
    redirect(s, "/ufficio/account".into())
}
