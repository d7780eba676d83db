//! Typed console forms. Each form is a struct of what the browser sends, as text, so that a
//! refused form can be shown again exactly as it was typed; `check` turns it into what the store
//! takes, or into `Problems`: one message per field, in words a person understands (the field's
//! label, never its name), shown next to the field.

use booking::backoffice::{CalendarSettings, ExceptionRow, RuleRow};
use booking::{Mode, ModeSet, Office, Service};
use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::Deserialize;
use staff::Role;

use crate::i18n::{Lang, Text};

/// A field's label, in Italian (the page's language translates it).
#[derive(Clone, Copy)]
pub struct Label(pub &'static str);

impl Label {
    /// A problem with this field: `{campo}` in `it` is the label.
    pub fn says(self, it: &'static str) -> Text {
        Text::new(it).with_text("campo", Text::new(self.0))
    }
}

/// What a form refused, field by field (the field's HTML id and the message).
#[derive(Default)]
pub struct Problems(Vec<(&'static str, Text)>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn add(&mut self, field: &'static str, message: Text) {
        self.0.push((field, message));
    }

    /// The message for `field` in the page's language.
    pub fn of(&self, l: &Lang, field: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| l.text(t))
    }

    /// Every message in the page's language, for the summary above the form.
    pub fn all(&self, l: Lang) -> Vec<String> {
        self.0.iter().map(|(_, t)| l.text(t)).collect()
    }

    /// Whether `field` was refused (the template marks its input `aria-invalid`).
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| *f == field)
    }

    /// The value, trimmed; refused when longer than `max` characters or, for a one-line field,
    /// when it holds control characters.
    pub fn text(&mut self, field: &'static str, label: Label, v: &str, max: usize) -> String {
        let v = v.trim();
        if v.chars().count() > max {
            self.add(
                field,
                label
                    .says("{campo}: al massimo {max} caratteri.")
                    .with("max", max),
            );
        } else if !v.chars().all(booking::validate::allowed_in_text) {
            self.add(
                field,
                label.says("{campo}: contiene caratteri non ammessi."),
            );
        }
        v.to_string()
    }

    /// As `text`, and not empty.
    pub fn required(&mut self, field: &'static str, label: Label, v: &str, max: usize) -> String {
        let before = self.count();
        let v = self.text(field, label, v, max);
        if v.is_empty() && self.count() == before {
            self.add(field, label.says("{campo}: campo obbligatorio."));
        }
        v
    }

    /// A one-line required text with no line breaks (names, titles).
    pub fn line(&mut self, field: &'static str, label: Label, v: &str, max: usize) -> String {
        let before = self.count();
        let v = self.required(field, label, v, max);
        if self.count() == before && !v.chars().all(booking::validate::allowed_in_line) {
            self.add(
                field,
                label.says("{campo}: una sola riga, senza caratteri di controllo."),
            );
        }
        v
    }

    /// An email address (required).
    pub fn email(&mut self, field: &'static str, label: Label, v: &str) -> String {
        let before = self.count();
        let v = self.line(field, label, v, 254);
        if self.count() == before && !booking::validate::valid_email(&v) {
            self.add(field, label.says("{campo}: indirizzo non valido."));
        }
        v
    }

    /// A whole number from `min` to `max`.
    pub fn number(
        &mut self,
        field: &'static str,
        label: Label,
        v: &str,
        min: i64,
        max: i64,
    ) -> i64 {
        match v.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.add(
                    field,
                    label
                        .says("{campo}: un numero da {min} a {max}.")
                        .with("min", min)
                        .with("max", max),
                );
                min
            }
        }
    }

    /// A time of day (HH:MM), as minutes from midnight.
    pub fn time(&mut self, field: &'static str, label: Label, v: &str) -> i64 {
        match NaiveTime::parse_from_str(v.trim(), "%H:%M") {
            Ok(t) => i64::from(t.hour() * 60 + t.minute()),
            Err(_) => {
                self.add(field, label.says("{campo}: un orario come 09:30."));
                0
            }
        }
    }

    /// A day (YYYY-MM-DD), in a sane range of years; empty is none.
    pub fn day(&mut self, field: &'static str, label: Label, v: &str) -> Option<NaiveDate> {
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) if crate::extract::YEARS.contains(&chrono::Datelike::year(&d)) => Some(d),
            _ => {
                self.add(field, label.says("{campo}: una data come 2026-12-24."));
                None
            }
        }
    }

    /// As `day`, and required.
    pub fn required_day(&mut self, field: &'static str, label: Label, v: &str) -> NaiveDate {
        let before = self.count();
        let d = self.day(field, label, v);
        if d.is_none() && self.count() == before {
            self.add(field, label.says("{campo}: campo obbligatorio."));
        }
        d.unwrap_or_default()
    }

    /// The modes ticked (at least one).
    pub fn modes(&mut self, field: &'static str, v: &[String]) -> ModeSet {
        let modes: Vec<Mode> = v.iter().filter_map(|m| Mode::parse(m)).collect();
        if modes.is_empty() || modes.len() != v.len() {
            self.add(
                field,
                Text::new("Modalità: scegline almeno una tra quelle proposte."),
            );
        }
        ModeSet::of(&modes)
    }

    /// Ids chosen from a list (checkboxes or a select).
    pub fn ids(&mut self, field: &'static str, label: Label, v: &[String]) -> Vec<i64> {
        let ids: Vec<i64> = v
            .iter()
            .filter_map(|x| x.trim().parse::<i64>().ok().filter(|i| *i > 0))
            .collect();
        if ids.len() != v.len() {
            self.add(field, label.says("{campo}: scelta non valida."));
        }
        ids
    }

    /// The result: `t` when nothing was refused.
    pub fn finish<T>(self, t: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(t)
        } else {
            Err(self)
        }
    }
}

