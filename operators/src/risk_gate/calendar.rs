//! The blackout calendar `[risk-gate] calendar-file` names: a CSV file, one blackout per line.
//!
//! ```text
//! # start,end,scope,kind,note
//! start,end,scope,kind,note
//! 2020-03-03,,all,fomc,Unscheduled FOMC: 50 bp emergency cut
//! 2021-01-27,,underlying:AAPL,earnings,Apple Q1 FY21 results after the close
//! 2021-01-27 14:00,2021-01-27 16:00,sector:Financials,other,FOMC statement and press conference
//! ```
//!
//! - `start`, `end`: a date `YYYY-MM-DD` (whole New York days, `end` inclusive; an empty `end`
//!   is the start day) or a New York time `YYYY-MM-DD HH:MM` (`end` exclusive and required).
//!   Every time is America/New_York, daylight saving included.
//! - `scope`: `all`, `underlying:<TICKER>` or `sector:<Sector>` (case-insensitive match).
//! - `kind`: `earnings`, `fomc` or `other`. An `earnings` entry given as dates widens by
//!   `earnings-days-before` / `earnings-days-after` weekdays (Saturdays and Sundays skipped,
//!   holidays not), so the default blacks out the weekday before and the day itself.
//! - `note`: free text, the rest of the line (commas allowed, no quoting needed); the decision's
//!   reason quotes it.
//!
//! Blank lines, lines starting with `#`, and a header line `start,end,scope,kind,note` are
//! skipped. Parsing is pure (the pipeline reads the file); every bad line is reported, with its
//! number, at once.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Weekday};
use chrono_tz::America::New_York;

/// Who a blackout applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every signal.
    All,
    /// Signals on one underlying.
    Underlying(String),
    /// Signals in one sector.
    Sector(String),
}

/// What the blackout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An earnings release (widened by the configured days around it when given as dates).
    Earnings,
    /// An FOMC decision.
    Fomc,
    /// Anything else.
    Other,
}

/// When a blackout holds, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum When {
    /// Whole New York days, both inclusive.
    Days { first: NaiveDate, last: NaiveDate },
    /// A New York time range, end exclusive, already in UTC microseconds.
    Times { from: i64, to: i64, text: String },
}

/// One line of the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Line number in the file (1-based).
    pub line: usize,
    when: When,
    /// Who it applies to.
    pub scope: Scope,
    /// What it is for.
    pub kind: Kind,
    /// Free text.
    pub note: String,
}

/// A parsed blackout calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

const HEADER: &str = "start,end,scope,kind,note";

fn ny_micros(t: NaiveDateTime) -> Option<i64> {
    // An ambiguous autumn time is its first occurrence; a spring-forward gap does not exist.
    New_York
        .from_local_datetime(&t)
        .earliest()
        .map(|t| t.timestamp_micros())
}

enum Stamp {
    Date(NaiveDate),
    Time(NaiveDateTime),
}

fn stamp(s: &str) -> Option<Stamp> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Stamp::Date(d));
    }
    ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(Stamp::Time)
}

impl Calendar {
    /// Parses the CSV text of a calendar file; `Err` lists every bad line as `line N: ...`.
    pub fn parse_csv(text: &str) -> Result<Calendar, Vec<String>> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty()
                || trimmed.starts_with('#')
                || trimmed.replace(' ', "").eq_ignore_ascii_case(HEADER)
            {
                continue;
            }
            match parse_line(trimmed, line) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(format!("line {line}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Calendar { entries })
        } else {
            Err(problems)
        }
    }
}

