//! Languages: Italian first, English second. Pages and emails carry a `Lang` and write both
//! texts side by side (`l.t("Uffici", "Offices")`), so a translation can never go missing or
//! drift away from its original. An appointment keeps the language its person booked in, and
//! every email about it is written in that language.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use crate::model::{Mode, ModeSet, Status};

/// Italian weekday names, Monday first.
pub const DAYS_IT: [&str; 7] = [
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// A time left as the room page counts it down: "1 giorno, 22 ore, 33 minuti e 30 secondi"
    /// (the largest unit first, leading zeros left out; as `room.js` spells it).
    pub fn time_left(&self, left: chrono::Duration) -> String {
        let s = (left.num_milliseconds().max(0) + 999) / 1000;
        let units: [(i64, [&str; 2]); 4] = match self {
            Lang::It => [
                (s / 86400, ["giorno", "giorni"]),
                (s % 86400 / 3600, ["ora", "ore"]),
                (s % 3600 / 60, ["minuto", "minuti"]),
                (s % 60, ["secondo", "secondi"]),
            ],
            Lang::En => [
                (s / 86400, ["day", "days"]),
                (s % 86400 / 3600, ["hour", "hours"]),
                (s % 3600 / 60, ["minute", "minutes"]),
                (s % 60, ["second", "seconds"]),
            ],
        };
        let first = units.iter().position(|u| u.0 != 0).unwrap_or(3);
        let words: Vec<String> = units[first..]
            .iter()
            .map(|(n, w)| format!("{n} {}", w[usize::from(*n != 1)]))
            .collect();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => {
                format!("{}{}{last}", rest.join(", "), self.t(" e ", " and "))
            }
            _ => words.concat(),
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
    pub fn mode(&self, m: Mode) -> &'static str {
        match self {
            Lang::It => m.label_it(),
            Lang::En => m.label_en(),
        }
    }
    /// "In presenza, Videochiamata": a set of modes, in their usual order.
    pub fn modes(&self, m: ModeSet) -> String {
        m.modes()
            .into_iter()
            .map(|m| self.mode(m))
            .collect::<Vec<_>>()
            .join(", ")
    }
    pub fn status(&self, s: Status) -> &'static str {
        match self {
            Lang::It => s.label_it(),
            Lang::En => s.label_en(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_spelled_as_the_room_page_spells_it() {
        let d = |s: i64| chrono::Duration::milliseconds(s);
        assert_eq!(
            Lang::It.time_left(d(((24 + 22) * 3600 + 33 * 60 + 30) * 1000)),
            "1 giorno, 22 ore, 33 minuti e 30 secondi"
        );
        assert_eq!(Lang::It.time_left(d(60_000)), "1 minuto e 0 secondi");
        assert_eq!(
            Lang::En.time_left(d(3_600_000 + 1)),
            "1 hour, 0 minutes and 1 second"
        );
        assert_eq!(Lang::It.time_left(d(1_500)), "2 secondi");
        assert_eq!(Lang::En.time_left(d(-5)), "0 seconds");
    }
}
