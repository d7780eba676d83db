//! A person's data as they may have it (GDPR arts. 15 and 20): every appointment found for an
//! email address or a fiscal code, with all that is stored about it, as JSON or CSV. Used by the
//! administrators' page (`console::privacy`) and by the person's own link (`citizen::my_data`);
//! finding and erasing are the store's (`booking::store`'s retention).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{AppError, Result};
use crate::state::AppState;

/// One appointment of the person, as exported.
#[derive(Serialize)]
pub struct Record {
    pub code: String,
    pub office: String,
    pub service: String,
    pub start: String,
    end: String,
    mode: &'static str,
    pub status: &'static str,
    pub given_name: String,
    pub family_name: String,
    email: String,
    phone: String,
    fiscal_code: String,
    reason: String,
    office_note: String,
    booked_at: String,
    booked_by: String,
    consent_at: String,
    privacy_notice_version: Option<String>,
    emails: Vec<SentEmail>,
}

#[derive(Serialize)]
struct SentEmail {
    kind: String,
    subject: String,
    to: String,
    sent_at: Option<String>,
}

/// The appointments of the person with this email address or fiscal code, with all that is
/// stored about them, earliest first.
pub async fn records(st: &AppState, email: &str, fiscal_code: &str) -> Result<Vec<Record>> {
    let ids = st.store.find_person(email, fiscal_code).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let item = st.store.agenda_item(id).await?;
        let a = &item.appointment;
        let office = st.store.office(a.office_id).await?;
        let service = st.store.service(a.service_id).await?;
        let emails = st
            .store
            .messages_for(a.id)
            .await?
            .into_iter()
            .map(|m| SentEmail {
                kind: m.kind,
                subject: m.subject,
                to: m.to,
                sent_at: m.sent_at.map(|t| t.to_rfc3339()),
            })
            .collect();
        out.push(Record {
            code: a.code.clone(),
            office: office.name,
            service: service.title,
            start: a.start.to_rfc3339(),
            end: a.end.to_rfc3339(),
            mode: a.mode.code(),
            status: a.status.code(),
            given_name: a.contact.given_name.clone(),
            family_name: a.contact.family_name.clone(),
            email: a.contact.email.clone(),
            phone: a.contact.phone.clone(),
            fiscal_code: a.contact.fiscal_code.clone(),
            reason: a.contact.reason.clone(),
            office_note: item.note.clone(),
            booked_at: a.created_at.to_rfc3339(),
            booked_by: item.booked_by.clone(),
            consent_at: item.consent.0.to_rfc3339(),
            privacy_notice_version: item.consent.1.clone(),
            emails,
        });
    }
    Ok(out)
}

/// The records as a JSON document: `{"appointments": [...]}`.
fn json(records: &[Record]) -> Result<String> {
    serde_json::to_string_pretty(&serde_json::json!({ "appointments": records }))
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// The records as CSV, one appointment a line.
fn csv(records: &[Record]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| AppError::Internal(e.to_string());
    w.write_record([
        "codice",
        "ufficio",
        "servizio",
        "inizio",
        "fine",
        "modalita",
        "stato",
        "nome",
        "cognome",
        "email",
        "telefono",
        "codice_fiscale",
        "motivo",
        "nota_ufficio",
        "prenotato_il",
        "prenotato_da",
        "consenso_il",
        "versione_informativa",
        "email_inviate",
    ])
    .map_err(fail)?;
    for r in records {
        let emails = r.emails.len().to_string();
        w.write_record([
            r.code.as_str(),
            &r.office,
            &r.service,
            &r.start,
            &r.end,
            r.mode,
            r.status,
            &csv_text(&r.given_name),
            &csv_text(&r.family_name),
            &csv_text(&r.email),
            &csv_text(&r.phone),
            &r.fiscal_code,
            &csv_text(&r.reason),
            &csv_text(&r.office_note),
            &r.booked_at,
            &r.booked_by,
            &r.consent_at,
            r.privacy_notice_version.as_deref().unwrap_or(""),
            &emails,
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| AppError::Internal(e.to_string()))
}

/// A value a spreadsheet would take for a formula (=, +, -, @ first) is kept as text.
fn csv_text(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn download(content_type: &str, name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// How a person's data is downloaded.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Csv => "CSV",
        }
    }
}

/// The records as a download named `stem.json` or `stem.csv`.
pub fn file(records: &[Record], format: Format, stem: &str) -> Result<Response> {
    Ok(match format {
        Format::Json => download(
            "application/json; charset=utf-8",
            &format!("{stem}.json"),
            json(records)?,
        ),
        Format::Csv => download(
            "text/csv; charset=utf-8",
            &format!("{stem}.csv"),
            csv(records)?,
        ),
    })
}
