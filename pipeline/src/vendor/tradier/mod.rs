//! Tradier market data.
//!
//! - Underlying quotes (`/v1/markets/quotes`): the chain carries no underlying price, so every
//!   poll of an underlying starts with its quote; the quote's last is the spot for the moneyness
//!   band and the `UnderlyingTick` of the batch.
//! - Expirations (`/v1/markets/options/expirations`), fetched once per trading day and cached;
//!   only those inside the filter's expiry window are requested at all.
//! - Chains per expiration (`/v1/markets/options/chains`), strikes, open interest and roots
//!   filtered row by row (Tradier takes no strike parameters).
//! - Daily history (`/v1/markets/history`): sent first, so the realized-volatility factor starts
//!   warm.
//! - The market-events WebSocket: a session is created over REST, then quotes and trades of the
//!   contracts in scope are subscribed with its id; every reconnect creates a new session and
//!   resubscribes the same symbols ([`stream`]).
//!
//! The token comes only from `TRADIER_TOKEN` and is sent as `Authorization: Bearer`; the
//! WebSocket needs no token, only the session id.

pub mod parse;
pub mod stream;

use super::batch::BatchSink;
use super::filter::ContractFilter;
use super::http::{Auth, Request, VendorHttp};
use super::schedule::{
    run_polls, wall_millis, HotMarks, PollSchedule, Poller, ScheduleConfig, Snapshot,
};
use super::telemetry::VendorStats;
use super::{secret_from_env, Batch, HttpConfig, VendorError};
use crate::vendor::universe::Universe;
use chrono::NaiveDate;
use futures_util::StreamExt;
use optionflow_schemas::RawEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Vendor name.
pub const VENDOR: &str = "tradier";
/// The environment variable holding the token.
pub const KEY_VAR: &str = "TRADIER_TOKEN";

/// The `[tradier]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TradierConfig {
    /// REST base URL (`https://sandbox.tradier.com` for a sandbox account).
    pub base_url: String,
    /// Market-events WebSocket URL.
    pub ws_url: String,
    /// Also stream quotes and trades over the WebSocket.
    pub stream: bool,
    /// Sessions of daily history sent at start, to warm up realized volatility (0: none).
    pub history_days: u32,
    /// Wall-clock milliseconds of stream events conflated into one batch.
    pub stream_flush_ms: u64,
    /// Wall-clock seconds between scheduler steps.
    pub poll_step_secs: u64,
    /// Most contracts the WebSocket subscribes to, over all underlyings (nearest the money first).
    pub max_stream_contracts: usize,
    /// Ask for Tradier's greeks and IVs with each chain (`greeks=true`). The pipeline computes its
    /// own; Tradier's mid IVs are only logged, for comparison.
    pub greeks: bool,
    /// Rate limit, concurrency and retries.
    pub http: HttpConfig,
    /// Contracts in scope.
    pub filter: ContractFilter,
    /// Adaptive polling.
    pub schedule: ScheduleConfig,
}

impl Default for TradierConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.tradier.com".into(),
            ws_url: "wss://ws.tradier.com/v1/markets/events".into(),
            stream: false,
            history_days: 90,
            stream_flush_ms: 1000,
            poll_step_secs: 1,
            max_stream_contracts: 1000,
            greeks: true,
            // Tradier's documented market-data limit is 120 requests a minute.
            http: HttpConfig {
                requests_per_minute: 120,
                ..HttpConfig::default()
            },
            filter: ContractFilter::default(),
            schedule: ScheduleConfig::default(),
        }
    }
}

