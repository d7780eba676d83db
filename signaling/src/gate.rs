//! The time gate: whether a participant may enter a room now, as a pure function of the
//! appointment's schedule and status, the participant's role and `now`. The room opens a few
//! minutes before the start (earlier for the operator, who prepares) and closes a while after
//! the end.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    Operator,
}

impl Role {
    pub fn other(self) -> Role {
        match self {
            Role::Citizen => Role::Operator,
            Role::Operator => Role::Citizen,
        }
    }
}

/// Whether the appointment still takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    /// Booked but not confirmed yet (email not verified, or waiting for the office).
    NotConfirmed,
    Cancelled,
    /// Marked done or no-show by the office.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub standing: Standing,
}

/// How early each role may enter, and how long after the end the room stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub citizen_early: Duration,
    pub operator_early: Duration,
    pub grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            citizen_early: Duration::minutes(5),
            operator_early: Duration::minutes(15),
            grace: Duration::minutes(30),
        }
    }
}

impl Policy {
    pub fn opens_at(&self, s: &Schedule, role: Role) -> DateTime<Utc> {
        s.start
            - match role {
                Role::Citizen => self.citizen_early,
                Role::Operator => self.operator_early,
            }
    }
    pub fn closes_at(&self, s: &Schedule) -> DateTime<Utc> {
        s.end + self.grace
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Come in.
    Open,
    /// Not yet: the room opens at `opens_at`, `left` from now.
    TooEarly {
        opens_at: DateTime<Utc>,
        left: Duration,
    },
    Ended,
    Cancelled,
    NotConfirmed,
}

pub fn decide(s: &Schedule, role: Role, now: DateTime<Utc>, policy: &Policy) -> Gate {
    match s.standing {
        Standing::Cancelled => return Gate::Cancelled,
        Standing::Closed => return Gate::Ended,
        Standing::NotConfirmed => return Gate::NotConfirmed,
        Standing::Active => {}
    }
    let opens_at = policy.opens_at(s, role);
    if now < opens_at {
        return Gate::TooEarly {
            opens_at,
            left: opens_at - now,
        };
    }
    if now >= policy.closes_at(s) {
        return Gate::Ended;
    }
    Gate::Open
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Rome;

    fn rome(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Rome.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }
    fn at(start: DateTime<Utc>) -> Schedule {
        Schedule {
            start,
            end: start + Duration::minutes(20),
            standing: Standing::Active,
        }
    }
    const S: fn(i64) -> Duration = Duration::seconds;

    #[test]
    fn the_citizen_enters_five_minutes_early_to_the_second() {
        let s = at(rome(2026, 11, 24, 10, 0));
        let p = Policy::default();
        let opens = rome(2026, 11, 24, 9, 55);
        assert_eq!(
            decide(&s, Role::Citizen, opens - S(1), &p),
            Gate::TooEarly {
                opens_at: opens,
                left: S(1)
            }
        );
        assert_eq!(decide(&s, Role::Citizen, opens, &p), Gate::Open);
        assert_eq!(decide(&s, Role::Citizen, opens + S(1), &p), Gate::Open);
    }

    #[test]
    fn the_operator_enters_fifteen_minutes_early() {
        let s = at(rome(2026, 11, 24, 10, 0));
        let p = Policy::default();
        let opens = rome(2026, 11, 24, 9, 45);
        assert!(matches!(
            decide(&s, Role::Operator, opens - S(1), &p),
            Gate::TooEarly { .. }
        ));
        assert_eq!(decide(&s, Role::Operator, opens, &p), Gate::Open);
        assert!(matches!(
            decide(&s, Role::Citizen, opens, &p),
            Gate::TooEarly { .. }
        ));
    }

    #[test]
    fn the_room_closes_after_the_grace_period() {
        let s = at(rome(2026, 11, 24, 10, 0));
        let p = Policy::default();
        let closes = rome(2026, 11, 24, 10, 50);
        assert_eq!(decide(&s, Role::Citizen, closes - S(1), &p), Gate::Open);
        assert_eq!(decide(&s, Role::Citizen, closes, &p), Gate::Ended);
        assert_eq!(decide(&s, Role::Operator, closes + S(1), &p), Gate::Ended);
    }

    #[test]
    fn a_cancelled_appointment_never_opens() {
        let mut s = at(rome(2026, 11, 24, 10, 0));
        s.standing = Standing::Cancelled;
        let p = Policy::default();
        for now in [rome(2026, 11, 20, 0, 0), s.start, s.end + Duration::days(1)] {
            assert_eq!(decide(&s, Role::Citizen, now, &p), Gate::Cancelled);
        }
    }

    #[test]
    fn time_left_counts_real_seconds_across_a_dst_change() {
        // From Saturday 10:00 to Monday 10:00 in Rome across the end of summer time
        // (25 October 2026) there are 49 hours, not 48.
        let s = at(rome(2026, 10, 26, 10, 5));
        let p = Policy::default();
        let now = rome(2026, 10, 24, 10, 0);
        assert_eq!(
            decide(&s, Role::Citizen, now, &p),
            Gate::TooEarly {
                opens_at: rome(2026, 10, 26, 10, 0),
                left: Duration::hours(49)
            }
        );
        // And across its start (29 March 2026) 47.
        let s = at(rome(2026, 3, 30, 10, 5));
        let now = rome(2026, 3, 28, 10, 0);
        assert_eq!(
            decide(&s, Role::Citizen, now, &p),
            Gate::TooEarly {
                opens_at: rome(2026, 3, 30, 10, 0),
                left: Duration::hours(47)
            }
        );
    }
}
