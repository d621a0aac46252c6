//! Cboe DataShop "Option EOD Summary" files (one row per contract per trading day).
//!
//! Read by header name, extra columns ignored (the "with calcs" variant adds
//! `implied_volatility_1545`, greeks and more): `underlying_symbol, quote_date, root,
//! expiration, strike, option_type, close, trade_volume, bid_size_1545, bid_1545,
//! ask_size_1545, ask_1545, underlying_bid_1545, underlying_ask_1545, open_interest`.
//!
//! The quote is the 15:45 New York snapshot (`*_1545`), not the end-of-day one: at 15:45 the
//! option and underlying quotes are taken together while both markets trade, whereas `*_eod`
//! option quotes come after the equity close. The underlying price is the mid of
//! `underlying_bid_1545`/`underlying_ask_1545` (one side if the other is 0, then
//! `active_underlying_price_1545` if the file has it); `last` is `close` when a trade printed
//! (`close` > 0). `underlying_symbol` loses its index caret (`^SPX` → `SPX`); `root` names the
//! contract (`SPXW`).

use super::fields::{self, Col, Header, RowError};
use super::{ImportError, Parsed, SOURCE};
use csv::StringRecord;
use optionflow_schemas::RawQuote;

/// Column positions of one Cboe EOD file.
pub(super) struct Layout {
    underlying: Col,
    quote_date: Col,
    root: Col,
    expiration: Col,
    strike: Col,
    option_type: Col,
    close: Col,
    trade_volume: Col,
    bid_size: Col,
    bid: Col,
    ask_size: Col,
    ask: Col,
    underlying_bid: Col,
    underlying_ask: Col,
    active_underlying: Option<Col>,
    open_interest: Col,
}

impl Layout {
    pub(super) fn new(h: &Header) -> Result<Self, ImportError> {
        Ok(Self {
            underlying: h.required("underlying_symbol")?,
            quote_date: h.required("quote_date")?,
            root: h.required("root")?,
            expiration: h.required("expiration")?,
            strike: h.required("strike")?,
            option_type: h.required("option_type")?,
            close: h.required("close")?,
            trade_volume: h.required("trade_volume")?,
            bid_size: h.required("bid_size_1545")?,
            bid: h.required("bid_1545")?,
            ask_size: h.required("ask_size_1545")?,
            ask: h.required("ask_1545")?,
            underlying_bid: h.required("underlying_bid_1545")?,
            underlying_ask: h.required("underlying_ask_1545")?,
            active_underlying: h.optional("active_underlying_price_1545"),
            open_interest: h.required("open_interest")?,
        })
    }

    pub(super) fn row(&self, rec: &StringRecord) -> Result<Parsed, RowError> {
        let underlying = fields::underlying(self.underlying.text(rec)?)?;
        let event_time = fields::new_york_on(self.quote_date.date(rec)?, 15, 45)?;
        let symbol = fields::occ_symbol(
            self.root.text(rec)?,
            self.expiration.date(rec)?,
            self.option_type.right(rec)?,
            self.strike.number(rec)?,
        )?;
        let (ub, ua) = (
            self.underlying_bid.opt_number(rec)?.unwrap_or(0.0),
            self.underlying_ask.opt_number(rec)?.unwrap_or(0.0),
        );
        let active = match &self.active_underlying {
            Some(c) => c.opt_number(rec)?.unwrap_or(0.0),
            None => 0.0,
        };
        let underlying_price = match (ub > 0.0, ua > 0.0) {
            (true, true) => Some(0.5 * (ub + ua)),
            (true, false) => Some(ub),
            (false, true) => Some(ua),
            (false, false) if active > 0.0 => Some(active),
            _ => None,
        };
        let close = self.close.opt_number(rec)?;
        Ok(Parsed::quote(RawQuote {
            event_id: Default::default(),
            event_time,
            underlying: underlying.into(),
            source: SOURCE.into(),
            symbol: symbol.into(),
            bid: self.bid.number(rec)?,
            ask: self.ask.number(rec)?,
            bid_size: self.bid_size.count(rec)?,
            ask_size: self.ask_size.count(rec)?,
            last: close.filter(|c| *c > 0.0),
            volume: self.trade_volume.count(rec)?,
            open_interest: self.open_interest.count(rec)?,
            underlying_price,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use optionflow_schemas::RawEvent;

    const HEADER: &str = "underlying_symbol,quote_date,root,expiration,strike,option_type,open,high,low,close,trade_volume,bid_size_1545,bid_1545,ask_size_1545,ask_1545,underlying_bid_1545,underlying_ask_1545,bid_size_eod,bid_eod,ask_size_eod,ask_eod,underlying_bid_eod,underlying_ask_eod,vwap,open_interest,delivery_code";

    #[test]
    fn the_1545_snapshot_is_the_quote() {
        let text = format!(
            "{HEADER}\n\
             ^SPX,2024-01-02,SPXW,2024-01-05,4700.000,C,60.1,70.2,40.3,55.5,812,20,54.10,25,55.20,4742.10,4742.50,15,53.0,18,54.0,4742.83,4742.83,56.1,1530,0\n\
             ^SPX,2024-01-02,SPXW,2024-01-05,4700.000,P,0,0,0,0,0,10,3.10,12,3.30,4742.10,4742.50,1,3.0,1,3.4,4742.83,4742.83,0,0,0\n"
        );
        let (events, bad) = parse_all(Format::CboeEod, &text);
        assert!(bad.is_empty(), "{bad:?}");
        let RawEvent::Quote(c) = &events[0].0 else {
            panic!("a quote")
        };
        assert_eq!(c.underlying, "SPX");
        assert_eq!(c.symbol, "SPXW  240105C04700000");
        // 15:45 EST = 20:45 UTC.
        assert_eq!(c.event_time, 1_704_228_300_000_000);
        assert_eq!(
            (c.bid, c.ask, c.bid_size, c.ask_size),
            (54.10, 55.20, 20, 25)
        );
        assert_eq!((c.last, c.volume, c.open_interest), (Some(55.5), 812, 1530));
        assert_eq!(c.underlying_price, Some(4742.3));
        let RawEvent::Quote(p) = &events[1].0 else {
            panic!("a quote")
        };
        assert_eq!((p.symbol.as_str(), p.last), ("SPXW  240105P04700000", None));
        assert_eq!(events[1].1.as_ref().map(|t| t.price), Some(4742.3));
    }

    #[test]
    fn a_missing_column_is_named_and_extra_ones_are_ignored() {
        let text = HEADER.replace(",bid_1545,", ",bid_1600,");
        let err = super::super::read_rows(
            format!("{text}\n").as_bytes(),
            "x.csv",
            Format::CboeEod,
            "",
            |_, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"bid_1545\""), "{err}");
        assert!(err.to_string().contains("cboe-eod"), "{err}");
        let extra = format!(
            "{HEADER},implied_volatility_1545\n\
             AAPL,2024-01-02,AAPL,2024-01-19,190,c,0,0,0,0,0,1,5.1,1,5.2,0,0,0,0,0,0,0,0,0,10,0,0.2\n"
        );
        let (events, bad) = parse_all(Format::CboeEod, &extra);
        assert!(bad.is_empty(), "{bad:?}");
        // No underlying quote at 15:45: no spot tick, normalize falls back to a recent one.
        assert!(events[0].1.is_none());
    }
}
