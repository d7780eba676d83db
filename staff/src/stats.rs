//! Statistics of appointments per office and service over a period: what was booked, how it
//! ended, by which mode, and how far ahead people book. Pure: the rows come from the store, the
//! chart is an SVG string and the export a CSV string.

use std::collections::BTreeMap;

use booking::i18n::{mark, Lang};
use booking::{Mode, Status};

pub use booking::backoffice::StatRecord as Row;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub booked: u64,
    /// Verified by the citizen (or booked by the office), whatever happened next.
    pub confirmed: u64,
    pub cancelled_by_citizen: u64,
    pub cancelled_by_office: u64,
    /// Never verified, cancelled by the system after two hours.
    pub expired: u64,
    pub refused: u64,
    pub done: u64,
    pub no_show: u64,
    pub in_person: u64,
    pub phone: u64,
    pub video: u64,
    lead_seconds: i64,
}

impl Totals {
    fn add(&mut self, r: &Row) {
        self.booked += 1;
        if r.verified {
            self.confirmed += 1;
        }
        match r.status {
            Status::Cancelled if r.cancelled_by.as_deref() == Some("office") => {
                self.cancelled_by_office += 1
            }
            Status::Cancelled => self.cancelled_by_citizen += 1,
            Status::Expired => self.expired += 1,
            Status::Refused => self.refused += 1,
            Status::Done => self.done += 1,
            Status::NoShow => self.no_show += 1,
            _ => {}
        }
        match r.mode {
            Mode::InPerson => self.in_person += 1,
            Mode::Phone => self.phone += 1,
            Mode::Video => self.video += 1,
        }
        self.lead_seconds += (r.start - r.created_at).num_seconds().max(0);
    }

    /// Average time between booking and appointment, in hours (one decimal).
    pub fn average_lead_hours(&self) -> f64 {
        if self.booked == 0 {
            return 0.0;
        }
        (self.lead_seconds as f64 / self.booked as f64 / 360.0).round() / 10.0
    }

    pub fn cancelled(&self) -> u64 {
        self.cancelled_by_citizen + self.cancelled_by_office + self.expired + self.refused
    }

    /// Still ahead or not yet marked: booked minus every ending.
    pub fn open(&self) -> u64 {
        self.booked - self.cancelled() - self.done - self.no_show
    }
}

/// Per office and service (in the order of their names), and the total.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<(String, String, Totals)>,
    pub total: Totals,
}