impl TradierConfig {
    /// Every problem, keys relative to `[tradier]`.
    pub fn validate(&self) -> Result<(), optionflow_operators::ConfigErrors> {
        let mut p = optionflow_operators::config::Problems::default();
        p.check(
            url::Url::parse(&self.base_url).is_ok(),
            "base-url",
            "must be a URL",
        );
        p.check(
            url::Url::parse(&self.ws_url).is_ok(),
            "ws-url",
            "must be a URL",
        );
        p.check(
            self.stream_flush_ms >= 1,
            "stream-flush-ms",
            "must be at least 1",
        );
        p.check(
            self.poll_step_secs >= 1,
            "poll-step-secs",
            "must be at least 1",
        );
        p.check(
            !self.stream || self.max_stream_contracts >= 1,
            "max-stream-contracts",
            "must be at least 1 when stream = true",
        );
        p.extend_section("http", self.http.validate());
        p.extend_section("filter", self.filter.validate());
        p.extend_section("schedule", self.schedule.validate());
        p.finish()
    }
}

/// A contract from the latest chain poll: what the stream's quotes carry between polls, and what
/// it subscribes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Book {
    pub(crate) underlying: String,
    pub(crate) vendor_symbol: String,
    pub(crate) strike: f64,
    pub(crate) open_interest: i64,
    pub(crate) volume: i64,
}

/// The Tradier source.
pub struct TradierSource {
    cfg: TradierConfig,
    universe: Universe,
    http: Arc<VendorHttp>,
    stats: Arc<VendorStats>,
    /// Latest underlying prices, shared by the poller and the stream.
    spots: Mutex<BTreeMap<String, f64>>,
    /// Contracts in scope by canonical OCC symbol, from the latest poll of their underlying.
    books: Mutex<BTreeMap<String, Book>>,
    /// Expirations per underlying and the trading day they were fetched on.
    expirations: Mutex<BTreeMap<String, (NaiveDate, Vec<NaiveDate>)>>,
    today: Option<NaiveDate>,
    /// Marks from the pipeline.
    hot: HotMarks,
}

impl TradierSource {
    /// A source over `universe`; the token is read through `env` (`std::env::var` in production).
    pub fn new(
        cfg: TradierConfig,
        universe: Universe,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, VendorError> {
        let token = secret_from_env(VENDOR, KEY_VAR, env)?;
        if universe.is_empty() {
            return Err(VendorError::Config {
                vendor: VENDOR,
                message: "no underlyings: set [universe] underlyings = [\"SPY\", …]".into(),
            });
        }
        let stats = Arc::new(VendorStats::new(VENDOR));
        let http = VendorHttp::new(
            VENDOR,
            KEY_VAR,
            &cfg.base_url,
            Auth::Bearer(token),
            cfg.http.clone(),
            stats.clone(),
        )?;
        Ok(Self {
            cfg,
            universe,
            http: Arc::new(http),
            stats,
            spots: Default::default(),
            books: Default::default(),
            expirations: Default::default(),
            today: None,
            hot: HotMarks::default(),
        })
    }

    /// The handle that marks underlyings hot (polled every `hot-interval-secs`), e.g. when a
    /// signal fires on them.
    pub fn hot_marks(&self) -> HotMarks {
        self.hot.clone()
    }

    /// Pins the trading date the expiry window counts from (backfills and tests; live, it is
    /// today in New York at each poll).
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    /// The adapter's counters.
    pub fn stats(&self) -> Arc<VendorStats> {
        self.stats.clone()
    }

    fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(super::polygon::today_new_york)
    }

    /// Produces batches into `out` until it closes or a fatal error (401/403) stops the source.
    /// History first (daily bars, in time order), then polling and, when configured, the stream,
    /// which subscribes to the contracts a first round of polls found in scope.
    pub async fn run(self, out: mpsc::Sender<Batch>) -> Result<(), VendorError> {
        let sink = Arc::new(BatchSink::new(VENDOR, out));
        let result = self.run_on(&sink).await;
        if let Err(e) = &result {
            tracing::error!(vendor = VENDOR, "source stopped: {e}");
        }
        result
    }

