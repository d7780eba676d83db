//! The staff consoles under `/ufficio`: login and passwords, the operators' agenda and the
//! actions on an appointment, booking on behalf of a caller, configuration (offices, services,
//! calendars, accounts), statistics and the audit log.
//!
//! Every handler takes a `Staff` (a logged-in person, or a redirect to the login page) and asks
//! its `Principal` before it reads or changes anything; the rules are in `staff::role`. Forms
//! carry the same CSRF token as the citizen's pages, and the session cookie is HttpOnly,
//! SameSite=Strict, and Secure whenever the site is served over HTTPS.

mod agenda;
mod config;
mod reports;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use staff::{LoginOutcome, Principal, Role};

use crate::error::{invalid, AppError, Result};
use crate::extract::{CsrfForm, Ui};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

pub const SESSION_COOKIE: &str = "sessione";

/// The local midnight starting `day`, in UTC.
pub fn midnight(st: &AppState, day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    st.tz
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/accesso", get(login_page).post(login_submit))
        .route("/ufficio/esci", post(logout))
        .route(
            "/ufficio/password",
            get(password_page).post(password_submit),
        )
        .route("/ufficio", get(agenda::agenda))
        .route("/ufficio/attesa", get(agenda::waiting))
        .route("/ufficio/appuntamenti/{id}", get(agenda::appointment))
        .route("/ufficio/appuntamenti/{id}/entra", get(agenda::join))
        .route("/ufficio/appuntamenti/{id}/{action}", post(agenda::act))
        .route(
            "/ufficio/prenota",
            get(agenda::book_page).post(agenda::book_submit),
        )
        .route("/ufficio/statistiche", get(reports::stats))
        .route("/ufficio/statistiche.csv", get(reports::stats_csv))
        .route("/ufficio/registro", get(reports::audit))
        .route(
            "/ufficio/config",
            get(config::offices).post(config::office_create),
        )
        .route(
            "/ufficio/config/uffici/{id}",
            get(config::office).post(config::office_save),
        )
        .route(
            "/ufficio/config/uffici/{id}/servizi",
            post(config::service_create),
        )
        .route(
            "/ufficio/config/uffici/{id}/calendari",
            post(config::calendar_create),
        )
        .route(
            "/ufficio/config/servizi/{id}",
            get(config::service).post(config::service_save),
        )
        .route(
            "/ufficio/config/calendari/{id}",
            get(config::calendar).post(config::calendar_save),
        )
        .route(
            "/ufficio/config/calendari/{id}/{what}",
            post(config::calendar_change),
        )
        .route(
            "/ufficio/account",
            get(config::accounts).post(config::account_create),
        )
        .route(
            "/ufficio/account/{id}",
            get(config::account).post(config::account_save),
        )
}

// ------------------------------------------------------------------ the logged-in person

/// A logged-in staff member, with the page language and CSRF token.
pub struct Staff {
    pub p: Principal,
    pub ui: Ui,
    cookie: String,
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> std::result::Result<Self, Response> {
        let ui = Ui::from_request_parts(parts, st)
            .await
            .map_err(|e| match e {})?;
        let cookie = ui
            .jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let p = match st.accounts.session(&cookie, st.now()).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or("/ufficio", |p| p.as_str());
                let back = if parts.method == axum::http::Method::GET {
                    back
                } else {
                    "/ufficio"
                };
                let to = format!("/ufficio/accesso?dopo={}", urlencode(back));
                return Err((ui.jar, Redirect::to(&to)).into_response());
            }
            Err(e) => return Err(AppError::from(e).into_response()),
        };
        let path = parts.uri.path();
        if p.must_change_password && path != "/ufficio/password" && path != "/ufficio/esci" {
            return Err((ui.jar, Redirect::to("/ufficio/password")).into_response());
        }
        Ok(Staff { p, ui, cookie })
    }
}

impl Staff {
    pub fn nav(&self, section: &'static str) -> Nav {
        Nav {
            name: self.p.name.clone(),
            role: if self.ui.l.is_en() {
                self.p.role.label_en()
            } else {
                self.p.role.label_it()
            },
            configures: self.p.configures_anything(),
            section,
        }
    }

