//! The scenario tapes of `replay/scenarios/` (issue 6, "Known events"): each rebuilds byte for
//! byte from its committed scenario file and bars, and its replay through every stage flags the
//! event on the right underlying in time, and nothing in the calm month before.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{read, BIN};

/// The composite a known event must reach.
const EVENT_COMPOSITE: f64 = 90.0;

/// One committed scenario and what its replay must show.
struct Scenario {
    /// The scenario file and its tape, under `replay/scenarios/`.
    spec: &'static str,
    tape: &'static str,
    /// The underlying that must signal, and the session by whose close it must.
    underlying: &'static str,
    by: &'static str,
    /// The calm month (first day, first day of the next month): no signal ≥ 90 on anything.
    calm: (&'static str, &'static str),
}

const GME_AMC: Scenario = Scenario {
    spec: "gme-amc-2021-01.toml",
    tape: "gme-amc-2021-01.avro",
    underlying: "GME",
    by: "2021-01-22",
    calm: ("2020-12-01", "2021-01-01"),
};

const SPY: Scenario = Scenario {
    spec: "spy-2020-02.toml",
    tape: "spy-2020-02.avro",
    underlying: "SPY",
    by: "2020-02-24",
    calm: ("2020-01-01", "2020-02-01"),
};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("replay/scenarios")
}

/// `date` at `hour`:00 New York, as event-time µs.
fn ny(date: &str, hour: u32) -> i64 {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("a date");
    New_York
        .from_local_datetime(&d.and_hms_opt(hour, 0, 0).expect("a time"))
        .single()
        .expect("unambiguous")
        .timestamp_micros()
}

/// The tape's replay (with the scenario config shipped beside the tapes): its signals as
/// (underlying, event time, composite).
fn replay(s: &Scenario) -> Vec<(String, i64, f64)> {
    let dir = scenarios_dir();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(BIN)
        .arg("replay")
        .arg(dir.join(s.tape))
        .arg("--out")
        .arg(out.path())
        .arg("--config")
        .arg(dir.join("known-events.toml"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("optionflow runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    read(out.path(), "signals.jsonl")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a signal");
            (
                v["underlying"].as_str().expect("underlying").to_string(),
                v["event_time"].as_i64().expect("event_time"),
                v["composite"].as_f64().expect("composite"),
            )
        })
        .collect()
}

fn check_event(s: &Scenario) {
    let signals = replay(s);
    let strong: Vec<&(String, i64, f64)> = signals
        .iter()
        .filter(|(_, _, c)| *c >= EVENT_COMPOSITE)
        .collect();
    let by = ny(s.by, 16);
    assert!(
        strong.iter().any(|(u, t, _)| u == s.underlying && *t <= by),
        "no {} signal with composite >= {EVENT_COMPOSITE} by the close of {}; signals >= \
         {EVENT_COMPOSITE}: {strong:?}",
        s.underlying,
        s.by
    );
    let (from, to) = (ny(s.calm.0, 0), ny(s.calm.1, 0));
    let calm: Vec<_> = strong
        .iter()
        .filter(|(_, t, _)| (from..to).contains(t))
        .collect();
    assert!(
        calm.is_empty(),
        "signals >= {EVENT_COMPOSITE} in the calm month {}: {calm:?}",
        s.calm.0
    );
}

#[test]
fn the_gme_squeeze_is_flagged_by_2021_01_22_and_december_2020_is_quiet() {
    check_event(&GME_AMC);
}

#[test]
fn the_spy_crash_is_flagged_by_2020_02_24_and_january_2020_is_quiet() {
    check_event(&SPY);
}

#[test]
fn the_committed_tapes_rebuild_byte_for_byte_and_say_they_are_synthetic() {
    let dir = scenarios_dir();
    for s in [GME_AMC, SPY] {
        let out = tempfile::tempdir().unwrap();
        let rebuilt = out.path().join(s.tape);
        let run = Command::new(BIN)
            .args(["scenario", "build"])
            .arg(dir.join(s.spec))
            .arg("--out")
            .arg(&rebuilt)
            .output()
            .expect("optionflow runs");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let committed = std::fs::read(dir.join(s.tape)).unwrap();
        let fresh = std::fs::read(&rebuilt).unwrap();
        assert!(
            committed == fresh,
            "replay/scenarios/{} differs from a rebuild of {} ({} vs {} bytes): rebuild it with \
             `optionflow scenario build replay/scenarios/{} --out replay/scenarios/{} --force` \
             and commit it with the change that moved it",
            s.tape,
            s.spec,
            committed.len(),
            fresh.len(),
            s.spec,
            s.tape
        );
        let label = b"SYNTHESISED";
        assert!(
            committed.windows(label.len()).any(|w| w == label),
            "{}'s header must label its chains synthetic",
            s.tape
        );
        assert!(
            committed.len() < 3_000_000,
            "{} is {} bytes; keep scenario tapes under 3 MB",
            s.tape,
            committed.len()
        );
    }
}
