//! `optionflow import`: vendor and generic files become a tape in event-time order, bad rows are
//! reported with file and line, and the tape replays.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_optionflow");

fn optionflow(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("optionflow runs")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Imports `files`, checks it succeeded, and returns the stdout summary and the tape.
fn import(dir: &Path, format: &str, files: &[&Path], extra: &[&str]) -> (String, PathBuf) {
    let tape = dir.join(format!("{format}.avro"));
    let mut args = vec![
        "import",
        "--format",
        format,
        "--out",
        tape.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = optionflow(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), tape)
}

/// The tape, one compact line per event: `time underlying tick price volume` or
/// `time underlying symbol bid ask last volume oi underlying_price`.
fn events(tape: &Path) -> Vec<String> {
    let out = optionflow(&["tape", "cat", tape.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["source"], "file");
            assert_eq!(v["event_id"].as_str().unwrap().len(), 32);
            let (t, u) = (&v["event_time"], v["underlying"].as_str().unwrap());
            if v["type"] == "tick" {
                format!("{t} {u} tick {} {}", v["price"], v["volume"])
            } else {
                format!(
                    "{t} {u} {} {} {} {} {} {} {}",
                    v["symbol"].as_str().unwrap(),
                    v["bid"],
                    v["ask"],
                    v["last"],
                    v["volume"],
                    v["open_interest"],
                    v["underlying_price"]
                )
            }
        })
        .collect()
}

fn replays(dir: &Path, tape: &Path) {
    let out_dir = dir.join(format!(
        "replay-{}",
        tape.file_stem().unwrap().to_string_lossy()
    ));
    let out = optionflow(&[
        "replay",
        "--out",
        out_dir.to_str().unwrap(),
        tape.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "replay: {}", text(&out.stderr));
}

#[test]
fn generic_csv_is_sorted_into_ticks_and_quotes_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("generic.csv");
    let (summary, tape) = import(dir.path(), "generic", &[&file], &[]);
    // 10:00 and 10:01 New York (EST) are 15:00 and 15:01 UTC; MSFT's 15:00:30Z sits between.
    let (t0, t1, t2) = (
        1_704_207_600_000_000_i64,
        1_704_207_630_000_000_i64,
        1_704_207_660_000_000_i64,
    );
    assert_eq!(
        events(&tape),
        [
            format!("{t0} AAPL tick 192.1 0"),
            format!("{t0} AAPL AAPL  240119C00185000 8.1 8.25 8.2 150 4200 192.1"),
            format!("{t0} AAPL AAPL  240119C00190000 4.35 4.45 4.4 900 12000 192.1"),
            format!("{t0} AAPL AAPL  240119C00195000 1.8 1.86 null 320 8800 192.1"),
            format!("{t0} AAPL AAPL  240119P00185000 0.92 0.97 0.95 220 6100 192.1"),
            format!("{t0} AAPL AAPL  240119P00190000 2.05 2.12 2.1 410 9100 192.1"),
            format!("{t1} MSFT tick 376.4 0"),
            format!("{t1} MSFT MSFT  240119C00375000 9.8 9.95 9.9 60 5100 376.4"),
            format!("{t2} AAPL tick 192.35 0"),
            format!("{t2} AAPL AAPL  240119C00185000 8.3 8.45 null 12 4200 192.35"),
            format!("{t2} AAPL AAPL  240119C00190000 4.5 4.6 4.55 75 12000 192.35"),
            format!("{t2} AAPL AAPL  240119C00195000 1.9 1.97 null 40 8800 192.35"),
            // Crossed: imported as it is, for normalize to reject with its reason.
            format!("{t2} AAPL AAPL  240119P00185000 1.1 1.0 null 5 6100 192.35"),
            format!("{t2} AAPL AAPL  240119P00190000 1.95 2.02 null 30 9100 192.35"),
        ]
    );
    let f = file.display();
    assert!(summary.contains("imported 11 of 13 rows"), "{summary}");
    assert!(summary.contains("2 bad rows"), "{summary}");
    assert!(
        summary.contains(&format!(
            "{f}:7: right \"straddle\" is not call, put, C or P"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{f}:13: strike \"abc\" is not a number")),
        "{summary}"
    );
    replays(dir.path(), &tape);
    let rejected =
        std::fs::read_to_string(dir.path().join("replay-generic/rejected-normalize.jsonl"))
            .unwrap();
    assert!(rejected.contains("crossed_market"), "{rejected}");
}