/// A checkbox: present when ticked.
fn ticked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty())
}

/// An office's details.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct OfficeForm {
    pub name: String,
    pub department: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub hours_text: String,
}

impl OfficeForm {
    pub fn of(o: &Office) -> Self {
        OfficeForm {
            name: o.name.clone(),
            department: o.department.clone(),
            email: o.email.clone(),
            phone: o.phone.clone(),
            address: o.address.clone(),
            hours_text: o.hours_text.clone(),
        }
    }

    /// The office as typed, checked (`id` and `archived` are not the form's).
    pub fn check(&self) -> Result<Office, Problems> {
        let mut p = Problems::default();
        let input = Office {
            id: 0,
            archived: false,
            name: p.line("name", Label("Nome"), &self.name, 200),
            department: p.text(
                "department",
                Label("Settore o servizio"),
                &self.department,
                300,
            ),
            email: p.email("office-email", Label("Email"), &self.email),
            phone: p.text("office-phone", Label("Telefono"), &self.phone, 50),
            address: p.text("address", Label("Indirizzo"), &self.address, 300),
            hours_text: p.text(
                "hours_text",
                Label("Orari di apertura"),
                &self.hours_text,
                1000,
            ),
        };
        p.finish(input)
    }
}

/// A service's details.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ServiceForm {
    pub calendar: String,
    pub title: String,
    pub description: String,
    pub max_minutes: String,
    pub instructions: String,
    pub documents: String,
    pub modalita: Vec<String>,
    pub published: Option<String>,
    /// Ask for the fiscal code: one active appointment per person instead of per email.
    pub codice_fiscale: Option<String>,
    /// Booking needs the SPID/CIE login.
    pub accesso: Option<String>,
}

impl ServiceForm {
    /// A new service: 30 minutes, every mode, published.
    pub fn blank() -> Self {
        ServiceForm {
            calendar: String::new(),
            title: String::new(),
            description: String::new(),
            max_minutes: "30".into(),
            instructions: String::new(),
            documents: String::new(),
            modalita: ModeSet::ALL
                .modes()
                .iter()
                .map(|m| m.code().to_string())
                .collect(),
            published: Some("1".into()),
            codice_fiscale: None,
            accesso: None,
        }
    }

