//! `optionflow import`: historical option chain files and underlying daily bars become a
//! `quotes.raw` tape, in event-time order, that `replay` runs through every stage.
//!
//! Formats (column layouts in the README, "Importing history"):
//! - [`Format::Generic`] ([`generic`]): our documented CSV, one row per contract per timestamp.
//! - [`Format::CboeEod`] ([`cboe`]): Cboe DataShop "Option EOD Summary"; quotes at the 15:45
//!   New York snapshot.
//! - [`Format::DeltaNeutral`] ([`deltaneutral`]): HistoricalOptionData.com / DeltaNeutral
//!   end-of-day (L2/L3) files; quotes at 16:00 New York of `DataDate`.
//! - [`Format::DailyBars`] ([`bars`]): underlying daily bars in Yahoo's layout; one
//!   `UnderlyingTick` per bar at 16:00 New York.
//!
//! Columns are found by header name (case-insensitive), so extra columns and any column order
//! are fine; a missing required column is an error naming it. A row that cannot be read (a
//! number, date or right that does not parse, a contract that has no OCC symbol) is skipped and
//! reported with its file and line; the import goes on. Rows with readable but implausible
//! values (crossed, negative, zero bids, expired) are imported as they are: the normalize stage
//! rejects them with its reasons, as it would a vendor's live quote.
//!
//! Each option row yields a `RawQuote` (with the row's underlying price) and, once per
//! underlying and timestamp, an `UnderlyingTick` at that price, so the score stage has a spot
//! series. The tape is ordered by event time, then underlying, then the tick before that
//! underlying's quotes, then OCC symbol: the same input gives the same tape byte for byte,
//! whatever order the rows or files came in. Rows are held in memory for the sort, 300 to 500
//! bytes a row (a full-market Cboe EOD day of ~1.5 million rows needs 0.5 to 0.75 GB; import
//! such files a few days at a time); spot ticks are deduplicated as they are read.
//!
//! Event ids are hashes of the format, underlying, symbol and event time, so importing the
//! same files twice gives the same ids; a second row for the same contract and time is a
//! `duplicate` bad row (the first one, in file and line order, is kept).

mod bars;
mod cboe;
mod deltaneutral;
mod fields;
mod generic;
mod report;

pub use report::{BadRow, ImportReport, UnderlyingCounts};

use crate::tape::{TapeError, TapeWriter};
use csv::StringRecord;
use fields::{Header, RowError};
use optionflow_schemas::{EventId, RawEvent, RawQuote, UnderlyingTick};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The `source` of every imported event.
pub const SOURCE: &str = "file";

/// An input file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// optionflow's generic option CSV.
    Generic,
    /// Cboe DataShop Option EOD Summary.
    CboeEod,
    /// HistoricalOptionData.com / DeltaNeutral end-of-day options.
    DeltaNeutral,
    /// Underlying daily bars (Yahoo layout).
    DailyBars,
}

impl Format {
    /// Every format, in the order the help lists them.
    pub const ALL: [Format; 4] = [
        Format::Generic,
        Format::CboeEod,
        Format::DeltaNeutral,
        Format::DailyBars,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::CboeEod => "cboe-eod",
            Format::DeltaNeutral => "deltaneutral",
            Format::DailyBars => "daily-bars",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ImportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ImportError::UnknownFormat(s.to_string()))
    }
}