    pub fn l(&self) -> Lang {
        self.ui.l
    }

    /// Refuses unless this person may see the office.
    pub fn see(&self, office_id: i64) -> Result<()> {
        if self.p.sees_office(office_id) {
            Ok(())
        } else {
            Err(AppError::Forbidden("questo ufficio non è tra i tuoi"))
        }
    }

    /// Refuses unless this person may configure the office.
    pub fn configure(&self, office_id: i64) -> Result<()> {
        if self.p.configures_office(office_id) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "non puoi modificare la configurazione di questo ufficio",
            ))
        }
    }

    /// The offices this person sees, in display order.
    pub async fn offices(&self, st: &AppState) -> Result<Vec<booking::Office>> {
        Ok(st
            .store
            .offices()
            .await?
            .into_iter()
            .filter(|o| self.p.sees_office(o.id))
            .collect())
    }

    /// Every service of the offices this person sees ("Office — Service"), published or not.
    pub async fn service_choices(
        &self,
        st: &AppState,
        selected: Option<i64>,
    ) -> Result<Vec<Choice>> {
        let mut out = Vec::new();
        for o in self.offices(st).await? {
            for sv in st.store.services_of(o.id, false).await? {
                out.push(Choice {
                    value: sv.id.to_string(),
                    label: format!("{} — {}", o.name, sv.title),
                    checked: Some(sv.id) == selected,
                });
            }
        }
        Ok(out)
    }

    pub fn audit(
        &self,
        action: &str,
        kind: &str,
        id: i64,
        office: Option<i64>,
        detail: impl Into<String>,
        st: &AppState,
    ) -> staff::audit::Entry {
        staff::audit::Entry::by(&self.p, action, kind, id, office, detail, st.now())
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A submitted form as name/value pairs (checkbox lists repeat a name).
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
    pub fn text(&self, name: &str, max: usize) -> Result<String> {
        let v = self.get(name).trim();
        if v.chars().count() > max {
            return Err(invalid(
                format!("il campo {name} supera i {max} caratteri"),
                format!("the field {name} is longer than {max} characters"),
            ));
        }
        Ok(v.to_string())
    }
    pub fn required(&self, name: &str, max: usize) -> Result<String> {
        let v = self.text(name, max)?;
        if v.is_empty() {
            return Err(invalid(
                format!("il campo {name} è obbligatorio"),
                format!("the field {name} is required"),
            ));
        }
        Ok(v)
    }
    pub fn number(&self, name: &str, min: i64, max: i64) -> Result<i64> {
        self.get(name)
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                invalid(
                    format!("il campo {name} deve essere un numero da {min} a {max}"),
                    format!("the field {name} must be a number from {min} to {max}"),
                )
            })
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn ids(&self, name: &str) -> Result<Vec<i64>> {
        self.all(name)
            .into_iter()
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    invalid(
                        format!("il campo {name} non è valido"),
                        format!("the field {name} is not valid"),
                    )
                })
            })
            .collect()
    }
    pub fn flag(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

fn session_cookie(value: String, secure: bool, max_age: Option<i64>) -> Cookie<'static> {
    let mut c = Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .build();
    if max_age == Some(0) {
        c.make_removal();
    }
    c
}

