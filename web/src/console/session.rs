//! Logging in and out, and changing one's password (forced at the first login). Failed logins
//! cost the guesser a moment and lock the account after a few (see `staff`).

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::SameSite;

use serde::Deserialize;
use staff::LoginOutcome;

use super::context::*;
use crate::error::Result;
use crate::extract::Visitor;
use crate::extract::{urlencode, CsrfForm, NoFields, Ui, SESSION_COOKIE};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/accesso", get(show_login).post(submit_login))
        .route("/ufficio/accesso/spid", get(start_spid))
        .route("/ufficio/esci", post(submit_logout))
        .route(
            "/ufficio/password",
            get(show_password).post(submit_password),
        )
}

// ------------------------------------------------------------------ login and passwords

#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    dopo: String,
}

/// Only paths of the console itself: never an open redirect.
fn after_login(dopo: &str) -> String {
    if dopo.starts_with("/ufficio") && !dopo.starts_with("//") && !dopo.contains('\\') {
        dopo.to_string()
    } else {
        "/ufficio".to_string()
    }
}

pub async fn show_login(ui: Ui, Query(q): Query<After>) -> Result<Response> {
    let page = LoginPage {
        l: ui.l,
        csrf: ui.csrf.clone(),
        after: after_login(&q.dopo),
        after_encoded: urlencode(&after_login(&q.dopo)),
        email: String::new(),
        error: None,
    };
    ui.page(StatusCode::OK, page)
}

/// The login form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    /// The console page to go back to.
    dopo: String,
}

/// A staff login through the town's identity provider (see `citizen::login`).
async fn start_spid(Visitor(st, ui): Visitor, Query(q): Query<After>) -> Result<Response> {
    crate::citizen::login::begin(st, ui, &after_login(&q.dopo)).await
}

pub async fn submit_login(
    Visitor(st, ui): Visitor,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<Response> {
    let email: String = f.email.trim().chars().take(254).collect();
    let password = f.password.as_str();
    let l = ui.l;
    let refuse = |ui: Ui, msg: String| {
        let page = LoginPage {
            l,
            csrf: ui.csrf.clone(),
            after: after_login(&f.dopo),
            after_encoded: urlencode(&after_login(&f.dopo)),
            email: email.clone(),
            error: Some(msg),
        };
        ui.page(StatusCode::UNAUTHORIZED, page)
    };
    if password.len() > staff::password::MAX_LENGTH || f.email.trim().chars().count() > 254 {
        return refuse(ui, refusal(l));
    }
    match st.accounts.login(&email, password, st.now()).await? {
        LoginOutcome::Welcome { cookie, principal } => {
            tracing::info!(account = principal.account_id, "staff login");
            let jar = ui
                .jar
                .add(SESSION_COOKIE.build(cookie, ui.https, SameSite::Strict));
            let to = if principal.must_change_password {
                "/ufficio/password".to_string()
            } else {
                after_login(&f.dopo)
            };
            Ok((jar, Redirect::to(&to)).into_response())
        }
        // A wrong password, an unknown email and a locked account get the same answer, so that
        // the answer tells nobody which emails have accounts; each costs the guesser a moment.
        outcome => {
            if let LoginOutcome::LockedUntil(until) = outcome {
                tracing::warn!(until = %until, "staff login refused: account locked");
            } else {
                tracing::warn!("staff login refused");
            }
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            refuse(ui, refusal(l))
        }
    }
}

pub async fn submit_logout(Post(st, s, _): Post<NoFields>) -> Result<Response> {
    st.accounts.logout(&s.cookie).await?;
    let jar = s.ui.jar.add(SESSION_COOKIE.removal(s.ui.https));
    Ok((jar, Redirect::to("/ufficio/accesso")).into_response())
}

pub async fn show_password(s: Staff) -> Result<Response> {
    let page = PasswordPage {
        frame: s.frame(""),
        forced: s.p.must_change_password,
        error: None,
    };
    s.ui.page(StatusCode::OK, page)
}

/// The password change form: the current password and the new one, typed twice.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

pub async fn submit_password(Post(st, s, f): Post<PasswordForm>) -> Result<Response> {
    let l = s.l();
    let new = f.new.as_str();
    let result = if new != f.repeat {
        Err(l.t("Le due nuove password non coincidono.").to_string())
    } else {
        match st
            .accounts
            .change_password(
                &s.p,
                &f.current,
                new,
                &s.cookie,
                &s.audit(
                    "password_changed",
                    "account",
                    Some(s.p.account_id),
                    None,
                    "",
                    &st,
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(staff::Error::WeakPassword(why)) => Err(password_problem(l, why)),
            Err(e) => return Err(e.into()),
        }
    };
    match result {
        Ok(()) => Ok((s.ui.jar, Redirect::to("/ufficio?esito=password")).into_response()),
        Err(msg) => {
            let page = PasswordPage {
                frame: s.frame(""),
                forced: s.p.must_change_password,
                error: Some(msg),
            };
            s.ui.page(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
    }
}

fn password_problem(l: Lang, why: &str) -> String {
    let min = staff::password::MIN_LENGTH;
    match why {
        "wrong_current" => l.t("La password attuale non è corretta.").into(),
        "too_short" => l.f(
            "La nuova password deve avere almeno {n} caratteri.",
            &[("n", &min)],
        ),
        "too_long" => l.t("La nuova password è troppo lunga.").into(),
        "contains_email" => l
            .t("La nuova password non deve contenere il tuo indirizzo email.")
            .into(),
        "same_as_before" => l
            .t("La nuova password deve essere diversa da quella attuale.")
            .into(),
        _ => l.t("Scegli una password meno prevedibile.").into(),
    }
}

/// The one answer to a refused login.
fn refusal(l: Lang) -> String {
    l.t("Email o password non corretti. Dopo 5 tentativi sbagliati di seguito l'accesso resta sospeso per qualche minuto.")
    .into()
}
