//! Configuring offices: the list, a new office (administrators), an office's details with its
//! calendars, services and operators, and archiving an office (administrators).
//!
//! An office is archived, never deleted: its past appointments, statistics and audit entries
//! name it. Archiving asks for a confirmation and is refused while the office has active
//! appointments still to come (the store checks it in the same transaction); an archived
//! office can be put back in service.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::context::*;
use super::context::{Edit, Post};
use crate::error::{AppError, Result};
use crate::extract::{Id, Param};
use crate::state::AppState;
use crate::views::console::*;

use super::form::{OfficeForm, OfficeForms, OfficeRefusal, Problems};

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/config", get(list_offices).post(create_office))
        .route(
            "/ufficio/config/uffici/{id}",
            get(show_office).post(save_office),
        )
        .route(
            "/ufficio/config/uffici/{id}/archivia",
            get(confirm_archive).post(archive_office),
        )
        .route(
            "/ufficio/config/uffici/{id}/ripristina",
            axum::routing::post(restore_office),
        )
}

pub async fn list_offices(Console(st, s): Console) -> Result<Response> {
    render_offices(
        &st,
        s,
        OfficeForm::default(),
        Problems::default(),
        StatusCode::OK,
    )
    .await
}

async fn render_offices(
    st: &AppState,
    s: Staff,
    form: OfficeForm,
    problems: Problems,
    status: StatusCode,
) -> Result<Response> {
    s.configuring("la configurazione è per coordinatori e amministratori")?;
    let page = OfficesConfigPage {
        frame: s.frame("config"),
        offices: s
            .offices(st)
            .await?
            .into_iter()
            .filter(|o| s.p.configures_office(o.id))
            .map(|o| Choice {
                value: o.id.to_string(),
                label: o.name,
                checked: false,
            })
            .collect(),
        archived: if s.p.creates_offices() {
            st.store
                .all_offices()
                .await?
                .into_iter()
                .filter(|o| o.archived)
                .map(|o| Choice {
                    value: o.id.to_string(),
                    label: o.name,
                    checked: false,
                })
                .collect()
        } else {
            Vec::new()
        },
        can_create: s.p.creates_offices(),
        form,
        problems,
    };
    s.ui.page(status, page)
}

pub async fn create_office(Post(st, s, f): Post<OfficeForm>) -> Result<Response> {
    if !s.p.creates_offices() {
        return Err(AppError::Forbidden("solo un amministratore crea uffici"));
    }
    let input = match f.check() {
        Ok(input) => input,
        Err(p) => return render_offices(&st, s, f, p, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let entry = s.audit("ufficio_creato", "office", None, None, &input.name, &st);
    let id = st.store.save_office(None, &input, &entry).await?;
    redirect(s, format!("/ufficio/config/uffici/{id}"))
}

pub async fn show_office(Console(st, s): Console, Param(Id(id)): Param<Id>) -> Result<Response> {
    s.configure(id)?;
    let o = st.store.office(id).await?;
    let forms = OfficeForms {
        office: OfficeForm::of(&o),
        ..OfficeForms::default()
    };
    render_office(&st, s, id, forms, StatusCode::OK).await
}

/// The office's page again after one of its forms was refused, with that form as typed and
/// its problems in place of the blank one.
pub async fn office_refused(
    st: &AppState,
    s: Staff,
    id: i64,
    refused: OfficeRefusal,
) -> Result<Response> {
    let office = OfficeForm::of(&st.store.office(id).await?);
    let forms = OfficeForms::refused(office, refused);
    render_office(st, s, id, forms, StatusCode::UNPROCESSABLE_ENTITY).await
}

pub async fn render_office(
    st: &AppState,
    s: Staff,
    id: i64,
    forms: OfficeForms,
    status: StatusCode,
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
                if sv.published { "" } else { l.t(" (privato)") }
            ),
            checked: sv.published,
        })
        .collect();
    let page = OfficeConfigPage {
        frame: s.frame("config"),
        id: id.to_string(),
        name: o.name,
        archived: o.archived,
        can_archive: s.p.creates_offices(),
        services,
        calendars: calendars
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name.clone(),
                checked: c.moderated,
            })
            .collect(),
        service_calendars: calendars
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name.clone(),
                checked: c.id.to_string() == forms.service.calendar,
            })
            .collect(),
        operators: st
            .store
            .office_operators(id)
            .await?
            .into_iter()
            .map(|op| format!("{} <{}>", op.name, op.email))
            .collect(),
        service_modes: mode_choices(l, |m| forms.service.offers(m)),
        closures: {
            let today = st.now().with_timezone(&st.tz).date_naive();
            let mut out = Vec::new();
            for c in st.store.closures_of(id, today).await? {
                out.push(crate::closure_line::closure_line(st, l, &c).await?);
            }
            out
        },
        closure_calendars: std::iter::once(Choice {
            value: String::new(),
            label: l.t("Tutto l'ufficio").into(),
            checked: forms.closure.calendario.is_empty(),
        })
        .chain(calendars.iter().map(|c| Choice {
            value: c.id.to_string(),
            label: c.name.clone(),
            checked: c.id.to_string() == forms.closure.calendario,
        }))
        .collect(),
        forms,
    };
    s.ui.page(status, page)
}

