//! What every console handler takes: the logged-in person (`Staff`, or a redirect to the login
//! page) with the page language and CSRF token, in one of three extractors (`Console` for a page,
//! `Post` for a form, `Edit` for a form about one record), and the small helpers the pages share. It knows
//! no page: the page groups import it, never the reverse.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use booking::Mode;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use staff::Principal;

use crate::error::{invalid, AppError, Result};
use crate::extract::{urlencode, CsrfForm, Id, Param, Ui, SESSION_COOKIE};
use crate::i18n::{mark, Lang};
use crate::state::AppState;
use crate::views::console::*;

/// The local midnight starting `day`, in UTC.
pub fn midnight(st: &AppState, day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    st.tz
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

// ------------------------------------------------------------------ the logged-in person

/// A logged-in staff member, with the page language and CSRF token.
pub struct Staff {
    pub p: Principal,
    pub ui: Ui,
    pub(super) cookie: String,
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
            .get(SESSION_COOKIE.on(ui.https))
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

/// A console request: the site's state and the logged-in person, in one extractor.
pub struct Console(pub AppState, pub Staff);

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> std::result::Result<Self, Response> {
        let s = Staff::from_request_parts(parts, st).await?;
        Ok(Console(st.clone(), s))
    }
}

/// A console form posted: `Console` and the CSRF-checked form, in one extractor.
pub struct Post<F>(pub AppState, pub Staff, pub F);

impl<F: DeserializeOwned + Send> FromRequest<AppState> for Post<F> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> std::result::Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Console(st, s) = Console::from_request_parts(&mut parts, st).await?;
        let req = Request::from_parts(parts, body);
        let CsrfForm(f) = CsrfForm::<F>::from_request(req, &st)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Post(st, s, f))
    }
}

/// A console form posted about one record (`/ufficio/…/{id}/…`): `Console`, the record's id
/// (anything but a positive integer is "not found") and the CSRF-checked form, in that order.
pub struct Edit<F>(pub AppState, pub Staff, pub i64, pub F);

impl<F: DeserializeOwned + Send> FromRequest<AppState> for Edit<F> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> std::result::Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Console(st, s) = Console::from_request_parts(&mut parts, st).await?;
        let Param(Id(id)) = Param::<Id>::from_request_parts(&mut parts, &st)
            .await
            .map_err(IntoResponse::into_response)?;
        let req = Request::from_parts(parts, body);
        let CsrfForm(f) = CsrfForm::<F>::from_request(req, &st)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Edit(st, s, id, f))
    }
}

impl Staff {
    /// The frame of a console page with `section` open in the navigation bar.
    pub fn frame(&self, section: &'static str) -> Frame {
        Frame {
            l: self.ui.l,
            csrf: self.ui.csrf.clone(),
            nav: Nav {
                name: self.p.name.clone(),
                role: self.p.role.label(self.ui.l),
                configures: self.p.configures_anything(),
                admin: self.p.is_admin(),
                section,
            },
        }
    }

    pub fn l(&self) -> Lang {
        self.ui.l
    }

    /// Refuses, with `refusal`, unless this person configures something (coordinators and
    /// administrators).
    pub fn configuring(&self, refusal: &'static str) -> Result<()> {
        if self.p.configures_anything() {
            Ok(())
        } else {
            Err(AppError::Forbidden(refusal))
        }
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

    /// The audit entry for a change this person makes, given to the store with the change
    /// (`id` None: the id of what the change makes).
    pub fn audit(
        &self,
        action: &str,
        kind: &str,
        id: Option<i64>,
        office: Option<i64>,
        detail: impl Into<String>,
        st: &AppState,
    ) -> booking::audit::Entry {
        self.p.audit(action, kind, id, office, detail, st.now())
    }
}

/// Short weekday names, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = [
    mark("lun"),
    mark("mar"),
    mark("mer"),
    mark("gio"),
    mark("ven"),
    mark("sab"),
    mark("dom"),
];

pub fn redirect(s: Staff, to: String) -> Result<Response> {
    Ok((s.ui.jar, Redirect::to(&to)).into_response())
}

/// The three modes as checkboxes, ticked where `checked(code)` says so.
pub fn mode_choices(l: Lang, checked: impl Fn(&str) -> bool) -> Vec<Choice> {
    Choice::modes(l, [Mode::InPerson, Mode::Phone, Mode::Video], |m| {
        checked(m.code())
    })
}

pub fn hhmm(m: i64) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// An optional id from a form or query field ("" is none).
pub fn opt_id(s: &str) -> Result<Option<i64>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim()
        .parse::<i64>()
        .map(Some)
        .map_err(|_| invalid("identificativo non valido"))
}

/// Today in the offices' time zone.
pub fn today(st: &AppState) -> NaiveDate {
    st.now().with_timezone(&st.tz).date_naive()
}
