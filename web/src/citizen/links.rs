//! The links in the citizen's emails: verify the booking, the booking's page, the "check your
//! email" page, cancel, move, the printable receipt. Each opens with a signed token that names
//! the appointment and its purpose; a tampered or foreign token is refused before anything else.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use booking::audit::Entry as AuditEntry;
use booking::token::Purpose;
use booking::validate::{self};
use booking::{Actor, Appointment, Mode, Status};
use serde::Deserialize;

use super::catalogue::day_views;
use crate::error::{booking_message, is_refusal, AppError, Result};
use crate::extract::{urlencode, CsrfForm, Link, NoFields, Ui};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conferma/{token}", get(show_verify).post(submit_verify))
        .route("/prenotazione/{token}", get(show_booking))
        .route("/inviata/{token}", get(show_sent))
        .route(
            "/prenotazione/{token}/annulla",
            get(show_cancel).post(submit_cancel),
        )
        .route(
            "/prenotazione/{token}/sposta",
            get(show_move).post(submit_move),
        )
        .route("/prenotazione/{token}/ricevuta", get(show_receipt))
        .route(
            "/prenotazione/{token}/calendario.ics",
            get(download_calendar),
        )
}

pub(crate) async fn appointment_view(
    st: &AppState,
    l: Lang,
    a: &Appointment,
) -> Result<AppointmentView> {
    let o = st.store.office(a.office_id).await?;
    let s = st.store.service(a.service_id).await?;
    let operator = st.store.operator_name(a.operator_id).await;
    Ok(AppointmentView {
        code: a.code.clone(),
        office: o.name.clone(),
        office_email: o.email.clone(),
        office_phone: o.phone.clone(),
        address: if a.mode == Mode::InPerson {
            o.address.clone()
        } else {
            String::new()
        },
        service: s.title.clone(),
        when: l.when(a.start, st.tz),
        max_minutes: s.max_minutes,
        mode: a.mode.label(l).into(),
        is_video: a.mode == Mode::Video,
        status: a.status.label(l).into(),
        active: a.status.is_active(),
        pending: a.status == Status::Pending,
        awaiting_approval: a.status == Status::AwaitingApproval,
        name: a.contact.full_name(),
        operator,
        documents: s.document_list().iter().map(|d| d.to_string()).collect(),
        instructions: s.instructions.clone(),
    })
}

async fn by_token(st: &AppState, purpose: Purpose, token: &str) -> Result<Appointment> {
    let id = st
        .signer
        .verify(purpose, token)
        .map_err(|_| AppError::BadLink)?;
    Ok(st.store.appointment(id).await?)
}

fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

