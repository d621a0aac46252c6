//! Event-time helpers. Event time is `i64` microseconds since the Unix epoch, UTC.

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in one minute.
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
/// Microseconds in one hour.
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
/// Microseconds in one (calendar) day.
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
/// Microseconds in a 365-day year, the ACT/365 convention used for time to expiry.
pub const MICROS_PER_YEAR: f64 = 365.0 * MICROS_PER_DAY as f64;

/// Years between two event times under ACT/365 (negative when `to` is before `from`).
pub fn years_between(from: i64, to: i64) -> f64 {
    (to - from) as f64 / MICROS_PER_YEAR
}
