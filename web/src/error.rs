//! The one error type of the web layer: every failure becomes a page that says what went wrong
//! in Italian and English, with the right status code. Nothing is changed by a refused request.
//!
//! An error becomes an answer with its status and its words (`ErrorWords`); `app::error_pages`,
//! a layer around the whole site, turns those words into the HTML page, with the town in its
//! header and footer like every other page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::i18n::{Lang, Text};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("invalid or tampered link")]
    BadLink,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form field the console refused.
    #[error("invalid input: {}", .0.it)]
    Invalid(Text),
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

    /// Status and message.
    pub fn describe(&self) -> (StatusCode, Text) {
        use booking::Error as B;
        if self.unavailable() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Text::new(
                    "Il servizio è momentaneamente non disponibile. Riprova tra qualche minuto.",
                ),
            );
        }
        match self {
            AppError::NotFound | AppError::Booking(B::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                Text::new("La pagina o l'elemento richiesto non esiste."),
            ),
            AppError::BadLink => (
                StatusCode::BAD_REQUEST,
                Text::new("Il link non è valido: potrebbe essere incompleto o modificato. Usa il link ricevuto per email, copiandolo per intero."),
            ),
            AppError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                Text::new("Richiesta non valida: {m}").with("m", m),
            ),
            AppError::Invalid(t) => (
                StatusCode::BAD_REQUEST,
                Text::new("Dati non validi: {m}").with_text("m", t.clone()),
            ),
            AppError::TooManyRequests(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                match s {
                    1 => Text::new("Troppe richieste da questo indirizzo: riprova tra un secondo."),
                    s => Text::new("Troppe richieste da questo indirizzo: riprova tra {n} secondi.")
                        .with("n", s),
                },
            ),
            AppError::Login(crate::oidc::Failure::ProviderDown) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Text::new("L'accesso con SPID o CIE non risponde in questo momento. Riprova tra qualche minuto; puoi comunque prenotare con il tuo indirizzo email dove il servizio lo consente."),
            ),
            AppError::Login(crate::oidc::Failure::NotThisLogin) => (
                StatusCode::BAD_REQUEST,
                Text::new("Questo accesso non è stato avviato da questa pagina, è scaduto o è stato annullato. Ricomincia da «Entra con SPID o CIE»."),
            ),
            AppError::Login(crate::oidc::Failure::Refused(_)) => (
                StatusCode::BAD_REQUEST,
                Text::new("Il fornitore dell'identità ha risposto con dati che non si possono accettare: non sei stato fatto entrare. Riprova; se si ripete, prenota con il tuo indirizzo email o contatta il Comune."),
            ),
            AppError::Login(crate::oidc::Failure::NoAccount) => (
                StatusCode::FORBIDDEN,
                Text::new("Nessun account dell'ufficio ha l'email verificata da SPID o CIE: chiedi a un amministratore di usare quell'indirizzo per il tuo account, o entra con email e password."),
            ),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Text::new("I dati inviati sono troppo grandi."),
            ),
            AppError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                Text::new("Operazione non consentita: {m}").with("m", m),
            ),
            AppError::Booking(e) => {
                let text = booking_message(e);
                let status = match e {
                    B::SlotTaken | B::AlreadyBookedForService | B::PersonAlreadyBooked | B::TooManyActive(_) | B::TooManyUnverified(_) | B::NotActive(_) | B::AlreadyHappened | B::SameSlot | B::NotYet | B::OfficeInUse(_) | B::WaitlistClosed => StatusCode::CONFLICT,
                    B::SlotNotBookable | B::ModeNotOffered | B::UnknownOperator | B::FiscalCodeRequired | B::ClosureDays => StatusCode::UNPROCESSABLE_ENTITY,
                    B::TooManyVerifications(_) => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, text)
            }
            AppError::Staff(staff::Error::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                Text::new("La pagina o l'elemento richiesto non esiste."),
            ),
            AppError::Staff(staff::Error::Forbidden) => (
                StatusCode::FORBIDDEN,
                Text::new("Operazione non consentita."),
            ),
            AppError::Staff(staff::Error::DuplicateEmail) => (
                StatusCode::CONFLICT,
                Text::new("Esiste già un account con questo indirizzo email."),
            ),
            AppError::Staff(_) | AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Text::new("Si è verificato un errore interno. Riprova tra qualche minuto."),
            ),
        }
    }
}

