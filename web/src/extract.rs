//! How a request is taken: the page language and CSRF token of a browser (`Ui`), with the site's
//! state (`Visitor`) or with an email link's token (`Link`), a form parsed
//! and CSRF-checked in one step (`CsrfForm`), and typed path parameters (`Param`, `Id`) whose
//! refusal is mapped once, to "not found". Handlers never parse ids or check tokens by hand.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::town::Town;

/// 32 random bytes, base64url without padding.
const CSRF_LEN: usize = 43;

/// The name of one of the site's cookies. Over HTTPS (directly, or through a trusted proxy that
/// says so) it carries the `__Host-` prefix: a browser keeps such a cookie only if it is Secure,
/// for the whole site and for this host alone, so neither a sibling subdomain nor a plain-HTTP
/// page can plant or overwrite it. Over plain HTTP (development on one machine) the bare name,
/// since a browser refuses the prefix there.
#[derive(Debug, Clone, Copy)]
pub struct CookieName {
    bare: &'static str,
    host: &'static str,
}

/// The double-submit CSRF token.
pub const CSRF_COOKIE: CookieName = CookieName::new("csrf", "__Host-csrf");
/// The staff session.
pub const SESSION_COOKIE: CookieName = CookieName::new("sessione", "__Host-sessione");
/// A citizen logged in through the identity provider. SameSite=Lax, not Strict: the browser
/// comes back from the provider by a cross-site redirect, and a Strict cookie set then would
/// not be sent on the page it leads to. Forms are CSRF-checked all the same.
pub const CITIZEN_COOKIE: CookieName = CookieName::new("cittadino", "__Host-cittadino");
/// Binds a login under way to the browser that started it (its `state`), for ten minutes.
pub const LOGIN_COOKIE: CookieName = CookieName::new("accesso", "__Host-accesso");
/// The language chosen with the switch in the header.
pub const LANG_COOKIE: CookieName = CookieName::new("lang", "__Host-lang");

impl CookieName {
    /// `host` is `bare` with the `__Host-` prefix.
    const fn new(bare: &'static str, host: &'static str) -> CookieName {
        CookieName { bare, host }
    }

    /// The cookie's removal (an empty value that has expired), as `build` set it.
    pub fn removal(self, https: bool) -> Cookie<'static> {
        let mut c = self.build(String::new(), https, SameSite::Lax);
        c.make_removal();
        c
    }

    /// The name for a request that came over HTTPS or not.
    pub fn on(self, https: bool) -> &'static str {
        if https {
            self.host
        } else {
            self.bare
        }
    }

    /// This cookie for the whole site: HttpOnly, Secure over HTTPS, with the given SameSite.
    pub fn build(self, value: String, https: bool, same_site: SameSite) -> Cookie<'static> {
        Cookie::build((self.on(https), value))
            .path("/")
            .http_only(true)
            .secure(https)
            .same_site(same_site)
            .build()
    }
}

/// The page language and the CSRF token of this browser (double-submit: a random value in a
/// SameSite=Strict, HttpOnly cookie that every form must echo), whether the browser reached
/// the site over HTTPS (which names the cookies), and the town every page is rendered with.
pub struct Ui {
    pub l: Lang,
    pub csrf: String,
    pub jar: CookieJar,
    pub town: Arc<Town>,
    pub https: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Ui
where
    Arc<Town>: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &S,
    ) -> std::result::Result<Self, Infallible> {
        let town = Arc::<Town>::from_ref(st);
        let jar = CookieJar::from_headers(&parts.headers);
        let https = is_https(&parts.extensions);
        let l = page_lang(&parts.headers, https);
        match jar
            .get(CSRF_COOKIE.on(https))
            .map(|c| c.value().to_string())
        {
            Some(v) if v.len() == CSRF_LEN => Ok(Ui {
                l,
                csrf: v,
                jar,
                town,
                https,
            }),
            _ => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                let v = base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    bytes,
                );
                let cookie = CSRF_COOKIE.build(v.clone(), https, SameSite::Strict);
                Ok(Ui {
                    l,
                    csrf: v,
                    jar: jar.add(cookie),
                    town,
                    https,
                })
            }
        }
    }
}

/// A value for a query string: all but unreserved characters and `/` percent-encoded.
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

