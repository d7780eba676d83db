//! What a citizen types into the booking form, checked field by field. Every problem is kept
//! with its field, so the page can show it next to the input and keep what was typed.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{Contact, Mode, Service};

/// Longest accepted value of each free-text field, in characters.
pub const MAX_NAME: usize = 100;
pub const MAX_EMAIL: usize = 254;
pub const MAX_PHONE: usize = 30;
pub const MAX_REASON: usize = 1000;

/// The booking form as submitted (everything is text until checked).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BookingForm {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub operator: String,
    #[serde(flatten)]
    pub contact: Contact,
    #[serde(default)]
    pub consent: Option<String>,
}

/// A booking whose every field has been checked.
#[derive(Debug, Clone)]
pub struct ValidBooking {
    pub service_id: i64,
    pub start: DateTime<Utc>,
    pub mode: Mode,
    pub operator_id: Option<i64>,
    /// Trimmed and checked; the fiscal code in capitals.
    pub contact: Contact,
    /// The version of the privacy notice the person consented to, stored with the time of the
    /// consent. The checks leave it out: the notice is the web layer's.
    pub consent_version: Option<String>,
    /// The language the person books in (the page's): their emails are written in it. The
    /// checks leave it Italian; the web layer sets it.
    pub language: crate::i18n::Lang,
    /// The citizen's identity provider vouched for this email address (SPID/CIE login): the
    /// booking needs no verification email. The checks leave it false; the web layer sets it.
    pub email_verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Required,
    TooLong(usize),
    BadEmail,
    BadPhone,
    BadFiscalCode,
    BadSlot,
    BadMode,
    BadOperator,
    ConsentRequired,
    TooShort(usize),
    /// Control characters (other than line breaks and tabs) have no place in a form.
    BadCharacters,
    /// The office books without an email only when it can reach the person by phone, and
    /// never for video (the join link goes by email).
    EmailOrPhone,
    /// A phone appointment: the office calls this number.
    PhoneRequired,
}

impl Problem {
    /// The message, in a language.
    pub fn message(self, l: crate::i18n::Lang) -> String {
        match self {
            Problem::TooLong(n) => l.f("Testo troppo lungo: al massimo {n} caratteri.", &[("n", &n)]),
            Problem::TooShort(n) => l.f("Scrivi almeno {n} caratteri.", &[("n", &n)]),
            Problem::Required => l.t("Campo obbligatorio.").to_string(),
            Problem::BadEmail => l.t("Indirizzo email non valido (esempio: nome@dominio.it).").to_string(),
            Problem::BadPhone => l.t("Numero di telefono non valido: solo cifre, spazi e il prefisso +.").to_string(),
            Problem::BadFiscalCode => l.t("Codice fiscale non valido: controlla i 16 caratteri (l'ultimo è un carattere di controllo).").to_string(),
            Problem::BadSlot => l.t("Scegli un orario tra quelli disponibili.").to_string(),
            Problem::BadMode => l.t("Scegli una modalità tra quelle disponibili per questo orario.").to_string(),
            Problem::BadOperator => l.t("Scegli un operatore tra quelli proposti.").to_string(),
            Problem::ConsentRequired => l.t("Per prenotare devi acconsentire al trattamento dei dati.").to_string(),
            Problem::BadCharacters => l.t("Il testo contiene caratteri non ammessi.").to_string(),
            Problem::PhoneRequired => l.t("Per un appuntamento al telefono serve il numero a cui l'ufficio ti chiamerà.").to_string(),
            Problem::EmailOrPhone => l.t("Senza email serve un numero di telefono, e la videochiamata richiede l'email (il link arriva lì).").to_string(),
        }
    }
}

/// The problems found, by field name (the form's input names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, Problem)>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> Option<Problem> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, p)| *p)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn add(&mut self, field: &'static str, p: Problem) {
        if self.get(field).is_none() {
            self.0.push((field, p));
        }
    }
}

/// Characters that reorder or hide the text around them (bidirectional embeddings, overrides
/// and isolates): a name holding them shows as something other than what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` may stand in a one-line field (names, email, phone, codes): no control
/// characters (line breaks included) and no bidirectional controls.
pub fn allowed_in_line(c: char) -> bool {
    !c.is_control() && !is_bidi_control(c)
}

