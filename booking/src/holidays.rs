//! The days a town's offices are closed every year, computed for any year: Italy's national
//! holidays (Easter Monday from the Gregorian computus) and the town's patron saint's day. Pure:
//! no clock, no database. A calendar that keeps them (`calendar.closed_on_holidays`, on unless
//! the office turns it off) has no slot on those days; a dated exception of the calendar on the
//! same day (special hours, say) wins over them.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, Meeus/Jones/Butcher).
pub fn easter_sunday(y: i32) -> Option<NaiveDate> {
    let (a, b, c) = (y % 19, y / 100, y % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(y, month as u32, day as u32)
}

/// Italy's fixed national holidays (law 260/1949 and its amendments), month and day.
const FIXED: [(u32, u32, &str); 10] = [
    (1, 1, "Capodanno"),
    (1, 6, "Epifania"),
    (4, 25, "Festa della Liberazione"),
    (5, 1, "Festa del Lavoro"),
    (6, 2, "Festa della Repubblica"),
    (8, 15, "Ferragosto"),
    (11, 1, "Ognissanti"),
    (12, 8, "Immacolata Concezione"),
    (12, 25, "Natale"),
    (12, 26, "Santo Stefano"),
];

/// Italy's national holidays of one year on which offices close, in date order: the fixed ones
/// and Easter Monday (Easter Sunday is always a Sunday).
pub fn national(y: i32) -> Vec<(NaiveDate, &'static str)> {
    let mut out: Vec<(NaiveDate, &'static str)> = FIXED
        .iter()
        .filter_map(|&(m, d, label)| NaiveDate::from_ymd_opt(y, m, d).map(|d| (d, label)))
        .collect();
    out.extend(
        easter_sunday(y)
            .and_then(|e| e.succ_opt())
            .map(|d| (d, "Lunedì dell'Angelo")),
    );
    out.sort();
    out
}

/// The national holiday on `day`, if any (asked for every day the slot engine looks at: no
/// list is made).
pub fn national_on(day: NaiveDate) -> Option<&'static str> {
    FIXED
        .iter()
        .find(|&&(m, d, _)| day.month() == m && day.day() == d)
        .map(|&(_, _, label)| label)
        .or_else(|| {
            // Easter Monday falls between 23 March and 26 April.
            (matches!(day.month(), 3 | 4) && day.weekday() == chrono::Weekday::Mon)
                .then(|| easter_sunday(day.year()).and_then(|e| e.succ_opt()))
                .flatten()
                .filter(|m| *m == day)
                .map(|_| "Lunedì dell'Angelo")
        })
}

/// The town's patron saint's day: the same day every year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patron {
    pub month: u32,
    pub day: u32,
    /// The saint's name, shown as the closure's reason ("San Francesco").
    pub name: String,
}

impl Patron {
    /// Reads the `patron_saint` setting: `DD/MM` then the saint's name, e.g.
    /// `"04/10 San Francesco"`. 29 February is refused (a patron's day that exists only every
    /// fourth year is surely a typing slip), as are a missing name and control characters.
    pub fn parse(s: &str) -> Result<Patron, String> {
        let s = s.trim();
        let (date, name) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let name = name.trim();
        let bad = || {
            format!("patron_saint: \"{s}\" is not DD/MM followed by the saint's name, e.g. \"04/10 San Francesco\"")
        };
        let (d, m) = date.split_once('/').ok_or_else(bad)?;
        let (day, month): (u32, u32) =
            (d.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        // 2025 is not a leap year: 29/02 is refused with the other days that do not exist.
        if NaiveDate::from_ymd_opt(2025, month, day).is_none()
            || name.is_empty()
            || name.chars().count() > 80
            || name.chars().any(char::is_control)
        {
            return Err(bad());
        }
        Ok(Patron {
            month,
            day,
            name: name.to_string(),
        })
    }

    pub fn date_in(&self, y: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, self.month, self.day)
    }
}

/// The recurring closures of a town: the national holidays and, if set, the patron's day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Holidays {
    pub patron: Option<Patron>,
}

