//! What an import did: rows read and used, events written per underlying, and every row that
//! could not be used with its file and line.

use super::Format;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The input file, as given.
    pub file: String,
    /// 1-based line of the row in the file (the header is line 1).
    pub line: u64,
    /// Short cause, the same for every row failing the same way (`bad_number`, `bad_date`,
    /// `bad_right`, `bad_contract`, `duplicate`, ...).
    pub cause: String,
    /// What was wrong, naming the column and the text.
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Events written for one underlying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnderlyingCounts {
    /// `RawQuote`s.
    pub quotes: u64,
    /// `UnderlyingTick`s.
    pub ticks: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The input format.
    pub format: Format,
    /// The tape written (nothing is written when no row was usable).
    pub out: PathBuf,
    /// Data rows read, over all files (header lines not counted).
    pub rows_read: u64,
    /// Rows that became events.
    pub rows_used: u64,
    /// Events on the tape.
    pub events_written: u64,
    /// Events per underlying, in name order.
    pub underlyings: BTreeMap<String, UnderlyingCounts>,
    /// Every row that was not used, in file and line order.
    pub bad_rows: Vec<BadRow>,
    /// Event time of the first event on the tape (µs since the epoch, UTC).
    pub first_event_time: Option<i64>,
    /// Event time of the last event on the tape.
    pub last_event_time: Option<i64>,
}
