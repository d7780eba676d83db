//! The emails the citizen receives, composed as plain text + HTML, with the iCalendar part where
//! the appointment's time changes. They are written to the outbox by the store, in the same
//! transaction as the change; `crate::outbox` delivers them.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::i18n::Lang;
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
    pub fn person_data_url(&self, request_id: i64) -> String {
        self.url("i-miei-dati", Purpose::PersonData, request_id)
    }
    /// A place on a waitlist: confirm it, see it, leave it.
    pub fn waitlist_url(&self, entry_id: i64) -> String {
        self.url("lista-attesa", Purpose::Waitlist, entry_id)
    }
    /// The page where anyone tries their camera and microphone before a video appointment.
    pub fn device_check_url(&self) -> String {
        format!("{}/prova-video", self.base_url)
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
    /// The link to a person's data, at their request.
    DataRequest,
    /// A person's active appointments with their links, at their request.
    BookingsList,
    /// Confirm a place on a service's waitlist.
    WaitlistVerify,
    /// A seat freed for a person on the waitlist, held for them a short time.
    WaitlistOffer,
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
            Kind::DataRequest => "data_request",
            Kind::BookingsList => "bookings_list",
            Kind::WaitlistVerify => "waitlist_verify",
            Kind::WaitlistOffer => "waitlist_offer",
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
    l: Lang,
    text: String,
    html: String,
}

impl Body {
    fn new(l: Lang, greeting: &str) -> Self {
        Body {
            l,
            text: format!("{greeting}\n\n"),
            html: format!(
                "<!doctype html><html lang=\"{}\"><body style=\"font-family:'Titillium Web',Arial,sans-serif;color:#1a1a1a;max-width:600px\"><p>{}</p>",
                l.code(),
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
            lt = self.l.t("Se il pulsante non funziona, apri questo indirizzo")
        ));
        self
    }
    /// A sentence followed by a plain link (not a button).
    fn link(&mut self, sentence: &str, label: &str, url: &str) -> &mut Self {
        self.text.push_str(&format!("{sentence}: {url}\n\n"));
        self.html.push_str(&format!(
            "<p>{}: <a href=\"{u}\">{}</a></p>",
            escape(sentence),
            escape(label),
            u = escape(url)
        ));
        self
    }
    fn finish(&mut self, office: &Office) -> (String, String) {
        let sign = format!("{} - {}", office.name, office.department);
        let automatic = self
            .l
            .t("Questa email è stata inviata automaticamente: non rispondere a questo indirizzo.");
        self.text
            .push_str(&format!("--\n{sign}\n{}\n{automatic}\n", office.email));
        self.html.push_str(&format!(
            "<hr><p style=\"font-size:13px;color:#5c6f82\">{}<br>{}<br>{}</p></body></html>",
            escape(&sign),
            escape(&office.email),
            escape(automatic)
        ));
        (
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.html),
        )
    }
}

