//! The generic option CSV: one row per contract per timestamp, columns by header name.
//!
//! Required: `underlying,quote_time,expiry,strike,right,bid,ask,last,volume,open_interest,
//! underlying_price`. Optional: `root` (the OCC root when it is not the underlying, e.g.
//! `SPXW`), `bid_size`, `ask_size`, and `iv,delta,gamma,theta,vega`. The greeks columns are
//! read and must be numbers when present, but the pipeline computes its own implied vols and
//! greeks from the prices, so their values go nowhere.
//!
//! `quote_time` is RFC 3339 or `YYYY-MM-DD HH:MM[:SS]` New York time; `expiry` `YYYY-MM-DD`;
//! `right` call/put/C/P in any case; `last` and `underlying_price` may be empty, `volume` and
//! `open_interest` empty mean 0.

use super::fields::{self, Col, Header, RowError};
use super::{ImportError, Parsed, SOURCE};
use csv::StringRecord;
use optionflow_schemas::RawQuote;

/// Column positions of one generic file.
pub(super) struct Layout {
    underlying: Col,
    quote_time: Col,
    expiry: Col,
    strike: Col,
    right: Col,
    bid: Col,
    ask: Col,
    last: Col,
    volume: Col,
    open_interest: Col,
    underlying_price: Col,
    root: Option<Col>,
    bid_size: Option<Col>,
    ask_size: Option<Col>,
    greeks: Vec<Col>,
}

impl Layout {
    pub(super) fn new(h: &Header) -> Result<Self, ImportError> {
        Ok(Self {
            underlying: h.required("underlying")?,
            quote_time: h.required("quote_time")?,
            expiry: h.required("expiry")?,
            strike: h.required("strike")?,
            right: h.required("right")?,
            bid: h.required("bid")?,
            ask: h.required("ask")?,
            last: h.required("last")?,
            volume: h.required("volume")?,
            open_interest: h.required("open_interest")?,
            underlying_price: h.required("underlying_price")?,
            root: h.optional("root"),
            bid_size: h.optional("bid_size"),
            ask_size: h.optional("ask_size"),
            greeks: ["iv", "delta", "gamma", "theta", "vega"]
                .iter()
                .filter_map(|n| h.optional(n))
                .collect(),
        })
    }

    pub(super) fn row(&self, rec: &StringRecord) -> Result<Parsed, RowError> {
        let underlying = fields::underlying(self.underlying.text(rec)?)?;
        let event_time = fields::quote_time(self.quote_time.text(rec)?)?;
        let root = match &self.root {
            Some(c) if !c.text(rec)?.is_empty() => c.text(rec)?.to_string(),
            _ => fields::root_of(&underlying),
        };
        let symbol = fields::occ_symbol(
            &root,
            self.expiry.date(rec)?,
            self.right.right(rec)?,
            self.strike.number(rec)?,
        )?;
        for g in &self.greeks {
            g.opt_number(rec)?;
        }
        let size = |c: &Option<Col>| c.as_ref().map_or(Ok(0), |c| c.count(rec));
        Ok(Parsed::quote(RawQuote {
            event_id: Default::default(),
            event_time,
            underlying: underlying.into(),
            source: SOURCE.into(),
            symbol: symbol.into(),
            bid: self.bid.number(rec)?,
            ask: self.ask.number(rec)?,
            bid_size: size(&self.bid_size)?,
            ask_size: size(&self.ask_size)?,
            last: self.last.opt_number(rec)?,
            volume: self.volume.count(rec)?,
            open_interest: self.open_interest.count(rec)?,
            underlying_price: self.underlying_price.opt_number(rec)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use optionflow_schemas::RawEvent;

    const HEADER: &str = "underlying,quote_time,expiry,strike,right,bid,ask,last,volume,open_interest,underlying_price,iv,delta";

    #[test]
    fn rows_become_quotes_with_occ_symbols_and_new_york_times() {
        let text = format!(
            "{HEADER}\n\
             aapl,2024-01-02 10:30,2024-01-19,190,call,5.10,5.20,5.15,120,3400,192.5,0.21,0.6\n\
             AAPL,2024-01-02T15:30:00Z,2024-01-19,187.5,P,1.00,1.05,,0,,192.5,,\n"
        );
        let (events, bad) = parse_all(Format::Generic, &text);
        assert!(bad.is_empty(), "{bad:?}");
        let RawEvent::Quote(q) = &events[0].0 else {
            panic!("a quote")
        };
        assert_eq!(q.symbol, "AAPL  240119C00190000");
        assert_eq!(q.underlying, "AAPL");
        // 10:30 EST is 15:30 UTC.
        assert_eq!(q.event_time, 1_704_209_400_000_000);
        assert_eq!((q.bid, q.ask, q.last), (5.10, 5.20, Some(5.15)));
        assert_eq!((q.volume, q.open_interest), (120, 3400));
        assert_eq!(q.underlying_price, Some(192.5));
        assert_eq!(q.source, "file");
        let RawEvent::Quote(p) = &events[1].0 else {
            panic!("a quote")
        };
        assert_eq!(p.symbol, "AAPL  240119P00187500");
        assert_eq!(p.event_time, q.event_time);
        assert_eq!((p.last, p.open_interest), (None, 0));
        // Each row also carries a spot tick at its underlying price.
        assert!(events
            .iter()
            .all(|(_, spot)| spot.as_ref().is_some_and(|t| t.price == 192.5)));
    }

    #[test]
    fn unreadable_fields_are_bad_rows_with_the_reason_and_implausible_prices_pass() {
        let text = format!(
            "{HEADER}\n\
             AAPL,2024-01-02 10:30,2024-01-19,190,straddle,5.1,5.2,,1,1,192,,\n\
             AAPL,2024-01-02 10:30,2024-01-19,abc,call,5.1,5.2,,1,1,192,,\n\
             AAPL,2024-01-02 10:30,2024-19-01,190,call,5.1,5.2,,1,1,192,,\n\
             AAPL,2024-01-02 10:30,2024-01-19,190,call,5.1,5.2,,1,1,192,high,\n\
             AAPL,2024-01-02 10:30,2024-01-19,190,call,6.0,5.0,,-3,1,192,,\n"
        );
        let (events, bad) = parse_all(Format::Generic, &text);
        let causes: Vec<_> = bad.iter().map(|(line, e)| (*line, e.cause)).collect();
        assert_eq!(
            causes,
            [
                (2, "bad_right"),
                (3, "bad_number"),
                (4, "bad_date"),
                (5, "bad_number")
            ]
        );
        assert!(bad[0].1.reason.contains("\"straddle\""));
        assert!(bad[3].1.reason.contains("iv"));
        // Crossed, with negative volume: normalize's to reject, with its reason.
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn a_root_column_names_weeklies() {
        let text = "underlying,root,quote_time,expiry,strike,right,bid,ask,last,volume,open_interest,underlying_price\n\
                    ^SPX,SPXW,2024-01-02 10:30,2024-01-05,4700,C,50,51,,1,1,4742.1\n";
        let (events, _) = parse_all(Format::Generic, text);
        let RawEvent::Quote(q) = &events[0].0 else {
            panic!("a quote")
        };
        assert_eq!(
            (q.underlying.as_str(), q.symbol.as_str()),
            ("SPX", "SPXW  240105C04700000")
        );
    }
}