    pub fn of(s: &Service) -> Self {
        ServiceForm {
            calendar: s.calendar_id.to_string(),
            title: s.title.clone(),
            description: s.description.clone(),
            max_minutes: s.max_minutes.to_string(),
            instructions: s.instructions.clone(),
            documents: s.documents.clone(),
            modalita: s
                .modes
                .modes()
                .iter()
                .map(|m| m.code().to_string())
                .collect(),
            published: s.published.then(|| "1".into()),
            codice_fiscale: s.fiscal_code_required.then(|| "1".into()),
            accesso: s.login_required.then(|| "1".into()),
        }
    }

    pub fn is_published(&self) -> bool {
        ticked(&self.published)
    }

    pub fn asks_fiscal_code(&self) -> bool {
        ticked(&self.codice_fiscale)
    }

    pub fn asks_login(&self) -> bool {
        ticked(&self.accesso)
    }

    pub fn offers(&self, mode: &str) -> bool {
        self.modalita.iter().any(|m| m == mode)
    }

    /// The service as typed, checked (`id` is not the form's).
    pub fn check(&self, office_id: i64) -> Result<Service, Problems> {
        let mut p = Problems::default();
        let calendar = p.ids(
            "calendar",
            Label("Calendario"),
            std::slice::from_ref(&self.calendar),
        );
        let input = Service {
            id: 0,
            office_id,
            calendar_id: calendar.first().copied().unwrap_or_default(),
            title: p.line("title", Label("Titolo"), &self.title, 200),
            description: p.text("description", Label("Descrizione"), &self.description, 2000),
            max_minutes: p.number(
                "max_minutes",
                Label("Durata massima (minuti)"),
                &self.max_minutes,
                5,
                480,
            ),
            instructions: p.text(
                "instructions",
                Label("Istruzioni"),
                &self.instructions,
                2000,
            ),
            documents: p.text(
                "documents",
                Label("Documenti da portare"),
                &self.documents,
                2000,
            ),
            modes: p.modes("svc-modes", &self.modalita),
            published: self.is_published(),
            fiscal_code_required: self.asks_fiscal_code(),
            login_required: self.asks_login(),
        };
        p.finish(input)
    }
}

/// A calendar's settings.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct CalendarForm {
    pub name: String,
    pub horizon_days: String,
    pub min_notice_days: String,
    pub moderated: Option<String>,
    /// Closed on the national holidays and the patron's day.
    pub festivita: Option<String>,
}

impl CalendarForm {
    /// A new calendar: bookable 60 days ahead, from the next day.
    pub fn blank() -> Self {
        CalendarForm {
            name: String::new(),
            horizon_days: "60".into(),
            min_notice_days: "1".into(),
            moderated: None,
            festivita: Some("1".into()),
        }
    }

    pub fn of(c: &CalendarSettings) -> Self {
        CalendarForm {
            name: c.name.clone(),
            horizon_days: c.horizon_days.to_string(),
            min_notice_days: c.min_notice_days.to_string(),
            moderated: c.moderated.then(|| "1".into()),
            festivita: c.closed_on_holidays.then(|| "1".into()),
        }
    }

    pub fn keeps_holidays(&self) -> bool {
        ticked(&self.festivita)
    }

    pub fn is_moderated(&self) -> bool {
        ticked(&self.moderated)
    }

    pub fn check(&self, id: i64, office_id: i64) -> Result<CalendarSettings, Problems> {
        let mut p = Problems::default();
        let c = CalendarSettings {
            id,
            office_id,
            name: p.line("cal-name", Label("Nome del calendario"), &self.name, 200),
            horizon_days: p.number(
                "cal-horizon",
                Label("Orizzonte (giorni)"),
                &self.horizon_days,
                1,
                730,
            ),
            min_notice_days: p.number(
                "cal-notice",
                Label("Preavviso (giorni)"),
                &self.min_notice_days,
                0,
                60,
            ),
            moderated: self.is_moderated(),
            closed_on_holidays: self.keeps_holidays(),
        };
        p.finish(c)
    }
}