impl Context<'_> {
    /// The language of every email about this appointment: the one its person booked in.
    fn l(&self) -> Lang {
        self.appointment.language
    }

    fn greeting(&self) -> String {
        let c = &self.appointment.contact;
        let dear = self.l().t("Gentile");
        format!("{dear} {} {},", c.given_name, c.family_name)
    }

    /// A new body in the appointment's language, with the greeting.
    fn body(&self) -> Body {
        Body::new(self.l(), &self.greeting())
    }

    fn when(&self) -> String {
        self.l().when(self.appointment.start, self.links.tz)
    }

    fn summary(&self) -> Vec<(&'static str, String)> {
        let (a, l) = (self.appointment, self.l());
        let mut rows = vec![
            (l.t("Codice prenotazione"), a.code.clone()),
            (l.t("Ufficio"), self.office.name.clone()),
            (l.t("Servizio"), self.service.title.clone()),
            (l.t("Quando"), self.when()),
            (
                l.t("Durata massima"),
                format!("{} {}", self.service.max_minutes, l.t("minuti")),
            ),
            (l.t("Modalità"), a.mode.label(l).to_string()),
        ];
        if a.mode == Mode::InPerson && !self.office.address.is_empty() {
            rows.push((l.t("Dove"), self.office.address.clone()));
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

    /// What every email about an active appointment ends with: manage it, or cancel it in one
    /// step (a page with one button, so that a mail scanner following links cancels nothing).
    fn manage_links(&self, b: &mut Body) {
        let l = self.l();
        let manage = self.links.manage_url(self.appointment.id);
        b.button(l.t("Gestisci la prenotazione"), &manage)
            .button(l.t("Annulla l'appuntamento"), &format!("{manage}/annulla"));
    }

    fn how_to_attend(&self, b: &mut Body) {
        let l = self.l();
        match self.appointment.mode {
            Mode::Video => {
                b.para(l.t("Il giorno dell'appuntamento apri il collegamento qui sotto da computer, tablet o telefono: non serve installare nulla. Prima dell'orario vedrai il tempo che manca; la stanza si apre pochi minuti prima."));
                if let Some(url) = self.join_url() {
                    b.button(l.t("Partecipa alla videochiamata"), &url);
                }
                b.link(
                    l.t("Prima dell'appuntamento, quando vuoi, puoi provare fotocamera e microfono sul dispositivo che userai"),
                    l.t("Prova fotocamera e microfono"),
                    &self.links.device_check_url(),
                );
            }
            Mode::Phone => {
                b.para(
                    l.t("All'orario stabilito l'ufficio ti chiamerà al numero che hai indicato."),
                );
            }
            Mode::InPerson => {
                b.para(
                    l.t("Presentati all'ufficio all'orario stabilito con i documenti indicati."),
                );
            }
        }
    }

    pub fn verify(&self) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(l.t("abbiamo ricevuto la tua richiesta di appuntamento. Per completare la prenotazione conferma il tuo indirizzo email con il pulsante qui sotto entro 2 ore: altrimenti la prenotazione sarà annullata automaticamente e l'orario tornerà disponibile."))
            .facts(&self.summary())
            .button(
                l.t("Conferma la prenotazione"),
                &self.links.verify_url(self.appointment.id),
            )
            .para(l.t("Se non hai chiesto tu questo appuntamento, ignora questa email."));
        self.email(
            Kind::Verify,
            format!(
                "{} - {}",
                l.t("Conferma la tua prenotazione"),
                self.office.name
            ),
            &mut b,
            None,
        )
    }

    /// A seat freed for a person on the waitlist: a pending booking that holds it until
    /// `verify_deadline`; the button is the verification link.
    pub fn waitlist_offer(&self) -> Email {
        let l = self.l();
        let until = l.when(self.appointment.verify_deadline, self.links.tz);
        let mut b = self.body();
        b.para(l.t("si è liberato un posto per il servizio per cui sei in lista d'attesa. Lo teniamo per te: per prenotarlo conferma con il pulsante qui sotto."))
        .facts(&self.summary())
        .para(&format!(
            "{} {until}. {}",
            l.t("Il posto è tenuto per te fino a"),
            l.t("Dopo passa alla persona successiva in lista e la tua iscrizione termina.")
        ))
        .button(
            l.t("Prenota questo posto"),
            &self.links.verify_url(self.appointment.id),
        )
        .para(l.t("Se l'orario non ti va bene, ignora questa email."));
        self.email(
            Kind::WaitlistOffer,
            format!("{} - {}", l.t("Si è liberato un posto"), self.office.name),
            &mut b,
            None,
        )
    }

    pub fn confirmed(&self) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(l.t("il tuo appuntamento è confermato."))
            .facts(&self.summary());
        b.list(l.t("Documenti da portare"), &self.service.document_list());
        if !self.service.instructions.is_empty() {
            b.para(&self.service.instructions);
        }
        self.how_to_attend(&mut b);
        b.para(l.t("In allegato trovi l'invito da aggiungere al tuo calendario. Puoi annullare o spostare l'appuntamento in ogni momento, senza dare motivazioni:"));
        self.manage_links(&mut b);
        let ics = self.invitation(Method::Request);
        self.email(
            Kind::Confirmed,
            self.subject(l.t("Appuntamento confermato")),
            &mut b,
            Some(ics),
        )
    }

    /// "What happened - office CODE".
    fn subject(&self, what: &str) -> String {
        format!("{what} - {} {}", self.office.name, self.appointment.code)
    }

    pub fn request_sent(&self) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(l.t("grazie, il tuo indirizzo email è verificato e la richiesta è stata inviata all'ufficio. Riceverai un'altra email quando l'ufficio avrà approvato l'appuntamento."))
            .facts(&self.summary())
            .button(
                l.t("Vedi o annulla la richiesta"),
                &self.links.manage_url(self.appointment.id),
            );
        self.email(
            Kind::RequestSent,
            format!("{} - {}", l.t("Richiesta inviata"), self.office.name),
            &mut b,
            None,
        )
    }

    pub fn moved(&self, by_office: bool, message: &str) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(if by_office {
            l.t("l'ufficio ha spostato il tuo appuntamento. Ecco i nuovi dati:")
        } else {
            l.t("il tuo appuntamento è stato spostato come hai chiesto. Ecco i nuovi dati:")
        })
        .facts(&self.summary());
        self.office_message(&mut b, message);
        self.how_to_attend(&mut b);
        b.para(l.t("L'invito in allegato aggiorna quello precedente nel tuo calendario."));
        self.manage_links(&mut b);
        let ics = self.invitation(Method::Request);
        self.email(
            Kind::Moved,
            self.subject(l.t("Appuntamento spostato")),
            &mut b,
            Some(ics),
        )
    }

    pub fn cancelled(&self, by_office: bool, message: &str) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(if by_office {
            l.t("ci dispiace: l'ufficio ha dovuto annullare il tuo appuntamento.")
        } else {
            l.t("il tuo appuntamento è stato annullato come hai chiesto.")
        })
        .facts(&self.summary());
        self.office_message_and_rebook(&mut b, message);
        let ics = self.invitation(Method::Cancel);
        self.email(
            Kind::Cancelled,
            self.subject(l.t("Appuntamento annullato")),
            &mut b,
            Some(ics),
        )
    }

    /// The office's message, quoted, if there is one.
    fn office_message(&self, b: &mut Body, message: &str) {
        if !message.is_empty() {
            let said = self.l().t("Messaggio dell'ufficio");
            b.para(&format!("{said}: {message}"));
        }
    }

    /// The office's message, if any, and the way to book again: the end of every email about an
    /// appointment that will not take place.
    fn office_message_and_rebook(&self, b: &mut Body, message: &str) {
        let l = self.l();
        self.office_message(b, message);
        b.para(l.t("Se ti serve ancora, puoi prenotare un nuovo appuntamento dal sito."))
            .button(
                l.t("Prenota un nuovo appuntamento"),
                &format!("{}/servizi/{}", self.links.base_url, self.service.id),
            );
    }

    /// The office did not approve a request on a moderated calendar.
    pub fn refused(&self, message: &str) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(l.t("ci dispiace: l'ufficio non ha potuto accettare la tua richiesta di appuntamento. L'orario è tornato disponibile."))
            .facts(&self.summary());
        self.office_message_and_rebook(&mut b, message);
        self.email(
            Kind::Refused,
            self.subject(l.t("Richiesta non accettata")),
            &mut b,
            None,
        )
    }

    pub fn reminder(&self, kind: Kind) -> Email {
        let l = self.l();
        let mut b = self.body();
        b.para(if kind == Kind::ReminderHour {
            l.t("ti ricordiamo che il tuo appuntamento è tra poco.")
        } else {
            l.t("ti ricordiamo il tuo appuntamento di domani.")
        })
        .facts(&self.summary());
        b.list(l.t("Documenti da portare"), &self.service.document_list());
        self.how_to_attend(&mut b);
        b.para(l.t(
            "Se non puoi più venire, annulla l'appuntamento: l'orario servirà a un'altra persona.",
        ));
        self.manage_links(&mut b);
        self.email(
            kind,
            format!(
                "{} - {} {}",
                l.t("Promemoria appuntamento"),
                self.office.name,
                self.when()
            ),
            &mut b,
            None,
        )
    }
}