/// Whether the browser reached us over HTTPS (directly, or through a proxy that says so).
fn secure(st: &AppState, headers: &HeaderMap) -> bool {
    st.https
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
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

async fn login_page(ui: Ui, Query(q): Query<After>) -> Result<Response> {
    let page = LoginPage {
        l: ui.l,
        csrf: ui.csrf.clone(),
        after: after_login(&q.dopo),
        email: String::new(),
        error: None,
    };
    ui.page(StatusCode::OK, page)
}

async fn login_submit(
    State(st): State<AppState>,
    headers: HeaderMap,
    ui: Ui,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let email = f.text("email", 254)?;
    let password = f.get("password");
    let l = ui.l;
    let refuse = |ui: Ui, msg: String| {
        let page = LoginPage {
            l,
            csrf: ui.csrf.clone(),
            after: after_login(f.get("dopo")),
            email: email.clone(),
            error: Some(msg),
        };
        ui.page(StatusCode::UNAUTHORIZED, page)
    };
    if password.len() > staff::password::MAX_LENGTH {
        return refuse(
            ui,
            l.t("Email o password non corretti.", "Wrong email or password.")
                .into(),
        );
    }
    match st.accounts.login(&email, password, st.now()).await? {
        LoginOutcome::Welcome { cookie, principal } => {
            tracing::info!(account = principal.account_id, "staff login");
            let jar = ui
                .jar
                .add(session_cookie(cookie, secure(&st, &headers), None));
            let to = if principal.must_change_password {
                "/ufficio/password".to_string()
            } else {
                after_login(f.get("dopo"))
            };
            Ok((jar, Redirect::to(&to)).into_response())
        }
        LoginOutcome::Refused => {
            // Each wrong answer costs the guesser a moment, whatever the account.
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            refuse(
                ui,
                l.t("Email o password non corretti.", "Wrong email or password.")
                    .into(),
            )
        }
        LoginOutcome::LockedUntil(until) => {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            let minutes = ((until - st.now()).num_seconds() + 59) / 60;
            refuse(
                ui,
                if l.is_en() {
                    format!("Too many failed attempts: try again in {minutes} minutes.")
                } else {
                    format!("Troppi tentativi non riusciti: riprova tra {minutes} minuti.")
                },
            )
        }
    }
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    s: Staff,
    CsrfForm(_f): CsrfForm<Fields>,
) -> Result<Response> {
    st.accounts.logout(&s.cookie).await?;
    let jar = s.ui.jar.add(session_cookie(
        String::new(),
        secure(&st, &headers),
        Some(0),
    ));
    Ok((jar, Redirect::to("/ufficio/accesso")).into_response())
}

async fn password_page(s: Staff) -> Result<Response> {
    let page = PasswordPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav(""),
        forced: s.p.must_change_password,
        error: None,
    };
    s.ui.page(StatusCode::OK, page)
}

async fn password_submit(
    State(st): State<AppState>,
    s: Staff,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let l = s.l();
    let new = f.get("new");
    let result = if new != f.get("repeat") {
        Err(l
            .t(
                "Le due nuove password non coincidono.",
                "The two new passwords differ.",
            )
            .to_string())
    } else {
        match st
            .accounts
            .change_password(&s.p, f.get("current"), new, &s.cookie)
            .await
        {
            Ok(()) => Ok(()),
            Err(staff::Error::WeakPassword(why)) => Err(password_problem(l, why)),
            Err(e) => return Err(e.into()),
        }
    };
    match result {
        Ok(()) => {
            staff::audit::record(
                st.store.pool(),
                &s.audit("password_changed", "account", s.p.account_id, None, "", &st),
            )
            .await?;
            Ok((s.ui.jar, Redirect::to("/ufficio?esito=password")).into_response())
        }
        Err(msg) => {
            let page = PasswordPage {
                l,
                csrf: s.ui.csrf.clone(),
                nav: s.nav(""),
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
        "wrong_current" => l
            .t(
                "La password attuale non è corretta.",
                "The current password is wrong.",
            )
            .into(),
        "too_short" => {
            if l.is_en() {
                format!("The new password needs at least {min} characters.")
            } else {
                format!("La nuova password deve avere almeno {min} caratteri.")
            }
        }
        "too_long" => l
            .t(
                "La nuova password è troppo lunga.",
                "The new password is too long.",
            )
            .into(),
        "contains_email" => l
            .t(
                "La nuova password non deve contenere il tuo indirizzo email.",
                "The new password must not contain your email address.",
            )
            .into(),
        "same_as_before" => l
            .t(
                "La nuova password deve essere diversa da quella attuale.",
                "The new password must differ from the current one.",
            )
            .into(),
        _ => l
            .t(
                "Scegli una password meno prevedibile.",
                "Choose a less predictable password.",
            )
            .into(),
    }
}

/// The role a form names, refused when unknown.
pub fn role_of(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| invalid("ruolo sconosciuto", "unknown role"))
}
