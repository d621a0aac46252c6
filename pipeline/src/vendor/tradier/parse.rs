//! Tradier payloads to events. Pure functions over `serde_json::Value`, so every documented shape
//! and every malformed row is tested without a server.
//!
//! Tradier's JSON has two quirks handled once, in [`list`]: a one-element list arrives as the bare
//! element (`"date": "2024-01-19"`, `"option": {…}`) and an empty one as `null`
//! (`{"expirations": null}`). The stream sends numbers as strings (`"price": "1.24"`), so every
//! number is read through [`num`]. Timestamps are milliseconds.

use crate::vendor::batch::millis_to_micros;
use crate::vendor::filter::ContractFilter;
use crate::vendor::history::{ny_micros, Bar};
use chrono::NaiveDate;
use optionflow_operators::normalize::parse_occ;
use optionflow_schemas::RawQuote;
use serde_json::Value;

/// The vendor name carried in `source`.
pub const SOURCE: &str = "tradier";

/// The elements of `body[outer][inner]` under Tradier's list quirk: an array is itself, a bare
/// object or scalar is a list of one, `null` (at either level) or a missing `inner` is empty. A
/// body without `outer` is an error: that is not the documented payload.
pub fn list<'a>(body: &'a Value, outer: &str, inner: &str) -> Result<Vec<&'a Value>, String> {
    let wrapper = body.get(outer).ok_or_else(|| format!("no {outer:?} key"))?;
    match wrapper {
        Value::Null => Ok(Vec::new()),
        // Tradier writes an empty list as the string "null" in places.
        Value::String(s) if s == "null" => Ok(Vec::new()),
        Value::Object(o) => Ok(match o.get(inner) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one) => vec![one],
        }),
        other => Err(format!("{outer:?} is {other}, not an object")),
    }
}

/// A number, or a string holding one (the stream's encoding); `null`, non-finite and anything
/// else is `None`.
pub fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// An integer under the same rules as [`num`] (fractions are truncated).
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        _ => None,
    }
}

/// A millisecond timestamp as µs; 0 and negatives (Tradier's "never") are `None`.
fn stamp(v: Option<&Value>) -> Option<i64> {
    int(v).filter(|ms| *ms > 0).map(millis_to_micros)
}

fn latest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `/v1/markets/options/expirations`: the dates, sorted; dates that do not parse are returned
/// second, to be counted.
pub fn expirations(body: &Value) -> Result<(Vec<NaiveDate>, Vec<String>), String> {
    let mut dates = Vec::new();
    let mut bad = Vec::new();
    for d in list(body, "expirations", "date")? {
        match d
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        {
            Some(date) => dates.push(date),
            None => bad.push(format!("expiration {d} is not a YYYY-MM-DD date")),
        }
    }
    dates.sort();
    dates.dedup();
    Ok((dates, bad))
}

/// One underlying's quote from `/v1/markets/quotes`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnderlyingQuote {
    /// Ticker.
    pub symbol: String,
    /// Last trade (falls back to the previous close before the first trade of the day).
    pub last: f64,
    /// Shares traded today.
    pub volume: i64,
    /// Time of the last trade, µs.
    pub at: Option<i64>,
}

/// `/v1/markets/quotes`: the quotes that carry a price, and the symbols Tradier did not know
/// (`unmatched_symbols`) or sent without a price.
pub fn quotes(body: &Value) -> Result<(Vec<UnderlyingQuote>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    if let Some(unmatched) = body.get("quotes").and_then(|q| q.get("unmatched_symbols")) {
        let wrapper = serde_json::json!({ "u": unmatched });
        for s in list(&wrapper, "u", "symbol")? {
            missing.push(s.as_str().unwrap_or_default().to_string());
        }
    }
    for q in list(body, "quotes", "quote")? {
        let Some(symbol) = q.get("symbol").and_then(Value::as_str) else {
            missing.push(format!("quote without a symbol: {q}"));
            continue;
        };
        let Some(last) = num(q.get("last"))
            .or_else(|| num(q.get("prevclose")))
            .filter(|p| *p > 0.0)
        else {
            missing.push(symbol.to_string());
            continue;
        };
        out.push(UnderlyingQuote {
            symbol: symbol.to_string(),
            last,
            volume: int(q.get("volume")).unwrap_or(0),
            at: stamp(q.get("trade_date")),
        });
    }
    Ok((out, missing))
}