fn parse_line(text: &str, line: usize) -> Result<Entry, String> {
    let cols: Vec<&str> = text.splitn(5, ',').map(str::trim).collect();
    if cols.len() < 4 {
        return Err(format!(
            "expected {HEADER} (at least four columns), found {}",
            cols.len()
        ));
    }
    let note = cols.get(4).copied().unwrap_or("").trim_matches('"').trim();
    let mut errs = Vec::new();
    let start = stamp(cols[0]);
    if start.is_none() {
        errs.push(format!(
            "start {:?} is not a date (YYYY-MM-DD) or a New York time (YYYY-MM-DD HH:MM)",
            cols[0]
        ));
    }
    let end = if cols[1].is_empty() {
        None
    } else {
        let e = stamp(cols[1]);
        if e.is_none() {
            errs.push(format!(
                "end {:?} is not a date (YYYY-MM-DD) or a New York time (YYYY-MM-DD HH:MM)",
                cols[1]
            ));
        }
        e
    };
    let scope = match cols[2].split_once(':') {
        _ if cols[2].eq_ignore_ascii_case("all") => Some(Scope::All),
        Some((k, v)) if k.trim().eq_ignore_ascii_case("underlying") && !v.trim().is_empty() => {
            Some(Scope::Underlying(v.trim().to_string()))
        }
        Some((k, v)) if k.trim().eq_ignore_ascii_case("sector") && !v.trim().is_empty() => {
            Some(Scope::Sector(v.trim().to_string()))
        }
        _ => {
            errs.push(format!(
                "scope {:?} is not all, underlying:<TICKER> or sector:<Sector>",
                cols[2]
            ));
            None
        }
    };
    let kind = match cols[3].to_ascii_lowercase().as_str() {
        "earnings" => Some(Kind::Earnings),
        "fomc" => Some(Kind::Fomc),
        "other" => Some(Kind::Other),
        _ => {
            errs.push(format!("kind {:?} is not earnings, fomc or other", cols[3]));
            None
        }
    };
    let when = match (start, end) {
        (Some(Stamp::Date(first)), None) => Some(When::Days { first, last: first }),
        (Some(Stamp::Date(first)), Some(Stamp::Date(last))) => {
            if last < first {
                errs.push(format!("end {last} is before start {first}"));
            }
            Some(When::Days { first, last })
        }
        (Some(Stamp::Time(_)), None) if !cols[1].is_empty() => None,
        (Some(Stamp::Time(_)), None) => {
            errs.push("a start time needs an end time (YYYY-MM-DD HH:MM)".to_string());
            None
        }
        (Some(Stamp::Time(from)), Some(Stamp::Time(to))) => {
            match (ny_micros(from), ny_micros(to)) {
                (Some(f), Some(t)) if t > f => Some(When::Times {
                    from: f,
                    to: t,
                    text: format!(
                        "{} to {}",
                        from.format("%Y-%m-%d %H:%M"),
                        to.format("%H:%M")
                    ),
                }),
                (Some(_), Some(_)) => {
                    errs.push(format!("end {to} is not after start {from}"));
                    None
                }
                _ => {
                    errs.push(format!(
                        "{from} or {to} does not exist in New York (clocks spring forward)"
                    ));
                    None
                }
            }
        }
        (Some(_), Some(_)) => {
            errs.push("start and end must both be dates or both be times".to_string());
            None
        }
        (None, _) => None,
    };
    match (when, scope, kind) {
        (Some(when), Some(scope), Some(kind)) if errs.is_empty() => Ok(Entry {
            line,
            when,
            scope,
            kind,
            note: note.to_string(),
        }),
        _ => Err(errs.join("; ")),
    }
}

/// A calendar entry resolved to an event-time interval, with the window around earnings applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blackout {
    /// First blacked-out instant (UTC microseconds).
    pub(crate) from: i64,
    /// End of the blackout, exclusive.
    pub(crate) to: i64,
    pub(crate) scope: Scope,
    /// Human description: what, when, the note.
    pub(crate) label: String,
}

