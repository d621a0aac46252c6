//! Adaptive polling: which underlyings to refresh now.
//!
//! Every underlying is refreshed at least once per `cycle-secs` (round-robin, most overdue
//! first); hot ones every `hot-interval-secs`. An underlying turns hot when the option volume it
//! traded since its last poll jumps to `hot-volume-ratio` times its running average, or when the
//! pipeline marks it (a recent signal), and stays hot for `hot-secs`. Times are wall-clock
//! milliseconds passed in by the caller, so the policy is tested without sleeping.

use super::telemetry::VendorStats;
use super::VendorError;
use crate::vendor::batch::BatchSink;
use futures_util::StreamExt;
use optionflow_schemas::RawEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// `[polygon.schedule]` / `[tradier.schedule]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Every underlying is refreshed at least once per cycle, seconds.
    pub cycle_secs: u64,
    /// Hot underlyings are refreshed this often, seconds.
    pub hot_interval_secs: u64,
    /// Volume traded since the last poll, as a multiple of its running average, that makes an
    /// underlying hot.
    pub hot_volume_ratio: f64,
    /// How long an underlying stays hot, seconds.
    pub hot_secs: u64,
    /// At most this many underlyings are hot at once (the largest volume jumps win).
    pub max_hot: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            cycle_secs: 60,
            hot_interval_secs: 10,
            hot_volume_ratio: 3.0,
            hot_secs: 300,
            max_hot: 10,
        }
    }
}

impl ScheduleConfig {
    /// Every problem, keys relative to the section.
    pub fn validate(&self) -> Result<(), optionflow_operators::ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        p.check(self.cycle_secs >= 1, "cycle-secs", "must be at least 1");
        p.check(
            self.hot_interval_secs >= 1 && self.hot_interval_secs <= self.cycle_secs,
            "hot-interval-secs",
            "must be at least 1 and at most cycle-secs",
        );
        p.check(
            self.hot_volume_ratio > 1.0,
            "hot-volume-ratio",
            "must be above 1",
        );
        p.finish()
    }
}

#[derive(Debug, Clone, Default)]
struct Entry {
    last_poll: Option<i64>,
    last_attempt: Option<i64>,
    hot_until: i64,
    last_volume: Option<i64>,
    avg_delta: Option<f64>,
}

/// The polling state of a set of underlyings.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    cfg: ScheduleConfig,
    entries: BTreeMap<String, Entry>,
}

impl PollSchedule {
    /// A schedule over `underlyings`, none polled yet.
    pub fn new(cfg: ScheduleConfig, underlyings: &[String]) -> Self {
        let entries = underlyings
            .iter()
            .map(|u| (u.clone(), Entry::default()))
            .collect();
        Self { cfg, entries }
    }

    fn is_hot(&self, e: &Entry, now: i64) -> bool {
        e.hot_until > now
    }

    /// Underlyings due at `now`, most overdue first (never-polled ones first of all, then hot).
    pub fn due(&self, now: i64) -> Vec<String> {
        let cycle = (self.cfg.cycle_secs * 1000) as i64;
        let hot = (self.cfg.hot_interval_secs * 1000) as i64;
        let mut due: Vec<(i64, &String)> = self
            .entries
            .iter()
            .filter_map(|(u, e)| {
                let interval = if self.is_hot(e, now) { hot } else { cycle };
                // A failed attempt waits a hot interval before the next try.
                if e.last_attempt.is_some_and(|a| now - a < hot) {
                    return None;
                }
                match e.last_poll {
                    None => Some((i64::MIN, u)),
                    Some(t) if now - t >= interval => Some((t, u)),
                    _ => None,
                }
            })
            .collect();
        due.sort();
        due.into_iter().map(|(_, u)| u.clone()).collect()
    }

