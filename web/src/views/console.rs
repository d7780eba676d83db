//! The console's pages. As for the citizen's pages, handlers fill these with ready strings.

use askama::Template;

use crate::console::form::{
    AccountForm, CalendarForms, OfficeForm, OfficeForms, Problems, ServiceForm,
};
use crate::i18n::Lang;
/// A radio button, checkbox or option: the same on both sides.
pub use crate::views::Choice;

/// The console's navigation bar: who is logged in, and which section is open.
pub struct Nav {
    pub name: String,
    pub role: &'static str,
    pub configures: bool,
    /// Administrators handle people's requests about their data.
    pub admin: bool,
    pub section: &'static str,
}

/// What every page of a logged-in console has: its language, the form token and the
/// navigation bar. The pages' templates name them directly (`l`, `csrf`, `nav`): each page
/// dereferences to its frame.
pub struct Frame {
    pub l: Lang,
    pub csrf: String,
    pub nav: Nav,
}

macro_rules! framed {
    ($($page:ty),* $(,)?) => {$(
        impl std::ops::Deref for $page {
            type Target = Frame;
            fn deref(&self) -> &Frame {
                &self.frame
            }
        }
    )*};
}

framed!(
    PasswordPage,
    AgendaPage,
    AppointmentPage,
    BookOnBehalfPage,
    StatsPage,
    AuditPage,
    OfficesConfigPage,
    OfficeConfigPage,
    ClosurePage,
    ArchiveOfficePage,
    ServiceConfigPage,
    WaitlistConsolePage,
    CalendarConfigPage,
    AccountsPage,
    AccountPage,
    PrivacyPage,
    SearchPage,
);

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub l: Lang,
    pub csrf: String,
    pub after: String,
    /// `after` for a query string.
    pub after_encoded: String,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/password.html")]
