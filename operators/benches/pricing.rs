//! Per-contract cost of the greeks stage's pricing work:
//! (a) European: implied volatility by Let's Be Rational, then analytic BSM price and greeks;
//! (b) American: implied volatility against Bjerksund-Stensland 2002;
//! (c) American greeks by finite differences (for reference).
//!
//! Run with `cargo bench -p optionflow-operators --bench pricing`.

use criterion::Criterion;
use optionflow_operators::pricing::{
    bs2002_greeks, bs2002_price, bsm_greeks, bsm_price, implied_vol, implied_vol_american, Right,
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
            let iv = implied_vol(Right::Put, s, k, t, r, q, p).unwrap();
            black_box(bsm_greeks(Right::Put, s, k, t, r, q, iv))
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
    c.bench_function("american_price", |b| {
        b.iter(|| {
            let (s, k, t, r, q, v) = black_box(AM);
            black_box(bs2002_price(Right::Put, s, k, t, r, q, v))
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