async fn show_sent(Link(st, ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Sent, &token).await?;
    let l = ui.l;
    let page = SentPage {
        l,
        masked_email: mask_email(&a.contact.email),
        deadline: l.when(a.verify_deadline, st.tz),
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

async fn show_verify(Link(st, ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Verify, &token).await?;
    match a.status {
        Status::Pending if st.now() <= a.verify_deadline => {}
        Status::Pending => return Err(booking::Error::NotActive(Status::Expired).into()),
        Status::Confirmed | Status::AwaitingApproval => {
            let manage = st.signer.sign(Purpose::Manage, a.id);
            return Ok(Redirect::to(&format!("/prenotazione/{manage}")).into_response());
        }
        s => return Err(booking::Error::NotActive(s).into()),
    }
    let l = ui.l;
    let page = VerifyPage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

async fn submit_verify(Link(st, ui, token): Link, _: CsrfForm<NoFields>) -> Result<Response> {
    let a = by_token(&st, Purpose::Verify, &token).await?;
    let a = st.store.verify(a.id, st.now()).await?;
    let manage = st.signer.sign(Purpose::Manage, a.id);
    let outcome = if a.status == Status::AwaitingApproval {
        "richiesta"
    } else {
        "confermata"
    };
    Ok((
        ui.jar,
        Redirect::to(&format!("/prenotazione/{manage}?esito={outcome}")),
    )
        .into_response())
}

#[derive(Deserialize)]
struct OutcomeQuery {
    esito: Option<String>,
}

async fn show_booking(
    Link(st, ui, token): Link,
    Query(q): Query<OutcomeQuery>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let l = ui.l;
    let notice = match q.esito.as_deref() {
        Some("confermata") => Some(l.t("Prenotazione confermata. Ti abbiamo inviato una email con il riepilogo e l'invito per il calendario.")),
        Some("richiesta") => Some(l.t("Email verificata: la richiesta è stata inviata all'ufficio.")),
        Some("annullata") => Some(l.t("L'appuntamento è stato annullato. Ti abbiamo inviato una email di conferma.")),
        Some("spostata") => Some(l.t("L'appuntamento è stato spostato. Ti abbiamo inviato l'invito aggiornato.")),
        _ => None,
    }
    .map(str::to_string);
    let can_change = a.status.is_active() && a.end > st.now();
    let join_url = (a.mode == Mode::Video && a.status == Status::Confirmed)
        .then(|| format!("/stanza/{}", st.signer.sign(Purpose::RoomCitizen, a.id)));
    let calendar = match can_change {
        true => Some(calendar_links(&st, l, &a, &token).await?),
        false => None,
    };
    let page = ManagePage {
        l,
        calendar,
        token,
        a: appointment_view(&st, l, &a).await?,
        join_url,
        notice,
        can_change,
    };
    ui.page(StatusCode::OK, page)
}

async fn show_cancel(Link(st, ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    if !a.status.is_active() {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let l = ui.l;
    let page = CancelPage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

async fn submit_cancel(Link(st, ui, token): Link, _: CsrfForm<NoFields>) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let entry = AuditEntry::by_citizen("annullato_cittadino", a.id, a.office_id, "", st.now());
    st.store
        .cancel(a.id, Actor::Citizen, "", &entry, st.now())
        .await?;
    tracing::info!(appointment = a.id, "cancelled by the citizen");
    Ok((
        ui.jar,
        Redirect::to(&format!("/prenotazione/{token}?esito=annullata")),
    )
        .into_response())
}

async fn render_move(
    st: &AppState,
    ui: Ui,
    token: String,
    a: &Appointment,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    if !a.status.is_active() {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let s = st.store.service(a.service_id).await?;
    let mut free = st.store.free_slots(&s, st.now()).await?;
    free.retain(|x| x.start != a.start);
    let l = ui.l;
    let page = MovePage {
        l,
        csrf: ui.csrf.clone(),
        token,
        a: appointment_view(st, l, a).await?,
        days: day_views(st, l, &free),
        alert,
    };
    ui.page(status, page)
}

async fn show_move(Link(st, ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    render_move(&st, ui, token, &a, None, StatusCode::OK).await
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    start: String,
}

async fn submit_move(
    Link(st, ui, token): Link,
    CsrfForm(f): CsrfForm<MoveForm>,
) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let Some(start) = f
        .start
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    else {
        let alert = Some(validate::Problem::BadSlot.message(ui.l));
        return render_move(&st, ui, token, &a, alert, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let detail = format!(
        "{} → {}",
        ui.l.when(a.start, st.tz),
        ui.l.when(start, st.tz)
    );
    let entry = AuditEntry::by_citizen("spostato_cittadino", a.id, a.office_id, detail, st.now());
    match st
        .store
        .reschedule(a.id, start, None, Actor::Citizen, "", &entry, st.now())
        .await
    {
        Ok(_) => Ok((
            ui.jar,
            Redirect::to(&format!("/prenotazione/{token}?esito=spostata")),
        )
            .into_response()),
        Err(e) if is_refusal(&e) => {
            let alert = Some(ui.l.text(&booking_message(&e)));
            let status = AppError::Booking(e).describe().0;
            render_move(&st, ui, token, &a, alert, status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn show_receipt(Link(st, ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    let l = ui.l;
    let page = ReceiptPage {
        l,
        booked_on: l.when(a.created_at, st.tz),
        a: appointment_view(&st, l, &a).await?,
    };
    ui.page(StatusCode::OK, page)
}

/// "Add to calendar": the invitation to download, and Google's and Outlook's pages to add the
/// event. Those two get the title, the time and the place, never a link of the booking (it
/// would hand a third party the means to act on it).
async fn calendar_links(
    st: &AppState,
    l: Lang,
    a: &Appointment,
    token: &str,
) -> Result<CalendarLinks> {
    let o = st.store.office(a.office_id).await?;
    let s = st.store.service(a.service_id).await?;
    let title = format!("{} - {}", s.title, o.name);
    let place = if a.mode == Mode::InPerson {
        o.address.clone()
    } else {
        a.mode.label(l).to_string()
    };
    let details = format!("{}: {}", l.t("Codice prenotazione"), a.code);
    let compact = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let iso = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(CalendarLinks {
        ics: format!("/prenotazione/{token}/calendario.ics"),
        google: format!(
            "https://calendar.google.com/calendar/render?action=TEMPLATE&text={}&dates={}/{}&details={}&location={}",
            urlencode(&title),
            compact(a.start),
            compact(a.end),
            urlencode(&details),
            urlencode(&place)
        ),
        outlook: format!(
            "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose&rru=addevent&subject={}&startdt={}&enddt={}&body={}&location={}",
            urlencode(&title),
            iso(a.start),
            iso(a.end),
            urlencode(&details),
            urlencode(&place)
        ),
    })
}

/// The appointment's invitation (iCalendar) to add it to one's calendar, the same as the
/// confirmation email's.
async fn download_calendar(Link(st, _ui, token): Link) -> Result<Response> {
    let a = by_token(&st, Purpose::Manage, &token).await?;
    if !a.status.is_active() {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let office = st.store.office(a.office_id).await?;
    let service = st.store.service(a.service_id).await?;
    let links = &st.store.links;
    let manage = links.manage_url(a.id);
    let join = (a.mode == Mode::Video).then(|| links.join_url(a.id));
    let invitation = booking::ics::Invitation {
        appointment: &a,
        office: &office,
        service: &service,
        host: links.host(),
        join_url: join.as_deref(),
        manage_url: &manage,
        now: st.now(),
    };
    let body = booking::ics::render(&invitation, booking::ics::Method::Request);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"appuntamento-{}.ics\"", a.code),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}