#[test]
fn cboe_eod_quotes_at_1545_with_the_underlying_mid() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("cboe-eod.csv");
    let (summary, tape) = import(dir.path(), "cboe-eod", &[&file], &[]);
    // 15:45 EST on 2024-01-02 and 2024-01-03.
    let (d1, d2) = (1_704_228_300_000_000_i64, 1_704_314_700_000_000_i64);
    assert_eq!(
        events(&tape),
        [
            format!("{d1} SPX tick 4742.3 0"),
            format!("{d1} SPX SPX   240119C04750000 51.2 52.4 null 0 8800 4742.3"),
            format!("{d1} SPX SPXW  240105C04700000 54.1 55.2 55.5 812 1530 4742.3"),
            format!("{d1} SPX SPXW  240105C04750000 21.8 22.6 22.0 3011 3120 4742.3"),
            format!("{d1} SPX SPXW  240105P04700000 3.1 3.3 4.2 2410 2044 4742.3"),
            format!("{d1} SPX SPXW  240105P04750000 29.9 30.8 30.1 1900 1710 4742.3"),
            format!("{d2} SPX tick 4710.4 0"),
            format!("{d2} SPX SPXW  240105C04700000 25.1 26.0 26.4 1405 2011 4710.4"),
            format!("{d2} SPX SPXW  240105C04750000 5.0 5.4 5.2 2811 4020 4710.4"),
            format!("{d2} SPX SPXW  240105P04700000 14.5 15.1 14.8 3920 2601 4710.4"),
            format!("{d2} SPX SPXW  240105P04750000 43.9 45.2 44.8 611 1800 4710.4"),
        ]
    );
    let f = file.display();
    assert!(summary.contains("imported 9 of 11 rows"), "{summary}");
    assert!(
        summary.contains(&format!("{f}:7: option_type \"X\"")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{f}:8: expiration \"01/19/24\"")),
        "{summary}"
    );
    replays(dir.path(), &tape);
}

#[test]
fn deltaneutral_quotes_at_the_close_of_each_data_date() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("deltaneutral.csv");
    let (summary, tape) = import(dir.path(), "deltaneutral", &[&file], &[]);
    // 16:00 EST on 2015-01-02 and 2015-01-05.
    let (d1, d2) = (1_420_232_400_000_000_i64, 1_420_491_600_000_000_i64);
    assert_eq!(
        events(&tape),
        [
            format!("{d1} SPY tick 205.43 0"),
            format!("{d1} SPY SPY   150220C00200000 8.04 8.12 8.1 1021 30411 205.43"),
            format!("{d1} SPY SPY   150220C00205000 4.62 4.68 4.66 3216 21044 205.43"),
            format!("{d1} SPY SPY   150220C00210000 2.03 2.07 2.05 4410 40122 205.43"),
            format!("{d1} SPY SPY   150220P00200000 2.89 2.94 2.91 5210 80410 205.43"),
            format!("{d1} SPY SPY   150220P00205000 4.88 4.95 null 0 50111 205.43"),
            format!("{d2} SPY tick 201.72 0"),
            format!("{d2} SPY SPY   150220C00200000 5.3 5.38 5.35 2011 30950 201.72"),
            format!("{d2} SPY SPY   150220C00205000 2.74 2.8 2.77 5010 22801 201.72"),
            format!("{d2} SPY SPY   150220P00200000 3.92 3.98 3.95 6020 81002 201.72"),
            format!("{d2} SPY SPY   150220P00205000 6.52 6.63 6.58 1403 50400 201.72"),
        ]
    );
    let f = file.display();
    assert!(summary.contains("imported 9 of 11 rows"), "{summary}");
    assert!(
        summary.contains(&format!("{f}:7: Strike \"ten\" is not a number")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{f}:12: DataDate \"1/32/2015\"")),
        "{summary}"
    );
    replays(dir.path(), &tape);
}

#[test]
fn daily_bars_are_ticks_at_the_close_named_by_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("GME.csv");
    let (summary, tape) = import(dir.path(), "daily-bars", &[&file], &[]);
    let got = events(&tape);
    assert_eq!(got.len(), 9);
    // 2021-01-19 16:00 EST, the close (not Adj Close) and volume.
    assert_eq!(got[0], "1611090000000000 GME tick 39.36 74721900");
    assert_eq!(got[8], "1612299600000000 GME tick 90.0 78183100");
    let f = file.display();
    assert!(
        summary.contains(&format!("{f}:8: Close \"null\" is not a number")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{f}:11: Date \"2021-02-30\"")),
        "{summary}"
    );
    replays(dir.path(), &tape);

    let renamed = dir.path().join("renamed");
    std::fs::create_dir(&renamed).unwrap();
    let (_, tape) = import(&renamed, "daily-bars", &[&file], &["--underlying", "gme2"]);
    assert!(events(&tape)[0].contains(" GME2 tick "));
}

#[test]
fn unusable_input_fails_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.avro");
    let o = out.to_str().unwrap();
    let generic = fixture("generic.csv");
    let g = generic.to_str().unwrap();

    let unknown = optionflow(&["import", "--format", "parquet", "--out", o, g]);
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("unknown format \"parquet\""));

    // A generic file read as Cboe: the first missing column is named.
    let wrong = optionflow(&["import", "--format", "cboe-eod", "--out", o, g]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("no column \"underlying_symbol\""),
        "{}",
        text(&wrong.stderr)
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "Date,Open,High,Low,Close,Volume\nyesterday,1,1,1,1,1\n",
    )
    .unwrap();
    let none = optionflow(&[
        "import",
        "--format",
        "daily-bars",
        "--out",
        o,
        bad.to_str().unwrap(),
    ]);
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains("nothing imported"),
        "{}",
        text(&none.stderr)
    );
    assert!(text(&none.stdout).contains("bad.csv:2: Date \"yesterday\""));
    assert!(!out.exists());
}
