//! Field parsing shared by the formats: header lookup by name, numbers, dates, New York times,
//! rights and OCC symbols. Every parser returns a reason string, which becomes a bad row.

use super::{Format, ImportError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use csv::StringRecord;
use optionflow_operators::normalize::{parse_occ, OccContract};
use optionflow_operators::pricing::Right;

/// Why a row was not used: a short cause (logged once) and the full reason (reported).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RowError {
    pub(super) cause: &'static str,
    pub(super) reason: String,
}

impl RowError {
    pub(super) fn new(cause: &'static str, reason: impl Into<String>) -> Self {
        Self {
            cause,
            reason: reason.into(),
        }
    }
}

/// A file's header row, matched by name: trimmed, case-insensitive, a UTF-8 byte-order mark
/// ignored, so spreadsheets' exports work as they are.
pub(super) struct Header {
    names: Vec<String>,
    file: String,
    format: Format,
}

impl Header {
    pub(super) fn new(record: &StringRecord, file: &str, format: Format) -> Self {
        let names = record
            .iter()
            .map(|n| n.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        Self {
            names,
            file: file.to_string(),
            format,
        }
    }

    /// The column called `name`, if the file has it.
    pub(super) fn optional(&self, name: &str) -> Option<Col> {
        let want = name.to_ascii_lowercase();
        self.names.iter().position(|n| *n == want).map(|index| Col {
            index,
            name: name.to_string(),
        })
    }

    /// The column called `name`, or an error naming it.
    pub(super) fn required(&self, name: &str) -> Result<Col, ImportError> {
        self.optional(name)
            .ok_or_else(|| ImportError::MissingColumn {
                file: self.file.clone(),
                format: self.format.name(),
                column: name.to_string(),
            })
    }
}

/// A column of the file: its position and its documented name (for messages).
#[derive(Debug, Clone)]
pub(super) struct Col {
    index: usize,
    name: String,
}

impl Col {
    /// The trimmed text of this column in `rec`.
    pub(super) fn text<'r>(&self, rec: &'r StringRecord) -> Result<&'r str, RowError> {
        rec.get(self.index).map(str::trim).ok_or_else(|| {
            RowError::new(
                "short_row",
                format!("row has {} fields, no {}", rec.len(), self.name),
            )
        })
    }

    /// A required number.
    pub(super) fn number(&self, rec: &StringRecord) -> Result<f64, RowError> {
        let t = self.text(rec)?;
        parse_number(t).ok_or_else(|| {
            RowError::new("bad_number", format!("{} {t:?} is not a number", self.name))
        })
    }

    /// A number that may be empty.
    pub(super) fn opt_number(&self, rec: &StringRecord) -> Result<Option<f64>, RowError> {
        let t = self.text(rec)?;
        if t.is_empty() {
            return Ok(None);
        }
        self.number(rec).map(Some)
    }

    /// A count (volume, open interest, size): an integer, or a number with no fraction
    /// (`12.0`); empty is 0.
    pub(super) fn count(&self, rec: &StringRecord) -> Result<i64, RowError> {
        let t = self.text(rec)?;
        if t.is_empty() {
            return Ok(0);
        }
        if let Ok(n) = t.parse::<i64>() {
            return Ok(n);
        }
        match parse_number(t) {
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(x as i64),
            _ => Err(RowError::new(
                "bad_number",
                format!("{} {t:?} is not a whole number", self.name),
            )),
        }
    }

    /// A date (`YYYY-MM-DD`, `M/D/YYYY` or `YYYYMMDD`).
    pub(super) fn date(&self, rec: &StringRecord) -> Result<NaiveDate, RowError> {
        let t = self.text(rec)?;
        parse_date(t).ok_or_else(|| {
            RowError::new(
                "bad_date",
                format!(
                    "{} {t:?} is not a date (YYYY-MM-DD, M/D/YYYY or YYYYMMDD)",
                    self.name
                ),
            )
        })
    }

    /// A call or put.
    pub(super) fn right(&self, rec: &StringRecord) -> Result<Right, RowError> {
        let t = self.text(rec)?;
        match t.to_ascii_lowercase().as_str() {
            "c" | "call" => Ok(Right::Call),
            "p" | "put" => Ok(Right::Put),
            _ => Err(RowError::new(
                "bad_right",
                format!("{} {t:?} is not call, put, C or P", self.name),
            )),
        }
    }
}