/// One page of `/v1/markets/options/chains` (one expiry), parsed.
#[derive(Debug, Default)]
pub struct ChainPage {
    /// Quotes of the usable rows in scope (event ids and times are set when the batch is
    /// stamped).
    pub quotes: Vec<ChainRow>,
    /// Latest `bid_date`/`ask_date`/`trade_date` of the usable rows, µs.
    pub latest: Option<i64>,
    /// Rows that could not be used: (cause, detail).
    pub bad_rows: Vec<(&'static str, String)>,
    /// Rows the filter left out.
    pub excluded: usize,
    /// Sum of the day volume of the usable rows.
    pub volume: i64,
}

/// A usable chain row: the quote, and what the stream needs to follow the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    /// The quote, symbol in canonical padded OCC.
    pub quote: RawQuote,
    /// Tradier's symbol (unpadded OCC), as the stream names the contract.
    pub vendor_symbol: String,
    /// Strike.
    pub strike: f64,
    /// Tradier's mid implied volatility (`greeks.mid_iv`), when greeks were asked for; logged
    /// for comparison only, the pipeline computes its own.
    pub mid_iv: Option<f64>,
}

/// Parses one chain page. A body that is not `{"options": …}` is an error (the caller counts it
/// and skips the expiry); a bad row is recorded in `bad_rows` and the rest still flows. `spot`
/// (the underlying's last) applies the moneyness band and is carried on each quote.
pub fn chain_page(
    underlying: &str,
    body: &Value,
    filter: &ContractFilter,
    today: NaiveDate,
    spot: Option<f64>,
) -> Result<ChainPage, String> {
    let mut page = ChainPage::default();
    for row in list(body, "options", "option")? {
        match chain_row(underlying, row, filter, today, spot) {
            Ok(Some((r, at))) => {
                page.latest = latest(page.latest, at);
                page.volume += r.quote.volume;
                page.quotes.push(r);
            }
            Ok(None) => page.excluded += 1,
            Err(bad) => page.bad_rows.push(bad),
        }
    }
    Ok(page)
}

