//! `optionflow silence`: a silence added before or during a run mutes the matching alert, the
//! muted decision is listed with the silence in `suppressed.jsonl`, and a replay of the data
//! directory mutes the same alert.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{read, BIN};

/// Seed 11 with 6 underlyings alerts once in its first 15 minutes: GME bullish at 09:41.
const SESSION: [&str; 6] = ["--duration", "15m", "--seed", "11", "--underlyings", "6"];

fn optionflow(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("optionflow runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_lines(dir: &Path, file: &str) -> Vec<serde_json::Value> {
    read(dir, file)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn dir_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_string()
}

#[test]
fn a_silence_mutes_the_matching_alert_and_the_replay_mutes_it_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, muted, replayed) = (
        tmp.path().join("plain"),
        tmp.path().join("muted"),
        tmp.path().join("replayed"),
    );
    let run = |dir: &Path| {
        let mut args = vec!["run", "--speed", "max", "--data-dir"];
        let d = dir_arg(dir);
        args.push(&d);
        args.extend(SESSION);
        optionflow(&args);
    };
    run(&plain);
    let alerts = json_lines(&plain, "alerts.jsonl");
    assert_eq!(alerts.len(), 1, "the unmuted session alerts once");
    assert_eq!(alerts[0]["underlying"], "GME");

    let d = dir_arg(&muted);
    let added = optionflow(&[
        "silence",
        "add",
        "--data-dir",
        &d,
        "--underlying",
        "GME",
        "--direction",
        "bullish",
        "--from",
        "2024-01-02 09:30",
        "--duration",
        "1d",
        "--comment",
        "trading halt",
    ]);
    assert!(String::from_utf8_lossy(&added.stdout).starts_with("added s1"));
    let listed =
        String::from_utf8_lossy(&optionflow(&["silence", "list", "--data-dir", &d]).stdout)
            .to_string();
    assert!(
        listed.contains("s1") && listed.contains("underlying=GME direction=bullish"),
        "{listed}"
    );
    run(&muted);
    assert_eq!(read(&muted, "alerts.jsonl"), "", "the alert is muted");
    let decisions = json_lines(&muted, "decisions.jsonl");
    let suppressed = json_lines(&muted, "suppressed.jsonl");
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["reason_code"], "silenced");
    assert_eq!(suppressed[0]["stage"], "dispatch");
    assert_eq!(suppressed[0]["symbol"], "default", "the route");
    assert_eq!(suppressed[0]["input_event_id"], decisions[0]["event_id"]);
    let reason = suppressed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("s1") && reason.contains("trading halt"),
        "{reason}"
    );
    // Everything upstream of dispatch is untouched by the silence.
    assert_eq!(
        read(&muted, "decisions.jsonl"),
        read(&plain, "decisions.jsonl")
    );

    optionflow(&["replay", &d, "--out", &dir_arg(&replayed)]);
    assert_eq!(read(&replayed, "alerts.jsonl"), "");
    assert_eq!(
        read(&replayed, "suppressed.jsonl"),
        read(&muted, "suppressed.jsonl")
    );

    // Expiring it ends it (the file keeps it, expired).
    optionflow(&["silence", "expire", "s1", "--data-dir", &d]);
    let listed =
        String::from_utf8_lossy(&optionflow(&["silence", "list", "--data-dir", &d]).stdout)
            .to_string();
    assert!(listed.contains("expired"), "{listed}");
}

#[test]
fn a_silence_added_while_the_session_runs_takes_effect() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dir_arg(tmp.path());
    // 15 minutes of market time at 60×: the GME alert is due about 11 s in.
    let mut args = vec!["run", "--speed", "60", "--data-dir", &d];
    args.extend(SESSION);
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint: the silence's default start is the session's event time.
    while !tmp.path().join("checkpoints/CURRENT").exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    optionflow(&[
        "silence",
        "add",
        "--data-dir",
        &d,
        "--underlying",
        "GME",
        "--duration",
        "1h",
    ]);
    let added_after = started.elapsed();
    assert!(child.wait().unwrap().success());
    assert!(
        added_after < Duration::from_secs(8),
        "the silence went in {added_after:?} after the start: too late to test the reload"
    );
    assert_eq!(read(tmp.path(), "alerts.jsonl"), "");
    let suppressed = json_lines(tmp.path(), "suppressed.jsonl");
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["reason_code"], "silenced");
}