/// Whether `c` may stand in a free text: as in a line, plus line breaks and tabs.
pub fn allowed_in_text(c: char) -> bool {
    allowed_in_line(c) || matches!(c, '\n' | '\r' | '\t')
}

/// How much a field may hold: one line, or free text with line breaks.
#[derive(Clone, Copy)]
enum Shape {
    Line,
    Text,
}

fn text(
    errors: &mut FieldErrors,
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
    shape: Shape,
) -> String {
    let v = value.trim();
    let allowed = match shape {
        Shape::Line => allowed_in_line,
        Shape::Text => allowed_in_text,
    };
    if v.chars().count() > max {
        errors.add(field, Problem::TooLong(max));
    } else if required && v.is_empty() {
        errors.add(field, Problem::Required);
    } else if !v.chars().all(allowed) {
        errors.add(field, Problem::BadCharacters);
    }
    v.to_string()
}

/// Checks an email address the way the mail library will parse it, and a bit stricter: a dot in
/// the domain, no spaces.
pub fn valid_email(s: &str) -> bool {
    s.len() <= MAX_EMAIL
        && !s.contains(char::is_whitespace)
        && s.parse::<lettre::Address>().is_ok_and(|a| {
            let d = a.domain();
            d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
}

/// Checks a citizen's booking form for `service`: every required field, email included, and the
/// fiscal code where the service asks for it.
pub fn validate(service: &Service, f: &BookingForm) -> Result<ValidBooking, FieldErrors> {
    check(service, f, true)
}

/// Checks a booking the office makes for someone who phoned or came in: the email may be left
/// out when there is a phone number and the appointment is not a video call; that person then
/// gets no emails and the office tells them itself.
pub fn validate_for_office(
    service: &Service,
    f: &BookingForm,
) -> Result<ValidBooking, FieldErrors> {
    check(service, f, false)
}

fn check(
    service: &Service,
    f: &BookingForm,
    email_required: bool,
) -> Result<ValidBooking, FieldErrors> {
    let mut e = FieldErrors::default();
    let start = f
        .start
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0));
    if start.is_none() {
        e.add("start", Problem::BadSlot);
    }
    let mode = Mode::parse(f.mode.trim());
    if mode.is_none() {
        e.add("mode", Problem::BadMode);
    }
    let operator_id = match f.operator.trim() {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                e.add("operator", Problem::BadOperator);
                None
            }
        },
    };
    let given_name = text(
        &mut e,
        "given_name",
        &f.contact.given_name,
        MAX_NAME,
        true,
        Shape::Line,
    );
    let family_name = text(
        &mut e,
        "family_name",
        &f.contact.family_name,
        MAX_NAME,
        true,
        Shape::Line,
    );
    let email_optional = !email_required && f.contact.email.trim().is_empty();
    let email = text(
        &mut e,
        "email",
        &f.contact.email,
        MAX_EMAIL,
        !email_optional,
        Shape::Line,
    );
    if e.get("email").is_none() && !email_optional && !valid_email(&email) {
        e.add("email", Problem::BadEmail);
    }
    let phone = text(
        &mut e,
        "phone",
        &f.contact.phone,
        MAX_PHONE,
        false,
        Shape::Line,
    );
    if !phone.is_empty() {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        let ok_chars = phone
            .char_indices()
            .all(|(i, c)| c.is_ascii_digit() || c == ' ' || (c == '+' && i == 0));
        if !ok_chars || !(6..=15).contains(&digits) {
            e.add("phone", Problem::BadPhone);
        }
    }
    // Spaces are allowed as people type it ("RSS MRA 85T10 A562S"), and gone once checked.
    let fiscal_code = crate::fiscal::normalise(&text(
        &mut e,
        "fiscal_code",
        &f.contact.fiscal_code,
        32,
        service.fiscal_code_required,
        Shape::Line,
    ));
    if e.get("fiscal_code").is_none()
        && !fiscal_code.is_empty()
        && !crate::fiscal::is_valid(&fiscal_code)
    {
        e.add("fiscal_code", Problem::BadFiscalCode);
    }
    let reason = text(
        &mut e,
        "reason",
        &f.contact.reason,
        MAX_REASON,
        true,
        Shape::Text,
    );
    if e.get("reason").is_none() && reason.chars().count() < 3 {
        e.add("reason", Problem::TooShort(3));
    }
    if mode == Some(Mode::Phone) && phone.is_empty() && e.get("phone").is_none() {
        e.add("phone", Problem::PhoneRequired);
    }
    if email_optional && (f.contact.phone.trim().is_empty() || mode == Some(Mode::Video)) {
        e.add("email", Problem::EmailOrPhone);
    }
    if !matches!(f.consent.as_deref(), Some("on" | "1" | "true" | "yes")) {
        e.add("consent", Problem::ConsentRequired);
    }
    if !e.is_empty() {
        return Err(e);
    }
    Ok(ValidBooking {
        service_id: service.id,
        start: start.expect("checked"),
        mode: mode.expect("checked"),
        operator_id,
        contact: Contact {
            given_name,
            family_name,
            email,
            phone,
            fiscal_code,
            reason,
        },
        consent_version: None,
        language: crate::i18n::Lang::IT,
        email_verified: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service that asks for the fiscal code, or not.
    fn service(fiscal_code_required: bool) -> Service {
        Service {
            id: 1,
            office_id: 1,
            calendar_id: 1,
            title: "Servizio".into(),
            description: String::new(),
            max_minutes: 30,
            instructions: String::new(),
            documents: String::new(),
            modes: crate::model::ModeSet::ALL,
            published: true,
            fiscal_code_required,
            login_required: false,
        }
    }

    #[test]
    fn a_service_may_ask_for_a_valid_fiscal_code() {
        let asks = service(true);
        let none = with(good(), |c| c.fiscal_code.clear());
        assert!(validate(&service(false), &none).is_ok());
        for check in [validate, validate_for_office] {
            assert_eq!(
                check(&asks, &none).unwrap_err().get("fiscal_code"),
                Some(Problem::Required)
            );
        }
        for bad in [
            "RSSMRA85T10A562X",
            "RSSMRA85T10A562",
            "\u{202E}RSSMRA85T10A562S",
        ] {
            let f = with(good(), |c| c.fiscal_code = bad.into());
            let e = validate(&asks, &f).unwrap_err();
            assert!(
                matches!(
                    e.get("fiscal_code"),
                    Some(Problem::BadFiscalCode | Problem::BadCharacters)
                ),
                "{bad:?}: {e:?}"
            );
        }
        // An omocode variant is a valid code, kept as typed (in capitals).
        let check = crate::fiscal::check_char(b"RSSMRA85T10A56N") as char;
        let variant = format!("rssmra85t10a56n{}", check.to_ascii_lowercase());
        let f = with(good(), |c| c.fiscal_code = variant.clone());
        assert_eq!(
            validate(&asks, &f).unwrap().contact.fiscal_code,
            variant.to_uppercase()
        );
    }

    fn good() -> BookingForm {
        BookingForm {
            start: "1800000000".into(),
            mode: "video".into(),
            operator: String::new(),
            contact: Contact {
                given_name: "Maria".into(),
                family_name: "Rossi".into(),
                email: "maria.rossi@example.it".into(),
                phone: "+39 079 123456".into(),
                fiscal_code: "rssmra 85t10 a562s".into(),
                reason: "Rinnovo carta d'identità".into(),
            },
            consent: Some("on".into()),
        }
    }

    /// A form like `base` with its contact changed by `change`.
    fn with(base: BookingForm, change: impl FnOnce(&mut Contact)) -> BookingForm {
        let mut f = base;
        change(&mut f.contact);
        f
    }

    #[test]
    fn names_refuse_line_breaks_control_and_bidi_characters_the_reason_keeps_line_breaks() {
        for hostile in [
            "Anna\r\nX-EVIL:1",
            "Anna\u{202E}ossoR",
            "Anna\u{2066}x",
            "Anna\u{7}",
            "Anna\tRossi",
        ] {
            let f = with(good(), |c| c.given_name = hostile.into());
            assert_eq!(
                validate(&service(false), &f).unwrap_err().get("given_name"),
                Some(Problem::BadCharacters),
                "{hostile:?}"
            );
        }
        let f = with(good(), |c| c.family_name = "Rossi\"; DROP".into());
        assert!(
            validate(&service(false), &f).is_ok(),
            "quotes are a name's business"
        );
        let f = with(good(), |c| c.reason = "Prima riga\r\nseconda riga".into());
        assert!(validate(&service(false), &f).is_ok());
        let f = with(good(), |c| c.reason = "Testo \u{202E}rovesciato".into());
        assert_eq!(
            validate(&service(false), &f).unwrap_err().get("reason"),
            Some(Problem::BadCharacters)
        );
    }

    #[test]
    fn a_complete_form_is_valid() {
        let b = validate(&service(false), &good()).unwrap();
        assert_eq!(b.mode, Mode::Video);
        assert_eq!(b.contact.fiscal_code, "RSSMRA85T10A562S");
    }

    #[test]
    fn the_office_may_leave_out_the_email_of_a_caller_with_a_phone_but_not_for_video() {
        let no_email = with(
            BookingForm {
                mode: "phone".into(),
                ..good()
            },
            |c| c.email.clear(),
        );
        assert_eq!(
            validate(&service(false), &no_email)
                .unwrap_err()
                .get("email"),
            Some(Problem::Required)
        );
        assert_eq!(
            validate_for_office(&service(false), &no_email)
                .unwrap()
                .contact
                .email,
            ""
        );
        let no_phone = with(no_email.clone(), |c| c.phone.clear());
        assert_eq!(
            validate_for_office(&service(false), &no_phone)
                .unwrap_err()
                .get("email"),
            Some(Problem::EmailOrPhone)
        );
        let video = BookingForm {
            mode: "video".into(),
            ..no_email.clone()
        };
        assert_eq!(
            validate_for_office(&service(false), &video)
                .unwrap_err()
                .get("email"),
            Some(Problem::EmailOrPhone)
        );
        // A wrong email is still wrong.
        let bad = with(no_email, |c| c.email = "maria@".into());
        assert_eq!(
            validate_for_office(&service(false), &bad)
                .unwrap_err()
                .get("email"),
            Some(Problem::BadEmail)
        );
    }

    #[test]
    fn a_phone_appointment_needs_a_phone_number() {
        let phone = |number: &str| {
            let mut f = with(good(), |c| c.phone = number.into());
            f.mode = "phone".into();
            f
        };
        for blank in ["", "   ", "\t"] {
            for check in [validate, validate_for_office] {
                let e = check(&service(false), &phone(blank)).unwrap_err();
                assert_eq!(e.get("phone"), Some(Problem::PhoneRequired), "{blank:?}");
                assert_eq!(e.0.len(), 1, "{e:?}");
            }
        }
        // A number that is not one says so, not "required".
        let e = validate(&service(false), &phone("chiamami")).unwrap_err();
        assert_eq!(e.get("phone"), Some(Problem::BadPhone));
        assert_eq!(
            validate(&service(false), &phone("+39 079 123456"))
                .unwrap()
                .contact
                .phone,
            "+39 079 123456"
        );
        // Other modes leave it optional.
        let mut f = with(good(), |c| c.phone.clear());
        f.mode = "in_person".into();
        assert!(validate(&service(false), &f).is_ok());
    }

    #[test]
    fn each_problem_is_reported_on_its_field() {
        let f = with(
            BookingForm {
                consent: None,
                ..good()
            },
            |c| {
                c.email = "maria@".into();
                c.reason = "x".repeat(MAX_REASON + 1);
                c.phone = "abc".into();
                c.given_name = " ".into();
            },
        );
        let e = validate(&service(false), &f).unwrap_err();
        assert_eq!(e.get("email"), Some(Problem::BadEmail));
        assert_eq!(e.get("consent"), Some(Problem::ConsentRequired));
        assert_eq!(e.get("reason"), Some(Problem::TooLong(MAX_REASON)));
        assert_eq!(e.get("phone"), Some(Problem::BadPhone));
        assert_eq!(e.get("given_name"), Some(Problem::Required));
        assert_eq!(e.get("family_name"), None);
    }

    #[test]
    fn emails_need_a_real_domain() {
        for bad in ["a@b", "a b@c.it", "@c.it", "a@.it", "a@c.it.", ""] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(valid_email("nome.cognome+tag@comune.ozieri.ss.it"));
    }
}
