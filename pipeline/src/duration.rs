//! Durations as users write them: `30s`, `20m`, `2h`, `5d`.
//!
//! They count **market time**: the simulated clock only runs while the market is open, so `1d`
//! is one regular session (6 h 30 m, 09:30–16:00 New York), `5d` five sessions.

use optionflow_schemas::time::{MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND};

/// One regular US equity-options session, 09:30–16:00.
pub const SESSION_MICROS: i64 = 6 * MICROS_PER_HOUR + 30 * MICROS_PER_MINUTE;

/// Parses a market-time duration into microseconds.
///
/// ```
/// use optionflow_pipeline::duration::{parse_market_duration, SESSION_MICROS};
/// assert_eq!(parse_market_duration("90s"), Ok(90_000_000));
/// assert_eq!(parse_market_duration("2d"), Ok(2 * SESSION_MICROS));
/// assert!(parse_market_duration("3 weeks").is_err());
/// ```
pub fn parse_market_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("{text:?} is not a duration: write a number and a unit, e.g. 30s, 20m, 2h, 5d")
    })?;
    let unit_micros = match unit.trim() {
        "" | "s" => MICROS_PER_SECOND,
        "m" => MICROS_PER_MINUTE,
        "h" => MICROS_PER_HOUR,
        "d" => SESSION_MICROS,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h or d (d = one 6h30m session)"
            ))
        }
    };
    let micros = value * unit_micros as f64;
    if !(1.0..1e17).contains(&micros) {
        return Err(format!(
            "{text:?} is out of range: give a positive duration"
        ));
    }
    Ok(micros.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_market_duration("30s"), Ok(30 * MICROS_PER_SECOND));
        assert_eq!(parse_market_duration("20m"), Ok(20 * MICROS_PER_MINUTE));
        assert_eq!(parse_market_duration("1.5h"), Ok(90 * MICROS_PER_MINUTE));
        assert_eq!(parse_market_duration("45"), Ok(45 * MICROS_PER_SECOND));
        assert!(parse_market_duration("0s").is_err());
        assert!(parse_market_duration("-5m").is_err());
        assert!(parse_market_duration("5y")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_market_duration("").is_err());
    }
}