pub struct PasswordPage {
    pub frame: Frame,
    pub forced: bool,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct AgendaRow {
    pub id: String,
    pub code: String,
    pub time: String,
    pub citizen: String,
    pub contact: String,
    pub service: String,
    pub office: String,
    pub operator: String,
    pub mode: String,
    pub reason: String,
    pub status: String,
    pub status_code: &'static str,
    /// A confirmed video appointment not yet over: it has a "join" button.
    pub video: bool,
    pub note: String,
}

pub struct DayRows {
    pub label: String,
    pub rows: Vec<AgendaRow>,
}

#[derive(Template)]
#[template(path = "console/agenda.html")]
pub struct AgendaPage {
    pub frame: Frame,
    pub title: String,
    pub day: String,
    pub week: bool,
    pub previous: String,
    pub next: String,
    pub is_today: bool,
    pub offices: Vec<Choice>,
    pub office: String,
    pub operators: Vec<Choice>,
    pub operator: String,
    pub days: Vec<DayRows>,
    pub next_video: Option<AgendaRow>,
    pub message: Option<String>,
}

pub struct SlotChoice {
    pub value: String,
    pub label: String,
}

pub struct SlotGroup {
    pub label: String,
    pub slots: Vec<SlotChoice>,
}

pub struct HistoryLine {
    pub when: String,
    pub who: String,
    pub what: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/appointment.html")]
pub struct AppointmentPage {
    pub frame: Frame,
    pub row: AgendaRow,
    pub when: String,
    pub day: String,
    pub contact: booking::Contact,
    pub booked_by_office: bool,
    /// When the person consented to the processing of their data, and to which notice.
    pub consent: String,
    pub awaiting: bool,
    pub can_cancel: bool,
    pub can_move: bool,
    pub can_close: bool,
    pub moves: Vec<SlotGroup>,
    pub modes: Vec<Choice>,
    pub history: Vec<HistoryLine>,
    pub emails: Vec<HistoryLine>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/book.html")]
pub struct BookOnBehalfPage {
    pub frame: Frame,
    pub services: Vec<Choice>,
    pub service: String,
    pub service_title: String,
    pub day: String,
    pub today: String,
    pub day_label: String,
    pub slots: Vec<Choice>,
    pub modes: Vec<Choice>,
    /// The caller's details as typed.
    pub contact: booking::Contact,
    pub errors: Vec<String>,
}

pub struct StatLine {
    pub office: String,
    pub service: String,
    pub booked: u64,
    pub confirmed: u64,
    pub cancelled_citizen: u64,
    pub cancelled_office: u64,
    /// Expired (never verified) and refused.
    pub expired: u64,
    pub done: u64,
    pub no_show: u64,
    pub in_person: u64,
    pub phone: u64,
    pub video: u64,
    pub lead: String,
}

#[derive(Template)]
#[template(path = "console/stats.html")]
pub struct StatsPage {
    pub frame: Frame,
    pub from: String,
    pub to: String,
    pub offices: Vec<Choice>,
    pub services: Vec<Choice>,
    /// Server-rendered SVG (escaped where it holds names).
    pub chart: String,
    pub lines: Vec<StatLine>,
    pub total: StatLine,
    pub csv_link: String,
}

pub struct AuditLine {
    pub when: String,
    pub who: String,
    pub what: String,
    pub target: String,
    pub office: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    pub frame: Frame,
    pub lines: Vec<AuditLine>,
}

#[derive(Template)]
#[template(path = "console/offices.html")]
pub struct OfficesConfigPage {
    pub frame: Frame,
    pub offices: Vec<Choice>,
    /// Archived offices (shown to administrators, who may restore them).
    pub archived: Vec<Choice>,
    pub can_create: bool,
    /// The new-office form, as typed.
    pub form: OfficeForm,
    pub problems: Problems,
}

#[derive(Template)]
#[template(path = "console/office.html")]
pub struct OfficeConfigPage {
    pub frame: Frame,
    pub id: String,
    /// The office's name as saved.
    pub name: String,
    pub archived: bool,
    /// Whether this person may archive or restore it (administrators).
    pub can_archive: bool,
    /// checked: published.
    pub services: Vec<Choice>,
    /// checked: moderated.
    pub calendars: Vec<Choice>,
    /// The new service's calendar choice.
    pub service_calendars: Vec<Choice>,
    pub service_modes: Vec<Choice>,
    pub operators: Vec<String>,
    /// The closures still to come or under way.
    pub closures: Vec<ClosureLine>,
    /// The closure form's calendar choice (value "" for the whole office).
    pub closure_calendars: Vec<Choice>,
    pub forms: OfficeForms,
}

/// A closure as the console lists it.
pub struct ClosureLine {
    pub id: String,
    /// "dal 10 dicembre 2026 al 12 dicembre 2026" or "giovedì 10 dicembre 2026".
    pub period: String,
    /// "tutto l'ufficio" or the calendar's name.
    pub scope: String,
    pub reason: String,
}

/// An appointment a closure hits, and the slot proposed for it.
pub struct HitLine {
    pub id: String,
    pub when: String,
    pub citizen: String,
    pub mode: String,
    /// Empty: no free slot to propose.
    pub proposal: String,
}

/// One closure: the appointments it hits, with the two actions and the deletion.
#[derive(Template)]
#[template(path = "console/closure.html")]
pub struct ClosurePage {
    pub frame: Frame,
    pub office_id: String,
    pub office: String,
    pub closure: ClosureLine,
    pub hits: Vec<HitLine>,
    /// What the last action did ("spostati 3, non spostati 1"), if one just ran.
    pub outcome: Option<String>,
}

/// The confirmation asked before archiving an office.
#[derive(Template)]
#[template(path = "console/office_archive.html")]
pub struct ArchiveOfficePage {
    pub frame: Frame,
    pub id: String,
    pub name: String,
    /// Active appointments that have not ended: while there are any, it cannot be archived.
    pub to_come: Vec<ToCome>,
}

/// An appointment still to come, as the archive confirmation lists it.
pub struct ToCome {
    pub id: String,
    pub code: String,
    pub when: String,
    pub service: String,
}

#[derive(Template)]
#[template(path = "console/service.html")]
pub struct ServiceConfigPage {
    pub frame: Frame,
    pub id: String,
    pub office_id: String,
    pub office: String,
    /// The service's title as saved.
    pub title: String,
    pub form: ServiceForm,
    pub problems: Problems,
    pub modes: Vec<Choice>,
    pub calendars: Vec<Choice>,
    /// Who waits for a place, in the order seats go to them.
    pub waiting: Vec<WaitingLine>,
}

/// The console's "Lista d'attesa": each service of the offices this person sees that has
/// someone waiting.
#[derive(Template)]
#[template(path = "console/waitlist.html")]
pub struct WaitlistConsolePage {
    pub frame: Frame,
    pub services: Vec<WaitlistGroup>,
}

pub struct WaitlistGroup {
    /// The heading's id ("wl-7" for service 7).
    pub id: String,
    /// "Office — Service".
    pub title: String,
    pub people: Vec<WaitingLine>,
}

#[derive(Clone)]
pub struct WaitingLine {
    pub name: String,
    pub email: String,
    pub modes: String,
    pub days: String,
    /// "in attesa dal …", "da confermare", "posto offerto".
    pub state: String,
}

pub struct RuleLine {
    pub id: String,
    pub days: String,
    pub hours: String,
    pub slot: i64,
    pub buffer: i64,
    pub capacity: i64,
    pub modes: String,
    pub validity: String,
}

pub struct MisfitLine {
    pub id: String,
    pub when: String,
    pub citizen: String,
    pub mode: String,
    pub why: String,
}

#[derive(Template)]
#[template(path = "console/calendar.html")]
pub struct CalendarConfigPage {
    pub frame: Frame,
    pub id: String,
    pub office_id: String,
    pub office: String,
    /// The calendar's name as saved.
    pub name: String,
    pub forms: CalendarForms,
    pub rules: Vec<RuleLine>,
    pub exceptions: Vec<RuleLine>,
    /// The national holidays and the patron's day within the horizon, computed (day, name);
    /// `None` when the calendar is open on holidays.
    pub holidays: Option<Vec<(String, String)>>,
    pub weekdays: Vec<Choice>,
    pub modes: Vec<Choice>,
    pub operators: Vec<Choice>,
    pub misfits: Vec<MisfitLine>,
}

pub struct AccountLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub offices: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
pub struct AccountsPage {
    pub frame: Frame,
    pub accounts: Vec<AccountLine>,
    pub roles: Vec<Choice>,
    pub offices: Vec<Choice>,
    /// The email and provisional password of the account just made, shown once.
    pub created: Option<(String, String)>,
    /// The new-account form, as typed.
    pub form: AccountForm,
    pub problems: Problems,
}

#[derive(Template)]
#[template(path = "console/account.html")]
pub struct AccountPage {
    pub frame: Frame,
    pub id: String,
    /// The account's name as saved.
    pub title: String,
    pub email: String,
    pub form: AccountForm,
    pub problems: Problems,
    pub locked: bool,
    pub roles: Vec<Choice>,
    pub offices: Vec<Choice>,
    pub provisional: Option<String>,
    pub is_self: bool,
}

/// One appointment found for a person's data request.
pub struct PersonLine {
    pub code: String,
    pub when: String,
    pub service: String,
    pub name: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "console/privacy.html")]
pub struct PrivacyPage {
    pub frame: Frame,
    /// The search, as typed.
    pub email: String,
    pub fiscal_code: String,
    /// Whether something was searched for.
    pub asked: bool,
    pub lines: Vec<PersonLine>,
    /// The checked search, for the export links and the erase form.
    pub query: Option<String>,
    pub error: Option<String>,
    /// How many appointments were just erased.
    pub erased: Option<u64>,
}

/// The console's search and what it found.
#[derive(Template)]
#[template(path = "console/search.html")]
pub struct SearchPage {
    pub frame: Frame,
    pub query: String,
    pub searched: bool,
    pub rows: Vec<AgendaRow>,
}
