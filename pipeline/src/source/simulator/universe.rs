//! The built-in universe: twenty names with the sectors, spots and volatilities they had around
//! the start of 2024.

/// One underlying of the built-in universe and the parameters of its simulated market.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnderlyingSpec {
    /// Ticker, also the OCC option root.
    pub symbol: &'static str,
    /// GICS sector (or "Index ETF").
    pub sector: &'static str,
    /// Spot at the first session's open.
    pub spot: f64,
    /// Long-run annualised volatility (the mean-reversion level of the stochastic variance).
    pub vol: f64,
    /// Volatility of variance (the Heston ξ).
    pub vol_of_vol: f64,
    /// Correlation between spot and variance shocks (negative: the leverage effect).
    pub spot_vol_corr: f64,
    /// Slope of the implied-vol smile per standard deviation of moneyness (negative: put skew).
    pub skew: f64,
    /// Curvature of the implied-vol smile per squared standard deviation of moneyness.
    pub smile: f64,
    /// How much of the smile stays with the strikes when spot moves within a session: 0 = it
    /// moves with spot (sticky moneyness), 1 = each strike keeps its vol (sticky strike).
    pub sticky_strike: f64,
    /// Relative option activity: scales option volume, sizes and open interest.
    pub option_activity: f64,
    /// Typical shares traded per session.
    pub daily_volume: i64,
}

const fn spec(
    symbol: &'static str,
    sector: &'static str,
    spot: f64,
    vol: f64,
    skew: f64,
    option_activity: f64,
    daily_volume: i64,
) -> UnderlyingSpec {
    // Index products have the strongest leverage effect and the calmest variance; single names
    // with a flat smile (the meme stocks) have almost none.
    let index = skew <= -0.13;
    let meme = skew > -0.03;
    UnderlyingSpec {
        symbol,
        sector,
        spot,
        vol,
        vol_of_vol: if meme {
            0.45
        } else if index {
            0.3
        } else {
            0.35
        },
        spot_vol_corr: if meme {
            -0.1
        } else if index {
            -0.75
        } else {
            -0.5
        },
        skew,
        smile: if meme { 0.05 } else { 0.03 },
        // Index smiles stay close to sticky strike (a sell-off climbs the put skew); single
        // names move more with spot.
        sticky_strike: if meme {
            0.2
        } else if index {
            0.7
        } else {
            0.4
        },
        option_activity,
        daily_volume,
    }
}

/// The universe, in the order `--underlyings N` takes names from. SPY and GME come first so
/// that even three names include both default regime events.
pub const UNIVERSE: [UnderlyingSpec; 20] = [
    spec("SPY", "Index ETF", 475.31, 0.14, -0.16, 3.0, 80_000_000),
    spec(
        "GME",
        "Consumer Discretionary",
        17.53,
        0.75,
        -0.02,
        0.8,
        3_000_000,
    ),
    spec(
        "AAPL",
        "Information Technology",
        192.53,
        0.22,
        -0.10,
        2.0,
        50_000_000,
    ),
    spec(
        "TSLA",
        "Consumer Discretionary",
        248.48,
        0.50,
        -0.06,
        2.5,
        100_000_000,
    ),
    spec("QQQ", "Index ETF", 409.52, 0.18, -0.14, 2.0, 45_000_000),
    spec(
        "AMC",
        "Communication Services",
        6.12,
        0.80,
        0.0,
        0.6,
        20_000_000,
    ),
    spec(
        "NVDA",
        "Information Technology",
        495.22,
        0.45,
        -0.07,
        2.0,
        40_000_000,
    ),
    spec(
        "MSFT",
        "Information Technology",
        376.04,
        0.24,
        -0.10,
        1.2,
        20_000_000,
    ),
    spec(
        "AMZN",
        "Consumer Discretionary",
        151.94,
        0.30,
        -0.09,
        1.5,
        40_000_000,
    ),
    spec(
        "META",
        "Communication Services",
        353.96,
        0.32,
        -0.09,
        1.2,
        15_000_000,
    ),
    spec(
        "GOOGL",
        "Communication Services",
        139.69,
        0.28,
        -0.09,
        1.0,
        25_000_000,
    ),
    spec("JPM", "Financials", 170.10, 0.20, -0.11, 0.6, 9_000_000),
    spec("XOM", "Energy", 99.98, 0.24, -0.10, 0.5, 15_000_000),
    spec("IWM", "Index ETF", 200.71, 0.20, -0.13, 1.2, 30_000_000),
    spec(
        "AMD",
        "Information Technology",
        147.41,
        0.45,
        -0.06,
        1.5,
        50_000_000,
    ),
    spec(
        "NFLX",
        "Communication Services",
        486.88,
        0.33,
        -0.08,
        0.6,
        4_000_000,
    ),
    spec("BA", "Industrials", 260.66, 0.30, -0.09, 0.7, 7_000_000),
    spec("PFE", "Health Care", 28.79, 0.22, -0.10, 0.6, 30_000_000),
    spec(
        "KO",
        "Consumer Staples",
        58.93,
        0.14,
        -0.12,
        0.4,
        12_000_000,
    ),
    spec(
        "DIS",
        "Communication Services",
        90.29,
        0.24,
        -0.10,
        0.7,
        10_000_000,
    ),
];
