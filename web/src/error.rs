//! The one error type of the web layer: every failure becomes a page that says what went wrong
//! in Italian and English, with the right status code. Nothing is changed by a refused request.
//!
//! An error becomes an answer with its status and its words (`ErrorWords`); `error_pages`, a
//! layer around the whole site, turns those words into the HTML page, with the town in its
//! header and footer like every other page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::town::Town;
use crate::views::ErrorPage;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("invalid or tampered link")]
    BadLink,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form field the console refused, in Italian and English.
    #[error("invalid input: {1}")]
    Invalid(String, String),
    #[error("request too large")]
    TooLarge,
    /// Over the client's limit: wait this many seconds.
    #[error("too many requests")]
    TooManyRequests(u64),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Booking(#[from] booking::Error),
    #[error(transparent)]
    Staff(#[from] staff::Error),
    /// A login through the identity provider that did not succeed.
    #[error("login: {0:?}")]
    Login(crate::oidc::Failure),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl AppError {
    /// Whether the database is not there for now (down, restarting): answered 503, "try again".
    fn unavailable(&self) -> bool {
        match self {
            AppError::Booking(e) => e.is_unavailable(),
            AppError::Staff(staff::Error::Db(e)) => booking::store::unavailable(e),
            _ => false,
        }
    }

    /// Status, Italian message, English message.
    pub fn describe(&self) -> (StatusCode, String, String) {
        use booking::Error as B;
        if self.unavailable() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Il servizio è momentaneamente non disponibile. Riprova tra qualche minuto.".into(),
                "The service is temporarily unavailable. Please try again in a few minutes.".into(),
            );
        }
        match self {
            AppError::NotFound | AppError::Booking(B::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "La pagina o l'elemento richiesto non esiste.".into(),
                "The page or item you asked for does not exist.".into(),
            ),
            AppError::BadLink => (
                StatusCode::BAD_REQUEST,
                "Il link non è valido: potrebbe essere incompleto o modificato. Usa il link ricevuto per email, copiandolo per intero.".into(),
                "This link is not valid: it may be incomplete or altered. Use the link you received by email, copied in full.".into(),
            ),
            AppError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                format!("Richiesta non valida: {m}"),
                format!("Invalid request: {m}"),
            ),
            AppError::Invalid(it, en) => (
                StatusCode::BAD_REQUEST,
                format!("Dati non validi: {it}"),
                format!("Invalid data: {en}"),
            ),
            AppError::TooManyRequests(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                match s {
                    1 => "Troppe richieste da questo indirizzo: riprova tra un secondo.".into(),
                    s => format!("Troppe richieste da questo indirizzo: riprova tra {s} secondi."),
                },
                match s {
                    1 => "Too many requests from this address: please try again in a second."
                        .into(),
                    s => format!(
                        "Too many requests from this address: please try again in {s} seconds."
                    ),
                },
            ),
            AppError::Login(crate::oidc::Failure::ProviderDown) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "L'accesso con SPID o CIE non risponde in questo momento. Riprova tra qualche minuto; puoi comunque prenotare con il tuo indirizzo email dove il servizio lo consente.".into(),
                "Login with SPID or CIE is not answering right now. Try again in a few minutes; you can still book with your email address where the service allows it.".into(),
            ),
            AppError::Login(crate::oidc::Failure::NotThisLogin) => (
                StatusCode::BAD_REQUEST,
                "Questo accesso non è stato avviato da questa pagina, è scaduto o è stato annullato. Ricomincia da «Entra con SPID o CIE».".into(),
                "This login was not started from this page, has expired or was cancelled. Start again from \"Log in with SPID or CIE\".".into(),
            ),
            AppError::Login(crate::oidc::Failure::Refused(_)) => (
                StatusCode::BAD_REQUEST,
                "Il fornitore dell'identità ha risposto con dati che non si possono accettare: non sei stato fatto entrare. Riprova; se si ripete, prenota con il tuo indirizzo email o contatta il Comune.".into(),
                "The identity provider answered with data that cannot be accepted: you have not been logged in. Try again; if it happens again, book with your email address or contact the town.".into(),
            ),
            AppError::Login(crate::oidc::Failure::NoAccount) => (
                StatusCode::FORBIDDEN,
                "Nessun account dell'ufficio ha l'email verificata da SPID o CIE: chiedi a un amministratore di usare quell'indirizzo per il tuo account, o entra con email e password.".into(),
                "No office account has the email SPID or CIE verified: ask an administrator to use that address for your account, or log in with email and password.".into(),
            ),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "I dati inviati sono troppo grandi.".into(),
                "The data sent is too large.".into(),
            ),
            AppError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                format!("Operazione non consentita: {m}"),
                format!("Not allowed: {m}"),
            ),
            AppError::Booking(e) => {
                let (it, en) = booking_messages(e);
                let status = match e {
                    B::SlotTaken | B::AlreadyBookedForService | B::PersonAlreadyBooked | B::TooManyActive(_) | B::TooManyUnverified(_) | B::NotActive(_) | B::AlreadyHappened | B::SameSlot | B::NotYet | B::OfficeInUse(_) | B::WaitlistClosed => StatusCode::CONFLICT,
                    B::SlotNotBookable | B::ModeNotOffered | B::UnknownOperator | B::FiscalCodeRequired | B::ClosureDays => StatusCode::UNPROCESSABLE_ENTITY,
                    B::TooManyVerifications(_) => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, it, en)
            }
            AppError::Staff(staff::Error::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "La pagina o l'elemento richiesto non esiste.".into(),
                "The page or item you asked for does not exist.".into(),
            ),
            AppError::Staff(staff::Error::Forbidden) => (
                StatusCode::FORBIDDEN,
                "Operazione non consentita.".into(),
                "Not allowed.".into(),
            ),
            AppError::Staff(staff::Error::DuplicateEmail) => (
                StatusCode::CONFLICT,
                "Esiste già un account con questo indirizzo email.".into(),
                "An account with this email address already exists.".into(),
            ),
            AppError::Staff(_) | AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Si è verificato un errore interno. Riprova tra qualche minuto.".into(),
                "Something went wrong on our side. Please try again in a few minutes.".into(),
            ),
        }
    }
}

