//! Daily bars in Yahoo Finance's layout, as the scenario reads them.

use super::ScenarioError;
use chrono::NaiveDate;
use std::path::Path;

/// One session's bar, in the prices and volume of the day (after the scenario's factors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DailyBar {
    pub(super) date: NaiveDate,
    pub(super) open: f64,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) close: f64,
    pub(super) volume: f64,
}

/// Reads `path`: `Date,Open,High,Low,Close[,Adj Close],Volume` (columns by name, any order),
/// prices multiplied by `price_factor`, volume divided by `volume_divisor`, sorted by date.
/// A row that does not parse, or breaks low ≤ open, close ≤ high, is an error naming its line:
/// scenario data is curated, so nothing is skipped silently.
pub(super) fn read(
    path: &Path,
    price_factor: f64,
    volume_divisor: f64,
) -> Result<Vec<DailyBar>, ScenarioError> {
    let name = path.display().to_string();
    let bad = |line: u64, why: String| ScenarioError::Bars {
        path: name.clone(),
        line,
        reason: why,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(0, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |want: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(want))
            .ok_or_else(|| bad(1, format!("no {want} column")))
    };
    let (d, o, h, l, c, v) = (
        col("Date")?,
        col("Open")?,
        col("High")?,
        col("Low")?,
        col("Close")?,
        col("Volume")?,
    );
    let mut out: Vec<DailyBar> = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let field = |k: usize| rec.get(k).unwrap_or("");
        let num = |k: usize, what: &str| {
            field(k)
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| bad(line, format!("{what} {:?} is not a number", field(k))))
        };
        let date = NaiveDate::parse_from_str(field(d), "%Y-%m-%d")
            .map_err(|_| bad(line, format!("date {:?} is not YYYY-MM-DD", field(d))))?;
        let bar = DailyBar {
            date,
            open: num(o, "open")? * price_factor,
            high: num(h, "high")? * price_factor,
            low: num(l, "low")? * price_factor,
            close: num(c, "close")? * price_factor,
            volume: num(v, "volume")? / volume_divisor,
        };
        let ordered = bar.low > 0.0
            && bar.low <= bar.open.min(bar.close)
            && bar.high >= bar.open.max(bar.close);
        if !ordered {
            return Err(bad(
                line,
                "needs 0 < low <= open, close <= high".to_string(),
            ));
        }
        out.push(bar);
    }
    out.sort_by_key(|b| b.date);
    if let Some(w) = out.windows(2).find(|w| w[0].date == w[1].date) {
        return Err(bad(0, format!("{} appears twice", w[0].date)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_sorted_and_a_bad_row_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GME.csv");
        std::fs::write(
            &path,
            "Date,Open,High,Low,Close,Adj Close,Volume\n\
             2021-01-22,10.6475,19.19,10.58,16.2525,16.2525,788631600\n\
             2021-01-21,9.8075,11.1875,9.25,10.7575,10.7575,224867600\n",
        )
        .unwrap();
        let bars = read(&path, 4.0, 4.0).unwrap();
        assert_eq!(bars[0].date.to_string(), "2021-01-21");
        assert!((bars[1].close - 65.01).abs() < 1e-9);
        assert!((bars[1].volume - 197_157_900.0).abs() < 1e-6);
        std::fs::write(
            &path,
            "Date,Open,High,Low,Close,Volume\n2021-01-22,10,9,8,9,100\n",
        )
        .unwrap();
        let err = read(&path, 1.0, 1.0).unwrap_err().to_string();
        assert!(
            err.ends_with("GME.csv:2: needs 0 < low <= open, close <= high"),
            "{err}"
        );
    }
}
