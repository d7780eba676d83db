//! A person's data, at their request (GDPR arts. 15, 17 and 20), for administrators: find the
//! appointments of an email address or a fiscal code, export them (JSON, CSV), or erase them.
//! Each export and erasure leaves an audit entry that says how many appointments, never whose.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::context::Post;
use super::context::{Console, Staff};
use crate::error::{invalid, AppError, Result};
use crate::personal_data::{file, records, Format, Record};
use crate::state::AppState;
use crate::views::console::{PersonLine, PrivacyPage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/dati-personali", get(show_person))
        .route(
            "/ufficio/dati-personali.json",
            get(|c: Console, q: Query<PersonQuery>| export_as(c, q, Format::Json)),
        )
        .route(
            "/ufficio/dati-personali.csv",
            get(|c: Console, q: Query<PersonQuery>| export_as(c, q, Format::Csv)),
        )
        .route("/ufficio/dati-personali/cancella", post(erase_person))
}

/// Who is asked for: an email address, a fiscal code, or both.
#[derive(Deserialize, Default, Clone)]
pub struct PersonQuery {
    #[serde(default)]
    email: String,
    #[serde(default)]
    codice_fiscale: String,
    /// After an erasure: how many appointments it erased.
    #[serde(default)]
    cancellati: Option<u64>,
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    codice_fiscale: String,
    #[serde(default)]
    conferma: Option<String>,
}

fn administrators_only(s: &Staff) -> Result<()> {
    if s.p.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "le richieste sui dati personali sono degli amministratori",
        ))
    }
}

/// The checked query: at least one of the two, each of a sane shape.
fn checked(q: &PersonQuery) -> Result<PersonQuery> {
    let email = q.email.trim();
    let code = booking::fiscal::normalise(&q.codice_fiscale);
    if email.is_empty() && code.is_empty() {
        return Err(invalid("scrivi un indirizzo email o un codice fiscale"));
    }
    if email.chars().count() > 254 || email.chars().any(char::is_control) {
        return Err(invalid("indirizzo email non valido"));
    }
    if !code.is_empty() && !booking::fiscal::is_valid(&code) {
        return Err(invalid("codice fiscale non valido"));
    }
    Ok(PersonQuery {
        email: email.to_string(),
        codice_fiscale: code,
        cancellati: None,
    })
}

fn query_string(q: &PersonQuery) -> String {
    format!(
        "email={}&codice_fiscale={}",
        crate::extract::urlencode(&q.email),
        crate::extract::urlencode(&q.codice_fiscale)
    )
}

async fn show_person(Console(st, s): Console, Query(q): Query<PersonQuery>) -> Result<Response> {
    administrators_only(&s)?;
    let l = s.l();
    let asked = !q.email.trim().is_empty() || !q.codice_fiscale.trim().is_empty();
    let (lines, query, error) = if asked {
        match checked(&q) {
            Ok(q) => {
                let lines = records(&st, &q.email, &q.codice_fiscale)
                    .await?
                    .into_iter()
                    .map(|r| PersonLine {
                        code: r.code,
                        when: r.start,
                        service: format!("{} · {}", r.office, r.service),
                        name: format!("{} {}", r.given_name, r.family_name),
                        status: r.status.to_string(),
                    })
                    .collect();
                (lines, Some(query_string(&q)), None)
            }
            Err(AppError::Invalid(t)) => (Vec::new(), None, Some(l.text(&t))),
            Err(e) => return Err(e),
        }
    } else {
        (Vec::new(), None, None)
    };
    let page = PrivacyPage {
        frame: s.frame("dati"),
        email: q.email.trim().to_string(),
        fiscal_code: q.codice_fiscale.trim().to_string(),
        asked,
        lines,
        query,
        error,
        erased: q.cancellati,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    s.ui.page(status, page)
}

/// The records and the audit entry of an export.
async fn export(st: &AppState, s: &Staff, q: &PersonQuery, format: &str) -> Result<Vec<Record>> {
    administrators_only(s)?;
    let q = checked(q)?;
    let records = records(st, &q.email, &q.codice_fiscale).await?;
    let entry = s.audit(
        "dati_esportati",
        "person",
        None,
        None,
        format!("{} appuntamenti, {format}", records.len()),
        st,
    );
    st.store.record_export(&entry).await?;
    Ok(records)
}

async fn export_as(
    Console(st, s): Console,
    Query(q): Query<PersonQuery>,
    format: Format,
) -> Result<Response> {
    let records = export(&st, &s, &q, format.name()).await?;
    file(&records, format, "dati-personali")
}

async fn erase_person(Post(st, s, f): Post<EraseForm>) -> Result<Response> {
    administrators_only(&s)?;
    let q = checked(&PersonQuery {
        email: f.email,
        codice_fiscale: f.codice_fiscale,
        cancellati: None,
    })?;
    if f.conferma.as_deref() != Some("1") {
        return Err(invalid(
            "spunta la conferma: la cancellazione non si può annullare",
        ));
    }
    let ids = st.store.find_person(&q.email, &q.codice_fiscale).await?;
    let entry = s.audit(
        "dati_cancellati",
        "person",
        None,
        None,
        format!("{} appuntamenti", ids.len()),
        &st,
    );
    let n = st
        .store
        .erase_person(&ids, (&q.email, &q.codice_fiscale), &entry, st.now())
        .await?;
    Ok((
        s.ui.jar,
        Redirect::to(&format!("/ufficio/dati-personali?cancellati={n}")),
    )
        .into_response())
}
