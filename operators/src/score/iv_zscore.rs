//! IV z-score: are the out-of-the-money wings' implied vols far from their own history?
//!
//! Each near-the-money, out-of-the-money contract quoted in the window is scored twice:
//! - against its **own** IV history (the primary score), and
//! - against the history of its **(tenor, moneyness) bucket**: the median IV of every contract in
//!   that bucket at past window closes. A contract listed today has no history of its own, but
//!   its bucket has; the bucket score stands in for the contract score until it has one.
//!
//! Buckets (see [`bucket`]): tenor `0-7d`, `8-30d`, `31-90d`, `90d+` (calendar days) ×
//! moneyness by call-equivalent delta Δc (Δ for a call, 1 + Δ for a put, ignoring the e^(−qT)
//! carry factor, which moves a band edge by well under a delta point at usual dividends):
//! `put-wing-far` Δc > 0.80, `put-wing` 0.60–0.80, `atm` 0.40–0.60, `call-wing` 0.20–0.40,
//! `call-wing-far` < 0.20. Delta rather than log-moneyness, so a bucket means the same thing at
//! every tenor and vol level.
//!
//! Scores are robust ([`stats::History::score`]): median and MAD × 1.4826 once a history holds
//! `min-samples` observations, the percentile rank through the inverse normal while it holds
//! between `iv-percentile-floor` and `min-samples`, nothing below. Histories live in the operator
//! state, so they are checkpointed with it and survive restarts.
//!
//! The medians of the upper (call) wing's and the lower (put) wing's scores make the reading.
//! The upper wing bid alone reads bullish, the lower wing bearish, both volatility.

use super::{stats, ContractBook, Reading, ScoreConfig, UnderlyingBook};
use optionflow_schemas::direction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-underlying state of the factor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IvState {
    /// Median near-the-money IV at the close of past windows.
    pub atm_iv: stats::History,
    /// Median IV of each (tenor, moneyness) bucket at past window closes, by bucket name
    /// (at most 4 × 5 buckets, each history bounded by `history`).
    #[serde(default)]
    pub buckets: BTreeMap<String, stats::History>,
}

/// The tenor bands, shortest first.
const TENORS: [&str; 4] = ["0-7d", "8-30d", "31-90d", "90d+"];
/// The moneyness bands, by falling call-equivalent delta.
const MONEYNESS: [&str; 5] = [
    "put-wing-far",
    "put-wing",
    "atm",
    "call-wing",
    "call-wing-far",
];
/// Every bucket's name, `tenor/moneyness`, indexed as [`TENORS`] and [`MONEYNESS`]: a close
/// names a bucket for each quoted contract, and formatting the name each time was most of the
/// factor's own cost.
const BUCKETS: [[&str; 5]; 4] = [
    [
        "0-7d/put-wing-far",
        "0-7d/put-wing",
        "0-7d/atm",
        "0-7d/call-wing",
        "0-7d/call-wing-far",
    ],
    [
        "8-30d/put-wing-far",
        "8-30d/put-wing",
        "8-30d/atm",
        "8-30d/call-wing",
        "8-30d/call-wing-far",
    ],
    [
        "31-90d/put-wing-far",
        "31-90d/put-wing",
        "31-90d/atm",
        "31-90d/call-wing",
        "31-90d/call-wing-far",
    ],
    [
        "90d+/put-wing-far",
        "90d+/put-wing",
        "90d+/atm",
        "90d+/call-wing",
        "90d+/call-wing-far",
    ],
];

/// The index in [`TENORS`] of a contract `days` calendar days from expiry.
fn tenor_index(days: f64) -> usize {
    if days <= 7.0 {
        0
    } else if days <= 30.0 {
        1
    } else if days <= 90.0 {
        2
    } else {
        3
    }
}

/// The index in [`MONEYNESS`] of a contract's delta (see the module documentation).
fn moneyness_index(is_call: bool, delta: f64) -> usize {
    let dc = if is_call { delta } else { 1.0 + delta };
    if dc > 0.80 {
        0
    } else if dc > 0.60 {
        1
    } else if dc >= 0.40 {
        2
    } else if dc >= 0.20 {
        3
    } else {
        4
    }
}

/// Tenor band of a contract `days` calendar days from expiry.
pub fn tenor_band(days: f64) -> &'static str {
    TENORS[tenor_index(days)]
}

/// Moneyness band of a contract from its delta (see the module documentation).
pub fn moneyness_band(is_call: bool, delta: f64) -> &'static str {
    MONEYNESS[moneyness_index(is_call, delta)]
}

/// The bucket name of a contract, `tenor/moneyness`.
pub fn bucket(c: &ContractBook) -> &'static str {
    let (tenor, moneyness) = bucket_index(c);
    BUCKETS[tenor][moneyness]
}