type Row = Result<Option<(ChainRow, Option<i64>)>, (&'static str, String)>;

fn chain_row(
    underlying: &str,
    row: &Value,
    filter: &ContractFilter,
    today: NaiveDate,
    spot: Option<f64>,
) -> Row {
    let vendor_symbol = row
        .get("symbol")
        .and_then(Value::as_str)
        .ok_or_else(|| ("no_symbol", format!("option row without a symbol: {row}")))?;
    let c = parse_occ(vendor_symbol).map_err(|e| ("bad_symbol", e))?;
    let open_interest = int(row.get("open_interest")).unwrap_or(0);
    if filter
        .check(today, &c.root, c.expiry, c.strike, open_interest, spot)
        .is_err()
    {
        return Ok(None);
    }
    let bid =
        num(row.get("bid")).ok_or_else(|| ("no_quote", format!("{vendor_symbol}: bid missing")))?;
    let ask =
        num(row.get("ask")).ok_or_else(|| ("no_quote", format!("{vendor_symbol}: ask missing")))?;
    let at = [
        stamp(row.get("bid_date")),
        stamp(row.get("ask_date")),
        stamp(row.get("trade_date")),
    ]
    .into_iter()
    .fold(None, latest);
    let quote = RawQuote {
        event_id: Default::default(),
        event_time: at.unwrap_or(0),
        underlying: underlying.into(),
        source: SOURCE.into(),
        symbol: c.symbol(),
        bid,
        ask,
        bid_size: int(row.get("bidsize")).unwrap_or(0),
        ask_size: int(row.get("asksize")).unwrap_or(0),
        last: num(row.get("last")),
        volume: int(row.get("volume")).unwrap_or(0),
        open_interest,
        underlying_price: spot,
    };
    let mid_iv = num(row.get("greeks").and_then(|g| g.get("mid_iv")));
    Ok(Some((
        ChainRow {
            quote,
            vendor_symbol: vendor_symbol.to_string(),
            strike: c.strike,
            mid_iv,
        },
        at,
    )))
}

/// `/v1/markets/history`: daily bars (start = midnight New York of `date`) in date order; bars
/// without a date or an OHLC are counted in the second value.
pub fn history(body: &Value) -> Result<(Vec<Bar>, usize), String> {
    let mut bars = Vec::new();
    let mut bad = 0;
    for d in list(body, "history", "day")? {
        let bar = (|| {
            let date = NaiveDate::parse_from_str(d.get("date")?.as_str()?, "%Y-%m-%d").ok()?;
            Some(Bar {
                start_ms: ny_micros(date, 0, 0)? / 1000,
                open: num(d.get("open"))?,
                high: num(d.get("high"))?,
                low: num(d.get("low"))?,
                close: num(d.get("close"))?,
                volume: int(d.get("volume")).unwrap_or(0),
            })
        })();
        match bar {
            Some(bar) if bar.close > 0.0 => bars.push(bar),
            _ => bad += 1,
        }
    }
    bars.sort_by_key(|b| b.start_ms);
    Ok((bars, bad))
}

/// `POST /v1/markets/events/session`: the session id the WebSocket subscription must carry.
pub fn session_id(body: &Value) -> Result<String, String> {
    body.get("stream")
        .and_then(|s| s.get("sessionid"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("no stream.sessionid in {body}"))
}

/// One event of the market-events WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// A quote (`type: quote`).
    Quote {
        /// Tradier symbol (unpadded OCC, or the underlying's ticker).
        symbol: String,
        /// Bid.
        bid: f64,
        /// Ask.
        ask: f64,
        /// Bid size.
        bid_size: i64,
        /// Ask size.
        ask_size: i64,
        /// Latest of `biddate` and `askdate`, µs.
        at: i64,
    },
    /// A trade (`type: trade`).
    Trade {
        /// Tradier symbol.
        symbol: String,
        /// Price.
        price: f64,
        /// Size.
        size: i64,
        /// Cumulative volume today (`cvol`).
        cumulative_volume: Option<i64>,
        /// `date`, µs.
        at: i64,
    },
    /// `{"error": …}`: the session is unknown or expired.
    Error(String),
}

/// Parses one WebSocket text frame: one JSON object, or several separated by newlines
/// (`linebreak: true`). Kinds the pipeline does not use (`summary`, `timesale`, `tradex`) are
/// skipped; events missing fields are returned second, to be counted. A frame that is not JSON at
/// all is an error.
pub fn stream_frame(text: &str) -> Result<(Vec<StreamMessage>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let it = item.map_err(|e| format!("not JSON: {e}"))?;
        if let Some(e) = it.get("error") {
            out.push(StreamMessage::Error(
                e.as_str().map_or_else(|| e.to_string(), str::to_string),
            ));
            continue;
        }
        let kind = it.get("type").and_then(Value::as_str).unwrap_or("");
        let symbol = || it.get("symbol").and_then(Value::as_str).map(str::to_string);
        let parsed = match kind {
            "quote" => (|| {
                Some(StreamMessage::Quote {
                    symbol: symbol()?,
                    bid: num(it.get("bid"))?,
                    ask: num(it.get("ask"))?,
                    bid_size: int(it.get("bidsz")).unwrap_or(0),
                    ask_size: int(it.get("asksz")).unwrap_or(0),
                    at: latest(stamp(it.get("biddate")), stamp(it.get("askdate")))?,
                })
            })(),
            "trade" => (|| {
                Some(StreamMessage::Trade {
                    symbol: symbol()?,
                    price: num(it.get("price")).or_else(|| num(it.get("last")))?,
                    size: int(it.get("size")).unwrap_or(0),
                    cumulative_volume: int(it.get("cvol")),
                    at: stamp(it.get("date"))?,
                })
            })(),
            _ => continue,
        };
        match parsed {
            Some(m) => out.push(m),
            None => bad.push(format!("{kind} event missing fields: {it}")),
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn lists_come_as_arrays_bare_elements_or_null() {
        let many = json!({"expirations": {"date": ["2024-01-26", "2024-01-19"]}});
        let one = json!({"expirations": {"date": "2024-01-19"}});
        let none = json!({"expirations": null});
        assert_eq!(
            expirations(&many).unwrap().0,
            [d("2024-01-19"), d("2024-01-26")]
        );
        assert_eq!(expirations(&one).unwrap().0, [d("2024-01-19")]);
        assert!(expirations(&none).unwrap().0.is_empty());
        assert!(expirations(&json!({"expirations": "null"}))
            .unwrap()
            .0
            .is_empty());
        let (dates, bad) =
            expirations(&json!({"expirations": {"date": ["x", "2024-01-19"]}})).unwrap();
        assert_eq!((dates.len(), bad.len()), (1, 1));
        assert!(expirations(&json!({"fault": {}})).is_err());
        assert!(expirations(&json!({"expirations": 3})).is_err());
    }

    #[test]
    fn numbers_may_be_strings() {
        assert_eq!(num(Some(&json!("1.24"))), Some(1.24));
        assert_eq!(num(Some(&json!(1.5))), Some(1.5));
        assert_eq!(num(Some(&json!(null))), None);
        assert_eq!(num(Some(&json!("n/a"))), None);
        assert_eq!(int(Some(&json!("5990"))), Some(5990));
        assert_eq!(int(Some(&json!(12.0))), Some(12));
        assert_eq!(int(None), None);
    }

    #[test]
    fn quotes_single_list_and_unmatched() {
        let one = json!({"quotes": {"quote": {"symbol": "SPY", "last": 471.2, "volume": 123, "trade_date": 1_704_229_200_000i64}}});
        let (q, missing) = quotes(&one).unwrap();
        assert_eq!(
            q,
            [UnderlyingQuote {
                symbol: "SPY".into(),
                last: 471.2,
                volume: 123,
                at: Some(1_704_229_200_000_000)
            }]
        );
        assert!(missing.is_empty());
        let many = json!({"quotes": {
            "quote": [{"symbol": "SPY", "last": 471.2}, {"symbol": "NEW", "last": null, "prevclose": null}],
            "unmatched_symbols": {"symbol": "XYZ"}}});
        let (q, missing) = quotes(&many).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(missing, ["XYZ", "NEW"]);
        let unknown = json!({"quotes": {"unmatched_symbols": {"symbol": "XYZ"}}});
        assert_eq!(quotes(&unknown).unwrap().1, ["XYZ"]);
    }

    fn row(symbol: &str, bid: Value, strike: f64) -> Value {
        json!({"symbol": symbol, "type": "option", "underlying": "SPY", "strike": strike,
               "bid": bid, "ask": 1.30, "bidsize": 10, "asksize": 7, "last": 1.25, "volume": 40,
               "open_interest": 900, "bid_date": 1_704_229_100_000i64, "ask_date": 1_704_229_150_000i64,
               "trade_date": 0, "option_type": "call", "root_symbol": "SPY",
               "greeks": {"delta": 0.5, "mid_iv": 0.14, "updated_at": "2024-01-02 20:00:00"}})
    }

    #[test]
    fn chain_rows_become_quotes_and_bad_rows_are_named() {
        let body = json!({"options": {"option": [
            row("SPY240119C00470000", json!(1.20), 470.0),
            row("SPY240119C00471000", json!(null), 471.0),
            row("nonsense", json!(1.0), 1.0),
            row("SPY240119C00700000", json!(0.01), 700.0),
            row("SPY240419C00470000", json!(5.0), 470.0),
        ]}});
        let page = chain_page(
            "SPY",
            &body,
            &ContractFilter::default(),
            d("2024-01-02"),
            Some(471.0),
        )
        .unwrap();
        assert_eq!(page.quotes.len(), 1);
        let r = &page.quotes[0];
        assert_eq!(r.quote.symbol, "SPY   240119C00470000");
        assert_eq!(r.vendor_symbol, "SPY240119C00470000");
        assert_eq!(
            (r.quote.bid, r.quote.ask, r.quote.bid_size, r.quote.ask_size),
            (1.2, 1.3, 10, 7)
        );
        assert_eq!(
            (r.quote.open_interest, r.quote.volume, r.quote.last),
            (900, 40, Some(1.25))
        );
        assert_eq!(
            (r.quote.underlying_price, r.quote.source.as_str(), r.mid_iv),
            (Some(471.0), "tradier", Some(0.14))
        );
        assert_eq!(
            page.latest,
            Some(1_704_229_150_000_000),
            "ask_date, the latest"
        );
        let causes: Vec<_> = page.bad_rows.iter().map(|b| b.0).collect();
        assert_eq!(causes, ["no_quote", "bad_symbol"]);
        assert_eq!(
            page.excluded, 2,
            "far out of the money, and past the window"
        );
    }

    #[test]
    fn a_chain_of_one_or_none_and_a_malformed_one() {
        let f = ContractFilter::default();
        let one = json!({"options": {"option": row("SPY240119C00470000", json!(1.2), 470.0)}});
        let p = chain_page("SPY", &one, &f, d("2024-01-02"), None).unwrap();
        assert_eq!(p.quotes.len(), 1);
        let none = json!({"options": null});
        assert!(chain_page("SPY", &none, &f, d("2024-01-02"), None)
            .unwrap()
            .quotes
            .is_empty());
        assert!(chain_page(
            "SPY",
            &json!({"options": "oops"}),
            &f,
            d("2024-01-02"),
            None
        )
        .is_err());
        assert!(chain_page("SPY", &json!([]), &f, d("2024-01-02"), None).is_err());
    }

    #[test]
    fn history_days_one_or_many() {
        let one = json!({"history": {"day": {"date": "2024-01-02", "open": 472.16, "high": 473.67, "low": 470.49, "close": 472.65, "volume": 123_623_700}}});
        let (bars, bad) = history(&one).unwrap();
        assert_eq!(bad, 0);
        // 2024-01-02 00:00 New York = 05:00 UTC.
        assert_eq!(bars[0].start_ms, 1_704_171_600_000);
        assert_eq!(bars[0].volume, 123_623_700);
        let many = json!({"history": {"day": [{"date": "2024-01-03", "open": 1, "high": 1, "low": 1, "close": 1},
                                               {"date": "2024-01-02", "open": 1, "high": 1, "low": 1, "close": null}]}});
        let (bars, bad) = history(&many).unwrap();
        assert_eq!((bars.len(), bad), (1, 1));
        assert!(history(&json!({"history": null})).unwrap().0.is_empty());
    }

    #[test]
    fn session_ids() {
        let body = json!({"stream": {"url": "https://stream.tradier.com/v1/markets/events", "sessionid": "c8638963-a6d4-4fb9-9bc6-e25fbd8c60c3"}});
        assert_eq!(
            session_id(&body).unwrap(),
            "c8638963-a6d4-4fb9-9bc6-e25fbd8c60c3"
        );
        assert!(session_id(&json!({"stream": null})).is_err());
    }

    #[test]
    fn stream_frames_with_string_numbers_several_per_frame() {
        let text = concat!(
            r#"{"type":"quote","symbol":"SPY240119C00470000","bid":1.23,"bidsz":10,"bidexch":"Q","biddate":"1557757189000","ask":1.25,"asksz":6,"askexch":"Z","askdate":"1557757190000"}"#,
            "\n",
            r#"{"type":"trade","symbol":"SPY240119C00470000","exch":"J","price":"1.24","size":"3","cvol":"5990","date":"1557757189000","last":"1.24"}"#,
            "\n",
            r#"{"type":"summary","symbol":"SPY","open":"1","high":"2"}"#,
            "\n",
            r#"{"type":"timesale","symbol":"SPY"}"#,
            "\n",
            r#"{"type":"quote","symbol":"SPY"}"#,
        );
        let (msgs, bad) = stream_frame(text).unwrap();
        assert_eq!(
            msgs,
            [
                StreamMessage::Quote {
                    symbol: "SPY240119C00470000".into(),
                    bid: 1.23,
                    ask: 1.25,
                    bid_size: 10,
                    ask_size: 6,
                    at: 1_557_757_190_000_000
                },
                StreamMessage::Trade {
                    symbol: "SPY240119C00470000".into(),
                    price: 1.24,
                    size: 3,
                    cumulative_volume: Some(5990),
                    at: 1_557_757_189_000_000
                }
            ]
        );
        assert_eq!(bad.len(), 1);
        let (msgs, _) = stream_frame(r#"{"error":"session not found"}"#).unwrap();
        assert_eq!(msgs, [StreamMessage::Error("session not found".into())]);
        assert!(stream_frame("{").is_err());
    }
}
