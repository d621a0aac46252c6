//! `report.html`: five Plotly charts in one page, with plotly.js embedded (from the `plotly`
//! crate, which bundles it), so the file opens offline.

use super::sim::Outcome;
use super::summary::{ny, Summary};
use plotly::common::{Fill, Mode, Title};
use plotly::layout::Axis;
use plotly::{Bar, Histogram, Layout, Plot, Scatter};
use std::collections::BTreeMap;

/// Calibration bins: the signals' probability in tenths.
const CALIBRATION_BINS: usize = 10;

fn layout(title: &str, x: &str, y: &str) -> Layout {
    Layout::new()
        .title(Title::with_text(title))
        .x_axis(Axis::new().title(Title::with_text(x)))
        .y_axis(Axis::new().title(Title::with_text(y)))
        .height(420)
}

/// The charts of one backtest, as a self-contained HTML page.
pub fn render(out: &Outcome, summary: &Summary) -> String {
    let times: Vec<String> = out
        .equity
        .iter()
        .map(|(t, _)| ny(*t).format("%Y-%m-%d %H:%M:%S").to_string())
        .collect();
    let equity: Vec<f64> = out.equity.iter().map(|(_, e)| *e).collect();

    let mut curve = Plot::new();
    curve.add_trace(
        Scatter::new(times.clone(), equity.clone())
            .mode(Mode::Lines)
            .name("equity"),
    );
    curve.set_layout(layout("Equity", "event time (New York)", "$"));

    let mut peak = out.start_equity;
    let drawdown: Vec<f64> = equity
        .iter()
        .map(|e| {
            peak = peak.max(*e);
            -(peak - e) / peak * 100.0
        })
        .collect();
    let mut dd = Plot::new();
    dd.add_trace(
        Scatter::new(times, drawdown)
            .mode(Mode::Lines)
            .fill(Fill::ToZeroY)
            .name("drawdown"),
    );
    dd.set_layout(layout(
        "Drawdown",
        "event time (New York)",
        "% below the peak",
    ));

    let returns: Vec<f64> = out.trades.iter().map(|t| t.ret * 100.0).collect();
    let mut dist = Plot::new();
    dist.add_trace(Histogram::new(returns).name("trades"));
    dist.set_layout(layout(
        "Trade returns",
        "return on the entry cost (%)",
        "trades",
    ));

    let buckets: Vec<String> = summary.hit_rate_by_score_bucket.keys().cloned().collect();
    let rates: Vec<f64> = summary
        .hit_rate_by_score_bucket
        .values()
        .map(|b| b.hit_rate * 100.0)
        .collect();
    let counts: Vec<String> = summary
        .hit_rate_by_score_bucket
        .values()
        .map(|b| format!("{} trades", b.trades))
        .collect();
    let mut by_score = Plot::new();
    by_score.add_trace(Bar::new(buckets, rates).text_array(counts).name("hit rate"));
    by_score.set_layout(layout(
        "Hit rate by score bucket",
        "composite score",
        "% of trades with a profit",
    ));

    // Calibration: the signals' probability against the share of their trades that made money.
    let mut bins: BTreeMap<usize, (f64, u64, u64)> = BTreeMap::new();
    for t in &out.trades {
        let bin = ((t.probability * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        let b = bins.entry(bin).or_default();
        b.0 += t.probability;
        b.1 += 1;
        b.2 += u64::from(t.pnl > 0.0);
    }
    let predicted: Vec<f64> = bins.values().map(|(p, n, _)| p / *n as f64).collect();
    let realised: Vec<f64> = bins
        .values()
        .map(|(_, n, w)| *w as f64 / *n as f64)
        .collect();
    let labels: Vec<String> = bins
        .values()
        .map(|(_, n, _)| format!("{n} trades"))
        .collect();
    let mut calibration = Plot::new();
    calibration.add_trace(
        Scatter::new(vec![0.0, 1.0], vec![0.0, 1.0])
            .mode(Mode::Lines)
            .name("perfectly calibrated"),
    );
    calibration.add_trace(
        Scatter::new(predicted, realised)
            .mode(Mode::LinesMarkers)
            .text_array(labels)
            .name("signals"),
    );
    calibration.set_layout(layout(
        "Calibration",
        "signal probability",
        "share of trades with a profit",
    ));

    let fmt = |x: Option<f64>, pct: bool| match x {
        Some(v) if pct => format!("{:.2}%", v * 100.0),
        Some(v) => format!("{v:.2}"),
        None => "–".to_string(),
    };
    let rows = [
        ("Trades", summary.trades.to_string()),
        ("Start equity", format!("${:.2}", summary.start_equity)),
        ("End equity", format!("${:.2}", summary.end_equity)),
        ("Total return", fmt(Some(summary.total_return), true)),
        ("CAGR", fmt(summary.cagr, true)),
        ("Sharpe", fmt(summary.sharpe, false)),
        ("Sortino", fmt(summary.sortino, false)),
        ("Max drawdown", fmt(Some(summary.max_drawdown), true)),
        ("Hit rate", fmt(summary.hit_rate, true)),
        ("Profit factor", fmt(summary.profit_factor, false)),
        ("Average hold (days)", fmt(summary.avg_hold_days, false)),
        ("Exposure", fmt(Some(summary.exposure), true)),
    ];
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>\n"))
        .collect();
    let charts = [
        (curve, "equity-curve"),
        (dd, "drawdown"),
        (dist, "return-distribution"),
        (by_score, "hit-rate-by-score"),
        (calibration, "calibration"),
    ]
    .iter()
    .map(|(plot, id)| plot.to_inline_html(Some(id)))
    .collect::<Vec<_>>()
    .join("\n");
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>optionflow backtest</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}} th{{text-align:left;padding-right:2em}}</style>\n\
         {js}\n</head>\n<body>\n<h1>optionflow backtest</h1>\n<table>\n{table}</table>\n{charts}\n</body>\n</html>\n",
        js = Plot::offline_js_sources(),
    )
}
