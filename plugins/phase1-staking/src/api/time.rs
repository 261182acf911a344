//! Unix seconds as RFC 3339 UTC text (Go's `time.Unix(ts, 0).UTC().Format(time.RFC3339)`),
//! with the civil-date conversion written out (no clock, no time crate: the plugin is
//! deterministic and has no time zone).

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// `2024-05-28T08:19:08Z` for `1716884348`.
pub fn rfc3339(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY));
    let s = ts.rem_euclid(DAY);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// 00:00:00 UTC of the day containing `ts`.
pub fn start_of_day(ts: i64) -> i64 {
    ts.div_euclid(DAY) * DAY
}

/// (year, month, day) of the proleptic Gregorian calendar for days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, valid for every `i64` day count the timestamps produce).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1716884348), "2024-05-28T08:19:08Z");
        assert_eq!(rfc3339(951782400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(951868799), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(4107542400), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(1231006505), "2009-01-03T18:15:05Z");
        assert_eq!(start_of_day(1716884348), 1716854400);
    }

    #[test]
    fn every_day_for_ten_thousand_days_is_consecutive() {
        let mut prev = civil_from_days(-1);
        for day in 0..10_000 {
            let cur = civil_from_days(day);
            let next_expected = if cur.2 == 1 {
                assert!(prev.2 >= 28, "month ended early: {prev:?} -> {cur:?}");
                true
            } else {
                assert_eq!(cur.2, prev.2 + 1);
                false
            };
            if next_expected && cur.1 == 1 {
                assert_eq!((cur.0, prev.1), (prev.0 + 1, 12));
            }
            prev = cur;
        }
    }
}