pub async fn save_office(Edit(st, s, id, f): Edit<OfficeForm>) -> Result<Response> {
    s.configure(id)?;
    let input = match f.check() {
        Ok(input) => input,
        Err(p) => return office_refused(&st, s, id, OfficeRefusal::Office(f, p)).await,
    };
    let entry = s.audit(
        "ufficio_modificato",
        "office",
        Some(id),
        Some(id),
        &input.name,
        &st,
    );
    st.store.save_office(Some(id), &input, &entry).await?;
    redirect(s, format!("/ufficio/config/uffici/{id}"))
}

/// Refuses unless this person may archive offices (administrators, as for creating them).
fn may_archive(s: &Staff) -> Result<()> {
    if s.p.creates_offices() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "solo un amministratore archivia o ripristina uffici",
        ))
    }
}

/// "Archive this office?": what archiving does, or why it cannot be done yet.
pub async fn confirm_archive(
    Console(st, s): Console,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    may_archive(&s)?;
    let o = st.store.office(id).await?;
    if o.archived {
        return redirect(s, format!("/ufficio/config/uffici/{id}"));
    }
    let l = s.l();
    let mut to_come = Vec::new();
    for a in st.store.appointments_to_come(id, st.now()).await? {
        to_come.push(ToCome {
            id: a.id.to_string(),
            code: a.code.clone(),
            when: l.when(a.start, st.tz),
            service: st.store.service(a.service_id).await?.title,
        });
    }
    let page = ArchiveOfficePage {
        frame: s.frame("config"),
        id: id.to_string(),
        name: o.name,
        to_come,
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn archive_office(
    Edit(st, s, id, _): Edit<crate::extract::NoFields>,
) -> Result<Response> {
    let entry = office_entry(&st, &s, id, "ufficio_archiviato").await?;
    st.store.archive_office(id, &entry, st.now()).await?;
    redirect(s, "/ufficio/config".into())
}

pub async fn restore_office(
    Edit(st, s, id, _): Edit<crate::extract::NoFields>,
) -> Result<Response> {
    let entry = office_entry(&st, &s, id, "ufficio_ripristinato").await?;
    st.store.restore_office(id, &entry).await?;
    redirect(s, format!("/ufficio/config/uffici/{id}"))
}

/// The audit entry of archiving an office or putting it back, once the staff member may.
async fn office_entry(
    st: &AppState,
    s: &Staff,
    id: i64,
    action: &str,
) -> Result<booking::audit::Entry> {
    may_archive(s)?;
    let o = st.store.office(id).await?;
    Ok(s.audit(action, "office", Some(id), Some(id), &o.name, st))
}
