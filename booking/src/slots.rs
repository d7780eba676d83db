//! The slot engine: which appointments a calendar offers, as a pure function of its rules, its
//! exceptions, the appointments already taken and `now`.
//!
//! Opening hours are written in the office's local time (Europe/Rome) and slots are stored as
//! UTC instants, so every conversion goes through the calendar's time zone. On the day clocks go
//! forward a local time in the missing hour has no instant and yields no slot; on the day they go
//! back a local time in the repeated hour takes its first instant, so no slot appears twice.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use crate::holidays::Holidays;
use crate::model::{Mode, ModeSet};

/// Days of the week as a bit set (Monday = bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct WeekdaySet(pub u8);

impl WeekdaySet {
    pub fn of(days: &[Weekday]) -> Self {
        WeekdaySet(
            days.iter()
                .fold(0, |acc, d| acc | 1 << d.num_days_from_monday()),
        )
    }
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
    pub fn days(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .map(|i| Weekday::try_from(i).expect("0..7 is a weekday"))
    }
}

/// A window of opening, cut into slots of equal length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub slot_minutes: u32,
    /// Minutes left free after each slot before the next one starts.
    pub buffer_minutes: u32,
    /// How many appointments one slot takes (e.g. two operators at the counter).
    pub capacity: u32,
    pub modes: ModeSet,
}

impl Window {
    /// The local start times of the slots in this window (a slot must end by `to`).
    pub fn starts(&self) -> impl Iterator<Item = NaiveTime> + '_ {
        let step = i64::from(self.slot_minutes.max(1) + self.buffer_minutes);
        let len = i64::from(self.slot_minutes.max(1));
        let from = minutes_of(self.from);
        let to = minutes_of(self.to);
        (0..)
            .map(move |i| from + i * step)
            .take_while(move |m| m + len <= to)
            .map(|m| NaiveTime::from_num_seconds_from_midnight_opt((m * 60) as u32, 0).unwrap())
    }
}

fn minutes_of(t: NaiveTime) -> i64 {
    i64::from(chrono::Timelike::num_seconds_from_midnight(&t) / 60)
}

/// A weekly opening rule: on these weekdays, this window, optionally only between two dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpeningRule {
    pub weekdays: WeekdaySet,
    pub window: Window,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

impl OpeningRule {
    fn applies(&self, day: NaiveDate) -> bool {
        self.weekdays.contains(day.weekday())
            && self.valid_from.is_none_or(|f| day >= f)
            && self.valid_to.is_none_or(|t| day <= t)
    }
}

/// A dated exception to the weekly rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Exception {
    /// Closed all day (a holiday, a strike, the office's patron saint).
    Closed { day: NaiveDate, label: String },
    /// Open with these windows instead of the weekly rules.
    SpecialHours {
        day: NaiveDate,
        windows: Vec<Window>,
        label: String,
    },
}

impl Exception {
    pub fn day(&self) -> NaiveDate {
        match self {
            Exception::Closed { day, .. } | Exception::SpecialHours { day, .. } => *day,
        }
    }
}

/// Everything the engine needs to know about one calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarRules {
    #[serde(skip)]
    pub tz: Tz,
    pub rules: Vec<OpeningRule>,
    pub exceptions: Vec<Exception>,
    /// The recurring closures the calendar keeps (national holidays, the patron's day); `None`
    /// for a calendar open on holidays. A dated exception on the same day wins.
    pub holidays: Option<Holidays>,
    /// How many days ahead a citizen may book.
    pub horizon_days: u32,
    /// Minimum notice in calendar days: 1 means "from tomorrow", never the same day.
    pub min_notice_days: u32,
}

/// One bookable slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub local_day: NaiveDate,
    pub local_time: NaiveTime,
    pub capacity: u32,
    pub taken: u32,
    pub modes: ModeSet,
}

impl Slot {
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.taken)
    }
    pub fn offers(&self, mode: Mode) -> bool {
        self.modes.contains(mode)
    }
}

/// Which days citizens may book, counted in the calendar's local days.
pub fn bookable_days(rules: &CalendarRules, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let today = now.with_timezone(&rules.tz).date_naive();
    let first = today + Duration::days(i64::from(rules.min_notice_days));
    let last = today + Duration::days(i64::from(rules.horizon_days));
    (first, last)
}

