//! `optionflow tape info | cat | slice`: look inside a tape without running the pipeline.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use optionflow_pipeline::tape::{TapeError, TapeReader, TapeWriter};
use optionflow_schemas::{RawEvent, SCHEMAS};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Which events of a tape a command looks at. Times are event times in µs, `from` inclusive,
/// `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only quotes (`quote`) or only underlying ticks (`tick`).
    pub kind: Option<EventKind>,
    /// Only this underlying.
    pub underlying: Option<String>,
    /// Events at or after this time.
    pub from: Option<i64>,
    /// Events before this time.
    pub to: Option<i64>,
}

/// The two kinds of event on `quotes.raw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// RawQuote.
    Quote,
    /// UnderlyingTick.
    Tick,
}

impl EventKind {
    /// Parses `quote`/`quotes`/`RawQuote` or `tick`/`ticks`/`UnderlyingTick`.
    pub fn parse(text: &str) -> Result<EventKind, String> {
        match text {
            "quote" | "quotes" | "RawQuote" => Ok(EventKind::Quote),
            "tick" | "ticks" | "UnderlyingTick" => Ok(EventKind::Tick),
            other => Err(format!(
                "{other:?}: the tape holds quotes.raw, whose events are `quote` (RawQuote) and `tick` (UnderlyingTick)"
            )),
        }
    }

    fn of(ev: &RawEvent) -> EventKind {
        match ev {
            RawEvent::Quote(_) => EventKind::Quote,
            RawEvent::Tick(_) => EventKind::Tick,
        }
    }
}

impl Filter {
    /// Whether `ev` passes.
    pub fn keeps(&self, ev: &RawEvent) -> bool {
        let t = ev.event_time();
        self.kind.is_none_or(|k| k == EventKind::of(ev))
            && self
                .underlying
                .as_deref()
                .is_none_or(|u| u == ev.underlying())
            && self.from.is_none_or(|f| t >= f)
            && self.to.is_none_or(|to| t < to)
    }
}

/// Parses a time for `--from`/`--to`: RFC 3339 (`2024-01-02T10:00:00-05:00`), a New York
/// wall-clock time (`2024-01-02 10:00` or `2024-01-02T10:00:00`), or µs since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(micros) = text.parse::<i64>() {
        return Ok(micros);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return chrono_tz::America::New_York
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_micros())
                .ok_or_else(|| format!("{text:?} does not exist in New York (a DST gap)"));
        }
    }
    Err(format!(
        "{text:?}: give RFC 3339 (2024-01-02T10:00:00-05:00), New York time (2024-01-02 10:00) or µs since the epoch"
    ))
}

/// Counts for one underlying.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnderlyingCounts {
    /// Option quotes.
    pub quotes: u64,
    /// Underlying ticks.
    pub ticks: u64,
}

/// What `tape info` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TapeInfo {
    /// File size.
    pub bytes: u64,
    /// Block compression (`avro.codec`: zstandard, snappy, deflate or null).
    pub codec: String,
    /// Every event.
    pub events: u64,
    /// Option quotes.
    pub quotes: u64,
    /// Underlying ticks.
    pub ticks: u64,
    /// Event time of the first event, µs.
    pub first_event_time: Option<i64>,
    /// Event time of the last event, µs.
    pub last_event_time: Option<i64>,
    /// Whether event times never go backwards (replay and slicing rely on it).
    pub in_event_time_order: bool,
    /// Counts per underlying.
    pub underlyings: BTreeMap<String, UnderlyingCounts>,
    /// Event types on the tape with their CRC-64-AVRO fingerprints (hex).
    pub schemas: BTreeMap<String, String>,
}

/// Reads the whole tape once and summarises it.
pub fn info(path: &Path) -> Result<TapeInfo, TapeError> {
    let mut info = TapeInfo {
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        in_event_time_order: true,
        ..Default::default()
    };
    let reader = TapeReader::open(path)?;
    info.codec = reader.codec().avro_name().to_string();
    for ev in reader {
        let ev = ev?;
        let t = ev.event_time();
        info.events += 1;
        if info.last_event_time.is_some_and(|last| t < last) {
            info.in_event_time_order = false;
        }
        info.first_event_time = Some(info.first_event_time.map_or(t, |f| f.min(t)));
        info.last_event_time = Some(info.last_event_time.map_or(t, |l| l.max(t)));
        let counts = info
            .underlyings
            .entry(ev.underlying().to_string())
            .or_default();
        match ev {
            RawEvent::Quote(_) => {
                info.quotes += 1;
                counts.quotes += 1;
            }
            RawEvent::Tick(_) => {
                info.ticks += 1;
                counts.ticks += 1;
            }
        }
    }
    for entry in SCHEMAS
        .iter()
        .filter(|e| e.name == "RawQuote" || e.name == "UnderlyingTick")
    {
        let hex: String = entry
            .fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        info.schemas.insert(entry.name.to_string(), hex);
    }
    Ok(info)
}

