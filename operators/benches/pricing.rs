//! Per-contract cost of the greeks stage's pricing work:
//! (a) European: implied volatility by Let's Be Rational, then analytic BSM price and greeks, as
//!     the greeks stage does it (`implied_vol_and_greeks`), and each half alone;
//! (b) American: implied volatility against Bjerksund-Stensland 2002;
//! (c) the same over a chain of 18 contracts (strikes 80–120 around a spot of 100, both rights),
//!     reported per chain — divide by 18 for the per-contract average;
//! (d) one Bjerksund-Stensland price, the streaming stage's American greeks (analytic delta and
//!     gamma in the price's own pass, vega, vomma and rho by differences), and the full
//!     American greeks (for reference);
//! (e) the greeks stage's American step (IV and greeks, `solve_quote`) from cold and
//!     warm-started from the contract's previous quote (five seconds earlier, spot 0.1% higher,
//!     vol 0.3 of a point lower).
//!
//! Run with `cargo bench -p optionflow-operators --bench pricing`.

use criterion::Criterion;
use optionflow_operators::pricing::{
    bs2002_greeks, bs2002_price, bsm_greeks, bsm_price, implied_vol, implied_vol_american,
    implied_vol_and_greeks, solve_quote, streaming_greeks, ExerciseStyle,
    ExerciseStyle::{American, European},
    Right,
};
use std::hint::black_box;

/// An SPX-like out-of-the-money put, 30 days out.
const EU: (f64, f64, f64, f64, f64, f64) = (5000.0, 4800.0, 30.0 / 365.0, 0.045, 0.013, 0.18);
/// An equity put slightly in the money, 60 days out, with a dividend: early exercise matters.
const AM: (f64, f64, f64, f64, f64, f64) = (100.0, 105.0, 60.0 / 365.0, 0.045, 0.02, 0.32);

fn european(c: &mut Criterion) {
    let (s, k, t, r, q, v) = EU;
    let price = bsm_price(Right::Put, s, k, t, r, q, v);
    c.bench_function("european_iv_and_greeks", |b| {
        b.iter(|| {
            let (s, k, t, r, q, p) = black_box((s, k, t, r, q, price));
            black_box(implied_vol_and_greeks(European, Right::Put, s, k, t, r, q, p).unwrap())
        })
    });
    c.bench_function("european_iv", |b| {
        b.iter(|| {
            let (s, k, t, r, q, p) = black_box((s, k, t, r, q, price));
            black_box(implied_vol(Right::Put, s, k, t, r, q, p).unwrap())
        })
    });
    c.bench_function("european_greeks", |b| {
        b.iter(|| {
            let (s, k, t, r, q, v) = black_box(EU);
            black_box(bsm_greeks(Right::Put, s, k, t, r, q, v))
        })
    });
}

fn american(c: &mut Criterion) {
    let (s, k, t, r, q, v) = AM;
    let price = bs2002_price(Right::Put, s, k, t, r, q, v);
    c.bench_function("american_iv", |b| {
        b.iter(|| {
            let (s, k, t, r, q, p) = black_box((s, k, t, r, q, price));
            black_box(implied_vol_american(Right::Put, s, k, t, r, q, p).unwrap())
        })
    });
    // The chain: every contract priced at its own smile vol, then solved back.
    let chain: Vec<(Right, f64, f64)> = (0..9)
        .flat_map(|i| {
            let k = 80.0 + 5.0 * i as f64;
            let vol = 0.25 + 0.4 * (k / s).ln().powi(2);
            [Right::Call, Right::Put]
                .map(|right| (right, k, bs2002_price(right, s, k, t, r, q, vol)))
        })
        .collect();
    c.bench_function("american_iv_chain_of_18", |b| {
        b.iter(|| {
            for &(right, k, p) in black_box(&chain) {
                black_box(implied_vol_american(right, s, k, t, r, q, p).unwrap());
            }
        })
    });
    // The greeks stage's step, cold and from the contract's previous quote.
    let contract = (Right::Put, s, k, t, r, q);
    let earlier = (Right::Put, s * 1.001, k, t + 5.0 / (365.0 * 86400.0), r, q);
    let earlier_price = bs2002_price(Right::Put, s * 1.001, k, earlier.3, r, q, v - 0.003);
    let seed = solve_quote(American, earlier, earlier_price, None)
        .unwrap()
        .warm_start;
    c.bench_function("american_iv_and_greeks_cold", |b| {
        b.iter(|| black_box(solve_quote(American, black_box(contract), price, None).unwrap()))
    });
    c.bench_function("american_iv_and_greeks_warm", |b| {
        b.iter(|| {
            let seed = black_box(seed.as_ref());
            black_box(solve_quote(American, black_box(contract), price, seed).unwrap())
        })
    });
    c.bench_function("american_price", |b| {
        b.iter(|| {
            let (s, k, t, r, q, v) = black_box(AM);
            black_box(bs2002_price(Right::Put, s, k, t, r, q, v))
        })
    });
    c.bench_function("american_streaming_greeks", |b| {
        b.iter(|| {
            let (s, k, t, r, q, v) = black_box(AM);
            black_box(streaming_greeks(
                ExerciseStyle::American,
                Right::Put,
                s,
                k,
                t,
                r,
                q,
                v,
            ))
        })
    });
    c.bench_function("american_greeks", |b| {
        b.iter(|| {
            let (s, k, t, r, q, v) = black_box(AM);
            black_box(bs2002_greeks(Right::Put, s, k, t, r, q, v))
        })
    });
}

// What `criterion_group!`/`criterion_main!` expand to, written out because the macros' public
// function carries no doc comment and the workspace denies missing docs.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    european(&mut c);
    american(&mut c);
    c.final_summary();
}
