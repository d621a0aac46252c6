//! Underlying daily bars in Yahoo Finance's download layout: `Date,Open,High,Low,Close[,Adj
//! Close],Volume`, `Date` as `YYYY-MM-DD`. Each bar becomes one `UnderlyingTick` at 16:00 New
//! York with the close (not the adjusted close: option strikes are in unadjusted prices) and
//! the day's volume. Yahoo's `null` rows (no trading data) are bad rows.

use super::fields::{Col, Header, RowError};
use super::{spot_tick, ImportError, Parsed};
use csv::StringRecord;

/// Column positions of one bars file, and whose bars they are.
pub(super) struct Layout {
    underlying: String,
    date: Col,
    close: Col,
    volume: Col,
}

impl Layout {
    pub(super) fn new(h: &Header, underlying: String) -> Result<Self, ImportError> {
        // Open, High and Low are the layout's but a tick carries only the close.
        for name in ["Open", "High", "Low"] {
            h.required(name)?;
        }
        Ok(Self {
            underlying,
            date: h.required("Date")?,
            close: h.required("Close")?,
            volume: h.required("Volume")?,
        })
    }

    pub(super) fn row(&self, rec: &StringRecord) -> Result<Parsed, RowError> {
        let time = super::fields::new_york_on(self.date.date(rec)?, 16, 0)?;
        let close = self.close.number(rec)?;
        let volume = self.volume.count(rec)?;
        Ok(Parsed::tick(spot_tick(
            &self.underlying,
            time,
            close,
            volume,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use super::super::Format;
    use optionflow_schemas::RawEvent;

    #[test]
    fn each_bar_is_a_tick_at_the_close() {
        let text = "Date,Open,High,Low,Close,Adj Close,Volume\n\
                    2021-01-25,96.73,159.18,61.13,76.79,76.79,177874000\n\
                    2021-01-26,88.56,150.00,80.20,147.98,147.98,178588000\n\
                    2021-01-27,null,null,null,null,null,null\n";
        let (events, bad) = parse_all(Format::DailyBars, text);
        let RawEvent::Tick(t) = &events[1].0 else {
            panic!("a tick")
        };
        assert_eq!(t.underlying, "TEST");
        assert_eq!((t.price, t.volume), (147.98, 178_588_000));
        // 16:00 EST = 21:00 UTC on 2021-01-26.
        assert_eq!(t.event_time, 1_611_694_800_000_000);
        assert!(events[1].1.is_none());
        assert_eq!(bad.len(), 1);
        assert_eq!((bad[0].0, bad[0].1.cause), (4, "bad_number"));
        // Without Adj Close too.
        let (events, _) = parse_all(
            Format::DailyBars,
            "Date,Open,High,Low,Close,Volume\n2021-01-25,1,2,0.5,1.5,10\n",
        );
        assert_eq!(events.len(), 1);
    }
}