impl Holidays {
    /// Why offices are closed on `day` (the holiday's name), if they are.
    pub fn on(&self, day: NaiveDate) -> Option<String> {
        national_on(day).map(str::to_string).or_else(|| {
            self.patron
                .as_ref()
                .filter(|p| p.date_in(day.year()) == Some(day))
                .map(|p| p.name.clone())
        })
    }

    /// Every closure of one year, in date order (for the console's calendar page).
    pub fn of_year(&self, y: i32) -> Vec<(NaiveDate, String)> {
        let mut out: Vec<(NaiveDate, String)> = national(y)
            .into_iter()
            .map(|(d, l)| (d, l.to_string()))
            .collect();
        if let Some(p) = &self.patron {
            if let Some(d) = p.date_in(y).filter(|d| national_on(*d).is_none()) {
                out.push((d, p.name.clone()));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn easter_monday_matches_the_calendar() {
        // Easter Monday as the Italian calendar has it, over two centuries and both extremes
        // (22 March is the earliest Easter Sunday, 25 April the latest).
        for (y, m, dd) in [
            (1818, 3, 23),
            (1943, 4, 26),
            (2025, 4, 21),
            (2026, 4, 6),
            (2027, 3, 29),
            (2028, 4, 17),
            (2029, 4, 2),
            (2030, 4, 22),
            (2038, 4, 26),
            (2100, 3, 29),
        ] {
            assert_eq!(
                national_on(d(y, m, dd)),
                Some("Lunedì dell'Angelo"),
                "{y}-{m}-{dd}"
            );
        }
        assert_eq!(national_on(d(2026, 4, 7)), None);
        assert_eq!(
            national_on(d(2026, 4, 5)),
            None,
            "Easter Sunday is a Sunday"
        );
    }

    #[test]
    fn eleven_national_holidays_every_year_far_ahead() {
        for y in [2026, 2031, 2047, 2099, 2400] {
            let days = national(y);
            assert_eq!(days.len(), 11, "{y}");
            assert!(days.windows(2).all(|w| w[0].0 < w[1].0), "{y}: in order");
        }
        assert_eq!(national_on(d(2026, 12, 8)), Some("Immacolata Concezione"));
        assert_eq!(national_on(d(2031, 6, 2)), Some("Festa della Repubblica"));
        assert_eq!(national_on(d(2031, 6, 3)), None);
    }

    #[test]
    fn a_patron_closes_one_day_a_year_and_never_hides_a_national_holiday() {
        let h = Holidays {
            patron: Some(Patron::parse("04/10 San Francesco").unwrap()),
        };
        assert_eq!(h.on(d(2027, 10, 4)).as_deref(), Some("San Francesco"));
        assert_eq!(h.on(d(2040, 10, 4)).as_deref(), Some("San Francesco"));
        assert_eq!(h.on(d(2027, 10, 5)), None);
        assert_eq!(h.of_year(2027).len(), 12);
        // A patron on a national holiday (San Giovanni in Turin is not, Sant'Ambrogio is not,
        // but a town's patron may be on 8 December): the day is listed once.
        let h = Holidays {
            patron: Some(Patron::parse("08/12 Santa Maria").unwrap()),
        };
        assert_eq!(h.of_year(2027).len(), 11);
        assert_eq!(Holidays::default().on(d(2027, 10, 4)), None);
    }

    #[test]
    fn a_malformed_patron_setting_is_refused() {
        for bad in [
            "",
            "04/10",
            "4 ottobre San Francesco",
            "31/04 San Nessuno",
            "29/02 San Bisesto",
            "00/10 San Zero",
            "04/13 San Tredici",
            "04/10 San\u{7}Francesco",
            "-1/10 San Meno",
        ] {
            assert!(Patron::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Patron::parse("  7/12   Sant'Ambrogio ").unwrap(),
            Patron {
                month: 12,
                day: 7,
                name: "Sant'Ambrogio".into()
            }
        );
    }
}
