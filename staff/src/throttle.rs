//! When a login is refused for a while. Four wrong passwords in a row cost nothing more than
//! the wait of each answer; the fifth locks the account for a minute, and each further failure
//! doubles the lock, up to an hour. A right password after the lock ends clears the count, and
//! so does a quiet day.
//! An attacker trying passwords for one account gets a few dozen guesses a day.

use chrono::{DateTime, Duration, Utc};

/// Failures allowed before the first lock.
pub const FREE_FAILURES: i64 = 4;
pub const FIRST_LOCK: Duration = Duration::minutes(1);
pub const LONGEST_LOCK: Duration = Duration::hours(1);
/// A day without wrong passwords starts the count again.
pub const QUIET: Duration = Duration::days(1);

/// Until when the account is locked after its `failures`-th failure in a row at `now`.
pub fn lock_after(failures: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if failures <= FREE_FAILURES {
        return None;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(10) as u32;
    let lock = FIRST_LOCK * 2i32.pow(doublings);
    Some(now + lock.min(LONGEST_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_from_the_fifth_failure_and_stop_at_an_hour() {
        let now = Utc::now();
        assert_eq!(lock_after(4, now), None);
        assert_eq!(lock_after(5, now), Some(now + Duration::minutes(1)));
        assert_eq!(lock_after(6, now), Some(now + Duration::minutes(2)));
        assert_eq!(lock_after(8, now), Some(now + Duration::minutes(8)));
        assert_eq!(lock_after(50, now), Some(now + Duration::hours(1)));
    }
}
