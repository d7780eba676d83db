//! Statistics (table, SVG chart, CSV) and the audit log.

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use super::context::{midnight, Console, Staff};
use crate::error::{invalid, AppError, Result};
use crate::extract::parse_id;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/statistiche", get(show_statistics))
        .route("/ufficio/statistiche.csv", get(download_statistics))
        .route("/ufficio/registro", get(show_audit_log))
}

#[derive(Deserialize, Default)]
pub struct StatsQuery {
    #[serde(default)]
    dal: String,
    #[serde(default)]
    al: String,
    #[serde(default)]
    ufficio: String,
    #[serde(default)]
    servizio: String,
    /// "excel": semicolons and a byte-order mark, for Italian Excel.
    #[serde(default)]
    formato: String,
}

struct Period {
    from: NaiveDate,
    to: NaiveDate,
    office: Option<i64>,
    service: Option<i64>,
}

fn period(st: &AppState, s: &Staff, q: &StatsQuery) -> Result<Period> {
    let today = st.now().with_timezone(&st.tz).date_naive();
    let day = |v: &str, default: NaiveDate| -> Result<NaiveDate> {
        if v.trim().is_empty() {
            return Ok(default);
        }
        crate::extract::parse_day(v).ok_or_else(|| invalid("data non valida (AAAA-MM-GG)"))
    };
    let from = day(&q.dal, today - Duration::days(30))?;
    let to = day(&q.al, today + Duration::days(30))?;
    if to < from || (to - from).num_days() > 3660 {
        return Err(invalid("periodo non valido"));
    }
    let office = match q.ufficio.trim() {
        "" => None,
        v => Some(parse_id(v)?),
    };
    if let Some(o) = office {
        s.see(o)?;
    }
    let service = match q.servizio.trim() {
        "" => None,
        v => Some(parse_id(v)?),
    };
    Ok(Period {
        from,
        to,
        office,
        service,
    })
}

async fn records(st: &AppState, s: &Staff, p: &Period) -> Result<staff::stats::Report> {
    let scope: Vec<i64> = match p.office {
        Some(o) => vec![o],
        // Archived offices too: their history is still the town's.
        None => st
            .store
            .all_offices()
            .await?
            .iter()
            .filter(|o| s.p.sees_office(o.id))
            .map(|o| o.id)
            .collect(),
    };
    let start = |d: NaiveDate| midnight(st, d);
    let rows = st
        .store
        .stat_records(
            Some(&scope),
            p.service,
            start(p.from),
            start(p.to + Duration::days(1)),
        )
        .await?;
    Ok(staff::stats::report(&rows))
}

fn line(office: &str, service: &str, t: &staff::stats::Totals) -> StatLine {
    StatLine {
        office: office.into(),
        service: service.into(),
        booked: t.booked,
        confirmed: t.confirmed,
        cancelled_citizen: t.cancelled_by_citizen,
        cancelled_office: t.cancelled_by_office,
        expired: t.expired + t.refused,
        done: t.done,
        no_show: t.no_show,
        in_person: t.in_person,
        phone: t.phone,
        video: t.video,
        lead: format!("{:.1}", t.average_lead_hours()),
    }
}

