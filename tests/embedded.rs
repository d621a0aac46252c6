//! End-to-end tests of `optionflow run` in the embedded mode: the real binary, real files.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_optionflow");
/// A session long enough for the scheduled GME squeeze (+10m to +25m) and SPY crash (+40m to +55m).
const SESSION: [&str; 6] = ["--duration", "60m", "--seed", "7", "--underlyings", "5"];
/// 2024-01-02 09:30 America/New_York, the simulator's default first tick, in µs.
const START: i64 = 1_704_205_800_000_000;
const MINUTE: i64 = 60_000_000;

fn run(data_dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "max", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("optionflow runs")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The uninterrupted reference session, run once for every test that compares against it.
fn reference() -> &'static (tempfile::TempDir, Output) {
    static REF: OnceLock<(tempfile::TempDir, Output)> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), &[]);
        assert!(
            out.status.success(),
            "reference run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, out)
    })
}

#[test]
fn a_session_produces_narrated_alerts_deterministically() {
    let (dir, out) = reference();
    let alerts = lines(&read(dir.path(), "alerts.jsonl"));
    assert!(
        !alerts.is_empty(),
        "a session with a squeeze and a crash must alert"
    );
    for a in &alerts {
        for field in ["headline", "text", "markdown"] {
            assert!(
                a[field].as_str().is_some_and(|s| s.len() > 20),
                "alert without a {field}: {a}"
            );
        }
    }
    // One readable stdout line per alert.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains("ALERT")).count(),
        alerts.len()
    );

    let again = tempfile::tempdir().unwrap();
    let out2 = run(again.path(), &[]);
    assert!(out2.status.success());
    for file in [
        "alerts.jsonl",
        "signals.jsonl",
        "decisions.jsonl",
        "rejected-normalize.jsonl",
    ] {
        assert!(
            read(dir.path(), file) == read(again.path(), file),
            "{file} differs between two runs of one seed"
        );
    }
    // Another seed is another market.
    let other = tempfile::tempdir().unwrap();
    let out3 = Command::new(BIN)
        .args([
            "run",
            "--duration",
            "60m",
            "--seed",
            "8",
            "--underlyings",
            "5",
            "--speed",
            "max",
            "--data-dir",
        ])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(out3.status.success());
    assert_ne!(
        read(dir.path(), "signals.jsonl"),
        read(other.path(), "signals.jsonl")
    );
}

#[test]
fn the_squeeze_raises_a_bullish_signal_on_its_underlying_within_its_window() {
    let (dir, _) = reference();
    let signals = lines(&read(dir.path(), "signals.jsonl"));
    let in_window = |s: &serde_json::Value, u: &str, from: i64, to: i64| {
        s["underlying"] == u
            && (START + from * MINUTE..=START + to * MINUTE)
                .contains(&s["window_end"].as_i64().unwrap())
    };
    let squeeze: Vec<_> = signals
        .iter()
        .filter(|s| in_window(s, "GME", 10, 26))
        .collect();
    assert!(
        !squeeze.is_empty(),
        "no GME signal in the squeeze window; signals: {signals:#?}"
    );
    assert!(
        squeeze.iter().any(|s| s["direction"] == "bullish"),
        "{squeeze:#?}"
    );
    let crash: Vec<_> = signals
        .iter()
        .filter(|s| in_window(s, "SPY", 40, 56))
        .collect();
    assert!(
        crash
            .iter()
            .any(|s| s["direction"] == "bearish" || s["direction"] == "volatility"),
        "{crash:#?}"
    );
    // Bad quotes from the simulator are rejected with a reason, not dropped.
    let rejected = lines(&read(dir.path(), "rejected-normalize.jsonl"));
    assert!(rejected
        .iter()
        .any(|r| r["reason_code"] == "crossed_market"));
    assert!(rejected
        .iter()
        .all(|r| r["reason"].as_str().is_some_and(|s| !s.is_empty())));
}

#[test]
fn kill_9_mid_run_then_resume_equals_the_uninterrupted_run() {
    let (reference_dir, _) = reference();
    let dir = tempfile::tempdir().unwrap();
    // Paced so the kill lands mid-session: 60 minutes of market time at 150x is 24 s.
    let mut child = Command::new(BIN)
        .arg("run")
        .args(SESSION)
        .args(["--speed", "150", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let current = dir.path().join("checkpoints/CURRENT");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !current.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Past the first checkpoint, and mid-way between two.
    std::thread::sleep(Duration::from_millis(3300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !dir.path().join("finished.json").exists(),
        "the run finished before it was killed"
    );
    let resumed = run(dir.path(), &[]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resumed from checkpoint"));
    for file in ["alerts.jsonl", "signals.jsonl", "decisions.jsonl"] {
        let (a, b) = (read(reference_dir.path(), file), read(dir.path(), file));
        assert!(
            a == b,
            "{file}: resumed run differs from the uninterrupted one"
        );
    }
    let ids: Vec<_> = lines(&read(dir.path(), "alerts.jsonl"))
        .iter()
        .map(|a| a["event_id"].clone())
        .collect();
    let mut unique = ids.clone();
    unique.sort_by_key(|v| v.to_string());
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "an alert was written twice");
}

#[test]
fn a_finished_session_says_so_and_other_parameters_are_refused() {
    let (dir, _) = reference();
    let out = run(dir.path(), &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already finished"));
    let other = Command::new(BIN)
        .args([
            "run",
            "--duration",
            "60m",
            "--seed",
            "99",
            "--underlyings",
            "5",
            "--speed",
            "max",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("other parameters"));
}

#[test]
fn bad_arguments_and_config_fail_with_a_clear_message() {
    let scratch = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--speed", "0"], "--speed"),
        (&["--underlyings", "50"], "choose 1 to 20"),
        (&["--duration", "5y"], "unknown unit"),
        (
            &["--config", "/nonexistent/optionflow.toml"],
            "cannot read config file",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(BIN)
            .arg("run")
            .args(args)
            .arg("--data-dir")
            .arg(scratch.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let cfg = scratch.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[score]\nwindow-secs = 0\n[consensus]\nmin-agreeing = 0\n[dispach]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(scratch.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dispach"),
        "unknown section is named"
    );
}

#[test]
fn schemas_prints_every_schema_with_its_fingerprint() {
    let out = Command::new(BIN).arg("schemas").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "RawQuote",
        "UnderlyingTick",
        "NormalizedQuote",
        "RejectedQuote",
        "ContractGreeks",
        "FactorScore",
        "Signal",
        "Explanation",
        "RiskDecision",
        "Alert",
    ] {
        assert!(text.contains(&format!("# {name} ")), "{name} missing");
    }
    assert_eq!(text.matches("fingerprint CRC-64-AVRO").count(), 10);
}