fn step_weekdays(mut d: NaiveDate, n: u32, forward: bool) -> NaiveDate {
    let mut left = n;
    while left > 0 {
        d = if forward {
            d + Duration::days(1)
        } else {
            d - Duration::days(1)
        };
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    d
}

fn midnight(d: NaiveDate) -> i64 {
    // Midnight exists on every New York day (the clocks change at 02:00).
    ny_micros(d.and_hms_opt(0, 0, 0).unwrap_or_default()).unwrap_or(i64::MIN)
}

impl Blackout {
    /// Whether a signal on `underlying` in `sector` at `t` falls in this blackout.
    pub(crate) fn covers(&self, t: i64, underlying: &str, sector: &str) -> bool {
        self.from <= t
            && t < self.to
            && match &self.scope {
                Scope::All => true,
                Scope::Underlying(u) => u.eq_ignore_ascii_case(underlying),
                Scope::Sector(s) => s.eq_ignore_ascii_case(sector),
            }
    }
}

/// Resolves every entry of `cal`, widening date-given earnings by the weekdays around them.
pub(crate) fn resolve(cal: &Calendar, days_before: u32, days_after: u32) -> Vec<Blackout> {
    cal.entries
        .iter()
        .map(|e| {
            let what = match (&e.kind, &e.scope) {
                (Kind::Earnings, Scope::Underlying(u)) => format!("{u} earnings"),
                (Kind::Earnings, _) => "earnings".to_string(),
                (Kind::Fomc, _) => "FOMC".to_string(),
                (Kind::Other, _) => "calendar event".to_string(),
            };
            let whom = match &e.scope {
                Scope::All => "every underlying".to_string(),
                Scope::Underlying(u) => u.clone(),
                Scope::Sector(s) => format!("sector {s}"),
            };
            let (from, to, when) = match &e.when {
                When::Times { from, to, text } => (*from, *to, text.clone()),
                When::Days { first, last } => {
                    let (a, b) = if e.kind == Kind::Earnings {
                        (
                            step_weekdays(*first, days_before, false),
                            step_weekdays(*last, days_after, true),
                        )
                    } else {
                        (*first, *last)
                    };
                    let written = if first == last {
                        first.to_string()
                    } else {
                        format!("{first} to {last}")
                    };
                    let when = if (a, b) == (*first, *last) {
                        written
                    } else {
                        format!("{written} (blackout {a} to {b})")
                    };
                    (midnight(a), midnight(b + Duration::days(1)), when)
                }
            };
            let note = if e.note.is_empty() {
                String::new()
            } else {
                format!(": {}", e.note)
            };
            Blackout {
                from,
                to,
                scope: e.scope.clone(),
                label: format!("{what} on {when}, {whom}, calendar line {}{note}", e.line),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_times_scopes_and_skips_comments_and_the_header() {
        let cal = Calendar::parse_csv(
            "# comment\nstart,end,scope,kind,note\n\n2021-01-27,,all,fomc,FOMC statement, no change\n\
             2021-01-27 14:00,2021-01-27 16:00,sector:Financials,other,\n\
             2021-01-27,2021-01-28,underlying:AAPL,Earnings,\"Apple\"\n",
        )
        .unwrap();
        assert_eq!(cal.entries.len(), 3);
        assert_eq!(cal.entries[0].note, "FOMC statement, no change");
        assert_eq!(cal.entries[0].line, 4);
        assert_eq!(cal.entries[1].scope, Scope::Sector("Financials".into()));
        assert_eq!(cal.entries[2].kind, Kind::Earnings);
        assert_eq!(cal.entries[2].note, "Apple");
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let err = Calendar::parse_csv(
            "2021-13-01,,all,fomc,x\n2021-01-27,,everyone,fomc,x\n2021-01-27,,all,cpi,x\n\
             2021-01-28,2021-01-27,all,fomc,x\n2021-01-27 10:00,,all,other,x\n\
             2021-03-14 02:30,2021-03-14 04:00,all,other,x\njust one column\n2021-01-27,,all,fomc,ok\n",
        )
        .unwrap_err();
        assert_eq!(err.len(), 7, "{err:#?}");
        for (i, want) in [
            "line 1: start \"2021-13-01\"",
            "line 2: scope \"everyone\"",
            "line 3: kind \"cpi\"",
            "line 4: end 2021-01-27 is before start 2021-01-28",
            "line 5: a start time needs an end time",
            "line 6: 2021-03-14 02:30:00 or 2021-03-14 04:00:00 does not exist",
            "line 7: expected start,end,scope,kind,note",
        ]
        .iter()
        .enumerate()
        {
            assert!(err[i].starts_with(want), "{} vs {want}", err[i]);
        }
    }

    #[test]
    fn earnings_widen_by_weekdays_and_days_are_new_york_days() {
        // Monday 2021-03-22 earnings: the weekday before is Friday 2021-03-19.
        let cal = Calendar::parse_csv("2021-03-22,,underlying:GME,earnings,\n").unwrap();
        let b = &resolve(&cal, 1, 0)[0];
        let ny = |s: &str| {
            ny_micros(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()).unwrap()
        };
        assert_eq!(b.from, ny("2021-03-19 00:00"));
        assert_eq!(b.to, ny("2021-03-23 00:00"));
        assert!(b.covers(ny("2021-03-19 09:30"), "gme", "Retail"));
        assert!(!b.covers(ny("2021-03-19 09:30"), "AMC", "Retail"));
        assert!(!b.covers(ny("2021-03-18 23:59"), "GME", "Retail"));
        assert!(b
            .label
            .contains("GME earnings on 2021-03-22 (blackout 2021-03-19 to 2021-03-22)"));
        // 23:59 New York on the day is 04:59 UTC the next day and still inside.
        assert!(b.covers(ny("2021-03-22 23:59"), "GME", "x"));
    }
}