    /// Records a successful poll of `underlying` at `now` whose chain had traded
    /// `total_volume` contracts today; updates its hotness.
    pub fn polled(&mut self, underlying: &str, now: i64, total_volume: i64) {
        let ratio = self.cfg.hot_volume_ratio;
        let hot_ms = (self.cfg.hot_secs * 1000) as i64;
        let Some(e) = self.entries.get_mut(underlying) else {
            return;
        };
        e.last_poll = Some(now);
        e.last_attempt = None;
        if let Some(prev) = e.last_volume {
            // Volume restarts each session: a drop is a new day, not a negative delta.
            let delta = if total_volume >= prev {
                (total_volume - prev) as f64
            } else {
                total_volume as f64
            };
            match e.avg_delta {
                Some(avg) if avg > 0.0 && delta >= ratio * avg => e.hot_until = now + hot_ms,
                _ => {}
            }
            e.avg_delta = Some(match e.avg_delta {
                Some(avg) => 0.8 * avg + 0.2 * delta,
                None => delta,
            });
        }
        e.last_volume = Some(total_volume);
        self.cap_hot(now);
    }

    /// Records a failed poll: retried after a hot interval, not at once.
    pub fn failed(&mut self, underlying: &str, now: i64) {
        if let Some(e) = self.entries.get_mut(underlying) {
            e.last_attempt = Some(now);
        }
    }

    /// Marks `underlying` hot from `now` (a signal fired on it).
    pub fn mark_hot(&mut self, underlying: &str, now: i64) {
        let hot_ms = (self.cfg.hot_secs * 1000) as i64;
        if let Some(e) = self.entries.get_mut(underlying) {
            e.hot_until = now + hot_ms;
        }
        self.cap_hot(now);
    }

    fn cap_hot(&mut self, now: i64) {
        let mut hot: Vec<(i64, String)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.hot_until > now)
            .map(|(u, e)| (-e.hot_until, u.clone()))
            .collect();
        if hot.len() <= self.cfg.max_hot {
            return;
        }
        hot.sort();
        for (_, u) in hot.into_iter().skip(self.cfg.max_hot) {
            if let Some(e) = self.entries.get_mut(&u) {
                e.hot_until = 0;
            }
        }
    }

    /// Underlyings hot at `now`.
    pub fn hot(&self, now: i64) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| self.is_hot(e, now))
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// (refreshed within the last cycle, total).
    pub fn coverage(&self, now: i64) -> (usize, usize) {
        let cycle = (self.cfg.cycle_secs * 1000) as i64;
        let fresh = self
            .entries
            .values()
            .filter(|e| e.last_poll.is_some_and(|t| now - t <= cycle))
            .count();
        (fresh, self.entries.len())
    }
}

/// A handle through which the pipeline marks underlyings hot (a signal or alert fired on them);
/// the poller picks the marks up at its next step.
#[derive(Debug, Clone, Default)]
pub struct HotMarks {
    inbox: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl HotMarks {
    /// Marks `underlying` hot from now.
    pub fn mark(&self, underlying: &str) {
        if let Ok(mut s) = self.inbox.lock() {
            s.insert(underlying.to_string());
        }
    }

    fn take(&self) -> Vec<String> {
        self.inbox
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_iter().collect())
            .unwrap_or_default()
    }
}

/// What one poll of one underlying returned.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Its events, event times and ids still unset (the batch stamps them).
    pub events: Vec<RawEvent>,
    /// Latest vendor timestamp in it, µs.
    pub vendor_time: Option<i64>,
    /// Option contracts traded today over the chain (drives hotness).
    pub total_volume: i64,
}

/// Milliseconds since the epoch on the wall clock (polling is paced by the wall clock; event
/// times always come from the vendor).
pub fn wall_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a polling loop reports to and sends into.
pub struct Poller<'a> {
    /// Vendor name, for logs.
    pub vendor: &'static str,
    /// Wall-clock time between scheduler steps.
    pub step: Duration,
    /// Underlyings fetched at once.
    pub concurrency: usize,
    /// The adapter's counters.
    pub stats: &'a VendorStats,
    /// Marks from the pipeline.
    pub hot: &'a HotMarks,
    /// Where batches go.
    pub out: &'a BatchSink,
    /// Notified once every underlying has been polled (or tried) once: a stream waits for it, so
    /// its first quotes already carry open interest and spot.
    pub first_round: Option<&'a tokio::sync::Notify>,
}

