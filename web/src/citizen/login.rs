//! Logging in with SPID or CIE through the town's OpenID Connect provider (`oidc`), the
//! citizen's appointments in one page, and logging out. Without a provider set, none of these
//! pages exist.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::SameSite;
use booking::citizens::Citizen;
use booking::token::Purpose;
use serde::Deserialize;

use super::links::appointment_view;
use crate::error::{AppError, Result};
use crate::extract::{
    CsrfForm, NoFields, Ui, Visitor, CITIZEN_COOKIE, LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::oidc::{Failure, Provider};
use crate::state::AppState;
use crate::views::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accedi", get(start_login))
        .route("/accedi/ritorno", get(finish_login))
        .route("/esci", post(logout))
        .route("/i-miei-appuntamenti", get(my_appointments))
}

fn provider(st: &AppState) -> Result<&Provider> {
    st.oidc.as_deref().ok_or(AppError::NotFound)
}

/// The logged-in citizen of this browser, if any.
pub(crate) async fn logged_in(st: &AppState, ui: &Ui) -> Result<Option<Citizen>> {
    if st.oidc.is_none() {
        return Ok(None);
    }
    let cookie = ui
        .jar
        .get(CITIZEN_COOKIE.on(ui.https))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    Ok(st.store.citizen_session(&cookie, st.now()).await?)
}

/// Where to go back after the login: a path of this site, never another site.
fn back_to(dopo: &str) -> String {
    let ok = dopo.starts_with('/')
        && !dopo.starts_with("//")
        && !dopo.contains('\\')
        && !dopo.starts_with("/ufficio")
        && dopo.len() <= 300
        && !dopo.chars().any(char::is_control);
    if ok {
        dopo.to_string()
    } else {
        "/i-miei-appuntamenti".into()
    }
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    dopo: String,
}

async fn start_login(Visitor(st, ui): Visitor, Query(q): Query<After>) -> Result<Response> {
    begin(st, ui, &back_to(&q.dopo)).await
}

/// Sends the browser to the provider, to come back to `after`: a citizen's page, or a console
/// page for a staff login (`/ufficio/...`, only from the console's login page).
pub(crate) async fn begin(st: AppState, ui: Ui, after: &str) -> Result<Response> {
    let p = provider(&st)?;
    let (url, state, attempt) = p.begin(after).await.map_err(AppError::Login)?;
    st.store
        .start_citizen_login(&state, &attempt, st.now())
        .await?;
    let cookie = LOGIN_COOKIE.build(state, ui.https, SameSite::Lax);
    Ok((ui.jar.add(cookie), Redirect::to(&url)).into_response())
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

async fn finish_login(Visitor(st, ui): Visitor, Query(a): Query<Answer>) -> Result<Response> {
    let p = provider(&st)?;
    let started = ui
        .jar
        .get(LOGIN_COOKIE.on(ui.https))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let jar = ui.jar.clone().add(LOGIN_COOKIE.removal(ui.https));
    // The answer must come back to the browser that started the login, and only once.
    let same_browser = !started.is_empty()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            started.as_bytes(),
            a.state.as_bytes(),
        ));
    let attempt = if same_browser {
        st.store.take_citizen_login(&a.state, st.now()).await?
    } else {
        None
    };
    let Some(attempt) = attempt.filter(|_| a.error.is_empty() && !a.code.is_empty()) else {
        tracing::info!(
            cancelled = !a.error.is_empty(),
            same_browser,
            "login refused: not this login"
        );
        return Ok((jar, AppError::Login(Failure::NotThisLogin)).into_response());
    };
    let citizen = match p.finish(&a.code, &attempt).await {
        Ok(c) => c,
        Err(f) => {
            if let Failure::Refused(why) = &f {
                tracing::info!(reason = %why, "login refused: ID token");
            }
            return Ok((jar, AppError::Login(f)).into_response());
        }
    };
    if attempt.after.starts_with("/ufficio") {
        return staff_login(&st, ui.l, jar, ui.https, &citizen, &attempt.after).await;
    }
    let cookie = st.store.open_citizen_session(&citizen, st.now()).await?;
    tracing::info!("citizen logged in");
    let session = CITIZEN_COOKIE.build(cookie, ui.https, SameSite::Lax);
    Ok((jar.add(session), Redirect::to(&attempt.after)).into_response())
}

async fn logout(Visitor(st, ui): Visitor, _: CsrfForm<NoFields>) -> Result<Response> {
    if let Some(c) = ui.jar.get(CITIZEN_COOKIE.on(ui.https)) {
        st.store.close_citizen_session(c.value()).await?;
    }
    let jar = ui.jar.add(CITIZEN_COOKIE.removal(ui.https));
    Ok((jar, Redirect::to("/?uscito=1")).into_response())
}

async fn my_appointments(Visitor(st, ui): Visitor) -> Result<Response> {
    provider(&st)?;
    let Some(c) = logged_in(&st, &ui).await? else {
        return Ok(Redirect::to("/accedi?dopo=/i-miei-appuntamenti").into_response());
    };
    let l = ui.l;
    let mut lines = Vec::new();
    for a in st.store.citizen_appointments(&c).await? {
        let manage = a
            .status
            .is_active()
            .then(|| format!("/prenotazione/{}", st.signer.sign(Purpose::Manage, a.id)));
        let join = (a.status.is_active() && a.mode == booking::Mode::Video)
            .then(|| format!("/stanza/{}", st.signer.sign(Purpose::RoomCitizen, a.id)));
        lines.push(MyAppointment {
            a: appointment_view(&st, l, &a).await?,
            manage,
            join,
        });
    }
    let page = MyAppointmentsPage {
        l,
        csrf: ui.csrf.clone(),
        name: format!("{} {}", c.given_name, c.family_name)
            .trim()
            .to_string(),
        fiscal_code: c.fiscal_code.clone(),
        lines,
    };
    ui.page(StatusCode::OK, page)
}

/// A staff member logged in through the provider: the account with the email it vouched for
/// (never one made on the way). The console's session cookie is SameSite=Strict, which the
/// browser does not send on a redirect that a cross-site answer started: a page of this site
/// leads on to the console instead (at once, by the Refresh header, or by its link).
async fn staff_login(
    st: &AppState,
    l: crate::i18n::Lang,
    jar: axum_extra::extract::CookieJar,
    https: bool,
    c: &Citizen,
    after: &str,
) -> Result<Response> {
    let vouched = if c.email_verified {
        st.accounts.login_vouched(&c.email, st.now()).await?
    } else {
        None
    };
    let Some((cookie, principal)) = vouched else {
        tracing::info!("staff login through the provider refused: no account");
        return Ok((jar, AppError::Login(Failure::NoAccount)).into_response());
    };
    tracing::info!(
        account = principal.account_id,
        "staff login through the provider"
    );
    let to = if principal.must_change_password {
        "/ufficio/password".to_string()
    } else {
        after.to_string()
    };
    let jar = jar.add(SESSION_COOKIE.build(cookie, https, SameSite::Strict));
    let page = ContinuePage { l, to: to.clone() };
    let html = crate::extract::render(&page, &st.town)?;
    Ok((
        jar,
        [(axum::http::header::REFRESH, format!("0; url={to}"))],
        axum::response::Html(html),
    )
        .into_response())
}
