//! Session and expiry dates: weekdays only, times in America/New_York, event times in UTC µs.

use chrono::{Datelike, Days, NaiveDate, TimeZone, Weekday};
use chrono_tz::America::New_York;

/// Parses `YYYY-MM-DD`, keeping to years whose OCC two-digit year is unambiguous enough and
/// whose calendar arithmetic cannot overflow.
pub(super) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date; write YYYY-MM-DD, e.g. 2024-01-02"))?;
    if !(1970..=2199).contains(&d.year()) {
        return Err(format!("{text:?}: choose a year between 1970 and 2199"));
    }
    Ok(d)
}

/// Monday = 0 … Sunday = 6.
fn weekday_index(d: NaiveDate) -> u64 {
    u64::from(d.weekday().num_days_from_monday())
}

/// `d` itself on a weekday, else the following Monday.
pub(super) fn weekday_on_or_after(d: NaiveDate) -> Option<NaiveDate> {
    match d.weekday() {
        Weekday::Sat => d.checked_add_days(Days::new(2)),
        Weekday::Sun => d.checked_add_days(Days::new(1)),
        _ => Some(d),
    }
}

/// The weekday `n` weekdays after weekday `d` (in O(1), so long sessions cost nothing).
pub(super) fn add_weekdays(d: NaiveDate, n: u64) -> Option<NaiveDate> {
    let wd = weekday_index(d).min(4);
    let total = wd.checked_add(n)?;
    let days = (total / 5)
        .checked_mul(7)?
        .checked_add(total % 5)?
        .checked_sub(wd)?;
    d.checked_add_days(Days::new(days))
}

/// `date` at `hour:minute` New York time, as UTC microseconds.
pub(super) fn ny_micros(date: NaiveDate, hour: u32, minute: u32) -> Option<i64> {
    let local = date.and_hms_opt(hour, minute, 0)?;
    // 09:30 and 16:00 never fall in a DST gap or overlap; `earliest` is only a formality.
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.timestamp_micros())
}

/// The Friday on or after `d`.
fn friday_on_or_after(d: NaiveDate) -> Option<NaiveDate> {
    let ahead = (4 + 7 - weekday_index(d)) % 7;
    d.checked_add_days(Days::new(ahead))
}

/// The third Friday of `d`'s month.
fn third_friday(year: i32, month: u32) -> Option<NaiveDate> {
    friday_on_or_after(NaiveDate::from_ymd_opt(year, month, 1)?)?.checked_add_days(Days::new(14))
}

/// The expiries listed on `session`: the nearest `(count + 1) / 2` Fridays (a Friday session
/// lists its own same-day expiry), then third-Friday monthlies after the last weekly.
pub(super) fn expiries(session: NaiveDate, count: usize) -> Option<Vec<NaiveDate>> {
    let weeklies = count.div_ceil(2);
    let mut out = Vec::with_capacity(count);
    let mut friday = friday_on_or_after(session)?;
    for _ in 0..weeklies {
        out.push(friday);
        friday = friday.checked_add_days(Days::new(7))?;
    }
    let (mut year, mut month) = (session.year(), session.month());
    while out.len() < count {
        let monthly = third_friday(year, month)?;
        if out.last().is_none_or(|last| monthly > *last) {
            out.push(monthly);
        }
        (year, month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
    }
    Some(out)
}

/// `YYMMDD`, as in OCC symbols.
pub(super) fn yymmdd(d: NaiveDate) -> String {
    format!(
        "{:02}{:02}{:02}",
        d.year().rem_euclid(100),
        d.month(),
        d.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn weekdays_skip_weekends() {
        assert_eq!(
            add_weekdays(date("2024-01-05"), 1),
            Some(date("2024-01-08"))
        );
        assert_eq!(
            add_weekdays(date("2024-01-02"), 0),
            Some(date("2024-01-02"))
        );
        assert_eq!(
            add_weekdays(date("2024-01-02"), 5),
            Some(date("2024-01-09"))
        );
        assert_eq!(
            add_weekdays(date("2024-01-04"), 7),
            Some(date("2024-01-15"))
        );
        assert_eq!(
            weekday_on_or_after(date("2024-01-06")),
            Some(date("2024-01-08"))
        );
        assert_eq!(
            weekday_on_or_after(date("2024-01-07")),
            Some(date("2024-01-08"))
        );
    }

    #[test]
    fn expiries_are_weeklies_then_monthlies() {
        let e = expiries(date("2024-01-02"), 5).unwrap();
        let want = [
            "2024-01-05",
            "2024-01-12",
            "2024-01-19",
            "2024-02-16",
            "2024-03-15",
        ];
        assert_eq!(e, want.map(date).to_vec());
        // A Friday session lists its own expiry.
        assert_eq!(
            expiries(date("2024-01-05"), 1).unwrap(),
            vec![date("2024-01-05")]
        );
        let e = expiries(date("2024-12-30"), 4).unwrap();
        assert_eq!(
            e,
            ["2025-01-03", "2025-01-10", "2025-01-17", "2025-02-21"]
                .map(date)
                .to_vec()
        );
    }

    #[test]
    fn open_in_new_york_across_dst() {
        // EST (UTC-5) in January, EDT (UTC-4) in July.
        assert_eq!(
            ny_micros(date("2024-01-02"), 9, 30),
            Some(1_704_205_800_000_000)
        );
        assert_eq!(
            ny_micros(date("2024-07-01"), 9, 30),
            Some(1_719_840_600_000_000)
        );
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("1900-01-01").is_err());
        assert_eq!(yymmdd(date("2024-01-19")), "240119");
    }
}
