//! `summary.json` and `trades.csv`: the metrics of one pass, defined in the README
//! ("Backtest").

use super::sim::{Outcome, Trade};
use chrono::TimeZone;
use serde::Serialize;
use std::collections::BTreeMap;

const MICROS_PER_DAY: f64 = 86_400e6;

/// Trades and hit rate of one score bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Trades whose signal scored in the bucket.
    pub trades: u64,
    /// Those with a positive P&L.
    pub wins: u64,
    /// `wins / trades`.
    pub hit_rate: f64,
}

/// `summary.json`. A metric that is undefined for the run (no trades, fewer than two daily
/// returns, a span under a day for CAGR, no losing trade for the profit factor) is `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// End equity / start equity − 1.
    pub total_return: f64,
    /// Compound annual growth over the tape's span (365.25-day years); null under a day.
    pub cagr: Option<f64>,
    /// Mean / standard deviation of daily returns × √252.
    pub sharpe: Option<f64>,
    /// Mean / downside deviation of daily returns × √252.
    pub sortino: Option<f64>,
    /// Largest fall from a peak of the equity marks, as a fraction of the peak.
    pub max_drawdown: f64,
    /// Share of trades with a positive P&L.
    pub hit_rate: Option<f64>,
    /// Gross profit / gross loss.
    pub profit_factor: Option<f64>,
    /// Mean holding time in days of event time.
    pub avg_hold_days: Option<f64>,
    /// Share of the tape's event time with at least one position open.
    pub exposure: f64,
    /// By 5-point bucket of the signal's composite score ("75-80", "80-85", …).
    pub hit_rate_by_score_bucket: BTreeMap<String, Bucket>,
    /// Closed trades.
    pub trades: u64,
    /// Starting equity, $.
    pub start_equity: f64,
    /// Final equity, $.
    pub end_equity: f64,
    /// Candidates not traded, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// The 5-point bucket of a composite score: `"75-80"`; 100 falls in `"95-100"`.
pub fn score_bucket(score: f64) -> String {
    let lo = ((score / 5.0).floor() * 5.0).clamp(0.0, 95.0) as i64;
    format!("{lo}-{}", lo + 5)
}

/// End-of-day equity: the last mark of each New York calendar day, after the starting equity.
pub fn daily_equity(out: &Outcome) -> Vec<f64> {
    let mut days: BTreeMap<chrono::NaiveDate, f64> = BTreeMap::new();
    for &(t, e) in &out.equity {
        days.insert(ny(t).date_naive(), e);
    }
    std::iter::once(out.start_equity)
        .chain(days.into_values())
        .collect()
}

/// The metrics of `out`.
pub fn summarize(out: &Outcome) -> Summary {
    let trades = &out.trades;
    let n = trades.len() as f64;
    let daily = daily_equity(out);
    let returns: Vec<f64> = daily.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let annualise = 252f64.sqrt();
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    let sharpe = (returns.len() >= 2)
        .then(|| {
            let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
                / (returns.len() - 1) as f64;
            mean / var.sqrt() * annualise
        })
        .filter(|x| x.is_finite());
    let sortino = (returns.len() >= 2)
        .then(|| {
            let down =
                returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / returns.len() as f64;
            mean / down.sqrt() * annualise
        })
        .filter(|x| x.is_finite());
    let total_return = out.end_equity / out.start_equity - 1.0;
    let cagr = out
        .span
        .map(|(a, b)| (b - a) as f64 / MICROS_PER_DAY / 365.25)
        .filter(|years| *years >= 1.0 / 365.25)
        .map(|years| (out.end_equity / out.start_equity).powf(1.0 / years) - 1.0)
        .filter(|x| x.is_finite());
    let mut peak = out.start_equity;
    let mut max_drawdown: f64 = 0.0;
    for &(_, e) in &out.equity {
        peak = peak.max(e);
        max_drawdown = max_drawdown.max((peak - e) / peak);
    }
    let wins = trades.iter().filter(|t| t.pnl > 0.0).count() as f64;
    let gross_profit: f64 = trades.iter().map(|t| t.pnl.max(0.0)).sum();
    let gross_loss: f64 = trades.iter().map(|t| (-t.pnl).max(0.0)).sum();
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    for t in trades {
        let b = buckets.entry(score_bucket(t.score)).or_insert(Bucket {
            trades: 0,
            wins: 0,
            hit_rate: 0.0,
        });
        b.trades += 1;
        b.wins += u64::from(t.pnl > 0.0);
        b.hit_rate = b.wins as f64 / b.trades as f64;
    }
    let exposure = out
        .span
        .map(|(a, b)| b - a)
        .filter(|d| *d > 0)
        .map_or(0.0, |d| out.exposed_micros as f64 / d as f64);
    Summary {
        total_return,
        cagr,
        sharpe,
        sortino,
        max_drawdown,
        hit_rate: (n > 0.0).then(|| wins / n),
        profit_factor: (gross_loss > 0.0).then(|| gross_profit / gross_loss),
        avg_hold_days: (n > 0.0).then(|| trades.iter().map(|t| t.hold_days).sum::<f64>() / n),
        exposure,
        hit_rate_by_score_bucket: buckets,
        trades: trades.len() as u64,
        start_equity: out.start_equity,
        end_equity: out.end_equity,
        skipped: out.skipped.clone(),
    }
}