/// A staff account: the new-account form and the account page.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AccountForm {
    pub name: String,
    pub email: String,
    pub role: String,
    pub uffici: Vec<String>,
    pub disabled: Option<String>,
    /// "password": issue a new provisional password instead.
    pub azione: String,
}

/// An account form that passed its checks.
pub struct CheckedAccount {
    pub name: String,
    pub email: String,
    pub role: Role,
    pub offices: Vec<i64>,
    pub disabled: bool,
}

impl AccountForm {
    pub fn is_disabled(&self) -> bool {
        ticked(&self.disabled)
    }

    pub fn has_office(&self, id: i64) -> bool {
        self.uffici.iter().any(|o| o.trim() == id.to_string())
    }

    /// `with_email`: the new-account form asks for the email; the account page does not.
    pub fn check(&self, with_email: bool) -> Result<CheckedAccount, Problems> {
        let mut p = Problems::default();
        let name = p.line("acc-name", Label("Nome e cognome"), &self.name, 200);
        let email = if with_email {
            p.email("acc-email", Label("Email"), &self.email)
        } else {
            String::new()
        };
        let role = Role::parse(&self.role).unwrap_or_else(|| {
            p.add("acc-role", Text::new("Ruolo: scelta non valida."));
            Role::Operator
        });
        let offices = p.ids("acc-offices", Label("Uffici"), &self.uffici);
        p.finish(CheckedAccount {
            name,
            email,
            role,
            offices,
            disabled: self.is_disabled(),
        })
    }
}

/// A weekly opening rule of a calendar.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct RuleForm {
    /// Days of the week, 0 = Monday.
    pub giorni: Vec<String>,
    pub dalle: String,
    pub alle: String,
    pub durata: String,
    pub pausa: String,
    pub capienza: String,
    pub modalita: Vec<String>,
    pub valido_dal: String,
    pub valido_al: String,
}

impl RuleForm {
    /// A new rule: Monday to Friday, 9 to 12, 30-minute slots, one seat, every mode.
    pub fn blank() -> Self {
        RuleForm {
            giorni: (0..5).map(|d| d.to_string()).collect(),
            dalle: "09:00".into(),
            alle: "12:00".into(),
            durata: "30".into(),
            pausa: "0".into(),
            capienza: "1".into(),
            modalita: ModeSet::ALL
                .modes()
                .iter()
                .map(|m| m.code().to_string())
                .collect(),
            valido_dal: String::new(),
            valido_al: String::new(),
        }
    }

    pub fn has_day(&self, d: usize) -> bool {
        self.giorni.iter().any(|g| g.trim() == d.to_string())
    }

    pub fn offers(&self, mode: &str) -> bool {
        self.modalita.iter().any(|m| m == mode)
    }