    async fn run_on(self, sink: &Arc<BatchSink>) -> Result<(), VendorError> {
        self.history(sink, self.today()).await?;
        let this = Arc::new(self);
        let mut schedule = PollSchedule::new(this.cfg.schedule.clone(), &this.universe.names());
        let stream = if this.cfg.stream {
            // The stream subscribes to what the polls found in scope, so poll everything once.
            for u in schedule.due(wall_millis()) {
                let result = this.snapshot(&u, this.today()).await;
                let now = wall_millis();
                match result {
                    Ok(snap) => {
                        schedule.polled(&u, now, snap.total_volume);
                        let t = snap.vendor_time.unwrap_or(now * 1000);
                        match sink.send(t, snap.events).await {
                            Some(n) => this.stats.produced(n as u64),
                            None => return Ok(()),
                        }
                    }
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(e) => {
                        tracing::warn!(vendor = VENDOR, underlying = u, error = %e, "poll failed; will retry");
                        schedule.failed(&u, now);
                    }
                }
            }
            let s = this.clone();
            let sink = sink.clone();
            Some(tokio::spawn(async move { stream::run(&s, &sink).await }))
        } else {
            None
        };
        let step = Duration::from_secs(this.cfg.poll_step_secs);
        let fetch = |u: String| {
            let this = this.clone();
            async move { this.snapshot(&u, this.today()).await }
        };
        let poller = Poller {
            vendor: VENDOR,
            step,
            concurrency: this.cfg.http.max_concurrency,
            stats: &this.stats,
            hot: &this.hot,
            out: sink,
            first_round: None,
        };
        let polls = run_polls(poller, schedule, fetch);
        match stream {
            Some(mut handle) => {
                tokio::pin!(polls);
                tokio::select! {
                    r = &mut polls => { handle.abort(); r }
                    r = &mut handle => match r {
                        Ok(Err(e)) => Err(e),
                        // The stream ends only when the sink closes; polling notices too.
                        _ => polls.await,
                    },
                }
            }
            None => polls.await,
        }
    }

    fn spot(&self, underlying: &str) -> Option<f64> {
        self.spots.lock().ok()?.get(underlying).copied()
    }

    fn set_spot(&self, underlying: &str, price: f64) {
        if let Ok(mut m) = self.spots.lock() {
            m.insert(underlying.to_string(), price);
        }
    }

    fn malformed(&self, path: &str, message: String) -> VendorError {
        let e = VendorError::Malformed {
            vendor: VENDOR,
            url: path.to_string(),
            message,
        };
        self.stats.error(e.kind(), &e.to_string());
        e
    }

    /// One poll of one underlying: its quote, then the chains of the cached expirations inside
    /// the filter's window. A chain page that fails (after retries) or is malformed is counted
    /// and its expiry skipped; the others still flow. The batch is the underlying's tick, then
    /// its quotes in expiry order.
    pub async fn snapshot(
        &self,
        underlying: &str,
        today: NaiveDate,
    ) -> Result<Snapshot, VendorError> {
        let quote = self.quote(underlying).await?;
        self.set_spot(underlying, quote.last);
        let (first, last) = self.cfg.filter.expiry_window(today);
        let expiries: Vec<NaiveDate> = self
            .expirations(underlying, today)
            .await?
            .into_iter()
            .filter(|d| *d >= first && *d <= last)
            .collect();
        let greeks = if self.cfg.greeks { "true" } else { "false" };
        let http = &self.http;
        let requests = expiries.into_iter().map(|expiry| {
            let req = Request::get("chains", "/v1/markets/options/chains")
                .param("symbol", underlying)
                .param("expiration", expiry.to_string())
                .param("greeks", greeks);
            async move { (expiry, http.json(req).await) }
        });
        // In expiry order, a few in flight (the client's rate limit still paces them).
        let pages: Vec<_> = futures_util::stream::iter(requests)
            .buffered(self.cfg.http.max_concurrency.max(1))
            .collect()
            .await;
        let mut snap = Snapshot {
            vendor_time: quote.at,
            ..Default::default()
        };
        snap.events.push(RawEvent::Tick(self.universe.tick(
            underlying,
            VENDOR,
            quote.last,
            quote.volume,
        )));
        let mut rows = Vec::new();
        for (expiry, body) in pages {
            let body = match body {
                Ok(b) => b,
                Err(e) if e.is_fatal() => return Err(e),
                // Counted by the client; the other expirations still flow.
                Err(_) => continue,
            };
            let page = match parse::chain_page(
                underlying,
                &body,
                &self.cfg.filter,
                today,
                Some(quote.last),
            ) {
                Ok(p) => p,
                Err(message) => {
                    self.malformed(
                        "/v1/markets/options/chains",
                        format!("{underlying} {expiry}: {message}"),
                    );
                    continue;
                }
            };
            for (cause, detail) in &page.bad_rows {
                self.stats.bad_row(cause, detail);
            }
            snap.total_volume += page.volume;
            snap.vendor_time = match (snap.vendor_time, page.latest) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            rows.extend(page.quotes);
        }
        self.log_vendor_ivs(underlying, quote.last, &rows);
        if let Ok(mut books) = self.books.lock() {
            books.retain(|_, b| b.underlying != underlying);
            for r in &rows {
                books.insert(
                    r.quote.symbol.to_string(),
                    Book {
                        underlying: underlying.to_string(),
                        vendor_symbol: r.vendor_symbol.clone(),
                        strike: r.strike,
                        open_interest: r.quote.open_interest,
                        volume: r.quote.volume,
                    },
                );
            }
        }
        snap.events
            .extend(rows.into_iter().map(|r| RawEvent::Quote(r.quote)));
        Ok(snap)
    }

