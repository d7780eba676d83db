//! The pages: one askama template each, and the small view types they show. Handlers fill
//! these with ready-made strings, so the templates hold no logic beyond loops and conditions.

use askama::Template;

use crate::i18n::Lang;

pub mod console;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Lang,
    pub status: u16,
    /// The message in the page's language.
    pub message: String,
    /// The same in English, under it, where the page is in another language.
    pub message_en: Option<String>,
}

pub struct OfficeCard {
    pub id: i64,
    pub name: String,
    pub department: String,
    pub email: String,
    pub phone: String,
    pub hours: String,
    pub open_now: bool,
}

#[derive(Template)]
#[template(path = "offices.html")]
pub struct OfficesPage {
    pub l: Lang,
    pub offices: Vec<OfficeCard>,
}

pub struct ServiceCard {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub max_minutes: i64,
    pub modes: String,
}

#[derive(Template)]
#[template(path = "office.html")]
pub struct OfficePage {
    pub l: Lang,
    pub office: OfficeCard,
    pub address: String,
    pub services: Vec<ServiceCard>,
    /// The closures under way or to come: "dal … al … (scope): reason".
    pub closures: Vec<String>,
}

pub struct SlotView {
    pub start: i64,
    pub time: String,
    pub modes: String,
    pub free: u32,
    /// What a screen reader says for this slot.
    pub label: String,
}

pub struct DayView {
    pub label: String,
    pub slots: Vec<SlotView>,
}

#[derive(Template)]
#[template(path = "service.html")]
pub struct ServicePage {
    pub l: Lang,
    pub office_id: i64,
    pub office_name: String,
    pub service: ServiceCard,
    pub instructions: String,
    pub documents: Vec<String>,
    pub days: Vec<DayView>,
    /// The week's days the office is closed on though its hours would open it (a holiday, a
    /// closure), each with the reason when there is one.
    pub closed: Vec<String>,
    pub week_label: String,
    pub prev_week: Option<String>,
    pub next_week: Option<String>,
    pub next_free: Option<String>,
}

#[derive(Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

impl Choice {
    /// Modes as radio buttons or checkboxes, ticked where `checked` says so.
    pub fn modes(
        l: Lang,
        modes: impl IntoIterator<Item = booking::Mode>,
        checked: impl Fn(booking::Mode) -> bool,
    ) -> Vec<Choice> {
        modes
            .into_iter()
            .map(|m| Choice {
                value: m.code().into(),
                label: m.label(l).into(),
                checked: checked(m),
            })
            .collect()
    }
}

/// A form field: what was typed, and the problem with it (already in the page's language).
#[derive(Default)]
pub struct Field {
    pub value: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "book.html")]
pub struct BookPage {
    pub l: Lang,
    pub csrf: String,
    pub service_id: i64,
    pub office_name: String,
    pub service_title: String,
    pub max_minutes: i64,
    /// The service asks for the fiscal code (one appointment per person).
    pub fiscal_code_required: bool,
    pub start: i64,
    pub when: String,
    pub modes: Vec<Choice>,
    pub operators: Vec<Choice>,
    pub given_name: Field,
    pub family_name: Field,
    pub email: Field,
    pub phone: Field,
    pub fiscal_code: Field,
    pub reason: Field,
    pub consent_checked: bool,
    pub consent_error: Option<String>,
    pub mode_error: Option<String>,
    pub operator_error: Option<String>,
    /// Problems that are not about one field (the slot was just taken, ...).
    pub alert: Option<String>,
    pub error_count: usize,
    /// Whether the form asks for the proof of work (`pow`).
    pub pow: bool,
    /// With an identity provider: who is logged in, or where to log in.
    pub login: Option<LoginBox>,
    /// The service needs the SPID/CIE login (`Service::login_required`).
    pub login_required: bool,
    /// ... and nobody is logged in: no form, only the way to log in.
    pub login_needed: bool,
}

/// The booking form's word on the SPID/CIE login.
pub struct LoginBox {
    /// The logged-in person's name; empty: nobody is.
    pub name: String,
    /// `/accedi?dopo=...`, back to this form.
    pub url: String,
}

/// An appointment as the citizen sees it.
pub struct AppointmentView {
    pub code: String,
    pub office: String,
    pub office_email: String,
    pub office_phone: String,
    pub address: String,
    pub service: String,
    pub when: String,
    pub max_minutes: i64,
    pub mode: String,
    pub is_video: bool,
    pub status: String,
    pub active: bool,
    pub pending: bool,
    pub awaiting_approval: bool,
    pub name: String,
    pub operator: String,
    pub documents: Vec<String>,
    pub instructions: String,
}

#[derive(Template)]
#[template(path = "sent.html")]
pub struct SentPage {
    pub l: Lang,
    pub masked_email: String,
    pub deadline: String,
    pub a: AppointmentView,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub l: Lang,
    pub csrf: String,
    pub token: String,
    pub a: AppointmentView,
}

/// One appointment on a person's own data page.
pub struct MyDataLine {
    pub code: String,
    pub when: String,
    pub service: String,
    pub status: String,
}