/// An import that could not run (bad rows are not errors: they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `--format` names no known layout.
    #[error("unknown format {0:?}: choose generic, cboe-eod, deltaneutral or daily-bars")]
    UnknownFormat(String),
    /// A required column is not in a file's header.
    #[error("{file}: no column {column:?}, which the {format} format requires (columns are matched by header name)")]
    MissingColumn {
        /// The file.
        file: String,
        /// The format.
        format: &'static str,
        /// The missing column.
        column: String,
    },
    /// A file has no header row.
    #[error("{0}: empty file, expected a header row")]
    Empty(String),
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The output exists.
    #[error("{0} exists; remove it or choose another --out (an import never overwrites a tape)")]
    OutExists(String),
    /// A file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Cause.
        source: csv::Error,
    },
    /// Writing the tape failed.
    #[error(transparent)]
    Tape(#[from] TapeError),
    /// Renaming the finished tape into place failed.
    #[error("moving the finished tape to {path}: {source}")]
    Io {
        /// The tape.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// No row of any file was usable, so no tape was written.
    #[error("no usable rows in {rows_read} rows read ({} bad); no tape written", .report.bad_rows.len())]
    NothingUsable {
        /// Rows read.
        rows_read: u64,
        /// The report, with every bad row.
        report: Box<ImportReport>,
    },
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The files' layout.
    pub format: Format,
    /// Input files, all in `format`.
    pub files: Vec<PathBuf>,
    /// The tape to write; must not exist.
    pub out: PathBuf,
    /// `daily-bars` only: the underlying the bars belong to (default: each file's stem,
    /// upper-cased, so `spy.csv` is `SPY`).
    pub underlying: Option<String>,
}

/// One row's events: its own (a quote, or a bar's tick) and, for option rows, the underlying
/// tick its underlying price gives.
pub(super) struct Parsed {
    primary: RawEvent,
    spot: Option<UnderlyingTick>,
}

impl Parsed {
    pub(super) fn quote(q: RawQuote) -> Self {
        let spot = q
            .underlying_price
            .map(|p| spot_tick(&q.underlying, q.event_time, p, 0));
        Self {
            primary: RawEvent::Quote(q),
            spot,
        }
    }

    pub(super) fn tick(t: UnderlyingTick) -> Self {
        Self {
            primary: RawEvent::Tick(t),
            spot: None,
        }
    }
}

/// A tick (its id is set when it is written).
pub(super) fn spot_tick(underlying: &str, time: i64, price: f64, volume: i64) -> UnderlyingTick {
    UnderlyingTick {
        event_id: Default::default(),
        event_time: time,
        underlying: underlying.into(),
        source: SOURCE.into(),
        price,
        volume,
        sector: None,
    }
}

/// A parsed file layout.
enum Layout {
    Generic(generic::Layout),
    Cboe(cboe::Layout),
    DeltaNeutral(deltaneutral::Layout),
    Bars(bars::Layout),
}

impl Layout {
    fn row(&self, rec: &StringRecord) -> Result<Parsed, RowError> {
        match self {
            Layout::Generic(l) => l.row(rec),
            Layout::Cboe(l) => l.row(rec),
            Layout::DeltaNeutral(l) => l.row(rec),
            Layout::Bars(l) => l.row(rec),
        }
    }
}

/// An event waiting for the sort, with where it came from.
struct Item {
    event: RawEvent,
    file: usize,
    line: u64,
}

impl Item {
    /// Tape order: time, underlying, tick before quotes, symbol; then input order, so the
    /// first of duplicates wins.
    fn key(&self) -> (i64, &str, u8, &str, usize, u64) {
        let (kind, symbol) = match &self.event {
            RawEvent::Tick(_) => (0, ""),
            RawEvent::Quote(q) => (1, q.symbol.as_str()),
        };
        let ev = &self.event;
        (
            ev.event_time(),
            ev.underlying(),
            kind,
            symbol,
            self.file,
            self.line,
        )
    }
}

/// Imports `opts.files` into the tape `opts.out`; see the module docs for the rules.
pub fn import(opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    if opts.files.is_empty() {
        return Err(ImportError::Usage("give at least one input file".into()));
    }
    if opts.underlying.is_some() && opts.format != Format::DailyBars {
        return Err(ImportError::Usage(format!(
            "--underlying is for --format daily-bars; {} files name their underlying in each row",
            opts.format
        )));
    }
    if opts.out.exists() {
        return Err(ImportError::OutExists(opts.out.display().to_string()));
    }
    let mut report = ImportReport {
        format: opts.format,
        out: opts.out.clone(),
        rows_read: 0,
        rows_used: 0,
        events_written: 0,
        underlyings: Default::default(),
        bad_rows: Vec::new(),
        first_event_time: None,
        last_event_time: None,
    };
    let mut bad = BadRows::default();
    let (mut items, mut spots) = (Vec::new(), BTreeSet::new());
    for (index, path) in opts.files.iter().enumerate() {
        read_file(
            opts,
            index,
            path,
            &mut items,
            &mut spots,
            &mut bad,
            &mut report,
        )?;
    }
    drop(spots);
    items.sort_by(|a, b| a.key().cmp(&b.key()));

    // Keep the first event of each key; a later row's own event is a reported duplicate.
    // In place, so the sort's vector is the only copy of the rows.
    items.dedup_by(|later, kept| {
        let (a, b) = (kept.key(), later.key());
        if (a.0, a.1, a.2, a.3) != (b.0, b.1, b.2, b.3) {
            return false;
        }
        let what = match &later.event {
            RawEvent::Quote(q) => format!("quote for {}", q.symbol),
            RawEvent::Tick(t) => format!("bar for {}", t.underlying),
        };
        let reason = format!(
            "duplicate {what} at the same time as {}:{}, which is kept",
            opts.files[kept.file].display(),
            kept.line
        );
        let path = &opts.files[later.file];
        bad.add(
            later.file,
            path,
            later.line,
            RowError::new("duplicate", reason),
        );
        true
    });
    let kept = items;
    report.rows_used = report.rows_read - bad.rows.len() as u64;
    bad.rows.sort_by_key(|(file, row)| (*file, row.line));
    report.bad_rows = bad.rows.into_iter().map(|(_, r)| r).collect();

    if kept.is_empty() {
        return Err(ImportError::NothingUsable {
            rows_read: report.rows_read,
            report: Box::new(report),
        });
    }
    write_tape(opts, kept, &mut report)?;
    Ok(report)
}

fn write_tape(
    opts: &ImportOptions,
    items: Vec<Item>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    // Written beside the target and renamed when complete, so a failed import leaves no
    // half tape under the name replay would read.
    let mut partial = opts.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| {
        let mut writer = TapeWriter::open(&partial, 0, 0, Default::default())?;
        let tag = opts.format.name();
        for item in items {
            let mut ev = item.event;
            let counts = report
                .underlyings
                .entry(ev.underlying().to_string())
                .or_default();
            match &mut ev {
                RawEvent::Quote(q) => {
                    q.event_id = EventId::new("import")
                        .part(tag)
                        .part(&q.underlying)
                        .part(&q.symbol)
                        .part_i64(q.event_time)
                        .finish();
                    counts.quotes += 1;
                }
                RawEvent::Tick(t) => {
                    t.event_id = EventId::new("import")
                        .part(tag)
                        .part("tick")
                        .part(&t.underlying)
                        .part_i64(t.event_time)
                        .finish();
                    counts.ticks += 1;
                }
            }
            report.first_event_time.get_or_insert(ev.event_time());
            report.last_event_time = Some(ev.event_time());
            writer.append(&ev)?;
            report.events_written += 1;
        }
        writer.commit()?;
        drop(writer);
        std::fs::rename(&partial, &opts.out).map_err(|source| ImportError::Io {
            path: opts.out.display().to_string(),
            source,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Bad rows, each cause logged once.
#[derive(Default)]
struct BadRows {
    rows: Vec<(usize, BadRow)>,
    logged: BTreeSet<&'static str>,
}

impl BadRows {
    fn add(&mut self, index: usize, file: &Path, line: u64, e: RowError) {
        let row = BadRow {
            file: file.display().to_string(),
            line,
            cause: e.cause.to_string(),
            reason: e.reason,
        };
        if self.logged.insert(e.cause) {
            tracing::warn!(
                file = %row.file,
                line,
                cause = e.cause,
                reason = %row.reason,
                "import: row skipped (further rows with this cause are listed in the report only)"
            );
        }
        self.rows.push((index, row));
    }
}

fn read_file(
    opts: &ImportOptions,
    index: usize,
    path: &Path,
    items: &mut Vec<Item>,
    spots: &mut BTreeSet<(i64, String)>,
    bad: &mut BadRows,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ImportError::Read {
        file: name.clone(),
        source: e.into(),
    })?;
    let underlying = match &opts.underlying {
        Some(u) => u.clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    read_rows(
        std::io::BufReader::new(file),
        &name,
        opts.format,
        &underlying,
        |line, parsed| {
            report.rows_read += 1;
            match parsed {
                Ok(p) => {
                    items.push(Item {
                        event: p.primary,
                        file: index,
                        line,
                    });
                    // One spot tick per underlying and time is enough; the first row's wins,
                    // as the sort would have it, and the rest never take memory.
                    if let Some(t) = p
                        .spot
                        .filter(|t| spots.insert((t.event_time, t.underlying.to_string())))
                    {
                        items.push(Item {
                            event: RawEvent::Tick(t),
                            file: index,
                            line,
                        });
                    }
                }
                Err(e) => bad.add(index, path, line, e),
            }
        },
    )
}

/// Reads one file's header and rows, handing each data row's line and outcome to `on_row`.
/// `bars_underlying` names the underlying of a `daily-bars` file.
fn read_rows(
    input: impl std::io::Read,
    name: &str,
    format: Format,
    bars_underlying: &str,
    mut on_row: impl FnMut(u64, Result<Parsed, RowError>),
) -> Result<(), ImportError> {
    let read = |source| ImportError::Read {
        file: name.to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut records = reader.records();
    let header = match records.next() {
        Some(h) => Header::new(&h.map_err(read)?, name, format),
        None => return Err(ImportError::Empty(name.to_string())),
    };
    let layout = match format {
        Format::Generic => Layout::Generic(generic::Layout::new(&header)?),
        Format::CboeEod => Layout::Cboe(cboe::Layout::new(&header)?),
        Format::DeltaNeutral => Layout::DeltaNeutral(deltaneutral::Layout::new(&header)?),
        Format::DailyBars => {
            let underlying = fields::underlying(bars_underlying).map_err(|_| {
                ImportError::Usage(format!("{name}: no underlying name; give --underlying SYM"))
            })?;
            Layout::Bars(bars::Layout::new(&header, underlying)?)
        }
    };
    for record in records {
        let (line, parsed) = match record {
            Ok(rec) => {
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                let line = rec.position().map_or(0, |p| p.line());
                (line, layout.row(&rec))
            }
            // An unreadable record (invalid UTF-8) is a bad row; an I/O error ends the import.
            Err(e) if !e.is_io_error() => {
                let line = e.position().map_or(0, |p| p.line());
                (line, Err(RowError::new("bad_record", e.to_string())))
            }
            Err(e) => return Err(read(e)),
        };
        on_row(line, parsed);
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Parses `text` as one file of `format` (daily bars belong to `TEST`): each usable row's
    /// events, and each bad row's line and error.
    #[allow(clippy::type_complexity)]
    pub(super) fn parse_all(
        format: Format,
        text: &str,
    ) -> (
        Vec<(RawEvent, Option<UnderlyingTick>)>,
        Vec<(u64, RowError)>,
    ) {
        let (mut events, mut bad) = (Vec::new(), Vec::new());
        read_rows(
            text.as_bytes(),
            "test.csv",
            format,
            "TEST",
            |line, parsed| match parsed {
                Ok(p) => events.push((p.primary, p.spot)),
                Err(e) => bad.push((line, e)),
            },
        )
        .unwrap();
        (events, bad)
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::tape::TapeReader;

    #[test]
    fn files_merge_into_one_tape_in_time_underlying_tick_symbol_order() {
        let dir = tempfile::tempdir().unwrap();
        let header = "underlying,quote_time,expiry,strike,right,bid,ask,last,volume,open_interest,underlying_price\n";
        // The later time first, symbols out of order, a duplicate across files.
        let a = dir.path().join("a.csv");
        std::fs::write(
            &a,
            format!(
                "{header}SPY,2024-01-02 10:01,2024-01-19,470,C,5,5.1,,1,1,471\n\
                 SPY,2024-01-02 10:00,2024-01-19,475,C,2,2.1,,1,1,470\n\
                 AAPL,2024-01-02 10:00,2024-01-19,190,P,1,1.1,,1,1,192\n\
                 SPY,2024-01-02 10:00,2024-01-19,470,C,4,4.1,,1,1,470\n"
            ),
        )
        .unwrap();
        let b = dir.path().join("b.csv");
        std::fs::write(
            &b,
            format!("{header}SPY,2024-01-02 10:00,2024-01-19,475,C,9,9.1,,1,1,470\n"),
        )
        .unwrap();
        let out = dir.path().join("t.avro");
        let opts = ImportOptions {
            format: Format::Generic,
            files: vec![b.clone(), a.clone()],
            out: out.clone(),
            underlying: None,
        };
        let report = import(&opts).unwrap();
        let got: Vec<String> = TapeReader::open(&out)
            .unwrap()
            .map(|e| match e.unwrap() {
                RawEvent::Tick(t) => format!("{} {} tick {}", t.event_time, t.underlying, t.price),
                RawEvent::Quote(q) => {
                    format!("{} {} {} {}", q.event_time, q.underlying, q.symbol, q.bid)
                }
            })
            .collect();
        let (t0, t1) = (1_704_207_600_000_000_i64, 1_704_207_660_000_000_i64);
        assert_eq!(
            got,
            [
                format!("{t0} AAPL tick 192"),
                format!("{t0} AAPL AAPL  240119P00190000 1"),
                format!("{t0} SPY tick 470"),
                format!("{t0} SPY SPY   240119C00470000 4"),
                // b.csv was given first, so its row is the one kept.
                format!("{t0} SPY SPY   240119C00475000 9"),
                format!("{t1} SPY tick 471"),
                format!("{t1} SPY SPY   240119C00470000 5"),
            ]
        );
        assert_eq!(
            (report.rows_read, report.rows_used, report.events_written),
            (5, 4, 7)
        );
        assert_eq!(report.bad_rows.len(), 1);
        let dup = report.bad_rows[0].to_string();
        assert!(
            dup.starts_with(&format!("{}:3: duplicate", a.display())),
            "{dup}"
        );
        assert_eq!(
            report.underlyings["SPY"],
            UnderlyingCounts {
                quotes: 3,
                ticks: 2
            }
        );

        // Never over an existing tape; a fresh import of the same files is byte-identical.
        assert!(matches!(import(&opts), Err(ImportError::OutExists(_))));
        let again = dir.path().join("u.avro");
        import(&ImportOptions {
            out: again.clone(),
            ..opts.clone()
        })
        .unwrap();
        let ids = |p: &Path| -> Vec<String> {
            TapeReader::open(p)
                .unwrap()
                .map(|e| e.unwrap().event_id().to_string())
                .collect()
        };
        assert_eq!(ids(&out), ids(&again));
    }

    #[test]
    fn nothing_usable_writes_no_tape_and_bad_usage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.csv");
        std::fs::write(
            &f,
            "Date,Open,High,Low,Close,Volume\n2024-01-02,null,null,null,null,null\n",
        )
        .unwrap();
        let out = dir.path().join("t.avro");
        let opts = ImportOptions {
            format: Format::DailyBars,
            files: vec![f],
            out: out.clone(),
            underlying: Some("SPY".into()),
        };
        match import(&opts) {
            Err(ImportError::NothingUsable {
                rows_read: 1,
                report,
            }) => {
                assert_eq!(report.bad_rows.len(), 1)
            }
            other => panic!("{other:?}"),
        }
        assert!(!out.exists());
        let generic = ImportOptions {
            format: Format::Generic,
            ..opts
        };
        assert!(import(&generic)
            .unwrap_err()
            .to_string()
            .contains("--underlying"));
        let e = "parquet".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("\"parquet\"") && e.contains("cboe-eod"), "{e}");
    }
}