/// Every slot the rules define on one local day, whether taken or not.
pub fn slots_on(rules: &CalendarRules, day: NaiveDate) -> Vec<Slot> {
    let windows: Vec<&Window> = match rules.exceptions.iter().find(|e| e.day() == day) {
        Some(Exception::Closed { .. }) => Vec::new(),
        Some(Exception::SpecialHours { windows, .. }) => windows.iter().collect(),
        None if rules.holidays.as_ref().is_some_and(|h| h.on(day).is_some()) => Vec::new(),
        None => rules
            .rules
            .iter()
            .filter(|r| r.applies(day))
            .map(|r| &r.window)
            .collect(),
    };
    let mut out: Vec<Slot> = Vec::new();
    for w in windows {
        for t in w.starts() {
            // A local time in the hour skipped by DST has no instant: no slot.
            let Some(start) = rules.tz.from_local_datetime(&day.and_time(t)).earliest() else {
                continue;
            };
            let start = start.with_timezone(&Utc);
            let end = start + Duration::minutes(i64::from(w.slot_minutes));
            match out.iter_mut().find(|s| s.start == start) {
                // Two rules that open the same minute add up their capacity and modes.
                Some(s) => {
                    s.capacity += w.capacity;
                    s.modes = s.modes.union(w.modes);
                    s.end = s.end.max(end);
                }
                None => out.push(Slot {
                    start,
                    end,
                    local_day: day,
                    local_time: t,
                    capacity: w.capacity,
                    taken: 0,
                    modes: w.modes,
                }),
            }
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

/// Why a day the weekly rules open has no slot at all: a closure's label (a holiday's name, or
/// the office's reason for a closed day, which may be empty). `None` on an open day, and on a
/// day the weekly rules keep closed anyway (a Sunday's holiday is not news).
pub fn closure_on(rules: &CalendarRules, day: NaiveDate) -> Option<String> {
    if !rules.rules.iter().any(|r| r.applies(day)) {
        return None;
    }
    match rules.exceptions.iter().find(|e| e.day() == day) {
        Some(Exception::Closed { label, .. }) => Some(label.clone()),
        Some(Exception::SpecialHours { .. }) => None,
        None => rules.holidays.as_ref().and_then(|h| h.on(day)),
    }
}

/// The capacity the rules give one instant (0 if the rules define no slot there). The database
/// enforces that no more than this many active appointments share the instant.
pub fn capacity_at(rules: &CalendarRules, start: DateTime<Utc>) -> Option<Slot> {
    let day = start.with_timezone(&rules.tz).date_naive();
    slots_on(rules, day).into_iter().find(|s| s.start == start)
}

/// Why an existing appointment no longer fits its calendar's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfit {
    /// No slot starts at that time any more (closed day, changed hours or slot length).
    NoSlot,
    /// The slot no longer offers the appointment's mode.
    ModeNotOffered,
    /// The slot's capacity went below the seat this appointment holds.
    OverCapacity,
}

/// Whether an appointment at `start` in `mode`, holding seat number `seat` (from 0), still fits.
pub fn misfit(
    rules: &CalendarRules,
    start: DateTime<Utc>,
    mode: Mode,
    seat: i64,
) -> Option<Misfit> {
    match capacity_at(rules, start) {
        None => Some(Misfit::NoSlot),
        Some(s) if !s.offers(mode) => Some(Misfit::ModeNotOffered),
        Some(s) if seat >= i64::from(s.capacity) => Some(Misfit::OverCapacity),
        Some(_) => None,
    }
}

/// The free slots between `from` and `to` (local days, inclusive), clipped to what citizens may
/// book at `now`. `taken` counts the active appointments at each slot start.
pub fn free_slots(
    rules: &CalendarRules,
    taken: &HashMap<DateTime<Utc>, u32>,
    now: DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Slot> {
    let (first, last) = bookable_days(rules, now);
    let from = from.max(first);
    let to = to.min(last);
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        for mut slot in slots_on(rules, day) {
            slot.taken = taken.get(&slot.start).copied().unwrap_or(0);
            if slot.free() > 0 && slot.start > now {
                out.push(slot);
            }
        }
        day += Duration::days(1);
    }
    out
}

/// Whether a citizen may book this instant at `now`: the slot exists, it is inside the booking
/// window, and it is in the future.
pub fn bookable(rules: &CalendarRules, start: DateTime<Utc>, now: DateTime<Utc>) -> Option<Slot> {
    let (first, last) = bookable_days(rules, now);
    let slot = capacity_at(rules, start)?;
    (slot.local_day >= first && slot.local_day <= last && slot.start > now).then_some(slot)
}

/// A weekly summary of opening hours in words, as shown on the office page.
pub fn is_open_at(rules: &CalendarRules, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&rules.tz);
    slots_on(rules, local.date_naive())
        .iter()
        .any(|s| s.start <= now && now < s.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Rome;
    use proptest::prelude::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn window(from: NaiveTime, to: NaiveTime, len: u32, cap: u32) -> Window {
        Window {
            from,
            to,
            slot_minutes: len,
            buffer_minutes: 0,
            capacity: cap,
            modes: ModeSet::ALL,
        }
    }
    fn weekdays_9_12() -> CalendarRules {
        CalendarRules {
            tz: Rome,
            rules: vec![OpeningRule {
                weekdays: WeekdaySet::of(&[
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ]),
                window: window(t(9, 0), t(12, 0), 30, 1),
                valid_from: None,
                valid_to: None,
            }],
            exceptions: vec![],
            holidays: None,
            horizon_days: 60,
            min_notice_days: 1,
        }
    }

    #[test]
    fn a_window_is_cut_into_slots_that_end_inside_it() {
        let w = Window {
            buffer_minutes: 10,
            ..window(t(9, 0), t(11, 0), 30, 1)
        };
        let starts: Vec<_> = w.starts().collect();
        assert_eq!(starts, vec![t(9, 0), t(9, 40), t(10, 20)]);
    }

    #[test]
    fn misfits_name_what_a_rule_change_broke() {
        let mut r = weekdays_9_12();
        let nine = utc("2026-11-30T08:00:00Z");
        assert_eq!(misfit(&r, nine, Mode::Video, 0), None);
        assert_eq!(misfit(&r, nine, Mode::Video, 1), Some(Misfit::OverCapacity));
        r.rules[0].window.modes = ModeSet::of(&[Mode::InPerson]);
        assert_eq!(
            misfit(&r, nine, Mode::Video, 0),
            Some(Misfit::ModeNotOffered)
        );
        r.rules[0].window.from = t(10, 0);
        assert_eq!(misfit(&r, nine, Mode::InPerson, 0), Some(Misfit::NoSlot));
        r.exceptions.push(Exception::Closed {
            day: d(2026, 11, 30),
            label: "Chiuso".into(),
        });
        let ten = utc("2026-11-30T09:00:00Z");
        assert_eq!(misfit(&r, ten, Mode::InPerson, 0), Some(Misfit::NoSlot));
    }

    #[test]
    fn weekend_has_no_slots_and_weekday_has_six() {
        let r = weekdays_9_12();
        assert!(slots_on(&r, d(2026, 11, 28)).is_empty()); // Saturday
        let monday = slots_on(&r, d(2026, 11, 30));
        assert_eq!(monday.len(), 6);
        // 9:00 in Rome in winter is 8:00 UTC.
        assert_eq!(monday[0].start, utc("2026-11-30T08:00:00Z"));
    }

    #[test]
    fn no_same_day_booking_even_one_minute_after_midnight() {
        let r = weekdays_9_12();
        // Tuesday 00:01 in Rome; the day's 9:00 slot is in the future but the same day.
        let now = utc("2026-11-30T23:01:00Z");
        let slots = free_slots(&r, &HashMap::new(), now, d(2026, 12, 1), d(2026, 12, 2));
        assert!(slots.iter().all(|s| s.local_day == d(2026, 12, 2)));
        assert_eq!(bookable(&r, utc("2026-12-01T08:00:00Z"), now), None);
        assert!(bookable(&r, utc("2026-12-02T08:00:00Z"), now).is_some());
    }

    #[test]
    fn the_horizon_bounds_the_last_day() {
        let mut r = weekdays_9_12();
        r.horizon_days = 3;
        let now = utc("2026-11-30T10:00:00Z"); // Monday
        let slots = free_slots(&r, &HashMap::new(), now, d(2026, 11, 1), d(2027, 1, 1));
        let days: Vec<_> = slots.iter().map(|s| s.local_day).collect();
        assert_eq!(days.first(), Some(&d(2026, 12, 1)));
        assert_eq!(days.last(), Some(&d(2026, 12, 3)));
    }

    #[test]
    fn holidays_close_a_calendar_that_keeps_them_unless_an_exception_opens_the_day() {
        use crate::holidays::{Holidays, Patron};
        let mut r = weekdays_9_12();
        // Easter Monday 2031 (14 April), 8 December 2032 (a Wednesday), a patron on 4 October.
        let (easter_monday, immacolata, patron) = (d(2031, 4, 14), d(2032, 12, 8), d(2033, 10, 4));
        for day in [easter_monday, immacolata, patron] {
            assert!(
                !slots_on(&r, day).is_empty(),
                "{day}: a calendar open on holidays"
            );
        }
        r.holidays = Some(Holidays {
            patron: Some(Patron::parse("04/10 San Francesco").unwrap()),
        });
        for day in [easter_monday, immacolata, patron] {
            assert!(slots_on(&r, day).is_empty(), "{day}");
            assert_eq!(
                misfit(
                    &r,
                    r.tz.from_local_datetime(&day.and_time(t(9, 0)))
                        .unwrap()
                        .with_timezone(&Utc),
                    Mode::Video,
                    0
                ),
                Some(Misfit::NoSlot)
            );
        }
        assert_eq!(
            slots_on(&r, d(2031, 4, 15)).len(),
            6,
            "the Tuesday after is open"
        );
        assert_eq!(
            closure_on(&r, easter_monday).as_deref(),
            Some("Lunedì dell'Angelo")
        );
        assert_eq!(closure_on(&r, patron).as_deref(), Some("San Francesco"));
        assert_eq!(closure_on(&r, d(2031, 4, 15)), None);
        // Christmas 2033 is a Sunday: closed anyway, nothing to say.
        assert_eq!(closure_on(&r, d(2033, 12, 25)), None);
        r.exceptions.push(Exception::SpecialHours {
            day: immacolata,
            windows: vec![window(t(10, 0), t(11, 0), 30, 1)],
            label: "Apertura straordinaria".into(),
        });
        assert_eq!(slots_on(&r, immacolata).len(), 2);
        assert_eq!(closure_on(&r, immacolata), None);
    }

    #[test]
    fn exceptions_close_a_day_or_replace_its_hours() {
        let mut r = weekdays_9_12();
        r.exceptions = vec![
            Exception::Closed {
                day: d(2026, 12, 8),
                label: "Immacolata".into(),
            },
            Exception::SpecialHours {
                day: d(2026, 12, 12), // a Saturday, normally closed
                windows: vec![window(t(10, 0), t(11, 0), 20, 2)],
                label: "Open day".into(),
            },
        ];
        assert!(slots_on(&r, d(2026, 12, 8)).is_empty());
        let sat = slots_on(&r, d(2026, 12, 12));
        assert_eq!(sat.len(), 3);
        assert_eq!(sat[0].capacity, 2);
    }

    #[test]
    fn taken_slots_are_not_free_until_capacity_is_reached() {
        let mut r = weekdays_9_12();
        r.rules[0].window.capacity = 2;
        let now = utc("2026-11-29T10:00:00Z");
        let nine = utc("2026-11-30T08:00:00Z");
        let mut taken = HashMap::from([(nine, 1)]);
        let slots = free_slots(&r, &taken, now, d(2026, 11, 30), d(2026, 11, 30));
        assert_eq!(slots[0].start, nine);
        assert_eq!(slots[0].free(), 1);
        taken.insert(nine, 2);
        let slots = free_slots(&r, &taken, now, d(2026, 11, 30), d(2026, 11, 30));
        assert_ne!(slots[0].start, nine);
    }

    #[test]
    fn spring_forward_skips_the_missing_hour() {
        // 29 March 2026: clocks go from 02:00 to 03:00 in Rome.
        let mut r = weekdays_9_12();
        r.rules[0].weekdays = WeekdaySet(0x7f);
        r.rules[0].window = window(t(1, 0), t(5, 0), 60, 1);
        let slots = slots_on(&r, d(2026, 3, 29));
        let locals: Vec<_> = slots.iter().map(|s| s.local_time).collect();
        assert_eq!(locals, vec![t(1, 0), t(3, 0), t(4, 0)]);
        // 01:00 is still winter time (UTC+1), 03:00 already summer time (UTC+2).
        assert_eq!(slots[0].start, utc("2026-03-29T00:00:00Z"));
        assert_eq!(slots[1].start, utc("2026-03-29T01:00:00Z"));
        // Office hours on the day after are in summer time.
        r.rules[0].window = window(t(9, 0), t(10, 0), 60, 1);
        assert_eq!(
            slots_on(&r, d(2026, 3, 30))[0].start,
            utc("2026-03-30T07:00:00Z")
        );
    }

    #[test]
    fn fall_back_does_not_offer_the_repeated_hour_twice() {
        // 25 October 2026: clocks go from 03:00 back to 02:00 in Rome.
        let mut r = weekdays_9_12();
        r.rules[0].weekdays = WeekdaySet(0x7f);
        r.rules[0].window = window(t(1, 0), t(4, 0), 30, 1);
        let slots = slots_on(&r, d(2026, 10, 25));
        assert_eq!(slots.len(), 6);
        let two = slots.iter().find(|s| s.local_time == t(2, 0)).unwrap();
        assert_eq!(two.start, utc("2026-10-25T00:00:00Z")); // the first 02:00 (UTC+2)
        let three = slots.iter().find(|s| s.local_time == t(3, 0)).unwrap();
        assert_eq!(three.start, utc("2026-10-25T02:00:00Z")); // already UTC+1
        r.rules[0].window = window(t(9, 0), t(10, 0), 60, 1);
        assert_eq!(
            slots_on(&r, d(2026, 10, 26))[0].start,
            utc("2026-10-26T08:00:00Z")
        );
    }

    #[test]
    fn open_now_follows_local_hours() {
        let r = weekdays_9_12();
        assert!(is_open_at(&r, utc("2026-11-30T08:30:00Z")));
        assert!(!is_open_at(&r, utc("2026-11-30T11:00:00Z")));
        assert!(!is_open_at(&r, utc("2026-11-28T09:00:00Z")));
    }

    fn arb_rules() -> impl Strategy<Value = CalendarRules> {
        let win = (
            0u32..20,
            1u32..8,
            1u32..5,
            prop::sample::select(vec![10u32, 15, 20, 30, 45, 60]),
            0u32..3,
            0u32..16,
        )
            .prop_map(|(h, hours, cap, len, buf, modes)| {
                let from = t(h, 0);
                let to = t((h + hours).min(23), 59);
                Window {
                    from,
                    to,
                    slot_minutes: len,
                    buffer_minutes: buf * 5,
                    capacity: cap,
                    modes: ModeSet(modes as u8 % 7 + 1),
                }
            });
        let rule = (1u8..128, win).prop_map(|(w, window)| OpeningRule {
            weekdays: WeekdaySet(w),
            window,
            valid_from: None,
            valid_to: None,
        });
        (prop::collection::vec(rule, 1..4), 1u32..90, 0u32..4).prop_map(
            |(rules, horizon, notice)| CalendarRules {
                tz: Rome,
                rules,
                exceptions: vec![],
                holidays: None,
                horizon_days: horizon,
                min_notice_days: notice,
            },
        )
    }

    proptest! {
        #[test]
        fn free_slots_respect_every_rule(
            rules in arb_rules(),
            now_secs in 1_767_225_600i64..1_830_297_600, // 2026-01-01 .. 2028-01-01
            taken_every in 1usize..5,
        ) {
            let now = DateTime::from_timestamp(now_secs, 0).unwrap();
            let (first, last) = bookable_days(&rules, now);
            let all = free_slots(&rules, &HashMap::new(), now, first, last);
            let taken: HashMap<_, _> = all.iter().step_by(taken_every).map(|s| (s.start, s.capacity)).collect();
            let free = free_slots(&rules, &taken, now, first, last);
            let today = now.with_timezone(&Rome).date_naive();
            let mut prev = None;
            for s in &free {
                // Never today or earlier when notice is at least one day, never beyond the horizon.
                prop_assert!(s.local_day >= today + Duration::days(rules.min_notice_days.into()));
                prop_assert!(s.local_day <= today + Duration::days(rules.horizon_days.into()));
                prop_assert!(s.start > now);
                // The UTC instant shows the stated local day and time.
                let local = s.start.with_timezone(&Rome);
                prop_assert_eq!(local.date_naive(), s.local_day);
                prop_assert_eq!(local.time(), s.local_time);
                // Full slots are gone, and no instant appears twice.
                prop_assert!(!taken.contains_key(&s.start));
                prop_assert!(s.free() > 0);
                if let Some(p) = prev { prop_assert!(s.start > p); }
                prev = Some(s.start);
                prop_assert_eq!(bookable(&rules, s.start, now).map(|b| b.capacity), Some(s.capacity));
            }
        }
    }
}
