//! Daily bars as warm-up ticks, shared by the adapters: history is sent before anything live so
//! the realized-volatility factor starts warm.

use chrono::{NaiveDate, TimeZone};
use optionflow_schemas::UnderlyingTick;

/// An OHLCV bar (Polygon's `/v2/aggs`, Tradier's `/v1/markets/history`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Bar start, ms since the epoch.
    pub start_ms: i64,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: i64,
}

/// `hour:minute` on `date` in New York, µs since the epoch.
pub fn ny_micros(date: NaiveDate, hour: u32, minute: u32) -> Option<i64> {
    let local = date.and_hms_opt(hour, minute, 0)?;
    chrono_tz::America::New_York
        .from_local_datetime(&local)
        .single()
        .map(|t| t.timestamp_micros())
}

/// A daily bar as underlying ticks through its session: the open at 09:30, the low and the high
/// (low first on an up day, high first on a down day: the path that makes the bar's range with
/// the least travel) at 11:00 and 13:30, the close at 16:00 New York, with volume accumulating to
/// the bar's. Ticks carry their own event times; history batches are one per time.
pub fn daily_bar_ticks(
    source: &str,
    underlying: &str,
    sector: Option<&str>,
    bar: &Bar,
) -> Vec<UnderlyingTick> {
    let Some(date) = chrono_tz::America::New_York
        .timestamp_millis_opt(bar.start_ms)
        .single()
        .map(|t| t.date_naive())
    else {
        return Vec::new();
    };
    let (first, second) = if bar.close >= bar.open {
        (bar.low, bar.high)
    } else {
        (bar.high, bar.low)
    };
    let points = [
        ((9, 30), bar.open, 0),
        ((11, 0), first, bar.volume / 3),
        ((13, 30), second, 2 * bar.volume / 3),
        ((16, 0), bar.close, bar.volume),
    ];
    points
        .iter()
        .filter_map(|&((h, m), price, volume)| {
            Some(UnderlyingTick {
                event_id: Default::default(),
                event_time: ny_micros(date, h, m)?,
                underlying: underlying.into(),
                source: source.into(),
                price,
                volume,
                sector: sector.map(Into::into),
            })
        })
        .collect()
}
