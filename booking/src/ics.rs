//! iCalendar invitations (RFC 5545 / 5546) for the citizen's calendar: one stable `UID` per
//! appointment, `SEQUENCE` raised on every change, `METHOD:REQUEST` for a new or moved
//! appointment and `METHOD:CANCEL` when it is cancelled.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus, Property};

use crate::model::{Appointment, Mode, Office, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// The appointment's UID: stable for its whole life, unique across servers by the host name.
pub fn uid(appointment: &Appointment, host: &str) -> String {
    format!("appuntamento-{}@{}", appointment.code, host)
}

pub struct Invitation<'a> {
    pub appointment: &'a Appointment,
    pub office: &'a Office,
    pub service: &'a Service,
    pub host: &'a str,
    pub join_url: Option<&'a str>,
    pub manage_url: &'a str,
    pub now: DateTime<Utc>,
}

pub fn render(inv: &Invitation<'_>, method: Method) -> String {
    let a = inv.appointment;
    let l = a.language;
    let mut description = format!(
        "{} - {}\n{}: {}\n{}: {}\n",
        inv.office.name,
        inv.service.title,
        l.t("Codice prenotazione"),
        a.code,
        l.t("Modalità"),
        a.mode.label(l)
    );
    if let Some(url) = inv.join_url {
        let join = l.t("Collegati alla videochiamata");
        description.push_str(&format!("{join}: {url}\n"));
    }
    let docs = inv.service.document_list();
    if !docs.is_empty() {
        description.push_str(l.t("Documenti da portare:\n"));
        for d in docs {
            description.push_str(&format!("- {d}\n"));
        }
    }
    let manage = l.t("Gestisci o annulla");
    description.push_str(&format!("{manage}: {}\n", inv.manage_url));
    let location = match a.mode {
        Mode::InPerson => inv.office.address.clone(),
        Mode::Phone => l.t("Al telefono: l'ufficio ti chiamerà").to_string(),
        Mode::Video => inv.join_url.unwrap_or_default().to_string(),
    };
    let mut event = Event::new();
    event
        .uid(&uid(a, inv.host))
        .summary(&text_value(&format!(
            "{} - {}",
            inv.office.name, inv.service.title
        )))
        .description(&text_value(&description))
        .location(&text_value(&location))
        .starts(a.start)
        .ends(a.end)
        .sequence(a.sequence.max(0) as u32)
        .timestamp(inv.now)
        .status(match method {
            Method::Request => EventStatus::Confirmed,
            Method::Cancel => EventStatus::Cancelled,
        })
        .append_property(
            Property::new(
                "ORGANIZER",
                uri_value(&format!("mailto:{}", inv.office.email)),
            )
            .add_parameter("CN", &param_value(&inv.office.name))
            .done(),
        )
        .append_property(
            Property::new(
                "ATTENDEE",
                uri_value(&format!("mailto:{}", a.contact.email)),
            )
            .add_parameter("CN", &param_value(&a.contact.full_name()))
            .add_parameter("ROLE", "REQ-PARTICIPANT")
            .add_parameter("PARTSTAT", "ACCEPTED")
            .done(),
        );
    if let Some(url) = inv.join_url {
        event.url(&uri_value(url));
    }
    let mut cal = Calendar::new();
    cal.append_property(Property::new("METHOD", method.as_str()));
    cal.push(event.done());
    cal.done().to_string()
}

/// A TEXT value (RFC 5545 3.3.11): the writer escapes line feeds, commas and semicolons, but
/// not a carriage return or other control characters, which would end the line and let the
/// text write properties of its own: they go (line feeds stay, to be escaped).
fn text_value(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\n' || (!c.is_control() && !crate::validate::is_bidi_control(*c)))
        .collect()
}

/// A URI value (RFC 5545 3.3.13), which is written as it is: no control character, no space.
fn uri_value(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !crate::validate::is_bidi_control(*c))
        .collect()
}

/// A parameter value (RFC 5545 3.2) that cannot end its line or its quotes: control characters
/// go, and a double quote, which a quoted value cannot hold, becomes a single one.
fn param_value(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !crate::validate::is_bidi_control(*c))
        .map(|c| if c == '"' { '\'' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{param_value, text_value, uri_value};

    #[test]
    fn a_value_cannot_end_its_line() {
        // Found by the ics_writer fuzz target: a carriage return in a link ended the URL line.
        assert_eq!(uri_value("https://x\r\nX-EVIL:1"), "https://xX-EVIL:1");
        assert_eq!(text_value("Piazza\r\nX-EVIL:1"), "Piazza\nX-EVIL:1");
        assert_eq!(text_value("Ufficio\u{202E}"), "Ufficio");
    }

    #[test]
    fn a_parameter_value_cannot_end_its_line_or_its_quotes() {
        assert_eq!(param_value("Anna\"\r\nX-EVIL:1"), "Anna'X-EVIL:1");
        assert_eq!(param_value("Rossi\u{202E}x"), "Rossix");
        assert_eq!(param_value("Comune di Esempio"), "Comune di Esempio");
    }
}