/// What a citizen reads for each booking refusal.
pub fn booking_messages(e: &booking::Error) -> (String, String) {
    use booking::Error as B;
    match e {
        B::SlotTaken => ("Questo orario non è più disponibile: qualcun altro lo ha appena prenotato. Scegli un altro orario.".into(), "This time is no longer available: someone else has just booked it. Please choose another time.".into()),
        B::SlotNotBookable => ("Questo orario non si può prenotare: non è tra quelli offerti, è passato, oppure è oggi (non si prenota per il giorno stesso).".into(), "This time cannot be booked: it is not offered, it has passed, or it is today (same-day booking is not possible).".into()),
        B::ModeNotOffered => ("La modalità scelta non è disponibile per questo orario.".into(), "The chosen mode is not offered at this time.".into()),
        B::UnknownOperator => ("L'operatore scelto non segue questo servizio.".into(), "The chosen operator does not serve this calendar.".into()),
        B::AlreadyBookedForService => ("Hai già un appuntamento attivo per questo servizio con questo indirizzo email. Puoi spostarlo o annullarlo dal link ricevuto per email.".into(), "You already have an active appointment for this service with this email address. You can move or cancel it from the link in your email.".into()),
        B::PersonAlreadyBooked => ("Questa persona (lo dice il codice fiscale) ha già un appuntamento attivo per questo servizio. Puoi spostarlo o annullarlo dal link ricevuto per email.".into(), "This person (by the fiscal code) already has an active appointment for this service. It can be moved or cancelled from the link in the email.".into()),
        B::FiscalCodeRequired => ("Per questo servizio serve il codice fiscale valido della persona che si presenta.".into(), "This service needs the valid fiscal code of the person who comes.".into()),
        B::TooManyUnverified(n) => (format!("Con questo indirizzo email ci sono già {n} prenotazioni in attesa di conferma: conferma quelle con il link che hai ricevuto, o attendi che scadano (2 ore)."), format!("This email address already has {n} bookings waiting for confirmation: confirm them with the link you received, or wait for them to expire (2 hours).")),
        B::TooManyVerifications(n) => (format!("A questo indirizzo email abbiamo già inviato {n} richieste di conferma nelle ultime 24 ore: riprova domani o contatta l'ufficio."), format!("We have already sent {n} confirmation requests to this email address in the last 24 hours: please try again tomorrow or contact the office.")),
        B::TooManyActive(n) => (format!("Con questo indirizzo email hai già {n} appuntamenti attivi, il massimo consentito."), format!("This email address already holds {n} active appointments, the most allowed.")),
        B::NotActive(s) => (format!("L'appuntamento non è più attivo ({}).", s.label_it()), format!("The appointment is no longer active ({}).", s.label_en())),
        B::AlreadyHappened => ("L'appuntamento si è già svolto.".into(), "The appointment has already taken place.".into()),
        B::NotYet => ("L'appuntamento non è ancora iniziato.".into(), "The appointment has not started yet.".into()),
        B::ClosureDays => ("Una chiusura dura da un giorno a un anno: l'ultimo giorno non può precedere il primo.".into(), "A closure lasts from one day to a year: the last day cannot come before the first.".into()),
        B::WaitlistClosed => ("Questa iscrizione alla lista d'attesa non è più aperta: non è stata confermata entro 2 ore, oppure è terminata. Puoi iscriverti di nuovo dalla pagina del servizio.".into(), "This place on the waitlist is no longer open: it was not confirmed within 2 hours, or it has ended. You can join again from the service's page.".into()),
        B::SameSlot => ("L'appuntamento è già a quell'orario.".into(), "The appointment is already at that time.".into()),
        B::OfficeInUse(1) => ("L'ufficio non si può archiviare: ha ancora un appuntamento attivo da svolgere. Spostalo o annullalo, poi riprova.".into(), "The office cannot be archived: it still has an active appointment to come. Move or cancel it, then try again.".into()),
        B::OfficeInUse(n) => (format!("L'ufficio non si può archiviare: ha ancora {n} appuntamenti attivi da svolgere. Spostali o annullali, poi riprova."), format!("The office cannot be archived: it still has {n} active appointments to come. Move or cancel them, then try again.")),
        _ => ("Si è verificato un errore interno. Riprova tra qualche minuto.".into(), "Something went wrong on our side. Please try again in a few minutes.".into()),
    }
}

