//! The emails the citizen receives, composed as plain text + HTML, with the iCalendar part where
//! the appointment's time changes. They are written to the outbox by the store, in the same
//! transaction as the change; `crate::outbox` delivers them.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::ics::{self, Method};
use crate::model::{Appointment, Mode, Office, Service};
use crate::token::{Purpose, Signer};

/// Where links in emails point, and how they are signed.
#[derive(Debug, Clone)]
pub struct Links {
    /// Public base URL, without the trailing slash (e.g. `https://sportello.comune.it`).
    pub base_url: String,
    pub signer: Signer,
    pub tz: Tz,
}

impl Links {
    pub fn host(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        rest.split(['/', ':']).next().unwrap_or("localhost")
    }
    pub fn verify_url(&self, id: i64) -> String {
        self.url("conferma", Purpose::Verify, id)
    }
    pub fn manage_url(&self, id: i64) -> String {
        self.url("prenotazione", Purpose::Manage, id)
    }
    pub fn join_url(&self, id: i64) -> String {
        self.url("stanza", Purpose::RoomCitizen, id)
    }
    pub fn operator_join_url(&self, id: i64) -> String {
        self.url("stanza", Purpose::RoomOperator, id)
    }
    /// `base_url/page/token`, the token signed for `purpose` and appointment `id`.
    fn url(&self, page: &str, purpose: Purpose, id: i64) -> String {
        let token = self.signer.sign(purpose, id);
        format!("{}/{page}/{token}", self.base_url)
    }
}

/// Which email this is: kept in the outbox for the developer's mailbox and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Verify,
    Confirmed,
    RequestSent,
    Approved,
    Moved,
    Cancelled,
    Refused,
    ReminderDay,
    ReminderHour,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Verify => "verify",
            Kind::Confirmed => "confirmed",
            Kind::RequestSent => "request_sent",
            Kind::Approved => "approved",
            Kind::Moved => "moved",
            Kind::Cancelled => "cancelled",
            Kind::Refused => "refused",
            Kind::ReminderDay => "reminder_day",
            Kind::ReminderHour => "reminder_hour",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Email {
    pub kind: Kind,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub ics: Option<(Method, String)>,
}

/// What every email about one appointment needs.
pub struct Context<'a> {
    pub appointment: &'a Appointment,
    pub office: &'a Office,
    pub service: &'a Service,
    pub links: &'a Links,
    pub now: DateTime<Utc>,
}

/// Italian weekday names, Monday first (shared by emails, pages and the demo data).
pub const WEEKDAYS_IT: [&str; 7] = [
    "lunedì",
    "martedì",
    "mercoledì",
    "giovedì",
    "venerdì",
    "sabato",
    "domenica",
];
/// Italian month names, January first.
pub const MONTHS_IT: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];

/// "lunedì 30 novembre 2026, ore 9:00" in the office's time zone.
pub fn when_it(t: DateTime<Utc>, tz: Tz) -> String {
    use chrono::{Datelike, Timelike};
    let l = t.with_timezone(&tz);
    format!(
        "{} {} {} {}, ore {}:{:02}",
        WEEKDAYS_IT[l.weekday().num_days_from_monday() as usize],
        l.day(),
        MONTHS_IT[l.month0() as usize],
        l.year(),
        l.hour(),
        l.minute()
    )
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Body {
    text: String,
    html: String,
}

impl Body {
    fn new(greeting: &str) -> Self {
        Body {
            text: format!("{greeting}\n\n"),
            html: format!(
                "<!doctype html><html lang=\"it\"><body style=\"font-family:'Titillium Web',Arial,sans-serif;color:#1a1a1a;max-width:600px\"><p>{}</p>",
                escape(greeting)
            ),
        }
    }
    fn para(&mut self, p: &str) -> &mut Self {
        self.text.push_str(p);
        self.text.push_str("\n\n");
        self.html.push_str(&format!("<p>{}</p>", escape(p)));
        self
    }
    fn facts(&mut self, rows: &[(&str, String)]) -> &mut Self {
        self.html
            .push_str("<table role=\"presentation\" style=\"border-collapse:collapse\">");
        for (k, v) in rows {
            self.text.push_str(&format!("{k}: {v}\n"));
            self.html.push_str(&format!(
                "<tr><th style=\"text-align:left;padding:2px 12px 2px 0\">{}</th><td>{}</td></tr>",
                escape(k),
                escape(v)
            ));
        }
        self.text.push('\n');
        self.html.push_str("</table>");
        self
    }
    fn list(&mut self, title: &str, items: &[&str]) -> &mut Self {
        if items.is_empty() {
            return self;
        }
        self.text.push_str(&format!("{title}:\n"));
        self.html
            .push_str(&format!("<p><strong>{}</strong></p><ul>", escape(title)));
        for i in items {
            self.text.push_str(&format!("- {i}\n"));
            self.html.push_str(&format!("<li>{}</li>", escape(i)));
        }
        self.text.push('\n');
        self.html.push_str("</ul>");
        self
    }
    fn button(&mut self, label: &str, url: &str) -> &mut Self {
        self.text.push_str(&format!("{label}: {url}\n\n"));
        self.html.push_str(&format!(
            "<p><a href=\"{u}\" style=\"display:inline-block;background:#0066cc;color:#fff;padding:10px 18px;border-radius:4px;text-decoration:none;font-weight:600\">{l}</a></p><p style=\"font-size:13px\">{lt}: <a href=\"{u}\">{u}</a></p>",
            u = escape(url),
            l = escape(label),
            lt = "Se il pulsante non funziona, apri questo indirizzo"
        ));
        self
    }
    fn finish(&mut self, office: &Office) -> (String, String) {
        let sign = format!("{} - {}", office.name, office.department);
        self.text.push_str(&format!(
            "--\n{sign}\n{}\nQuesta email è stata inviata automaticamente: non rispondere a questo indirizzo.\n",
            office.email
        ));
        self.html.push_str(&format!(
            "<hr><p style=\"font-size:13px;color:#5c6f82\">{}<br>{}<br>Questa email è stata inviata automaticamente: non rispondere a questo indirizzo.</p></body></html>",
            escape(&sign),
            escape(&office.email)
        ));
        (
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.html),
        )
    }
}