/// A person's own data: the request form, or what the link shows.
#[derive(Template)]
#[template(path = "my_data.html")]
pub struct MyDataPage {
    pub l: Lang,
    pub csrf: String,
    /// The link's token, once the person came through it.
    pub token: Option<String>,
    pub email: String,
    /// The request was taken (the same answer whether the address is known or not).
    pub sent: bool,
    pub error: Option<String>,
    pub expired: bool,
    pub lines: Vec<MyDataLine>,
    pub erased: Option<u64>,
}

/// One of a logged-in citizen's appointments, with its links while it is active.
pub struct MyAppointment {
    pub a: AppointmentView,
    pub manage: Option<String>,
    pub join: Option<String>,
}

/// A logged-in citizen's appointments.
#[derive(Template)]
#[template(path = "my_appointments.html")]
pub struct MyAppointmentsPage {
    pub l: Lang,
    pub csrf: String,
    pub name: String,
    pub fiscal_code: String,
    pub lines: Vec<MyAppointment>,
}

/// After a staff login through the identity provider: on to the console, from a page of this
/// site (see `citizen::login`).
#[derive(Template)]
#[template(path = "console/continue.html")]
pub struct ContinuePage {
    pub l: Lang,
    pub to: String,
}

/// "I lost my email": the form, and the same answer for any address.
#[derive(Template)]
#[template(path = "find.html")]
pub struct FindPage {
    pub l: Lang,
    pub csrf: String,
    pub email: String,
    pub sent: bool,
    pub error: Option<String>,
}

/// Joining a service's waitlist.
#[derive(Template)]
#[template(path = "waitlist.html")]
pub struct WaitlistPage {
    pub l: Lang,
    pub csrf: String,
    pub service_id: i64,
    pub service: String,
    pub fiscal_code: bool,
    pub nome: String,
    pub cognome: String,
    pub email: String,
    pub codice_fiscale: String,
    /// The one day asked for, as typed ("" for none).
    pub giorno: String,
    pub modes: Vec<Choice>,
    pub days: Vec<Choice>,
    pub errors: Vec<String>,
    pub sent: bool,
    pub consent: bool,
}

/// One's place on a waitlist, from the email's link.
#[derive(Template)]
#[template(path = "waitlist_place.html")]
pub struct WaitlistPlacePage {
    pub l: Lang,
    pub csrf: String,
    pub token: String,
    pub service: String,
    /// unverified, waiting, offered, booked, missed, left, expired.
    pub status: String,
    /// The last day the place counts.
    pub until: String,
}

/// Trying camera and microphone before a video appointment.
#[derive(Template)]
#[template(path = "check.html")]
pub struct DeviceCheckPage {
    pub l: Lang,
    /// The script's texts (`script_texts::check`).
    pub texts: String,
}

/// The privacy notice or the accessibility statement.
#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage {
    pub l: Lang,
    pub title: String,
    pub sections: Vec<crate::notices::Section>,
    /// The privacy notice's version, shown so that a person can tell which one they accepted.
    pub version: Option<String>,
}

#[derive(Template)]
#[template(path = "manage.html")]
pub struct ManagePage {
    pub l: Lang,
    /// While the appointment can change: the ways to add it to a calendar.
    pub calendar: Option<CalendarLinks>,
    pub token: String,
    pub a: AppointmentView,
    pub join_url: Option<String>,
    pub notice: Option<String>,
    pub can_change: bool,
}

/// "Add to calendar" on the booking's page.
pub struct CalendarLinks {
    pub ics: String,
    pub google: String,
    pub outlook: String,
}

#[derive(Template)]
#[template(path = "cancel.html")]
pub struct CancelPage {
    pub l: Lang,
    pub csrf: String,
    pub token: String,
    pub a: AppointmentView,
}

#[derive(Template)]
#[template(path = "move.html")]
pub struct MovePage {
    pub l: Lang,
    pub csrf: String,
    pub token: String,
    pub a: AppointmentView,
    pub days: Vec<DayView>,
    pub alert: Option<String>,
}

#[derive(Template)]
#[template(path = "receipt.html")]
pub struct ReceiptPage {
    pub l: Lang,
    pub a: AppointmentView,
    pub booked_on: String,
}

#[derive(Template)]
#[template(path = "room.html")]
pub struct RoomPage {
    pub l: Lang,
    pub token: String,
    pub code: String,
    pub operator: bool,
    /// The name proposed for the room (the citizen's, or the office's for the operator).
    pub name: String,
    pub a: AppointmentView,
    /// Before the room opens: the countdown as the page first shows it, before its socket
    /// answers (on a slow network that takes a while).
    pub countdown: Option<Countdown>,
    /// The script's texts (`script_texts::room`).
    pub texts: String,
}

pub struct Countdown {
    pub ms_left: i64,
    /// "2 ore, 5 minuti e 3 secondi".
    pub left: String,
    /// "09:55".
    pub opens_at: String,
}

pub struct MailRow {
    pub id: i64,
    pub when: String,
    pub to: String,
    pub subject: String,
    pub kind: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
pub struct MailboxPage {
    pub l: Lang,
    pub messages: Vec<MailRow>,
}

#[derive(Template)]
#[template(path = "mail.html")]
pub struct MailPage {
    pub l: Lang,
    pub m: MailRow,
    pub text: String,
    pub html: String,
    pub ics: Option<String>,
}