/// The email with the link to a person's data (`Links::person_data_url`), in the language the
/// request was made in, signed by the town.
pub fn data_request(l: Lang, to: &str, town: &str, url: &str) -> Email {
    let mut b = Body::new(l, l.t("Buongiorno,"));
    b.para(l.t("hai chiesto di vedere i dati che il servizio di prenotazione conserva su di te. Il collegamento qui sotto vale 24 ore: da lì puoi scaricarli o chiederne la cancellazione."))
        .button(l.t("I miei dati"), url)
        .para(l.t("Se non l'hai chiesto tu, ignora questa email: senza il collegamento nessuno vede i tuoi dati."));
    signed_by_town(b, l, town, Kind::DataRequest, to, l.t("I tuoi dati"))
}

/// One of a person's active appointments, in the list sent at their request.
pub struct Listed {
    pub code: String,
    pub when: String,
    /// "Office - service".
    pub what: String,
    pub manage_url: String,
}

/// A person's active appointments with their links ("I lost my email"), in the language the
/// request was made in, signed by the town.
pub fn bookings_list(l: Lang, to: &str, town: &str, items: &[Listed]) -> Email {
    let mut b = Body::new(l, l.t("Buongiorno,"));
    b.para(
        l.t("ecco gli appuntamenti attivi prenotati con questo indirizzo email, come hai chiesto."),
    );
    for i in items {
        b.facts(&[
            (l.t("Codice"), i.code.clone()),
            (l.t("Quando"), i.when.clone()),
            (l.t("Ufficio e servizio"), i.what.clone()),
        ])
        .button(l.t("Gestisci la prenotazione"), &i.manage_url)
        .button(
            l.t("Annulla l'appuntamento"),
            &format!("{}/annulla", i.manage_url),
        );
    }
    b.para(l.t("Se non l'hai chiesto tu, ignora questa email: è arrivata solo a te."));
    let subject = l.t("I tuoi appuntamenti");
    signed_by_town(b, l, town, Kind::BookingsList, to, subject)
}