/// Polls forever (until `out` closes or a fatal error): every `step`, the due underlyings are
/// fetched, up to `concurrency` at once, and each snapshot becomes one batch, in the order the
/// schedule chose. Non-fatal errors were already retried by the HTTP client; they are counted and
/// the underlying is tried again later. Coverage is reported once per cycle.
pub async fn run_polls<F, Fut>(
    poller: Poller<'_>,
    mut schedule: PollSchedule,
    fetch: F,
) -> Result<(), VendorError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Snapshot, VendorError>>,
{
    let Poller {
        vendor,
        step,
        concurrency,
        stats,
        hot,
        out,
        mut first_round,
    } = poller;
    let cycle_ms = (schedule.cfg.cycle_secs * 1000) as i64;
    let mut cycle_start = wall_millis();
    loop {
        for u in hot.take() {
            schedule.mark_hot(&u, wall_millis());
        }
        let due = schedule.due(wall_millis());
        let mut results = futures_util::stream::iter(due.into_iter().map(|u| {
            let f = fetch(u.clone());
            async move { (u, f.await) }
        }))
        .buffered(concurrency.max(1));
        while let Some((underlying, result)) = results.next().await {
            let now = wall_millis();
            match result {
                Ok(snap) => {
                    schedule.polled(&underlying, now, snap.total_volume);
                    let t = snap.vendor_time.unwrap_or(now * 1000);
                    match out.send(t, snap.events).await {
                        Some(n) => stats.produced(n as u64),
                        None => return Ok(()),
                    }
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    tracing::warn!(vendor, underlying, error = %e, "poll failed; will retry");
                    schedule.failed(&underlying, now);
                }
            }
        }
        drop(results);
        if let Some(n) = first_round.take() {
            n.notify_one();
        }
        let now = wall_millis();
        if now - cycle_start >= cycle_ms {
            let (fresh, total) = schedule.coverage(now);
            stats.cycle(fresh, total);
            cycle_start = now;
        }
        if out.is_closed().await {
            return Ok(());
        }
        tokio::time::sleep(step).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn cfg() -> ScheduleConfig {
        ScheduleConfig {
            cycle_secs: 60,
            hot_interval_secs: 10,
            hot_volume_ratio: 3.0,
            hot_secs: 300,
            max_hot: 1,
        }
    }

    #[test]
    fn everything_is_due_at_first_then_once_a_cycle_round_robin() {
        let mut s = PollSchedule::new(cfg(), &names(&["AAPL", "GME", "SPY"]));
        assert_eq!(s.due(0), names(&["AAPL", "GME", "SPY"]));
        s.polled("AAPL", 0, 100);
        s.polled("GME", 20_000, 100);
        s.polled("SPY", 40_000, 100);
        assert!(s.due(59_999).is_empty());
        assert_eq!(s.due(60_000), names(&["AAPL"]));
        assert_eq!(
            s.due(100_000),
            names(&["AAPL", "GME", "SPY"]),
            "most overdue first"
        );
        assert_eq!(s.coverage(70_000), (2, 3));
    }

    #[test]
    fn a_volume_jump_makes_an_underlying_hot_and_polled_more_often() {
        let mut s = PollSchedule::new(cfg(), &names(&["AAPL", "GME"]));
        s.polled("GME", 0, 1_000);
        s.polled("GME", 60_000, 1_100); // +100: the average
        s.polled("GME", 120_000, 1_200);
        assert!(s.hot(120_000).is_empty());
        s.polled("GME", 180_000, 2_000); // +800 ≥ 3 × 100
        assert_eq!(s.hot(180_000), names(&["GME"]));
        assert_eq!(s.due(190_000), names(&["AAPL", "GME"]));
        assert!(!s.due(189_999).contains(&"GME".to_string()));
        // Hotness expires.
        assert!(s.hot(180_000 + 300_000).is_empty());
    }

    #[test]
    fn at_most_max_hot_and_failures_wait() {
        let mut s = PollSchedule::new(cfg(), &names(&["AAPL", "GME"]));
        s.mark_hot("AAPL", 0);
        s.mark_hot("GME", 1);
        assert_eq!(s.hot(2), names(&["GME"]), "the most recent keeps its place");
        s.failed("AAPL", 5_000);
        assert!(!s.due(10_000).contains(&"AAPL".to_string()));
        assert!(s.due(15_000).contains(&"AAPL".to_string()));
    }
}
