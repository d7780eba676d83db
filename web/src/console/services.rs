//! Configuring services: a new service of an office, a service's details, modes, calendar and
//! whether citizens may book it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use booking::backoffice::ServiceInput;

use super::context::*;
use crate::error::Result;
use crate::extract::{parse_id, CsrfForm, Id, Param};
use crate::state::AppState;
use crate::views::console::*;

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

pub async fn create_service(
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

pub async fn show_service(
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

pub async fn save_service(
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