/// A failure of `cat` or `slice`.
#[derive(Debug, thiserror::Error)]
pub enum TapeToolError {
    /// Reading or writing a tape.
    #[error(transparent)]
    Tape(#[from] TapeError),
    /// Writing the output.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Writes the events that pass `filter` as JSON lines, each with a leading `"type"`
/// (`quote` or `tick`); returns how many.
pub fn cat(path: &Path, filter: &Filter, out: &mut impl Write) -> Result<u64, TapeToolError> {
    let mut written = 0;
    for ev in TapeReader::open(path)? {
        let ev = ev?;
        if !filter.keeps(&ev) {
            continue;
        }
        let (kind, body) = match &ev {
            RawEvent::Quote(q) => ("quote", serde_json::to_value(q)),
            RawEvent::Tick(t) => ("tick", serde_json::to_value(t)),
        };
        let mut line = serde_json::Map::new();
        line.insert("type".into(), kind.into());
        if let Ok(serde_json::Value::Object(fields)) = body {
            line.extend(fields);
        }
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// Copies the events that pass `filter` to a new tape at `out`; returns how many.
pub fn slice(path: &Path, filter: &Filter, out: &Path) -> Result<u64, TapeToolError> {
    let reader = TapeReader::open(path)?;
    // The slice is compressed as the tape it was cut from.
    let mut writer = TapeWriter::open(out, 0, 0, reader.codec())?;
    let mut written = 0;
    for ev in reader {
        let ev = ev?;
        if filter.keeps(&ev) {
            writer.append(&ev)?;
            written += 1;
        }
    }
    writer.commit()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_schemas::{RawQuote, UnderlyingTick};

    fn tick(t: i64, u: &str) -> RawEvent {
        RawEvent::Tick(UnderlyingTick {
            event_id: format!("t{u}{t}").into(),
            event_time: t,
            underlying: u.into(),
            source: "test".into(),
            price: 100.0,
            volume: 1,
            sector: None,
        })
    }

    fn quote(t: i64, u: &str) -> RawEvent {
        RawEvent::Quote(RawQuote {
            event_id: format!("q{u}{t}").into(),
            event_time: t,
            underlying: u.into(),
            source: "test".into(),
            symbol: format!("{u:<6}240119C00100000").into(),
            bid: 1.0,
            ask: 1.1,
            bid_size: 1,
            ask_size: 1,
            last: None,
            volume: 5,
            open_interest: 10,
            underlying_price: Some(100.0),
        })
    }

    fn tape(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("t.avro");
        let mut w = TapeWriter::open(&path, 0, 0, Default::default()).unwrap();
        for ev in [
            tick(10, "SPY"),
            quote(10, "SPY"),
            tick(10, "GME"),
            quote(20, "GME"),
            quote(20, "GME"),
            tick(30, "SPY"),
        ] {
            w.append(&ev).unwrap();
        }
        w.commit().unwrap();
        path
    }

    #[test]
    fn info_counts_by_kind_and_underlying() {
        let dir = tempfile::tempdir().unwrap();
        let i = info(&tape(dir.path())).unwrap();
        assert_eq!((i.events, i.quotes, i.ticks), (6, 3, 3));
        assert_eq!(
            (i.first_event_time, i.last_event_time),
            (Some(10), Some(30))
        );
        assert!(i.in_event_time_order);
        assert_eq!(i.codec, "zstandard");
        assert_eq!(
            i.underlyings["GME"],
            UnderlyingCounts {
                quotes: 2,
                ticks: 1
            }
        );
        assert_eq!(i.schemas.len(), 2);
    }

    #[test]
    fn cat_filters_and_slice_writes_a_tape_of_what_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = tape(dir.path());
        let filter = Filter {
            kind: Some(EventKind::Quote),
            underlying: Some("GME".into()),
            from: Some(15),
            to: Some(30),
        };
        let mut out = Vec::new();
        assert_eq!(cat(&path, &filter, &mut out).unwrap(), 2);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines
            .iter()
            .all(|l| l["type"] == "quote" && l["underlying"] == "GME"));
        let sliced = dir.path().join("s.avro");
        let spy = Filter {
            underlying: Some("SPY".into()),
            ..Default::default()
        };
        assert_eq!(slice(&path, &spy, &sliced).unwrap(), 3);
        assert_eq!(info(&sliced).unwrap().underlyings.len(), 1);
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        let open = 1_704_205_800_000_000; // 2024-01-02 09:30 New York
        assert_eq!(parse_time("2024-01-02 09:30").unwrap(), open);
        assert_eq!(parse_time("2024-01-02T09:30:00").unwrap(), open);
        assert_eq!(parse_time("2024-01-02T09:30:00-05:00").unwrap(), open);
        assert_eq!(parse_time(&open.to_string()).unwrap(), open);
        assert!(parse_time("yesterday").is_err());
        assert!(EventKind::parse("trades").is_err());
    }
}
