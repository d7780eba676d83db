//! The domain: offices, their services and calendars, and appointments.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the meeting happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    InPerson,
    Phone,
    Video,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::InPerson, Mode::Phone, Mode::Video];

    pub fn code(self) -> &'static str {
        match self {
            Mode::InPerson => "in_person",
            Mode::Phone => "phone",
            Mode::Video => "video",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.code() == s)
    }
    fn bit(self) -> u8 {
        match self {
            Mode::InPerson => 1,
            Mode::Phone => 2,
            Mode::Video => 4,
        }
    }
    /// Its name for people, in a language.
    pub fn label(self, l: crate::i18n::Lang) -> &'static str {
        match self {
            Mode::InPerson => l.t("In presenza"),
            Mode::Phone => l.t("Al telefono"),
            Mode::Video => l.t("In videochiamata"),
        }
    }
}

/// A set of modes, stored as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModeSet(pub u8);

impl ModeSet {
    /// "In presenza, Videochiamata": the set, in the modes' usual order.
    pub fn label(self, l: crate::i18n::Lang) -> String {
        self.modes()
            .into_iter()
            .map(|m| m.label(l))
            .collect::<Vec<_>>()
            .join(", ")
    }
    pub const ALL: ModeSet = ModeSet(7);
    pub fn of(modes: &[Mode]) -> Self {
        ModeSet(modes.iter().fold(0, |a, m| a | m.bit()))
    }
    pub fn contains(self, m: Mode) -> bool {
        self.0 & m.bit() != 0
    }
    pub fn union(self, o: ModeSet) -> ModeSet {
        ModeSet(self.0 | o.0)
    }
    pub fn intersect(self, o: ModeSet) -> ModeSet {
        ModeSet(self.0 & o.0)
    }
    pub fn modes(self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|m| self.contains(*m))
            .collect()
    }
    pub fn is_empty(self) -> bool {
        self.0 & 7 == 0
    }
}

/// Where an appointment stands. Pending, awaiting approval and confirmed hold their slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Booked, the citizen has not yet followed the verification link.
    Pending,
    /// Verified, on a moderated calendar: the office has to approve it.
    AwaitingApproval,
    Confirmed,
    /// Not verified in time: cancelled by the system, slot freed.
    Expired,
    Cancelled,
    Refused,
    Done,
    NoShow,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Confirmed => "confirmed",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Refused => "refused",
            Status::Done => "done",
            Status::NoShow => "no_show",
        }
    }
    /// Every status, in the order of an appointment's life.
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::AwaitingApproval,
        Status::Confirmed,
        Status::Expired,
        Status::Cancelled,
        Status::Refused,
        Status::Done,
        Status::NoShow,
    ];
    pub fn parse(s: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|x| x.code() == s)
    }
    /// Whether the appointment still holds its slot.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::AwaitingApproval | Status::Confirmed
        )
    }
    /// Its name for people, in a language.
    pub fn label(self, l: crate::i18n::Lang) -> &'static str {
        match self {
            Status::Pending => l.t("In attesa di verifica dell'email"),
            Status::AwaitingApproval => {
                l.t("Richiesta inviata, in attesa di approvazione dell'ufficio")
            }
            Status::Confirmed => l.t("Confermato"),
            Status::Expired => l.t("Annullato: email non verificata in tempo"),
            Status::Cancelled => l.t("Annullato"),
            Status::Refused => l.t("Non approvato dall'ufficio"),
            Status::Done => l.t("Svolto"),
            Status::NoShow => l.t("Non presentato"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Office {
    pub id: i64,
    pub name: String,
    pub department: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    /// Opening hours as shown to citizens ("lunedì 8:00-9:00").
    pub hours_text: String,
    /// Archived: kept for its history, no longer shown or bookable.
    pub archived: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    pub id: i64,
    pub office_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: i64,
    pub office_id: i64,
    pub calendar_id: i64,
    pub title: String,
    pub description: String,
    pub max_minutes: i64,
    pub instructions: String,
    /// Documents to bring, one per line.
    pub documents: String,
    pub modes: ModeSet,
    pub published: bool,
    /// The booking form asks for the person's fiscal code, and each person (not each email
    /// address) may hold one active appointment of the service: a parent books for each child
    /// with one email.
    pub fiscal_code_required: bool,
    /// Booking needs the SPID/CIE login, and the booking carries the fiscal code, names and
    /// email the identity provider vouched for (see `web::oidc`).
    pub login_required: bool,
}

impl Service {
    pub fn document_list(&self) -> Vec<&str> {
        self.documents
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Calendar {
    pub id: i64,
    pub office_id: i64,
    pub name: String,
    pub moderated: bool,
}

/// Who an appointment is for and why: the same fields, with the same names, in the booking form
/// (as typed), in a checked booking and in a stored appointment, for the citizen and the office.
/// A stored row's columns of the same names read it (`store::appointments`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub given_name: String,
    pub family_name: String,
    /// Empty only when the office booked for a caller it reaches by phone.
    pub email: String,
    pub phone: String,
    pub fiscal_code: String,
    pub reason: String,
}

impl Contact {
    /// "Maria Rossi".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Appointment {
    pub id: i64,
    pub code: String,
    pub office_id: i64,
    pub service_id: i64,
    pub calendar_id: i64,
    pub operator_id: Option<i64>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mode: Mode,
    pub status: Status,
    #[serde(flatten)]
    pub contact: Contact,
    pub created_at: DateTime<Utc>,
    pub verify_deadline: DateTime<Utc>,
    /// Raised on every change the citizen is told about (the iCalendar SEQUENCE).
    pub sequence: i64,
    /// The language the person booked in: every email about the appointment is in it.
    pub language: crate::i18n::Lang,
}