    pub fn check(&self) -> Result<RuleRow, Problems> {
        let mut p = Problems::default();
        let mut weekdays = 0u8;
        for d in &self.giorni {
            match d.trim().parse::<u8>() {
                Ok(d) if d < 7 => weekdays |= 1 << d,
                _ => p.add("rule-days", Text::new("Giorni: scelta non valida.")),
            }
        }
        if self.giorni.is_empty() {
            p.add("rule-days", Text::new("Giorni: scegline almeno uno."));
        }
        let start_minute = p.time("dalle", Label("Dalle"), &self.dalle);
        let end_minute = p.time("alle", Label("Alle"), &self.alle);
        if !p.has("dalle") && !p.has("alle") && end_minute <= start_minute {
            p.add(
                "alle",
                Text::new("Alle: l'orario di fine deve seguire quello di inizio."),
            );
        }
        let r = RuleRow {
            id: 0,
            weekdays,
            start_minute,
            end_minute,
            slot_minutes: p.number("durata", Label("Slot (min)"), &self.durata, 5, 480),
            buffer_minutes: p.number("pausa", Label("Pausa (min)"), &self.pausa, 0, 240),
            capacity: p.number("capienza", Label("Capienza"), &self.capienza, 1, 100),
            modes: p.modes("rule-modes", &self.modalita),
            valid_from: p.day("valido_dal", Label("Valido dal"), &self.valido_dal),
            valid_to: p.day("valido_al", Label("Valido fino al"), &self.valido_al),
        };
        if let (Some(a), Some(b)) = (r.valid_from, r.valid_to) {
            if b < a {
                p.add(
                    "valido_al",
                    Text::new("Valido fino al: la data deve seguire quella di inizio validità."),
                );
            }
        }
        p.finish(r)
    }
}

/// A closure or special hours on one day.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ExceptionForm {
    pub giorno: String,
    pub etichetta: String,
    /// "chiuso" (closed) or "orario" (special hours).
    pub tipo: String,
    pub dalle: String,
    pub alle: String,
}

impl ExceptionForm {
    pub fn blank() -> Self {
        ExceptionForm {
            giorno: String::new(),
            etichetta: String::new(),
            tipo: "chiuso".into(),
            dalle: "09:00".into(),
            alle: "12:00".into(),
        }
    }

    pub fn special_hours(&self) -> bool {
        self.tipo == "orario"
    }

    pub fn check(&self) -> Result<ExceptionRow, Problems> {
        let mut p = Problems::default();
        let day = p.required_day("exc-day", Label("Giorno"), &self.giorno);
        let label = p.text("exc-label", Label("Descrizione"), &self.etichetta, 200);
        let hours = if self.special_hours() {
            let a = p.time("exc-from", Label("Dalle"), &self.dalle);
            let b = p.time("exc-to", Label("Alle"), &self.alle);
            if !p.has("exc-from") && !p.has("exc-to") && b <= a {
                p.add(
                    "exc-to",
                    Text::new("Alle: l'orario di fine deve seguire quello di inizio."),
                );
            }
            Some((a, b))
        } else {
            None
        };
        p.finish(ExceptionRow {
            id: 0,
            day,
            label,
            hours,
        })
    }
}

/// An office's extraordinary closure: from a day to a day (empty: the same), the whole office
/// or one calendar, and the reason the citizens read.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ClosureForm {
    pub dal: String,
    pub al: String,
    /// A calendar's id, or empty for every calendar of the office.
    pub calendario: String,
    pub motivo: String,
}

impl ClosureForm {
    pub fn check(
        &self,
        office_id: i64,
        calendars: &[i64],
        today: NaiveDate,
    ) -> Result<booking::store::closures::Closure, Problems> {
        let mut p = Problems::default();
        let first = p.required_day("clo-from", Label("Dal"), &self.dal);
        let last = p.day("clo-to", Label("Al"), &self.al).unwrap_or(first);
        let calendar_id = match self.calendario.trim() {
            "" => None,
            c => match c.parse::<i64>() {
                Ok(id) if calendars.contains(&id) => Some(id),
                _ => {
                    p.add(
                        "clo-calendar",
                        Text::new("Calendario: scegli uno di quelli dell'ufficio."),
                    );
                    None
                }
            },
        };
        let reason = p.line(
            "clo-reason",
            Label("Motivo (lo leggono i cittadini)"),
            &self.motivo,
            200,
        );
        if !p.has("clo-from") && !p.has("clo-to") {
            if first < today {
                p.add(
                    "clo-from",
                    Text::new("Dal: una chiusura comincia oggi o dopo."),
                );
            } else if last < first
                || (last - first).num_days() >= booking::store::closures::MAX_CLOSURE_DAYS
            {
                p.add(
                    "clo-to",
                    Text::new("Al: l'ultimo giorno segue il primo, al massimo di un anno."),
                );
            }
        }
        p.finish(booking::store::closures::Closure {
            id: 0,
            office_id,
            calendar_id,
            first_day: first,
            last_day: last,
            reason,
        })
    }
}