/// Whether this request reached the site over HTTPS (see `limits::Scheme`).
/// The language the browser chose with the switch in the header (Italian until it does).
pub fn page_lang(headers: &axum::http::HeaderMap, https: bool) -> Lang {
    CookieJar::from_headers(headers)
        .get(LANG_COOKIE.on(https))
        .and_then(|c| Lang::from_code(c.value()))
        .unwrap_or_default()
}

pub fn is_https(extensions: &axum::http::Extensions) -> bool {
    extensions
        .get::<crate::limits::Scheme>()
        .is_some_and(|s| s.https)
}

impl Ui {
    /// The one way a page is rendered: with the town, which `base.html` shows on every page.
    pub(crate) fn page(self, status: StatusCode, t: impl Template) -> Result<Response> {
        let html = render(&t, &self.town)?;
        Ok((status, self.jar, Html(html)).into_response())
    }
}

/// A page rendered with the town (see `town`).
pub(crate) fn render(t: &impl Template, town: &Town) -> askama::Result<String> {
    let values: [(&str, &dyn std::any::Any); 1] = [("town", town)];
    t.render_with_values(&values)
}

/// The years a day in a request may fall in: wide enough for any appointment or statistic,
/// narrow enough that date arithmetic on it never reaches chrono's limits.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A `YYYY-MM-DD` day from a query or form, or none (malformed, or outside `YEARS`).
pub fn parse_day(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| YEARS.contains(&chrono::Datelike::year(d)))
}

/// A positive database id from the path; anything else is "not found".
pub(crate) fn parse_id(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or(AppError::NotFound)
}

/// Typed path parameters (`Param<Id>`, `Param<(Id, Action)>`): a value that does not parse is
/// "not found", as for a page that does not exist.
pub struct Param<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Param<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self> {
        Path::<T>::from_request_parts(parts, st)
            .await
            .map(|Path(t)| Param(t))
            .map_err(|_| AppError::NotFound)
    }
}

/// A database id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Id, D::Error> {
        let n = i64::deserialize(d)?;
        if n > 0 {
            Ok(Id(n))
        } else {
            Err(serde::de::Error::custom("not an id"))
        }
    }
}

/// A submitted form, parsed and CSRF-checked in one step: its `csrf` field must echo this
/// browser's CSRF cookie (double submit), compared in constant time. A body over the limit is
/// refused before it is parsed; a missing or foreign token changes nothing.
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, st: &S) -> Result<Self> {
        let name = CSRF_COOKIE.on(is_https(req.extensions()));
        let cookie = CookieJar::from_headers(req.headers())
            .get(name)
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let body = Bytes::from_request(req, st).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge
            } else {
                AppError::BadRequest(e.body_text())
            }
        })?;
        let sent = serde_html_form::from_bytes::<CsrfField>(&body)
            .map(|f| f.csrf)
            .unwrap_or_default();
        check_csrf(&cookie, &sent)?;
        serde_html_form::from_bytes::<T>(&body)
            .map(CsrfForm)
            .map_err(|e| AppError::BadRequest(e.to_string()))
    }
}

fn check_csrf(cookie: &str, sent: &str) -> Result<()> {
    use subtle::ConstantTimeEq;
    if cookie.len() == CSRF_LEN
        && sent.len() == cookie.len()
        && bool::from(sent.as_bytes().ct_eq(cookie.as_bytes()))
    {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "il modulo è scaduto o non proviene da questo sito: ricarica la pagina e riprova",
        ))
    }
}

/// A request from anyone, logged in or not: the site's state and the browser's `Ui`, in one
/// extractor (the console's pages take `Console`, which adds the logged-in person).
pub struct Visitor(pub AppState, pub Ui);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let ui = Ui::from_request_parts(parts, st).await?;
        Ok(Visitor(st.clone(), ui))
    }
}

/// A request on a link from an email (`/…/{token}`): `Visitor` and the link's token, which the
/// handler verifies for its purpose.
pub struct Link(pub AppState, pub Ui, pub String);

impl FromRequestParts<AppState> for Link {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Ok(Visitor(st, ui)) = Visitor::from_request_parts(parts, st).await;
        let Path(token) = Path::<String>::from_request_parts(parts, &st)
            .await
            .map_err(|_| AppError::BadLink)?;
        Ok(Link(st, ui, token))
    }
}