/// The contract's bucket as indices into [`TENORS`] and [`MONEYNESS`].
fn bucket_index(c: &ContractBook) -> (usize, usize) {
    (
        tenor_index(c.years * 365.0),
        moneyness_index(c.is_call, c.delta),
    )
}

/// Scores of one wing's contracts in one window.
#[derive(Default)]
struct Wing {
    /// Each contract's score: its own history's when it has one, else its bucket's.
    z: Vec<f64>,
    /// IV minus the centre it was scored from.
    change: Vec<f64>,
    /// Scores against the bucket histories alone.
    bucket_z: Vec<f64>,
    /// How many scores came from a percentile rank.
    percentile: usize,
}

impl Wing {
    fn add(&mut self, own: Option<stats::Scored>, by_bucket: Option<stats::Scored>, iv: f64) {
        if let Some(b) = by_bucket {
            self.bucket_z.push(b.z);
        }
        if let Some(s) = own.or(by_bucket) {
            self.z.push(s.z);
            self.change.push(iv - s.center);
            self.percentile += usize::from(s.method == stats::Method::PercentileRank);
        }
    }
}

/// Reads the window and advances every quoted contract's and bucket's IV history.
pub(super) fn close(cfg: &ScoreConfig, book: &mut UnderlyingBook) -> Reading {
    let spot = book.spot;
    let (mut up, mut low, mut ntm) = (Wing::default(), Wing::default(), vec![]);
    // By name, so in the order of the state's map (a `&str` orders as its `String`).
    let mut bucket_now: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let score = |h: &stats::History, iv: f64| {
        h.score(iv, cfg.min_samples, cfg.iv_percentile_floor, cfg.iv_min_std)
    };
    // Every contract of a bucket is scored against the same bucket history: its median and
    // MAD are taken once per close rather than once per contract (a copy and two selections
    // each), at the bits `score` gives.
    let mut bucket_reference: [[Option<Option<stats::Reference>>; MONEYNESS.len()]; TENORS.len()] =
        Default::default();
    for c in book.contracts.values_mut().filter(|c| c.quoted_in_window) {
        let m = (c.strike / spot).ln();
        let eligible = spot > 0.0
            && m.abs() <= cfg.iv_moneyness_band
            && c.years * 365.0 >= cfg.iv_min_days
            && c.iv.is_finite();
        if eligible {
            ntm.push(c.iv);
            let (tenor, moneyness) = bucket_index(c);
            let key = BUCKETS[tenor][moneyness];
            let otm = (c.is_call && c.strike >= spot) || (!c.is_call && c.strike <= spot);
            if otm {
                let own = score(&c.iv_history, c.iv);
                let by_bucket = book.iv.buckets.get(key).and_then(|h| {
                    let reference = *bucket_reference[tenor][moneyness].get_or_insert_with(|| {
                        h.reference(cfg.min_samples, cfg.iv_percentile_floor)
                    });
                    reference.map(|r| h.score_against(r, c.iv, cfg.iv_min_std))
                });
                let wing = if c.strike >= spot { &mut up } else { &mut low };
                wing.add(own, by_bucket, c.iv);
            }
            bucket_now.entry(key).or_default().push(c.iv);
        }
        c.iv_history.push(c.iv, cfg.history);
    }
    // Buckets advance after scoring, so a window is never scored against itself.
    for (key, mut ivs) in bucket_now {
        if let Some(m) = stats::median(&mut ivs) {
            match book.iv.buckets.get_mut(key) {
                Some(history) => history.push(m, cfg.history),
                None => {
                    let mut history = stats::History::default();
                    history.push(m, cfg.history);
                    book.iv.buckets.insert(key.to_string(), history);
                }
            }
        }
    }
    let atm = stats::median(&mut ntm);
    let samples = (up.z.len() + low.z.len()) as i64;
    let (zu, zl) = (stats::median(&mut up.z), stats::median(&mut low.z));
    let (du, dl) = (
        stats::median(&mut up.change),
        stats::median(&mut low.change),
    );
    let mut metadata = BTreeMap::new();
    if let Some(a) = atm {
        metadata.insert("atm_iv".to_string(), a);
        if book.iv.atm_iv.len() >= cfg.min_samples {
            metadata.insert("atm_iv_mean".to_string(), book.iv.atm_iv.mean());
        }
        book.iv.atm_iv.push(a, cfg.history);
    }
    for (name, wing) in [("call_wing", &mut up), ("put_wing", &mut low)] {
        if let Some(b) = stats::median(&mut wing.bucket_z) {
            metadata.insert(format!("bucket_z_{name}"), b);
        }
    }
    let (Some(zu), Some(zl)) = (zu, zl) else {
        return Reading {
            raw_value: 0.0,
            zscore: 0.0,
            direction: direction::NEUTRAL,
            samples,
            detail: format!(
                "warming up: wing IV histories need {} windows ({} for a percentile rank)",
                cfg.min_samples, cfg.iv_percentile_floor
            ),
            metadata,
        };
    };
    let (du, dl) = (du.unwrap_or(0.0), dl.unwrap_or(0.0));
    metadata.insert("z_call_wing".to_string(), zu);
    metadata.insert("z_put_wing".to_string(), zl);
    metadata.insert("iv_change_call_wing".to_string(), du);
    metadata.insert("iv_change_put_wing".to_string(), dl);
    let percentile = up.percentile + low.percentile;
    metadata.insert("percentile_scored".to_string(), percentile as f64);
    let t = cfg.direction_threshold;
    let dir = match (zu >= t, zl >= t) {
        (true, true) => direction::VOLATILITY,
        (true, false) => direction::BULLISH,
        (false, true) => direction::BEARISH,
        (false, false) => direction::NEUTRAL,
    };
    let (z, d, wing) = if zu.abs() >= zl.abs() {
        (zu, du, "call")
    } else {
        (zl, dl, "put")
    };
    let basis = if percentile > 0 {
        " (short history: percentile rank)"
    } else {
        ""
    };
    Reading {
        raw_value: d,
        zscore: z,
        direction: dir,
        samples,
        detail: format!(
            "{wing}-wing IV {:+.1} vol pts vs its median (z {z:+.1}); call wing z {zu:+.1}, put wing z {zl:+.1}{basis}",
            d * 100.0
        ),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GreeksEvent, Operator, ScoreConfig};
    use crate::testing::{run, Step};
    use optionflow_schemas::{time::MICROS_PER_MINUTE, ContractGreeks, FactorScore};

    const T0: i64 = 1_704_205_800_000_000; // 2024-01-02 14:30 UTC

    fn quote(t: i64, symbol: &str, call: bool, strike: f64, delta: f64, iv: f64) -> GreeksEvent {
        GreeksEvent::Greeks(ContractGreeks {
            event_id: format!("{symbol}@{t}").into(),
            event_time: t,
            underlying: "XYZ".into(),
            source_event_id: Default::default(),
            symbol: symbol.into(),
            root: "XYZ".into(),
            expiry: "2024-02-16".into(),
            right: if call { "call" } else { "put" }.into(),
            strike,
            spot: 100.0,
            years_to_expiry: 45.0 / 365.0,
            rate: 0.04,
            dividend_yield: 0.0,
            bid: 1.0,
            ask: 1.1,
            mid: 1.05,
            iv,
            delta,
            gamma: 0.02,
            vega: 10.0,
            theta: -5.0,
            rho: 1.0,
            volume: 0,
            open_interest: 100,
            sector: None,
            exercise_style: "european".into(),
            vanna: 0.0,
            charm: 0.0,
            vomma: 0.0,
        })
    }

    /// Window `i`: an OTM call and an OTM put, plus (from `new_from` on) a freshly listed put
    /// in the same bucket as the old one.
    fn window(i: i64, call_iv: f64, put_iv: f64, new_put: Option<f64>) -> Vec<Step<GreeksEvent>> {
        let t = T0 + i * MICROS_PER_MINUTE + 1;
        let mut v = vec![
            Step::Event(quote(t, "C110", true, 110.0, 0.30, call_iv)),
            Step::Event(quote(t, "P90", false, 90.0, -0.30, put_iv)),
        ];
        if let Some(iv) = new_put {
            v.push(Step::Event(quote(t, "P91", false, 91.0, -0.32, iv)));
        }
        v.push(Step::Watermark(T0 + (i + 1) * MICROS_PER_MINUTE - 1));
        v
    }

    fn iv_scores(out: &[FactorScore]) -> Vec<FactorScore> {
        out.iter()
            .filter(|f| f.factor == "iv_zscore")
            .cloned()
            .collect()
    }

    /// Alternating history: IVs x ± 0.002 → median x, MAD 0.002.
    fn calm(n: i64) -> Vec<Step<GreeksEvent>> {
        (0..n)
            .flat_map(|i| {
                let w = if i % 2 == 0 { 0.002 } else { -0.002 };
                window(i, 0.30 + w, 0.32 - w, None)
            })
            .collect()
    }

    #[test]
    fn the_percentile_floor_is_validated_against_min_samples() {
        let cfg = ScoreConfig {
            iv_percentile_floor: 9,
            ..ScoreConfig::default()
        };
        let err = cfg.validate().unwrap_err().0;
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].starts_with("iv-percentile-floor"), "{err:?}");
    }

    #[test]
    fn buckets_follow_tenor_and_delta() {
        assert_eq!(super::tenor_band(7.0), "0-7d");
        assert_eq!(super::tenor_band(30.0), "8-30d");
        assert_eq!(super::tenor_band(45.0), "31-90d");
        assert_eq!(super::tenor_band(91.0), "90d+");
        assert_eq!(super::moneyness_band(false, -0.25), "put-wing");
        assert_eq!(super::moneyness_band(false, -0.10), "put-wing-far");
        assert_eq!(super::moneyness_band(true, 0.50), "atm");
        assert_eq!(super::moneyness_band(true, 0.25), "call-wing");
        assert_eq!(super::moneyness_band(true, 0.05), "call-wing-far");
    }

    #[test]
    fn robust_score_is_the_median_mad_score_by_hand() {
        // min-samples 8, floors 0.001: after 8 calm windows the put's history is
        // 0.318, 0.322 ×4 each → median 0.320, MAD 0.002, scaled 0.0029652.
        let cfg = ScoreConfig {
            iv_min_std: 0.001,
            ..ScoreConfig::default()
        };
        let mut steps = calm(8);
        steps.extend(window(8, 0.30, 0.33, None));
        let out = iv_scores(&run(&mut cfg.build().unwrap(), steps).unwrap().events);
        let last = out.last().unwrap();
        let want = (0.33 - 0.32) / (1.4826 * 0.002);
        assert!(
            (last.zscore - want).abs() < 1e-6,
            "{} vs {want}",
            last.zscore
        );
        assert!((last.raw_value - 0.01).abs() < 1e-12);
        assert_eq!(last.direction, "bearish", "z {want:.2} ≥ 2 on the put wing");
        assert_eq!(last.metadata["percentile_scored"], 0.0);
    }

    #[test]
    fn short_histories_use_the_percentile_rank() {
        let cfg = ScoreConfig::default(); // floor 3, min-samples 8
        let mut steps = calm(3);
        // Far above three past values: p = 3.5/4 → z = Φ⁻¹(0.875), never beyond it.
        steps.extend(window(3, 0.30, 0.60, None));
        let out = iv_scores(&run(&mut cfg.build().unwrap(), steps).unwrap().events);
        assert!(out[2].detail.contains("warming up"), "{:?}", out[2]);
        let last = out.last().unwrap();
        assert!((last.zscore - 1.150_349_380).abs() < 1e-8, "{last:?}");
        assert_eq!(
            last.direction, "neutral",
            "a short history makes no strong claim"
        );
        assert_eq!(last.metadata["percentile_scored"], 2.0);
        assert!(last.detail.contains("percentile"));
    }

    #[test]
    fn bucket_names_are_the_tenor_and_moneyness_bands_joined() {
        use super::{moneyness_band, tenor_band, BUCKETS, MONEYNESS, TENORS};
        for (t, days) in [3.0, 20.0, 60.0, 200.0].into_iter().enumerate() {
            for (m, delta) in [0.9, 0.7, 0.5, 0.3, 0.1].into_iter().enumerate() {
                let joined = format!("{}/{}", tenor_band(days), moneyness_band(true, delta));
                assert_eq!(BUCKETS[t][m], joined);
                assert_eq!(joined, format!("{}/{}", TENORS[t], MONEYNESS[m]));
            }
        }
    }

    #[test]
    fn a_new_listing_is_scored_against_its_bucket() {
        let cfg = ScoreConfig::default();
        let mut steps = calm(10);
        // P91 appears only now, 8 vol points above the bucket's median (0.320).
        steps.extend(window(10, 0.30, 0.32, Some(0.40)));
        let out = iv_scores(&run(&mut cfg.build().unwrap(), steps).unwrap().events);
        let last = out.last().unwrap();
        // Put wing: P90 z 0 (own history), P91 z 8.0 (bucket, floor 0.01) → median 4.0.
        assert!((last.metadata["z_put_wing"] - 4.0).abs() < 1e-9, "{last:?}");
        assert!((last.metadata["bucket_z_put_wing"] - 4.0).abs() < 1e-9);
        assert_eq!(last.direction, "bearish");
    }

    #[test]
    fn history_survives_snapshot_and_restore() {
        let mut steps = calm(12);
        steps.extend(window(12, 0.36, 0.32, Some(0.35)));
        let cfg = ScoreConfig::default();
        let all = iv_scores(
            &run(&mut cfg.build().unwrap(), steps.clone())
                .unwrap()
                .events,
        );
        // Cut mid-history: after the percentile phase began but before min-samples.
        let (head, tail) = steps.split_at(5 * 3);
        let mut first = cfg.build().unwrap();
        let mut out = run(&mut first, head.to_vec()).unwrap().events;
        let mut second = cfg.build().unwrap();
        second.restore(&first.snapshot().unwrap()).unwrap();
        out.extend(run(&mut second, tail.to_vec()).unwrap().events);
        assert_eq!(iv_scores(&out), all);
        assert_eq!(all.last().unwrap().direction, "bullish");
    }
}
