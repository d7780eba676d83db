//! Configuring offices: the list, a new office (administrators), an office's details with its
//! calendars, services and operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use booking::backoffice::OfficeInput;
use booking::ModeSet;

use super::context::*;
use crate::error::{AppError, Result};
use crate::extract::{CsrfForm, Id, Param};
use crate::state::AppState;
use crate::views::console::*;

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

pub async fn list_offices(State(st): State<AppState>, s: Staff) -> Result<Response> {
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

pub async fn create_office(
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

pub async fn show_office(
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

pub async fn save_office(
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