impl Context<'_> {
    fn greeting(&self) -> String {
        format!(
            "Gentile {} {},",
            self.appointment.contact.given_name, self.appointment.contact.family_name
        )
    }

    fn summary(&self) -> Vec<(&'static str, String)> {
        let a = self.appointment;
        let mut rows = vec![
            ("Codice prenotazione", a.code.clone()),
            ("Ufficio", self.office.name.clone()),
            ("Servizio", self.service.title.clone()),
            ("Quando", when_it(a.start, self.links.tz)),
            (
                "Durata massima",
                format!("{} minuti", self.service.max_minutes),
            ),
            ("Modalità", a.mode.label_it().to_string()),
        ];
        if a.mode == Mode::InPerson && !self.office.address.is_empty() {
            rows.push(("Dove", self.office.address.clone()));
        }
        rows
    }

    fn invitation(&self, method: Method) -> (Method, String) {
        let join = self.join_url();
        let manage = self.links.manage_url(self.appointment.id);
        let inv = ics::Invitation {
            appointment: self.appointment,
            office: self.office,
            service: self.service,
            host: self.links.host(),
            join_url: join.as_deref(),
            manage_url: &manage,
            now: self.now,
        };
        (method, ics::render(&inv, method))
    }

    fn join_url(&self) -> Option<String> {
        (self.appointment.mode == Mode::Video).then(|| self.links.join_url(self.appointment.id))
    }

    fn email(
        &self,
        kind: Kind,
        subject: String,
        body: &mut Body,
        ics: Option<(Method, String)>,
    ) -> Email {
        let (text, html) = body.finish(self.office);
        Email {
            kind,
            to: self.appointment.contact.email.clone(),
            subject,
            text,
            html,
            ics,
        }
    }

    fn how_to_attend(&self, b: &mut Body) {
        match self.appointment.mode {
            Mode::Video => {
                b.para("Il giorno dell'appuntamento apri il collegamento qui sotto da computer, tablet o telefono: non serve installare nulla. Prima dell'orario vedrai il tempo che manca; la stanza si apre pochi minuti prima.");
                if let Some(url) = self.join_url() {
                    b.button("Partecipa alla videochiamata", &url);
                }
            }
            Mode::Phone => {
                b.para("All'orario stabilito l'ufficio ti chiamerà al numero che hai indicato.");
            }
            Mode::InPerson => {
                b.para("Presentati all'ufficio all'orario stabilito con i documenti indicati.");
            }
        }
    }

    pub fn verify(&self) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para("abbiamo ricevuto la tua richiesta di appuntamento. Per completare la prenotazione conferma il tuo indirizzo email con il pulsante qui sotto entro 2 ore: altrimenti la prenotazione sarà annullata automaticamente e l'orario tornerà disponibile.")
            .facts(&self.summary())
            .button("Conferma la prenotazione", &self.links.verify_url(self.appointment.id))
            .para("Se non hai chiesto tu questo appuntamento, ignora questa email.");
        self.email(
            Kind::Verify,
            format!("Conferma la tua prenotazione - {}", self.office.name),
            &mut b,
            None,
        )
    }

    pub fn confirmed(&self) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para("il tuo appuntamento è confermato.")
            .facts(&self.summary());
        b.list("Documenti da portare", &self.service.document_list());
        if !self.service.instructions.is_empty() {
            b.para(&self.service.instructions);
        }
        self.how_to_attend(&mut b);
        b.para("In allegato trovi l'invito da aggiungere al tuo calendario. Puoi annullare o spostare l'appuntamento in ogni momento, senza dare motivazioni:")
            .button("Gestisci la prenotazione", &self.links.manage_url(self.appointment.id));
        let ics = self.invitation(Method::Request);
        self.email(
            Kind::Confirmed,
            format!(
                "Appuntamento confermato - {} {}",
                self.office.name, self.appointment.code
            ),
            &mut b,
            Some(ics),
        )
    }

    pub fn request_sent(&self) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para("grazie, il tuo indirizzo email è verificato e la richiesta è stata inviata all'ufficio. Riceverai un'altra email quando l'ufficio avrà approvato l'appuntamento.")
            .facts(&self.summary())
            .button("Vedi o annulla la richiesta", &self.links.manage_url(self.appointment.id));
        self.email(
            Kind::RequestSent,
            format!("Richiesta inviata - {}", self.office.name),
            &mut b,
            None,
        )
    }

    pub fn moved(&self, by_office: bool, message: &str) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para(if by_office {
            "l'ufficio ha spostato il tuo appuntamento. Ecco i nuovi dati:"
        } else {
            "il tuo appuntamento è stato spostato come hai chiesto. Ecco i nuovi dati:"
        })
        .facts(&self.summary());
        if !message.is_empty() {
            b.para(&format!("Messaggio dell'ufficio: {message}"));
        }
        self.how_to_attend(&mut b);
        b.para("L'invito in allegato aggiorna quello precedente nel tuo calendario.")
            .button(
                "Gestisci la prenotazione",
                &self.links.manage_url(self.appointment.id),
            );
        let ics = self.invitation(Method::Request);
        self.email(
            Kind::Moved,
            format!(
                "Appuntamento spostato - {} {}",
                self.office.name, self.appointment.code
            ),
            &mut b,
            Some(ics),
        )
    }

    pub fn cancelled(&self, by_office: bool, message: &str) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para(if by_office {
            "ci dispiace: l'ufficio ha dovuto annullare il tuo appuntamento."
        } else {
            "il tuo appuntamento è stato annullato come hai chiesto."
        })
        .facts(&self.summary());
        self.office_message_and_rebook(&mut b, message);
        let ics = self.invitation(Method::Cancel);
        self.email(
            Kind::Cancelled,
            format!(
                "Appuntamento annullato - {} {}",
                self.office.name, self.appointment.code
            ),
            &mut b,
            Some(ics),
        )
    }

    /// The office's message, if any, and the way to book again: the end of every email about an
    /// appointment that will not take place.
    fn office_message_and_rebook(&self, b: &mut Body, message: &str) {
        if !message.is_empty() {
            b.para(&format!("Messaggio dell'ufficio: {message}"));
        }
        b.para("Se ti serve ancora, puoi prenotare un nuovo appuntamento dal sito.")
            .button(
                "Prenota un nuovo appuntamento",
                &format!("{}/servizi/{}", self.links.base_url, self.service.id),
            );
    }

    /// The office did not approve a request on a moderated calendar.
    pub fn refused(&self, message: &str) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para("ci dispiace: l'ufficio non ha potuto accettare la tua richiesta di appuntamento. L'orario è tornato disponibile.")
            .facts(&self.summary());
        self.office_message_and_rebook(&mut b, message);
        self.email(
            Kind::Refused,
            format!(
                "Richiesta non accettata - {} {}",
                self.office.name, self.appointment.code
            ),
            &mut b,
            None,
        )
    }

    pub fn reminder(&self, kind: Kind) -> Email {
        let mut b = Body::new(&self.greeting());
        b.para(if kind == Kind::ReminderHour {
            "ti ricordiamo che il tuo appuntamento è tra poco."
        } else {
            "ti ricordiamo il tuo appuntamento di domani."
        })
        .facts(&self.summary());
        b.list("Documenti da portare", &self.service.document_list());
        self.how_to_attend(&mut b);
        b.para(
            "Se non puoi più venire, annulla l'appuntamento: l'orario servirà a un'altra persona.",
        )
        .button(
            "Gestisci la prenotazione",
            &self.links.manage_url(self.appointment.id),
        );
        self.email(
            kind,
            format!(
                "Promemoria appuntamento - {} {}",
                self.office.name,
                when_it(self.appointment.start, self.links.tz)
            ),
            &mut b,
            None,
        )
    }
}