    /// Tradier's mid IV nearest the money, for comparison with the pipeline's own (debug log).
    fn log_vendor_ivs(&self, underlying: &str, spot: f64, rows: &[parse::ChainRow]) {
        let atm = rows
            .iter()
            .filter_map(|r| {
                r.mid_iv
                    .map(|iv| ((r.strike - spot).abs(), iv, r.quote.symbol.as_str()))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, iv, symbol)) = atm {
            tracing::debug!(
                vendor = VENDOR,
                underlying,
                symbol,
                mid_iv = iv,
                "vendor IV nearest the money"
            );
        }
    }

    /// The underlying's quote; unknown to Tradier or without a price is a malformed payload.
    async fn quote(&self, underlying: &str) -> Result<parse::UnderlyingQuote, VendorError> {
        let path = "/v1/markets/quotes";
        let body = self
            .http
            .json(Request::get("quotes", path).param("symbols", underlying))
            .await?;
        let (quotes, missing) = parse::quotes(&body).map_err(|m| self.malformed(path, m))?;
        quotes
            .into_iter()
            .find(|q| q.symbol == underlying)
            .ok_or_else(|| {
                self.malformed(
                    path,
                    format!("no priced quote for {underlying} (unmatched or without a price: {missing:?})"),
                )
            })
    }

    /// Expirations of `underlying` (all roots), fetched once per trading day.
    async fn expirations(
        &self,
        underlying: &str,
        today: NaiveDate,
    ) -> Result<Vec<NaiveDate>, VendorError> {
        if let Some((day, dates)) = self
            .expirations
            .lock()
            .ok()
            .and_then(|m| m.get(underlying).cloned())
        {
            if day == today {
                return Ok(dates);
            }
        }
        let path = "/v1/markets/options/expirations";
        let body = self
            .http
            .json(
                Request::get("expirations", path)
                    .param("symbol", underlying)
                    .param("includeAllRoots", "true"),
            )
            .await?;
        let (dates, bad) = parse::expirations(&body).map_err(|m| self.malformed(path, m))?;
        for b in bad {
            self.stats
                .bad_row("bad_expiration", &format!("{underlying}: {b}"));
        }
        if let Ok(mut m) = self.expirations.lock() {
            m.insert(underlying.to_string(), (today, dates.clone()));
        }
        Ok(dates)
    }

