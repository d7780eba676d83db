//! The developer's mailbox (`/posta`): with no SMTP server configured, the emails the server
//! would send are kept and shown here, with their invitations. It holds personal data and every
//! link of every booking, so it answers only without SMTP, and only on the administration
//! listener (`admin_listen`, loopback), never on the public one.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{AppError, Result};
use crate::extract::Visitor;
use crate::extract::{Id, Param};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/posta", get(list_mail))
        .route("/posta/{id}", get(show_mail))
        .route("/posta/{id}/invito.ics", get(download_invitation))
}

/// The local mailbox exists only without SMTP. (Who may see it is decided by where its router
/// is served: the administration listener only.)
fn mailbox_allowed(st: &AppState) -> Result<()> {
    if st.mailer.is_local() {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

fn mail_row(st: &AppState, l: Lang, m: &booking::store::OutboxMessage) -> MailRow {
    MailRow {
        id: m.id,
        when: l.when(m.created_at, st.tz),
        to: m.to.clone(),
        subject: m.subject.clone(),
        kind: m.kind.clone(),
        status: if m.sent_at.is_some() {
            l.t("consegnata").into()
        } else {
            l.t("in coda").into()
        },
    }
}

async fn list_mail(Visitor(st, ui): Visitor) -> Result<Response> {
    mailbox_allowed(&st)?;
    let l = ui.l;
    let messages = st
        .store
        .mailbox(200)
        .await?
        .iter()
        .map(|m| mail_row(&st, l, m))
        .collect();
    ui.page(StatusCode::OK, MailboxPage { l, messages })
}

async fn show_mail(Visitor(st, ui): Visitor, Param(Id(id)): Param<Id>) -> Result<Response> {
    mailbox_allowed(&st)?;
    let m = st.store.message(id).await?;
    let l = ui.l;
    let page = MailPage {
        l,
        m: mail_row(&st, l, &m),
        text: m.text.clone(),
        html: m.html.clone(),
        ics: m.ics.clone(),
    };
    ui.page(StatusCode::OK, page)
}

async fn download_invitation(
    State(st): State<AppState>,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    mailbox_allowed(&st)?;
    let m = st.store.message(id).await?;
    let ics = m.ics.ok_or(AppError::NotFound)?;
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        ics,
    )
        .into_response())
}
