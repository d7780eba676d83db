//! Italian first, English second. Pages carry a `Lang` and write both texts side by side
//! (`l.t("Uffici", "Offices")`), so a translation can never go missing or drift away from its
//! original.

use booking::email::{MONTHS_IT, WEEKDAYS_IT as DAYS_IT};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    En,
}

const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Lang {
    pub fn from_code(s: &str) -> Option<Lang> {
        match s {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }
    pub fn is_en(&self) -> bool {
        *self == Lang::En
    }
    /// The text in this language.
    pub fn t<'a>(&self, it: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::It => it,
            Lang::En => en,
        }
    }
    /// "lunedì 30 novembre 2026" / "Monday 30 November 2026".
    pub fn day(&self, d: NaiveDate) -> String {
        let i = d.weekday().num_days_from_monday() as usize;
        let m = d.month0() as usize;
        match self {
            Lang::It => format!("{} {} {} {}", DAYS_IT[i], d.day(), MONTHS_IT[m], d.year()),
            Lang::En => format!("{} {} {} {}", DAYS_EN[i], d.day(), MONTHS_EN[m], d.year()),
        }
    }
    pub fn time(&self, t: DateTime<Utc>, tz: Tz) -> String {
        let l = t.with_timezone(&tz);
        format!("{}:{:02}", l.hour(), l.minute())
    }
    /// "lunedì 30 novembre 2026, ore 9:00".
    pub fn when(&self, t: DateTime<Utc>, tz: Tz) -> String {
        let day = self.day(t.with_timezone(&tz).date_naive());
        match self {
            Lang::It => format!("{day}, ore {}", self.time(t, tz)),
            Lang::En => format!("{day}, {}", self.time(t, tz)),
        }
    }
    pub fn mode(&self, m: booking::Mode) -> &'static str {
        match self {
            Lang::It => m.label_it(),
            Lang::En => m.label_en(),
        }
    }
    pub fn status(&self, s: booking::Status) -> &'static str {
        match self {
            Lang::It => s.label_it(),
            Lang::En => s.label_en(),
        }
    }
}