    /// Daily bars over `history-days` as time-ordered batches (one per distinct time), before
    /// anything live. A failure other than auth is counted and that underlying starts cold.
    async fn history(&self, sink: &BatchSink, today: NaiveDate) -> Result<(), VendorError> {
        if self.cfg.history_days == 0 {
            return Ok(());
        }
        let mut ticks: BTreeMap<i64, Vec<RawEvent>> = BTreeMap::new();
        // Calendar days covering the sessions asked for (weekends and holidays).
        let from = today - chrono::Days::new(u64::from(self.cfg.history_days) * 7 / 5 + 7);
        let to = today - chrono::Days::new(1);
        let path = "/v1/markets/history";
        for u in self.universe.names() {
            let req = Request::get("history", path)
                .param("symbol", u.clone())
                .param("interval", "daily")
                .param("start", from.to_string())
                .param("end", to.to_string());
            let body = match self.http.json(req).await {
                Ok(b) => b,
                Err(e) if e.is_fatal() => return Err(e),
                Err(_) => continue,
            };
            let bars = match parse::history(&body) {
                Ok((bars, bad)) => {
                    for _ in 0..bad {
                        self.stats
                            .bad_row("bad_bar", &format!("{u} daily bar without date/o/h/l/c"));
                    }
                    bars
                }
                Err(m) => {
                    self.malformed(path, format!("{u}: {m}"));
                    continue;
                }
            };
            let skip = bars.len().saturating_sub(self.cfg.history_days as usize);
            let sector = self.universe.sector(&u);
            for bar in &bars[skip..] {
                for t in super::history::daily_bar_ticks(VENDOR, &u, sector, bar) {
                    ticks
                        .entry(t.event_time)
                        .or_default()
                        .push(RawEvent::Tick(t));
                }
            }
            if let Some(b) = bars.last() {
                self.set_spot(&u, b.close);
            }
        }
        for (t, events) in ticks {
            match sink.send(t, events).await {
                Some(n) => self.stats.produced(n as u64),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// What the stream subscribes to: the underlyings, then the contracts of the latest polls,
    /// the nearest the money first, at most `max-stream-contracts` over all underlyings. Pairs of
    /// (Tradier symbol, canonical OCC symbol or `None` for an underlying), sorted by symbol.
    pub(crate) fn stream_scope(&self) -> Vec<(String, Option<String>)> {
        let books = self.books.lock().map(|b| b.clone()).unwrap_or_default();
        let mut all: Vec<(u64, String, String)> = books
            .iter()
            .map(|(symbol, b)| {
                let distance = self
                    .spot(&b.underlying)
                    .filter(|s| *s > 0.0)
                    .map_or(u64::MAX, |s| ((b.strike / s - 1.0).abs() * 1e6) as u64);
                (distance, b.vendor_symbol.clone(), symbol.clone())
            })
            .collect();
        all.sort();
        all.truncate(self.cfg.max_stream_contracts);
        let mut scope: Vec<(String, Option<String>)> = self
            .universe
            .names()
            .into_iter()
            .map(|u| (u, None))
            .chain(all.into_iter().map(|(_, v, s)| (v, Some(s))))
            .collect();
        scope.sort();
        scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_kebab_case_strict_and_validated() {
        assert_eq!(TradierConfig::default().validate(), Ok(()));
        let cfg: TradierConfig = toml::from_str(
            "stream = true\nhistory-days = 20\n[http]\nrequests-per-minute = 120\n[filter]\nmax-days-to-expiry = 45",
        )
        .unwrap();
        assert!(cfg.stream && cfg.greeks);
        assert_eq!((cfg.history_days, cfg.http.requests_per_minute), (20, 120));
        assert_eq!(cfg.filter.max_days_to_expiry, 45);
        let typo = toml::from_str::<TradierConfig>("histroy-days = 5").unwrap_err();
        assert!(typo.to_string().contains("histroy-days"), "{typo}");
        let bad = TradierConfig {
            base_url: "not a url".into(),
            poll_step_secs: 0,
            ..Default::default()
        };
        let problems = bad.validate().unwrap_err().0;
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn the_token_comes_from_the_environment_only() {
        let universe = Universe {
            underlyings: vec!["SPY".into()],
            ..Default::default()
        };
        let err = TradierSource::new(TradierConfig::default(), universe, &|_| None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("TRADIER_TOKEN"), "{err}");
    }
}