/// Event time as a New York timestamp, RFC 3339 with offset.
pub fn ny(micros: i64) -> chrono::DateTime<chrono_tz::Tz> {
    chrono_tz::America::New_York
        .timestamp_micros(micros)
        .single()
        .unwrap_or_else(|| {
            chrono_tz::America::New_York
                .timestamp_micros(0)
                .single()
                .expect("the epoch exists")
        })
}

fn time(micros: i64) -> String {
    ny(micros).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The header of `trades.csv`.
pub const TRADES_HEADER: [&str; 16] = [
    "id",
    "signal_id",
    "underlying",
    "direction",
    "structure",
    "legs",
    "entry_time",
    "entry_price",
    "contracts",
    "exit_time",
    "exit_price",
    "exit_reason",
    "pnl",
    "return",
    "score",
    "hold_days",
];

/// `trades.csv`: one row per closed position, in the order they closed.
pub fn write_trades<W: std::io::Write>(trades: &[Trade], w: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(w);
    w.write_record(TRADES_HEADER)?;
    for t in trades {
        w.write_record([
            t.id.to_string(),
            t.signal_id.clone(),
            t.underlying.clone(),
            t.direction.clone(),
            t.structure.clone(),
            t.legs.clone(),
            time(t.entry_time),
            format!("{:.4}", t.entry_price),
            t.contracts.to_string(),
            time(t.exit_time),
            format!("{:.4}", t.exit_price),
            t.exit_reason.clone(),
            format!("{:.2}", t.pnl),
            format!("{:.6}", t.ret),
            format!("{:.2}", t.score),
            format!("{:.6}", t.hold_days),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_buckets_are_five_points_wide() {
        assert_eq!(score_bucket(75.0), "75-80");
        assert_eq!(score_bucket(79.99), "75-80");
        assert_eq!(score_bucket(80.0), "80-85");
        assert_eq!(score_bucket(100.0), "95-100");
    }

    #[test]
    fn metrics_from_a_known_equity_path() {
        let day = 86_400_000_000i64;
        let t0 = 1_704_207_600_000_000; // 2024-01-02 10:00 New York
        let trade = |pnl: f64, score: f64| Trade {
            id: 1,
            signal_id: "s".into(),
            underlying: "X".into(),
            direction: "bullish".into(),
            structure: "long-call".into(),
            legs: "+1 X".into(),
            entry_time: t0,
            entry_price: 1.0,
            contracts: 1,
            exit_time: t0 + day,
            exit_price: 1.0,
            exit_reason: "time-stop".into(),
            pnl,
            ret: 0.0,
            score,
            probability: 0.8,
            hold_days: 1.0,
        };
        let out = Outcome {
            trades: vec![trade(300.0, 77.0), trade(-100.0, 82.0), trade(100.0, 83.0)],
            equity: vec![
                (t0, 100.0),
                (t0 + day, 110.0),
                (t0 + 2 * day, 99.0),
                (t0 + 3 * day, 121.0),
            ],
            start_equity: 100.0,
            end_equity: 121.0,
            span: Some((t0, t0 + 3 * day)),
            exposed_micros: day,
            skipped: BTreeMap::new(),
            unusable_quotes: 0,
        };
        let s = summarize(&out);
        assert!((s.total_return - 0.21).abs() < 1e-12);
        assert!((s.max_drawdown - 0.1).abs() < 1e-12);
        assert!((s.exposure - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.hit_rate, Some(2.0 / 3.0));
        assert_eq!(s.profit_factor, Some(4.0));
        assert_eq!(s.hit_rate_by_score_bucket["80-85"].trades, 2);
        assert_eq!(s.hit_rate_by_score_bucket["80-85"].hit_rate, 0.5);
        // Daily returns: start→day 1 (0%), +10%, −10%, +22.2%.
        let r = [0.0, 0.1, -0.1, 121.0 / 99.0 - 1.0];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((s.sharpe.unwrap() - mean / sd * 252f64.sqrt()).abs() < 1e-9);
        let dd = (0.01f64 / 4.0).sqrt();
        assert!((s.sortino.unwrap() - mean / dd * 252f64.sqrt()).abs() < 1e-9);
        let years = 3.0 / 365.25;
        assert!((s.cagr.unwrap() - (1.21f64.powf(1.0 / years) - 1.0)).abs() < 1e-6);
    }
}