pub async fn show_statistics(
    Console(st, s): Console,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let l = s.l();
    let p = period(&st, &s, &q)?;
    let report = records(&st, &s, &p).await?;
    let offices = s.offices(&st).await?;
    let services = s.service_choices(&st, p.service).await?;
    let query = format!(
        "dal={}&al={}&ufficio={}&servizio={}",
        p.from,
        p.to,
        p.office.map(|i| i.to_string()).unwrap_or_default(),
        p.service.map(|i| i.to_string()).unwrap_or_default()
    );
    let page = StatsPage {
        frame: s.frame("statistiche"),
        from: p.from.to_string(),
        to: p.to.to_string(),
        offices: offices
            .iter()
            .map(|o| Choice {
                value: o.id.to_string(),
                label: o.name.clone(),
                checked: Some(o.id) == p.office,
            })
            .collect(),
        services,
        chart: staff::stats::svg_chart(&report, l),
        lines: report
            .lines
            .iter()
            .map(|(o, sv, t)| line(o, sv, t))
            .collect(),
        total: line(l.t("Totale"), "", &report.total),
        csv_link: format!("/ufficio/statistiche.csv?{query}"),
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn download_statistics(
    Console(st, s): Console,
    Query(q): Query<StatsQuery>,
) -> Result<Response> {
    let p = period(&st, &s, &q)?;
    let report = records(&st, &s, &p).await?;
    let dialect = if q.formato == "excel" {
        staff::stats::CsvDialect::ItalianExcel
    } else {
        staff::stats::CsvDialect::Rfc4180
    };
    let body =
        staff::stats::csv(&report, dialect).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"statistiche-{}-{}.csv\"",
                    p.from, p.to
                ),
            ),
        ],
        body,
    )
        .into_response())
}

/// What an audit action means, for people.
pub fn action_label(l: Lang, action: &str) -> &'static str {
    match action {
        "approvato" => l.t("Approvato"),
        "rifiutato" => l.t("Rifiutato"),
        "annullato" => l.t("Annullato dall'ufficio"),
        "annullato_cittadino" => l.t("Annullato dal cittadino"),
        "spostato" => l.t("Spostato dall'ufficio"),
        "spostato_cittadino" => l.t("Spostato dal cittadino"),
        "svolto" => l.t("Segnato svolto"),
        "assente" => l.t("Segnato non presentato"),
        "nota" => l.t("Nota modificata"),
        "prenotato" => l.t("Prenotato dall'ufficio"),
        "ufficio_creato" => l.t("Ufficio creato"),
        "ufficio_modificato" => l.t("Ufficio modificato"),
        "ufficio_archiviato" => l.t("Ufficio archiviato"),
        "ufficio_ripristinato" => l.t("Ufficio ripristinato"),
        "servizio_creato" => l.t("Servizio creato"),
        "servizio_modificato" => l.t("Servizio modificato"),
        "calendario_creato" => l.t("Calendario creato"),
        "calendario_modificato" => l.t("Calendario modificato"),
        "regola_aggiunta" => l.t("Orario aggiunto"),
        "regola_eliminata" => l.t("Orario eliminato"),
        "eccezione_aggiunta" => l.t("Chiusura o orario speciale aggiunto"),
        "eccezione_eliminata" => l.t("Chiusura o orario speciale eliminato"),
        "operatori_calendario" => l.t("Operatori del calendario cambiati"),
        "account_creato" => l.t("Account creato"),
        "account_modificato" => l.t("Account modificato"),
        "password_reimpostata" => l.t("Password provvisoria generata"),
        "password_changed" => l.t("Password cambiata"),
        "dati_esportati" => l.t("Dati di una persona esportati"),
        "dati_cancellati" => l.t("Dati di una persona cancellati"),
        _ => l.t("Modifica"),
    }
}

pub async fn show_audit_log(Console(st, s): Console) -> Result<Response> {
    let l = s.l();
    s.configuring("il registro è per coordinatori e amministratori")?;
    let entries = staff::audit::latest(st.store.pool(), s.p.office_scope(), None, 300).await?;
    let offices = st.store.all_offices().await?;
    let page = AuditPage {
        frame: s.frame("registro"),
        lines: entries
            .into_iter()
            .map(|e| AuditLine {
                when: l.when(e.at, st.tz),
                who: e.actor,
                what: action_label(l, &e.action).to_string(),
                target: match (e.target_kind.as_str(), e.target_id) {
                    ("appointment", Some(id)) => format!("/ufficio/appuntamenti/{id}"),
                    _ => String::new(),
                },
                office: e
                    .office_id
                    .and_then(|id| offices.iter().find(|o| o.id == id))
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                detail: e.detail,
            })
            .collect(),
    };
    s.ui.page(StatusCode::OK, page)
}
