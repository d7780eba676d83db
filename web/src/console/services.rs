//! Configuring services: a new service of an office, a service's details, modes, calendar and
//! whether citizens may book it.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::context::*;
use super::form::{OfficeRefusal, Problems, ServiceForm};
use super::offices::office_refused;
use crate::error::Result;
use crate::extract::{Id, Param};
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/config/uffici/{id}/servizi", post(create_service))
        .route(
            "/ufficio/config/servizi/{id}",
            get(show_service).post(save_service),
        )
}

pub async fn create_service(Edit(st, s, office, f): Edit<ServiceForm>) -> Result<Response> {
    s.configure(office)?;
    let input = match f.check(office) {
        Ok(input) => input,
        Err(p) => return office_refused(&st, s, office, OfficeRefusal::Service(f, p)).await,
    };
    let entry = s.audit(
        "servizio_creato",
        "service",
        None,
        Some(office),
        &input.title,
        &st,
    );
    let sid = st.store.save_service(None, &input, &entry).await?;
    redirect(s, format!("/ufficio/config/servizi/{sid}"))
}

pub async fn show_service(Console(st, s): Console, Param(Id(id)): Param<Id>) -> Result<Response> {
    let sv = st.store.service(id).await?;
    let form = ServiceForm::of(&sv);
    render_service(&st, s, id, form, Problems::default(), StatusCode::OK).await
}

async fn render_service(
    st: &AppState,
    s: Staff,
    id: i64,
    form: ServiceForm,
    problems: Problems,
    status: StatusCode,
) -> Result<Response> {
    let sv = st.store.service(id).await?;
    s.configure(sv.office_id)?;
    let l = s.l();
    let page = ServiceConfigPage {
        frame: s.frame("config"),
        id: sv.id.to_string(),
        office_id: sv.office_id.to_string(),
        office: st.store.office(sv.office_id).await?.name,
        title: sv.title.clone(),
        modes: mode_choices(l, |m| form.offers(m)),
        calendars: st
            .store
            .calendars_settings_of(sv.office_id)
            .await?
            .into_iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name,
                checked: c.id.to_string() == form.calendar,
            })
            .collect(),
        waiting: super::waitlist::waiting_lines(st, l, sv.id).await?,
        form,
        problems,
    };
    s.ui.page(status, page)
}

pub async fn save_service(Edit(st, s, id, f): Edit<ServiceForm>) -> Result<Response> {
    let sv = st.store.service(id).await?;
    s.configure(sv.office_id)?;
    let input = match f.check(sv.office_id) {
        Ok(input) => input,
        Err(p) => {
            return render_service(&st, s, id, f, p, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let entry = s.audit(
        "servizio_modificato",
        "service",
        Some(sv.id),
        Some(sv.office_id),
        &input.title,
        &st,
    );
    st.store.save_service(Some(sv.id), &input, &entry).await?;
    redirect(s, format!("/ufficio/config/servizi/{}", sv.id))
}
