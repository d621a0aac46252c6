//! `optionflow backtest`: a simulated session's tape, backtested twice, gives the same trades and
//! summary, and a report that opens offline.

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
    let out = cmd.output().expect("optionflow runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_backtest_of_a_run_writes_trades_summary_and_an_offline_report_deterministically() {
    let run = tempfile::tempdir().unwrap();
    optionflow(
        &["run"]
            .into_iter()
            .chain(SIGNALLING_SESSION)
            .chain(["--data-dir"])
            .collect::<Vec<_>>(),
        &[run.path()],
    );
    let outs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for out in &outs {
        optionflow(&["backtest", "--out"], &[out.path(), run.path()]);
    }
    let o = outs[0].path();
    // The replay inside the backtest is the run's pipeline: same decisions.
    assert_eq!(
        read(run.path(), "decisions.jsonl"),
        read(&o.join("replay"), "decisions.jsonl")
    );

    let summary: serde_json::Value = serde_json::from_str(&read(o, "summary.json")).unwrap();
    for key in [
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "hit_rate",
        "profit_factor",
        "avg_hold_days",
        "exposure",
        "hit_rate_by_score_bucket",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    let trades = summary["trades"].as_u64().unwrap();
    assert!(trades > 0, "this seed's approved signals must trade");

    let csv = read(o, "trades.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 16);
    assert_eq!(header[0], "id");
    assert_eq!(header[header.len() - 1], "hold_days");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, trades);
    let pnl_col = header.iter().position(|h| *h == "pnl").unwrap();
    let pnl: f64 = rows
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{r:?}");
            r[pnl_col].parse::<f64>().unwrap()
        })
        .sum();
    let equity =
        summary["end_equity"].as_f64().unwrap() - summary["start_equity"].as_f64().unwrap();
    assert!(
        (pnl - equity).abs() < 0.01 * trades as f64,
        "{pnl} vs {equity}"
    );

    let html = read(o, "report.html");
    assert!(html.contains("Plotly.newPlot(\"equity-curve\""));
    assert!(html.contains("Plotly.newPlot(\"calibration\""));
    assert!(
        !html.contains("<script src=\"http"),
        "the report must open offline"
    );

    for file in ["trades.csv", "summary.json"] {
        assert!(
            read(o, file) == read(outs[1].path(), file),
            "{file} differs between two backtests"
        );
    }
}