/// What a citizen reads for each booking refusal.
pub fn booking_message(e: &booking::Error) -> Text {
    use booking::Error as B;
    match e {
        B::SlotTaken => Text::new("Questo orario non è più disponibile: qualcun altro lo ha appena prenotato. Scegli un altro orario."),
        B::SlotNotBookable => Text::new("Questo orario non si può prenotare: non è tra quelli offerti, è passato, oppure è oggi (non si prenota per il giorno stesso)."),
        B::ModeNotOffered => Text::new("La modalità scelta non è disponibile per questo orario."),
        B::UnknownOperator => Text::new("L'operatore scelto non segue questo servizio."),
        B::AlreadyBookedForService => Text::new("Hai già un appuntamento attivo per questo servizio con questo indirizzo email. Puoi spostarlo o annullarlo dal link ricevuto per email."),
        B::PersonAlreadyBooked => Text::new("Questa persona (lo dice il codice fiscale) ha già un appuntamento attivo per questo servizio. Puoi spostarlo o annullarlo dal link ricevuto per email."),
        B::FiscalCodeRequired => Text::new("Per questo servizio serve il codice fiscale valido della persona che si presenta."),
        B::TooManyUnverified(n) => Text::new("Con questo indirizzo email ci sono già {n} prenotazioni in attesa di conferma: conferma quelle con il link che hai ricevuto, o attendi che scadano (2 ore).").with("n", n),
        B::TooManyVerifications(n) => Text::new("A questo indirizzo email abbiamo già inviato {n} richieste di conferma nelle ultime 24 ore: riprova domani o contatta l'ufficio.").with("n", n),
        B::TooManyActive(n) => Text::new("Con questo indirizzo email hai già {n} appuntamenti attivi, il massimo consentito.").with("n", n),
        B::NotActive(s) => Text::new("L'appuntamento non è più attivo ({stato}).").with_text("stato", Text::new(s.label(Lang::IT))),
        B::AlreadyHappened => Text::new("L'appuntamento si è già svolto."),
        B::NotYet => Text::new("L'appuntamento non è ancora iniziato."),
        B::ClosureDays => Text::new("Una chiusura dura da un giorno a un anno: l'ultimo giorno non può precedere il primo."),
        B::WaitlistClosed => Text::new("Questa iscrizione alla lista d'attesa non è più aperta: non è stata confermata entro 2 ore, oppure è terminata. Puoi iscriverti di nuovo dalla pagina del servizio."),
        B::SameSlot => Text::new("L'appuntamento è già a quell'orario."),
        B::OfficeInUse(1) => Text::new("L'ufficio non si può archiviare: ha ancora un appuntamento attivo da svolgere. Spostalo o annullalo, poi riprova."),
        B::OfficeInUse(n) => Text::new("L'ufficio non si può archiviare: ha ancora {n} appuntamenti attivi da svolgere. Spostali o annullali, poi riprova.").with("n", n),
        _ => Text::new("Si è verificato un errore interno. Riprova tra qualche minuto."),
    }
}

/// What an error answer says, until `error_pages` makes its page of it in the page's language.
#[derive(Debug, Clone)]
pub(crate) struct ErrorWords(pub(crate) Text);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, text) = self.describe();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        // Plain words for a client that gets them without the layer; the layer makes the page.
        let english = Lang::from_code("en").unwrap_or_default();
        let plain = format!("{}\n\n{}\n", Lang::IT.text(&text), english.text(&text));
        let mut response = (status, plain).into_response();
        response.extensions_mut().insert(ErrorWords(text));
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

/// A refused form field: its Italian, which the page's language translates.
pub fn invalid(it: &'static str) -> AppError {
    AppError::Invalid(Text::new(it))
}

/// The answer to an email address that is not one, on the citizen's forms that take only that.
pub fn bad_email(l: crate::i18n::Lang) -> String {
    l.t("Indirizzo email non valido (esempio: nome@dominio.it).")
        .to_string()
}
