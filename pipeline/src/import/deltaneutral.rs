//! HistoricalOptionData.com / DeltaNeutral end-of-day option files (the "L2"/"L3" layout):
//! `UnderlyingSymbol, UnderlyingPrice, Exchange, OptionSymbol, OptionExt, Type, Expiration,
//! DataDate, Strike, Last, Bid, Ask, Volume, OpenInterest, IV, Delta, Gamma, Theta, Vega, AKA`.
//!
//! Read by header name; required are `UnderlyingSymbol, UnderlyingPrice, Type, Expiration,
//! DataDate, Strike, Last, Bid, Ask, Volume, OpenInterest` (the vendor's IV and greeks are not
//! read: the pipeline computes its own). Dates are `M/D/YYYY`; the quote time is 16:00 New York
//! of `DataDate`, the close the vendor's bid, ask and `UnderlyingPrice` are taken at. The OCC
//! root comes from `OptionSymbol` when it is an OCC symbol (`SPXW150116C02000000` → `SPXW`),
//! else from the underlying. `Last` of 0 means no trade.

use super::fields::{self, Col, Header, RowError};
use super::{ImportError, Parsed, SOURCE};
use csv::StringRecord;
use optionflow_operators::normalize::parse_occ;
use optionflow_schemas::RawQuote;

/// Column positions of one DeltaNeutral file.
pub(super) struct Layout {
    underlying: Col,
    underlying_price: Col,
    option_symbol: Option<Col>,
    kind: Col,
    expiration: Col,
    data_date: Col,
    strike: Col,
    last: Col,
    bid: Col,
    ask: Col,
    volume: Col,
    open_interest: Col,
}

impl Layout {
    pub(super) fn new(h: &Header) -> Result<Self, ImportError> {
        Ok(Self {
            underlying: h.required("UnderlyingSymbol")?,
            underlying_price: h.required("UnderlyingPrice")?,
            option_symbol: h.optional("OptionSymbol"),
            kind: h.required("Type")?,
            expiration: h.required("Expiration")?,
            data_date: h.required("DataDate")?,
            strike: h.required("Strike")?,
            last: h.required("Last")?,
            bid: h.required("Bid")?,
            ask: h.required("Ask")?,
            volume: h.required("Volume")?,
            open_interest: h.required("OpenInterest")?,
        })
    }

    pub(super) fn row(&self, rec: &StringRecord) -> Result<Parsed, RowError> {
        let underlying = fields::underlying(self.underlying.text(rec)?)?;
        let event_time = fields::new_york_on(self.data_date.date(rec)?, 16, 0)?;
        let root = match &self.option_symbol {
            Some(c) => parse_occ(c.text(rec)?).ok().map(|occ| occ.root),
            None => None,
        }
        .unwrap_or_else(|| fields::root_of(&underlying).into());
        let symbol = fields::occ_symbol(
            &root,
            self.expiration.date(rec)?,
            self.kind.right(rec)?,
            self.strike.number(rec)?,
        )?;
        Ok(Parsed::quote(RawQuote {
            event_id: Default::default(),
            event_time,
            underlying: underlying.into(),
            source: SOURCE.into(),
            symbol: symbol.into(),
            bid: self.bid.number(rec)?,
            ask: self.ask.number(rec)?,
            bid_size: 0,
            ask_size: 0,
            last: self.last.opt_number(rec)?.filter(|l| *l > 0.0),
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

    const HEADER: &str = "UnderlyingSymbol,UnderlyingPrice,Exchange,OptionSymbol,OptionExt,Type,Expiration,DataDate,Strike,Last,Bid,Ask,Volume,OpenInterest,IV,Delta,Gamma,Theta,Vega,AKA";

    #[test]
    fn rows_are_quotes_at_the_close_of_the_data_date() {
        let text = format!(
            "{HEADER}\n\
             SPY,205.43,*,SPY150220C00205000,,call,2/20/2015,1/2/2015,205,4.66,4.62,4.68,3216,21044,0.1466,0.5306,0.0466,-16.54,23.65,SPY150220C00205000\n\
             SPX,2058.20,*,SPXW150109P02050000,,put,1/9/2015,1/2/2015,2050,0,9.10,9.60,0,150,0.16,-0.4,0.01,-100,80,SPXW150109P02050000\n\
             SPY,205.43,*,SPY150220C00205000,,straddle,2/20/2015,1/2/2015,205,4.66,4.62,4.68,3216,21044,0.1466,0.5306,0.0466,-16.54,23.65,\n\
             SPY,205.43,*,SPY150220C00205000,,call,2/30/2015,1/2/2015,205,4.66,4.62,4.68,3216,21044,0.1466,0.5306,0.0466,-16.54,23.65,\n"
        );
        let (events, bad) = parse_all(Format::DeltaNeutral, &text);
        let RawEvent::Quote(q) = &events[0].0 else {
            panic!("a quote")
        };
        assert_eq!(q.symbol, "SPY   150220C00205000");
        // 16:00 EST = 21:00 UTC on 2015-01-02.
        assert_eq!(q.event_time, 1_420_232_400_000_000);
        assert_eq!((q.bid, q.ask, q.last), (4.62, 4.68, Some(4.66)));
        assert_eq!((q.volume, q.open_interest), (3216, 21044));
        assert_eq!(q.underlying_price, Some(205.43));
        let RawEvent::Quote(w) = &events[1].0 else {
            panic!("a quote")
        };
        assert_eq!((w.symbol.as_str(), w.last), ("SPXW  150109P02050000", None));
        let causes: Vec<_> = bad.iter().map(|(l, e)| (*l, e.cause)).collect();
        assert_eq!(causes, [(4, "bad_right"), (5, "bad_date")]);
    }
}