/// The item a "remove" button names.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ItemForm {
    pub id: String,
}

/// The operators who serve a calendar.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OperatorsForm {
    pub operatori: Vec<String>,
}

/// The three forms of an office's page, as typed, and what each refused.
pub struct OfficeForms {
    pub office: OfficeForm,
    pub office_problems: Problems,
    pub calendar: CalendarForm,
    pub calendar_problems: Problems,
    pub service: ServiceForm,
    pub service_problems: Problems,
    pub closure: ClosureForm,
    pub closure_problems: Problems,
}

/// The forms of a calendar's page, as typed, and what each refused.
pub struct CalendarForms {
    pub settings: CalendarForm,
    pub settings_problems: Problems,
    pub rule: RuleForm,
    pub rule_problems: Problems,
    pub exception: ExceptionForm,
    pub exception_problems: Problems,
}

impl Default for OfficeForms {
    /// The new calendar and new service forms with their proposed values.
    fn default() -> Self {
        OfficeForms {
            office: OfficeForm::default(),
            office_problems: Problems::default(),
            calendar: CalendarForm::blank(),
            calendar_problems: Problems::default(),
            service: ServiceForm::blank(),
            service_problems: Problems::default(),
            closure: ClosureForm::default(),
            closure_problems: Problems::default(),
        }
    }
}

/// One of an office page's forms that was refused, as typed, with what it refused.
pub enum OfficeRefusal {
    Office(OfficeForm, Problems),
    Calendar(CalendarForm, Problems),
    Service(ServiceForm, Problems),
    Closure(ClosureForm, Problems),
}

impl OfficeForms {
    /// The office's page with `refused` in place of its blank form and the office's details
    /// (`office`) in theirs.
    pub fn refused(office: OfficeForm, refused: OfficeRefusal) -> Self {
        let mut forms = OfficeForms {
            office,
            ..OfficeForms::default()
        };
        match refused {
            OfficeRefusal::Office(f, p) => (forms.office, forms.office_problems) = (f, p),
            OfficeRefusal::Calendar(f, p) => (forms.calendar, forms.calendar_problems) = (f, p),
            OfficeRefusal::Service(f, p) => (forms.service, forms.service_problems) = (f, p),
            OfficeRefusal::Closure(f, p) => (forms.closure, forms.closure_problems) = (f, p),
        }
        forms
    }
}

/// One of a calendar page's forms that was refused, as typed, with what it refused.
pub enum CalendarRefusal {
    Settings(CalendarForm, Problems),
    Rule(RuleForm, Problems),
    Exception(ExceptionForm, Problems),
}

impl CalendarForms {
    /// The calendar's page with `refused` in place of its blank form and the calendar's
    /// settings (`settings`) in theirs.
    pub fn refused(settings: CalendarForm, refused: CalendarRefusal) -> Self {
        let mut forms = CalendarForms {
            settings,
            ..CalendarForms::default()
        };
        match refused {
            CalendarRefusal::Settings(f, p) => (forms.settings, forms.settings_problems) = (f, p),
            CalendarRefusal::Rule(f, p) => (forms.rule, forms.rule_problems) = (f, p),
            CalendarRefusal::Exception(f, p) => {
                (forms.exception, forms.exception_problems) = (f, p)
            }
        }
        forms
    }
}

impl Default for CalendarForms {
    /// The new rule and new closure forms with their proposed values.
    fn default() -> Self {
        CalendarForms {
            settings: CalendarForm::blank(),
            settings_problems: Problems::default(),
            rule: RuleForm::blank(),
            rule_problems: Problems::default(),
            exception: ExceptionForm::blank(),
            exception_problems: Problems::default(),
        }
    }
}
