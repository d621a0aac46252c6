//! Dealer gamma exposure on a 4,000-contract chain: the per-strike profile with its walls, and
//! the gamma-flip sweep (target: both together in at most 2 ms).
//!
//! The chain is built deterministically: 20 expiries from 1 day to 2 years, 100 strikes from
//! 50 to 149 around a spot of 100, calls and puts, a volatility smile, open interest heavier in
//! puts below spot and calls above (so the flip lies near spot, as on index chains).

use criterion::Criterion;
use optionflow_operators::pricing::{bsm_greeks, Right};
use optionflow_operators::score::gamma_exposure::{flip::GexCurve, gex_profile};
use optionflow_operators::score::{ContractBook, GexSign, UnderlyingBook};
use std::hint::black_box;

const SPOT: f64 = 100.0;
const DAYS: [f64; 20] = [
    1.0, 2.0, 3.0, 4.0, 7.0, 9.0, 14.0, 21.0, 28.0, 35.0, 42.0, 49.0, 63.0, 91.0, 119.0, 182.0,
    273.0, 364.0, 546.0, 728.0,
];

fn chain() -> UnderlyingBook {
    let mut book = UnderlyingBook {
        spot: SPOT,
        ..Default::default()
    };
    for (e, days) in DAYS.iter().enumerate() {
        let years = days / 365.0;
        for i in 0..100 {
            let strike = 50.0 + i as f64;
            let m = (strike / SPOT).ln();
            let iv = 0.22 - 0.08 * m + 0.35 * m * m + 0.02 / (1.0 + 10.0 * years);
            for right in [Right::Call, Right::Put] {
                let is_call = right == Right::Call;
                let g = bsm_greeks(right, SPOT, strike, years, 0.04, 0.01, iv);
                let otm = if is_call { m > 0.0 } else { m < 0.0 };
                // Deterministic open interest: concentrated near the money, on round strikes,
                // and on the out-of-the-money side of each right.
                let round = if i % 5 == 0 { 3.0 } else { 1.0 };
                let side = if otm { 1.0 } else { 0.3 };
                let put_tilt = if is_call { 1.0 } else { 1.3 };
                let oi = (20_000.0 * round * side * put_tilt * (-12.0 * m * m).exp()
                    / (1.0 + e as f64 * 0.2)) as i64;
                book.contracts.insert(
                    format!("XYZ{e:02}{}{strike:03}", if is_call { 'C' } else { 'P' }).into(),
                    ContractBook {
                        is_call,
                        strike,
                        years,
                        iv,
                        gamma: g.gamma,
                        delta: g.delta,
                        vega: g.vega,
                        rate: 0.04,
                        dividend_yield: 0.01,
                        open_interest: oi,
                        ..Default::default()
                    },
                );
            }
        }
    }
    book
}

fn bench(c: &mut Criterion) {
    let book = chain();
    assert_eq!(book.contracts.len(), 4_000);
    let sign = GexSign::DealerLongCalls;
    let flip = GexCurve::new(sign, book.contracts.values()).flip_near(SPOT, 0.3);
    assert!(
        flip.is_some(),
        "the bench chain must have a flip to sweep for"
    );
    let mut g = c.benchmark_group("gex_4000_contracts");
    g.bench_function("profile_and_walls", |b| {
        b.iter(|| gex_profile(sign, black_box(SPOT), book.contracts.values()))
    });
    g.bench_function("flip", |b| {
        b.iter(|| GexCurve::new(sign, book.contracts.values()).flip_near(black_box(SPOT), 0.3))
    });
    g.bench_function("profile_walls_and_flip", |b| {
        b.iter(|| {
            let p = gex_profile(sign, black_box(SPOT), book.contracts.values());
            let f = GexCurve::new(sign, book.contracts.values()).flip_near(black_box(SPOT), 0.3);
            (p, f)
        })
    });
    g.finish();
}

// Written out rather than through `criterion_main!`, whose generated functions carry no docs
// (the workspace denies missing docs).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