/// A decimal number; Rust's parser also takes `NaN` and `inf`, which pass through to normalize,
/// whose job it is to reject them with a reason.
fn parse_number(t: &str) -> Option<f64> {
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Four-digit years only: chrono's `%Y` would read `1/19/24` as the year 24.
fn parse_date(t: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .filter(|d| (1000..=9999).contains(&chrono::Datelike::year(d)))
}

/// `date` at `hour:minute` New York time, in µs since the epoch. In the autumn's repeated hour
/// the earlier instant is taken; a time the spring change skips is an error.
pub(super) fn new_york(at: NaiveDateTime) -> Result<i64, RowError> {
    chrono_tz::America::New_York
        .from_local_datetime(&at)
        .earliest()
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| RowError::new("bad_time", format!("{at} does not exist in New York")))
}

/// `date` at a fixed New York time of day (the vendors' snapshot times).
pub(super) fn new_york_on(date: NaiveDate, hour: u32, minute: u32) -> Result<i64, RowError> {
    let at = date
        .and_hms_opt(hour, minute, 0)
        .ok_or_else(|| RowError::new("bad_time", format!("{hour}:{minute} is not a time")))?;
    new_york(at)
}

/// A quote time: RFC 3339 (`2024-01-02T15:45:00Z`, `…-05:00`), or `YYYY-MM-DD HH:MM[:SS]`
/// (also with `T`) read as New York time.
pub(super) fn quote_time(t: &str) -> Result<i64, RowError> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_micros());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, f) {
            return new_york(at);
        }
    }
    Err(RowError::new(
        "bad_time",
        format!("quote_time {t:?} is neither RFC 3339 nor YYYY-MM-DD HH:MM[:SS] (New York)"),
    ))
}

/// An underlying's name as events carry it: upper case, without the `^` index prefix some
/// vendors use (`^SPX` → `SPX`).
pub(super) fn underlying(t: &str) -> Result<String, RowError> {
    let name = t.trim().trim_start_matches('^').to_ascii_uppercase();
    if name.is_empty() {
        return Err(RowError::new("bad_symbol", "the underlying is empty"));
    }
    Ok(name)
}

/// The OCC root for an underlying when the file gives none: its letters and digits
/// (`BRK.B` → `BRKB`).
pub(super) fn root_of(underlying: &str) -> String {
    underlying
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The canonical OCC symbol (`AAPL  240119C00190000`), checked with the parser normalize uses.
pub(super) fn occ_symbol(
    root: &str,
    expiry: NaiveDate,
    right: Right,
    strike: f64,
) -> Result<String, RowError> {
    let bad = |why: String| RowError::new("bad_contract", why);
    if !(strike.is_finite() && strike > 0.0 && strike * 1000.0 < 1.0e8) {
        return Err(bad(format!(
            "strike {strike} does not fit an OCC symbol (0 < strike < 100000)"
        )));
    }
    let root = root.trim().to_ascii_uppercase();
    if root.is_empty() || root.len() > 6 || !root.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(format!(
            "root {root:?} is not an OCC root (1-6 letters or digits)"
        )));
    }
    if !(2000..2100).contains(&chrono::Datelike::year(&expiry)) {
        return Err(bad(format!("expiry {expiry} is outside 2000-2099")));
    }
    let symbol = OccContract {
        root: root.into(),
        expiry,
        right,
        strike,
    }
    .symbol();
    parse_occ(&symbol).map_err(bad)?;
    Ok(symbol.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_new_york_unless_an_offset_is_given() {
        // 2024-01-02 is EST (UTC-5).
        let est = quote_time("2024-01-02 15:45").unwrap();
        assert_eq!(est, quote_time("2024-01-02T20:45:00Z").unwrap());
        assert_eq!(est, quote_time("2024-01-02 15:45:00").unwrap());
        assert_eq!(est, quote_time("2024-01-02T15:45:00-05:00").unwrap());
        // July is EDT (UTC-4).
        assert_eq!(
            quote_time("2024-07-01 16:00").unwrap(),
            quote_time("2024-07-01T20:00:00Z").unwrap()
        );
        assert_eq!(
            quote_time("2024-03-10 02:30").unwrap_err().cause,
            "bad_time"
        );
        assert_eq!(quote_time("yesterday").unwrap_err().cause, "bad_time");
    }

    #[test]
    fn symbols_are_occ_and_parse_back() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 19).unwrap();
        assert_eq!(
            occ_symbol("AAPL", d, Right::Call, 190.0).unwrap(),
            "AAPL  240119C00190000"
        );
        assert_eq!(
            occ_symbol("SPXW", d, Right::Put, 4712.5).unwrap(),
            "SPXW  240119P04712500"
        );
        assert!(occ_symbol("AAPL", d, Right::Call, 0.0).is_err());
        assert!(occ_symbol("TOOLONGX", d, Right::Call, 10.0).is_err());
        assert_eq!(underlying(" ^spx ").unwrap(), "SPX");
        assert_eq!(root_of("BRK.B"), "BRKB");
    }
}
