//! Polygon payloads to events. Pure functions over `serde_json::Value`, so every documented shape
//! and every malformed row is tested without a server.
//!
//! Polygon's timestamps are nanoseconds (`last_quote.last_updated`, `sip_timestamp`) in the
//! snapshot, milliseconds in aggregates and on the WebSocket.

use crate::vendor::batch::{millis_to_micros, nanos_to_micros};
use crate::vendor::filter::{ContractFilter, Excluded};
use chrono::NaiveDate;
use optionflow_operators::normalize::parse_occ;
use optionflow_schemas::{RawEvent, RawQuote, UnderlyingTick};
use serde_json::Value;

/// The vendor name carried in `source`.
pub const SOURCE: &str = "polygon";

/// One snapshot page, parsed.
#[derive(Debug, Default)]
pub struct SnapshotPage {
    /// Quotes of the usable rows (event ids and times are set when the batch is stamped).
    pub quotes: Vec<RawQuote>,
    /// The underlying's price and timestamp, from the first row that carries it.
    pub underlying: Option<(f64, i64)>,
    /// Latest quote timestamp on the page, µs.
    pub latest: Option<i64>,
    /// Rows that could not be used: (cause, detail).
    pub bad_rows: Vec<(&'static str, String)>,
    /// Rows the filter left out.
    pub excluded: usize,
    /// Sum of the day volume of the usable rows.
    pub volume: i64,
    /// `next_url`, if there is another page.
    pub next_url: Option<String>,
}

fn f64_at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    let x = path.iter().try_fold(v, |v, k| v.get(k))?;
    x.as_i64()
        .or_else(|| x.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Canonical OCC symbol from Polygon's `O:AAPL240119C00190000`.
pub fn occ_from_ticker(ticker: &str) -> Result<(String, String, NaiveDate, f64), String> {
    let c = parse_occ(ticker)?;
    Ok((c.symbol().into(), c.root.into(), c.expiry, c.strike))
}

/// Parses one page of `/v3/snapshot/options/{underlying}`. A page that is not an object with a
/// `results` array is an error (the caller counts it and keeps the earlier pages); a bad row is
/// recorded in `bad_rows` and the rest of the page still flows.
pub fn snapshot_page(
    underlying: &str,
    body: &Value,
    filter: &ContractFilter,
    today: NaiveDate,
) -> Result<SnapshotPage, String> {
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        if status != "OK" && status != "DELAYED" {
            let msg = body
                .get("error")
                .or_else(|| body.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(format!("status {status}: {msg}"));
        }
    }
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| "no results array".to_string())?;
    let mut page = SnapshotPage {
        next_url: body
            .get("next_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ..Default::default()
    };
    for row in results {
        let spot =
            f64_at(row, &["underlying_asset", "price"]).filter(|p| p.is_finite() && *p > 0.0);
        if let (Some(p), None) = (spot, page.underlying) {
            let at = i64_at(row, &["underlying_asset", "last_updated"])
                .map(nanos_to_micros)
                .unwrap_or(0);
            page.underlying = Some((p, at));
        }
        match snapshot_row(underlying, row, spot, filter, today) {
            Ok(Some((q, t))) => {
                page.latest = Some(page.latest.map_or(t, |l: i64| l.max(t)));
                page.volume += q.volume;
                page.quotes.push(q);
            }
            Ok(None) => page.excluded += 1,
            Err(bad) => page.bad_rows.push(bad),
        }
    }
    Ok(page)
}

type Row = Result<Option<(RawQuote, i64)>, (&'static str, String)>;

fn snapshot_row(
    underlying: &str,
    row: &Value,
    spot: Option<f64>,
    filter: &ContractFilter,
    today: NaiveDate,
) -> Row {
    let ticker = row
        .get("details")
        .and_then(|d| d.get("ticker"))
        .or_else(|| row.get("ticker"))
        .and_then(Value::as_str)
        .ok_or_else(|| ("no_ticker", "row without details.ticker".to_string()))?;
    let (symbol, root, expiry, strike) = occ_from_ticker(ticker).map_err(|e| ("bad_ticker", e))?;
    let open_interest = i64_at(row, &["open_interest"]).unwrap_or(0);
    match filter.check(today, &root, expiry, strike, open_interest, spot) {
        Ok(()) => {}
        Err(Excluded::Expiry | Excluded::Moneyness | Excluded::OpenInterest | Excluded::Root) => {
            return Ok(None)
        }
    }
    let quote = row
        .get("last_quote")
        .filter(|q| q.is_object())
        .ok_or_else(|| ("no_quote", format!("{ticker}: no last_quote")))?;
    let bid = f64_at(quote, &["bid"])
        .ok_or_else(|| ("bad_quote", format!("{ticker}: last_quote.bid missing")))?;
    let ask = f64_at(quote, &["ask"])
        .ok_or_else(|| ("bad_quote", format!("{ticker}: last_quote.ask missing")))?;
    let at = i64_at(quote, &["last_updated"])
        .or_else(|| i64_at(row, &["day", "last_updated"]))
        .map(nanos_to_micros)
        .ok_or_else(|| {
            (
                "no_timestamp",
                format!("{ticker}: last_quote.last_updated missing"),
            )
        })?;
    let q = RawQuote {
        event_id: Default::default(),
        event_time: at,
        underlying: underlying.into(),
        source: SOURCE.into(),
        symbol: symbol.into(),
        bid,
        ask,
        bid_size: i64_at(quote, &["bid_size"]).unwrap_or(0),
        ask_size: i64_at(quote, &["ask_size"]).unwrap_or(0),
        last: f64_at(row, &["last_trade", "price"]),
        volume: i64_at(row, &["day", "volume"]).unwrap_or(0),
        open_interest,
        underlying_price: spot,
    };
    Ok(Some((q, at)))
}

/// One contract of `/v3/reference/options/contracts`: its Polygon ticker when in scope.
pub fn reference_page(
    body: &Value,
    filter: &ContractFilter,
    spot: Option<f64>,
    today: NaiveDate,
) -> Result<(Vec<String>, Option<String>), String> {
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or("no results array")?;
    let mut tickers = Vec::new();
    for row in results {
        let Some(ticker) = row.get("ticker").and_then(Value::as_str) else {
            continue;
        };
        let Ok((_, root, expiry, strike)) = occ_from_ticker(ticker) else {
            continue;
        };
        if filter
            .check(today, &root, expiry, strike, i64::MAX, spot)
            .is_ok()
        {
            tickers.push(ticker.to_string());
        }
    }
    let next = body
        .get("next_url")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok((tickers, next))
}

pub use crate::vendor::history::Bar;

/// Parses an aggregates response; bad bars are counted in the second value.
pub fn aggregates(body: &Value) -> Result<(Vec<Bar>, usize, Option<String>), String> {
    // No bars in the range is `resultsCount: 0` with no `results` key.
    let results = match body.get("results") {
        Some(r) => r.as_array().ok_or("results is not an array")?.as_slice(),
        None if body.get("status").and_then(Value::as_str).is_some() => &[],
        None => return Err("no results".into()),
    };
    let mut bars = Vec::new();
    let mut bad = 0;
    for b in results {
        let bar = (|| {
            Some(Bar {
                start_ms: i64_at(b, &["t"])?,
                open: f64_at(b, &["o"])?,
                high: f64_at(b, &["h"])?,
                low: f64_at(b, &["l"])?,
                close: f64_at(b, &["c"])?,
                volume: i64_at(b, &["v"]).unwrap_or(0),
            })
        })();
        match bar {
            Some(bar) if bar.close.is_finite() && bar.close > 0.0 => bars.push(bar),
            _ => bad += 1,
        }
    }
    let next = body
        .get("next_url")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok((bars, bad, next))
}

/// A daily bar as Polygon underlying ticks ([`crate::vendor::history::daily_bar_ticks`]).
pub fn daily_bar_ticks(underlying: &str, sector: Option<&str>, bar: &Bar) -> Vec<UnderlyingTick> {
    crate::vendor::history::daily_bar_ticks(SOURCE, underlying, sector, bar)
}

/// A minute bar as one tick at its close (start + 60 s) with the session's volume so far.
pub fn minute_bar_tick(
    underlying: &str,
    sector: Option<&str>,
    bar: &Bar,
    cumulative_volume: i64,
) -> UnderlyingTick {
    UnderlyingTick {
        event_id: Default::default(),
        event_time: millis_to_micros(bar.start_ms + 60_000),
        underlying: underlying.into(),
        source: SOURCE.into(),
        price: bar.close,
        volume: cumulative_volume,
        sector: sector.map(Into::into),
    }
}

/// One message of the options WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// `status` events: connected, auth_success, auth_failed, success (subscribed), …
    Status {
        /// The status word.
        status: String,
        /// Its message.
        message: String,
    },
    /// A quote (`ev: Q`).
    Quote {
        /// Polygon ticker (`O:…`).
        sym: String,
        /// Bid.
        bid: f64,
        /// Ask.
        ask: f64,
        /// Bid size.
        bid_size: i64,
        /// Ask size.
        ask_size: i64,
        /// Timestamp, µs.
        at: i64,
    },
    /// A trade (`ev: T`).
    Trade {
        /// Polygon ticker.
        sym: String,
        /// Price.
        price: f64,
        /// Size.
        size: i64,
        /// Timestamp, µs.
        at: i64,
    },
}

/// Parses one WebSocket frame (a JSON array of events). Unknown event kinds are skipped; events
/// missing fields are returned as errors alongside the good ones.
pub fn stream_frame(text: &str) -> Result<(Vec<StreamMessage>, Vec<String>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = match &v {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![v.clone()],
        _ => return Err("neither an array nor an object".into()),
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for it in &items {
        let ev = it.get("ev").and_then(Value::as_str).unwrap_or("");
        let s = |k: &str| it.get(k).and_then(Value::as_str).map(str::to_string);
        let parsed = match ev {
            "status" => Some(StreamMessage::Status {
                status: s("status").unwrap_or_default(),
                message: s("message").unwrap_or_default(),
            }),
            "Q" => (|| {
                Some(StreamMessage::Quote {
                    sym: s("sym")?,
                    bid: f64_at(it, &["bp"])?,
                    ask: f64_at(it, &["ap"])?,
                    bid_size: i64_at(it, &["bs"]).unwrap_or(0),
                    ask_size: i64_at(it, &["as"]).unwrap_or(0),
                    at: millis_to_micros(i64_at(it, &["t"])?),
                })
            })(),
            "T" => (|| {
                Some(StreamMessage::Trade {
                    sym: s("sym")?,
                    price: f64_at(it, &["p"])?,
                    size: i64_at(it, &["s"]).unwrap_or(0),
                    at: millis_to_micros(i64_at(it, &["t"])?),
                })
            })(),
            _ => continue,
        };
        match parsed {
            Some(m) => out.push(m),
            None => bad.push(format!("{ev} event missing fields: {it}")),
        }
    }
    Ok((out, bad))
}

/// Wraps a tick as a raw event.
pub fn tick_event(t: UnderlyingTick) -> RawEvent {
    RawEvent::Tick(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
    }

    #[test]
    fn snapshot_rows_become_quotes_and_bad_rows_are_named() {
        let body = json!({
            "status": "OK",
            "results": [
                {"details": {"ticker": "O:AAPL240119C00190000", "contract_type": "call", "expiration_date": "2024-01-19", "strike_price": 190},
                 "day": {"volume": 1200}, "open_interest": 5000,
                 "last_quote": {"bid": 3.1, "ask": 3.25, "bid_size": 10, "ask_size": 12, "last_updated": 1_704_207_600_123_456_789i64},
                 "last_trade": {"price": 3.2},
                 "underlying_asset": {"price": 187.5, "last_updated": 1_704_207_600_000_000_000i64, "ticker": "AAPL"}},
                {"details": {"ticker": "O:AAPL240119P00180000"}, "open_interest": 10, "underlying_asset": {"price": 187.5}},
                {"details": {"ticker": "nonsense"}},
                {"details": {"ticker": "O:AAPL250620C00190000"}, "last_quote": {"bid": 1.0, "ask": 1.1, "last_updated": 1}}
            ],
            "next_url": "https://api.polygon.io/v3/snapshot/options/AAPL?cursor=abc"
        });
        let page = snapshot_page("AAPL", &body, &ContractFilter::default(), today()).unwrap();
        assert_eq!(page.quotes.len(), 1);
        let q = &page.quotes[0];
        assert_eq!(q.symbol, "AAPL  240119C00190000");
        assert_eq!((q.bid, q.ask, q.bid_size, q.ask_size), (3.1, 3.25, 10, 12));
        assert_eq!(
            (q.volume, q.open_interest, q.last, q.underlying_price),
            (1200, 5000, Some(3.2), Some(187.5))
        );
        assert_eq!(page.latest, Some(1_704_207_600_123_456));
        assert_eq!(page.underlying, Some((187.5, 1_704_207_600_000_000)));
        let causes: Vec<_> = page.bad_rows.iter().map(|b| b.0).collect();
        assert_eq!(causes, ["no_quote", "bad_ticker"]);
        assert_eq!(
            page.excluded, 1,
            "the 2025 expiry is outside the default 60-day window"
        );
        assert!(page.next_url.unwrap().contains("cursor=abc"));
    }

    #[test]
    fn an_error_status_or_a_missing_results_array_fails_the_page() {
        let f = ContractFilter::default();
        assert!(snapshot_page(
            "X",
            &json!({"status": "ERROR", "error": "bad"}),
            &f,
            today()
        )
        .is_err());
        assert!(snapshot_page("X", &json!({"foo": 1}), &f, today()).is_err());
    }

    #[test]
    fn daily_bars_walk_open_low_high_close() {
        // 2024-01-02 00:00 New York = 05:00 UTC.
        let bar = Bar {
            start_ms: 1_704_171_600_000,
            open: 10.0,
            high: 12.0,
            low: 9.0,
            close: 11.0,
            volume: 300,
        };
        let ticks = daily_bar_ticks("GME", Some("Consumer Discretionary"), &bar);
        let prices: Vec<f64> = ticks.iter().map(|t| t.price).collect();
        assert_eq!(prices, [10.0, 9.0, 12.0, 11.0]);
        assert_eq!(ticks[3].volume, 300);
        assert_eq!(ticks[3].event_time, 1_704_229_200_000_000, "16:00 New York");
    }

    #[test]
    fn stream_frames_parse_quotes_trades_and_status() {
        let text = r#"[{"ev":"status","status":"auth_success","message":"authenticated"},
            {"ev":"Q","sym":"O:SPY241220P00720000","bx":302,"ax":302,"bp":9.71,"ap":9.81,"bs":17,"as":24,"t":1644506128351,"q":844},
            {"ev":"T","sym":"O:SPY241220P00720000","x":65,"p":9.75,"s":2,"c":[233],"t":1644506128352,"q":845},
            {"ev":"Q","sym":"O:SPY241220P00720000"},
            {"ev":"A","sym":"x"}]"#;
        let (msgs, bad) = stream_frame(text).unwrap();
        assert_eq!(msgs.len(), 3);
        assert!(
            matches!(&msgs[1], StreamMessage::Quote { bid, at, .. } if *bid == 9.71 && *at == 1_644_506_128_351_000)
        );
        assert!(matches!(&msgs[2], StreamMessage::Trade { size: 2, .. }));
        assert_eq!(bad.len(), 1);
        assert!(stream_frame("{").is_err());
    }
}