pub fn report(rows: &[Row]) -> Report {
    let mut by: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for r in rows {
        by.entry((r.office.clone(), r.service.clone()))
            .or_default()
            .add(r);
        total.add(r);
    }
    Report {
        lines: by.into_iter().map(|((o, s), t)| (o, s, t)).collect(),
        total,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The parts of each bar, with their colours (Bootstrap Italia's palette, AA against white).
const PARTS: [(&str, &str); 4] = [
    (mark("Svolti"), "#008055"),
    (mark("Da svolgere"), "#0066cc"),
    (mark("Assenti"), "#cc7a00"),
    (mark("Annullati"), "#d9364f"),
];

/// A horizontal stacked bar per service: done, still open, no-show, cancelled. The figures are
/// also in the table beside it, which is what screen readers get.
pub fn svg_chart(report: &Report, l: Lang) -> String {
    let label_w = 260.0;
    let bar_w = 420.0;
    let row_h = 28.0;
    let top = 34.0;
    let height = top + row_h * report.lines.len().max(1) as f64 + 10.0;
    let max = report
        .lines
        .iter()
        .map(|(_, _, t)| t.booked)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let title = l.t("Appuntamenti per servizio");
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" viewBox="0 0 {w} {height}" width="100%" style="max-width:{w}px;font-family:'Titillium Web',sans-serif;font-size:13px"><title id="chart-title">{title}</title>"#,
        w = label_w + bar_w + 60.0
    );
    let mut x = 0.0;
    for (it, colour) in PARTS {
        let name = l.t(it);
        s.push_str(&format!(
            r#"<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/><text x="{tx}" y="17">{name}</text>"#,
            tx = x + 16.0
        ));
        x += 16.0 + name.len() as f64 * 8.0 + 18.0;
    }
    for (i, (_, service, t)) in report.lines.iter().enumerate() {
        let y = top + row_h * i as f64;
        let mut label = service.clone();
        if label.chars().count() > 36 {
            label = label.chars().take(35).collect::<String>() + "…";
        }
        s.push_str(&format!(
            r#"<text x="0" y="{ty}">{}</text>"#,
            esc(&label),
            ty = y + 16.0
        ));
        let mut x = label_w;
        for (n, (_, colour)) in [t.done, t.open(), t.no_show, t.cancelled()]
            .into_iter()
            .zip(PARTS)
        {
            if n == 0 {
                continue;
            }
            let w = bar_w * n as f64 / max;
            s.push_str(&format!(
                r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="20" fill="{colour}"/>"#,
                y = y + 2.0
            ));
            x += w;
        }
        s.push_str(&format!(
            r#"<text x="{tx:.1}" y="{ty}">{}</text>"#,
            t.booked,
            tx = x + 6.0,
            ty = y + 16.0
        ));
    }
    s.push_str("</svg>");
    s
}

pub const CSV_HEADER: [&str; 15] = [
    "ufficio",
    "servizio",
    "prenotati",
    "confermati",
    "annullati_dal_cittadino",
    "annullati_dall_ufficio",
    "scaduti_non_verificati",
    "rifiutati",
    "svolti",
    "assenti",
    "di_persona",
    "telefono",
    "video",
    "anticipo_medio_ore",
    "da_svolgere",
];

/// A text cell that a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return would be read as a formula (an office or service named "=HYPERLINK(...)"),
/// so it gets a leading apostrophe, which spreadsheets hide.
fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// How the CSV is written: RFC 4180 with commas, or as Italian Excel opens it by a double click
/// (semicolons, and a UTF-8 byte-order mark so that accented letters show right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvDialect {
    Rfc4180,
    ItalianExcel,
}

/// The report as CSV (a header row, a row per service, a "Totale" row).
pub fn csv(report: &Report, dialect: CsvDialect) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(match dialect {
            CsvDialect::Rfc4180 => b',',
            CsvDialect::ItalianExcel => b';',
        })
        .from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let all = report
        .lines
        .iter()
        .map(|(o, s, t)| (o.as_str(), s.as_str(), t))
        .chain(std::iter::once(("Totale", "", &report.total)));
    for (o, s, t) in all {
        w.write_record([
            spreadsheet_safe(o),
            spreadsheet_safe(s),
            t.booked.to_string(),
            t.confirmed.to_string(),
            t.cancelled_by_citizen.to_string(),
            t.cancelled_by_office.to_string(),
            t.expired.to_string(),
            t.refused.to_string(),
            t.done.to_string(),
            t.no_show.to_string(),
            t.in_person.to_string(),
            t.phone.to_string(),
            t.video.to_string(),
            format!("{:.1}", t.average_lead_hours()),
            t.open().to_string(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(match dialect {
        CsvDialect::Rfc4180 => text,
        CsvDialect::ItalianExcel => format!("\u{FEFF}{text}"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_that_a_spreadsheet_would_run_are_kept_as_text() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+39", "'+39"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("Anagrafe", "Anagrafe"),
        ] {
            assert_eq!(super::spreadsheet_safe(cell), shown);
        }
    }

    use super::*;
    use chrono::{DateTime, Duration};

    fn row(service: &str, status: Status, mode: Mode, by: Option<&str>, lead_h: i64) -> Row {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Row {
            office: "Anagrafe".into(),
            service: service.into(),
            status,
            mode,
            cancelled_by: by.map(str::to_string),
            verified: !matches!(status, Status::Expired),
            created_at: start - Duration::hours(lead_h),
            start,
        }
    }

    #[test]
    fn counts_endings_modes_and_lead_time_per_service() {
        let rows = vec![
            row("CIE", Status::Done, Mode::InPerson, None, 24),
            row("CIE", Status::NoShow, Mode::InPerson, None, 48),
            row("CIE", Status::Cancelled, Mode::Video, Some("citizen"), 72),
            row("CIE", Status::Cancelled, Mode::Phone, Some("office"), 0),
            row(
                "Residenza",
                Status::Expired,
                Mode::Video,
                Some("system"),
                10,
            ),
            row("Residenza", Status::Confirmed, Mode::Video, None, 30),
        ];
        let r = report(&rows);
        assert_eq!(r.lines.len(), 2);
        let cie = &r.lines[0].2;
        assert_eq!((cie.booked, cie.done, cie.no_show), (4, 1, 1));
        assert_eq!((cie.cancelled_by_citizen, cie.cancelled_by_office), (1, 1));
        assert_eq!((cie.in_person, cie.phone, cie.video), (2, 1, 1));
        assert_eq!(cie.average_lead_hours(), 36.0);
        assert_eq!(cie.open(), 0);
        let res = &r.lines[1].2;
        assert_eq!((res.expired, res.confirmed, res.open()), (1, 1, 1));
        assert_eq!(r.total.booked, 6);
        assert_eq!(r.total.video, 3);
    }

    #[test]
    fn the_csv_has_a_header_a_line_per_service_and_a_total_and_quotes_commas() {
        let rows = vec![row(
            "Cambio di residenza, abitazione",
            Status::Done,
            Mode::Video,
            None,
            5,
        )];
        let out = csv(&report(&rows), CsvDialect::Rfc4180).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ufficio,servizio,prenotati"));
        assert!(lines[1].starts_with("Anagrafe,\"Cambio di residenza, abitazione\",1,1,"));
        assert!(lines[2].starts_with("Totale,,1,"));
        // For Italian Excel: semicolons (the comma in the name needs no quotes) and a BOM.
        let excel = csv(&report(&rows), CsvDialect::ItalianExcel).unwrap();
        assert!(excel.starts_with("\u{FEFF}ufficio;servizio;prenotati"));
        assert!(excel.contains("\nAnagrafe;Cambio di residenza, abitazione;1;1;"));
    }

    #[test]
    fn the_chart_escapes_names_and_draws_one_bar_per_service() {
        let rows = vec![
            row("<script>", Status::Done, Mode::Video, None, 5),
            row("B", Status::Cancelled, Mode::Video, Some("citizen"), 5),
        ];
        let svg = svg_chart(&report(&rows), Lang::IT);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("Appuntamenti per servizio"));
    }
}