/// What an error answer says, until `error_pages` makes its page of it.
#[derive(Debug, Clone)]
struct ErrorWords {
    it: String,
    en: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, it, en) = self.describe();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        // Plain words for a client that gets them without the layer; the layer makes the page.
        let mut response = (status, format!("{it}\n\n{en}\n")).into_response();
        response.extensions_mut().insert(ErrorWords { it, en });
        if let AppError::TooManyRequests(s) = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, RETRY_UNAVAILABLE.into());
        }
        response
    }
}

/// Seconds a client is asked to wait when the database is unavailable.
const RETRY_UNAVAILABLE: u64 = 10;

/// Renders the page of every error answer, with the town (see the module's doc).
pub async fn error_pages(State(town): State<Arc<Town>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let Some(words) = response.extensions_mut().remove::<ErrorWords>() else {
        return response;
    };
    let page = ErrorPage {
        l: crate::i18n::Lang::It,
        status: response.status().as_u16(),
        message_it: words.it,
        message_en: words.en,
    };
    match crate::extract::render(&page, &town) {
        Ok(html) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(parts, Body::from(html))
        }
        Err(e) => {
            tracing::error!(error = %e, "error page not rendered");
            response
        }
    }
}

pub type Result<T> = std::result::Result<T, AppError>;

/// Whether a booking error is a refusal the person can act on (shown on the form), not a fault.
pub fn is_refusal(e: &booking::Error) -> bool {
    use booking::Error as B;
    matches!(
        e,
        B::SlotTaken
            | B::SlotNotBookable
            | B::ModeNotOffered
            | B::UnknownOperator
            | B::AlreadyBookedForService
            | B::PersonAlreadyBooked
            | B::FiscalCodeRequired
            | B::TooManyActive(_)
            | B::TooManyUnverified(_)
            | B::TooManyVerifications(_)
            | B::SameSlot
    )
}

/// A refused form field, said in both languages.
pub fn invalid(it: impl Into<String>, en: impl Into<String>) -> AppError {
    AppError::Invalid(it.into(), en.into())
}

/// The answer to an email address that is not one, on the citizen's forms that take only that.
pub fn bad_email(l: crate::i18n::Lang) -> String {
    l.t(
        "Indirizzo email non valido (esempio: nome@dominio.it).",
        "Invalid email address (example: name@domain.it).",
    )
    .to_string()
}