/// The link that confirms a place on a service's waitlist, at the person's request.
pub fn waitlist_verify(l: Lang, to: &str, town: &str, service: &str, url: &str) -> Email {
    let mut b = Body::new(l, l.t("Buongiorno,"));
    b.para(&format!(
        "{} «{service}». {}",
        l.t("hai chiesto di entrare nella lista d'attesa per"),
        l.t("Conferma con il pulsante qui sotto entro 2 ore: quando si libera un posto adatto ti scriviamo.")
    ))
    .button(
        l.t("Conferma l'iscrizione"),
        url,
    )
    .para(l.t("Se non l'hai chiesto tu, ignora questa email: senza conferma non ricevi altro."));
    let subject = l.t("Conferma la lista d'attesa");
    signed_by_town(b, l, town, Kind::WaitlistVerify, to, subject)
}

/// An email not about one appointment, ended with the town's name and "sent automatically".
fn signed_by_town(mut b: Body, l: Lang, town: &str, kind: Kind, to: &str, subject: &str) -> Email {
    let automatic =
        l.t("Questa email è stata inviata automaticamente: non rispondere a questo indirizzo.");
    b.text.push_str(&format!("--\n{town}\n{automatic}\n"));
    b.html.push_str(&format!(
        "<hr><p style=\"font-size:13px;color:#5c6f82\">{}<br>{}</p></body></html>",
        escape(town),
        escape(automatic)
    ));
    Email {
        kind,
        to: to.to_string(),
        subject: format!("{subject} - {town}"),
        text: b.text,
        html: b.html,
        ics: None,
    }
}
