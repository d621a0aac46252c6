//! `optionflow replay` and `optionflow tape`: a run's tape replays to byte-identical outputs.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{read, BIN, SIGNALLING_SESSION};

fn optionflow(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn");
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().expect("optionflow runs")
}

#[test]
fn replaying_a_runs_tape_reproduces_its_outputs_byte_for_byte() {
    let run = tempfile::tempdir().unwrap();
    let live = optionflow(
        &["run"]
            .into_iter()
            .chain(SIGNALLING_SESSION)
            .chain(["--data-dir"])
            .collect::<Vec<_>>(),
        &[run.path()],
    );
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    assert!(
        !read(run.path(), "signals.jsonl").is_empty(),
        "the session must signal for the comparison to mean something"
    );

    // Golden outputs: a change that alters what seed 11 signals shows up here as a diff to
    // review, not only as a run/replay mismatch. `UPDATE_GOLDEN=1` rewrites them.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/seed11-60m-6u");
    for file in ["signals.jsonl", "decisions.jsonl", "alerts.jsonl"] {
        let path = golden.join(file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, read(run.path(), file)).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert!(
            read(run.path(), file) == expected,
            "{file} differs from {}; review the change, then UPDATE_GOLDEN=1",
            path.display()
        );
    }

    // From the data directory, and from the tape file itself.
    for input in [run.path().to_path_buf(), run.path().join("quotes.raw.avro")] {
        let out = tempfile::tempdir().unwrap();
        let replay = optionflow(&["replay", "--out"], &[out.path(), &input]);
        assert!(
            replay.status.success(),
            "{}",
            String::from_utf8_lossy(&replay.stderr)
        );
        for file in [
            "signals.jsonl",
            "explanations.jsonl",
            "decisions.jsonl",
            "alerts.jsonl",
            "rejected-normalize.jsonl",
            "rejected-greeks.jsonl",
        ] {
            assert!(
                read(run.path(), file) == read(out.path(), file),
                "{file} differs between the run and its replay"
            );
        }
        // A replay records nothing: its input is the tape.
        assert!(!out.path().join("quotes.raw.avro").exists());
    }

    // The replay benchmark replays every quote of the tape and reports what it cost in CPU
    // beside the wall clock.
    let bench = optionflow(&["bench", "--json", "--tape"], &[run.path()]);
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    let finished: serde_json::Value =
        serde_json::from_str(&read(run.path(), "finished.json")).unwrap();
    assert_eq!(figures["quotes"], finished["quotes"]);
    let (quotes, elapsed) = (
        figures["quotes"].as_f64().unwrap(),
        figures["elapsed_secs"].as_f64().unwrap(),
    );
    let cpu = figures["cpu_secs"].as_f64().unwrap();
    assert!(cpu > 0.0, "{figures}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(
        figures["cores_busy"].as_f64().unwrap(),
        cpu / elapsed
    ));
    assert!(close(
        figures["cpu_us_per_quote"].as_f64().unwrap(),
        1e6 * cpu / quotes
    ));

    // Outcomes label the run's signals; the fitted calibration is what consensus loads.
    let cal_dir = tempfile::tempdir().unwrap();
    let cal = cal_dir.path().join("calibration.json");
    let labelled = cal_dir.path().join("outcomes.jsonl");
    let fitted = optionflow(
        &["calibrate", "--horizon", "5m", "--horizon", "20m", "--out"],
        &[&cal, Path::new("--outcomes"), &labelled, run.path()],
    );
    assert!(
        fitted.status.success(),
        "{}",
        String::from_utf8_lossy(&fitted.stderr)
    );
    let outcomes: Vec<serde_json::Value> = std::fs::read_to_string(&labelled)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let signals = read(run.path(), "signals.jsonl").lines().count();
    assert_eq!(
        outcomes.len(),
        2 * signals,
        "one outcome per signal and horizon"
    );
    assert!(outcomes.iter().any(|o| o["hit"].is_boolean()));
    let cfg = cal_dir.path().join("calibrated.toml");
    std::fs::write(
        &cfg,
        format!(
            "[consensus]\ncalibration-file = {:?}\n",
            cal.display().to_string()
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let replay = optionflow(
        &["replay", "--config"],
        &[&cfg, Path::new("--out"), out.path(), run.path()],
    );
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let calibrated = read(out.path(), "signals.jsonl");
    assert!(
        calibrated
            .lines()
            .all(|l| l.contains("\"calibrated\":true")),
        "signals replayed with the fitted file carry calibrated probabilities"
    );

    // The run's own directory cannot receive the replay's outputs.
    let refused = optionflow(&["replay", "--out"], &[run.path(), run.path()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("being replayed"));
}

#[test]
fn tape_info_cat_and_slice_agree_with_the_run() {
    let run = tempfile::tempdir().unwrap();
    let live = optionflow(
        &[
            "run",
            "--duration",
            "5m",
            "--seed",
            "3",
            "--underlyings",
            "3",
            "--speed",
            "max",
            "--data-dir",
        ],
        &[run.path()],
    );
    assert!(live.status.success());
    let finished: serde_json::Value =
        serde_json::from_str(&read(run.path(), "finished.json")).unwrap();

    let info = optionflow(&["tape", "info", "--json"], &[run.path()]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["quotes"], finished["quotes"]);
    assert_eq!(info["underlyings"].as_object().unwrap().len(), 3);
    assert_eq!(info["in_event_time_order"], true);
    // Five minutes at one tick a second: 300 ticks per underlying.
    assert_eq!(info["ticks"], 900);

    let cat = optionflow(
        &[
            "tape",
            "cat",
            "--topic",
            "tick",
            "--underlying",
            "SPY",
            "--from",
            "2024-01-02 09:31",
            "--to",
            "2024-01-02 09:32",
        ],
        &[run.path()],
    );
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&cat.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 60, "one SPY tick per second for a minute");
    assert!(lines
        .iter()
        .all(|l| l["type"] == "tick" && l["underlying"] == "SPY"));

    let sliced = run.path().join("spy.avro");
    let slice = optionflow(
        &["tape", "slice", "--underlying", "SPY", "--out"],
        &[&sliced, run.path()],
    );
    assert!(
        slice.status.success(),
        "{}",
        String::from_utf8_lossy(&slice.stderr)
    );
    let info = optionflow(&["tape", "info", "--json"], &[&sliced]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        info["underlyings"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["SPY"]
    );

    let bad = optionflow(&["tape", "cat", "--topic", "trades"], &[run.path()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("quotes.raw"));
}
