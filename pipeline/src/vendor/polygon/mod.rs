//! Polygon.io options data.
//!
//! - Chain snapshots per underlying (`/v3/snapshot/options/{underlying}`), following `next_url`
//!   pagination, narrowed by the filter's expiry window and strike band as query parameters.
//! - Contract reference data (`/v3/reference/options/contracts`): the contracts in scope that
//!   the WebSocket subscribes to.
//! - Underlying daily and minute aggregates (`/v2/aggs/ticker/…`): history sent first, so the
//!   realized-volatility factor starts warm.
//! - The options WebSocket (`/options`): authenticate, subscribe to quotes and trades of the
//!   contracts in scope, resubscribe after every reconnect ([`stream`]).
//!
//! The key comes only from `POLYGON_API_KEY` and is sent as `Authorization: Bearer`; the
//! WebSocket authenticates with it in its `auth` message.

pub mod parse;
pub mod stream;

use super::batch::BatchSink;
use super::filter::ContractFilter;
use super::http::{Auth, Request, VendorHttp};
use super::schedule::{run_polls, HotMarks, PollSchedule, Poller, ScheduleConfig, Snapshot};
use super::telemetry::VendorStats;
use super::{secret_from_env, Batch, HttpConfig, VendorError};
use crate::vendor::universe::Universe;
use chrono::NaiveDate;
use optionflow_schemas::RawEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Vendor name.
pub const VENDOR: &str = "polygon";
/// The environment variable holding the key.
pub const KEY_VAR: &str = "POLYGON_API_KEY";

/// The `[polygon]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PolygonConfig {
    /// REST base URL.
    pub base_url: String,
    /// Options WebSocket URL.
    pub ws_url: String,
    /// Also stream quotes and trades over the WebSocket (needs a real-time options plan).
    pub stream: bool,
    /// Rows per snapshot page (Polygon allows up to 250).
    pub page_limit: u32,
    /// Sessions of daily aggregates sent at start, to warm up realized volatility (0: none).
    pub history_days: u32,
    /// Also send today's minute aggregates at start.
    pub minute_history: bool,
    /// Most contracts the WebSocket subscribes to, over all underlyings (nearest the money first).
    pub max_stream_contracts: usize,
    /// Wall-clock milliseconds of stream events conflated into one batch.
    pub stream_flush_ms: u64,
    /// Wall-clock seconds between scheduler steps.
    pub poll_step_secs: u64,
    /// Rate limit, concurrency and retries.
    pub http: HttpConfig,
    /// Contracts in scope.
    pub filter: ContractFilter,
    /// Adaptive polling.
    pub schedule: ScheduleConfig,
}

impl Default for PolygonConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.polygon.io".into(),
            ws_url: "wss://socket.polygon.io/options".into(),
            stream: false,
            page_limit: 250,
            history_days: 90,
            minute_history: true,
            max_stream_contracts: 1000,
            stream_flush_ms: 1000,
            poll_step_secs: 1,
            http: HttpConfig::default(),
            filter: ContractFilter::default(),
            schedule: ScheduleConfig::default(),
        }
    }
}

impl PolygonConfig {
    /// Every problem, keys relative to `[polygon]`.
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
            (1..=250).contains(&self.page_limit),
            "page-limit",
            "must be 1 to 250",
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
        p.extend_section("http", self.http.validate());
        p.extend_section("filter", self.filter.validate());
        p.extend_section("schedule", self.schedule.validate());
        p.finish()
    }
}

/// Latest known underlying prices, shared by the poller and the stream.
pub(crate) type Spots = Arc<Mutex<BTreeMap<String, f64>>>;

/// The Polygon source.
pub struct PolygonSource {
    cfg: PolygonConfig,
    universe: Universe,
    key: String,
    http: Arc<VendorHttp>,
    stats: Arc<VendorStats>,
    spots: Spots,
    books: Books,
    today: Option<NaiveDate>,
    hot: HotMarks,
}

/// Open interest and day volume per contract (canonical OCC symbol) from the latest snapshot,
/// which the stream's quotes carry between snapshots.
pub(crate) type Books = Arc<Mutex<BTreeMap<String, (i64, i64)>>>;

impl PolygonSource {
    /// A source over `universe`; the key is read through `env` (`std::env::var` in production).
    pub fn new(
        cfg: PolygonConfig,
        universe: Universe,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, VendorError> {
        let key = secret_from_env(VENDOR, KEY_VAR, env)?;
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
            Auth::Bearer(key.clone()),
            cfg.http.clone(),
            stats.clone(),
        )?;
        Ok(Self {
            cfg,
            universe,
            key,
            http: Arc::new(http),
            stats,
            spots: Default::default(),
            books: Default::default(),
            today: None,
            hot: HotMarks::default(),
        })
    }

    /// Pins the trading date the expiry window counts from (backfills and tests; live, it is
    /// today in New York).
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    /// The handle that marks underlyings hot (polled every `hot-interval-secs`), e.g. when a
    /// signal fires on them.
    pub fn hot_marks(&self) -> HotMarks {
        self.hot.clone()
    }

    /// The adapter's counters.
    pub fn stats(&self) -> Arc<VendorStats> {
        self.stats.clone()
    }

    /// Produces batches into `out` until it closes or a fatal error (401/403) stops the source.
    /// History first (daily then minute aggregates, in time order), then polling and, when
    /// configured, the stream.
    pub async fn run(self, out: mpsc::Sender<Batch>) -> Result<(), VendorError> {
        let sink = Arc::new(BatchSink::new(VENDOR, out));
        let today = self.today.unwrap_or_else(today_new_york);
        self.history(&sink, today).await?;
        let this = Arc::new(self);
        let first_round = Arc::new(tokio::sync::Notify::new());
        let stream = if this.cfg.stream {
            let s = this.clone();
            let sink = sink.clone();
            let first = first_round.clone();
            Some(tokio::spawn(async move {
                first.notified().await;
                stream::run(&s, &sink, today).await
            }))
        } else {
            None
        };
        let schedule = PollSchedule::new(this.cfg.schedule.clone(), &this.universe.names());
        let step = Duration::from_secs(this.cfg.poll_step_secs);
        let fetch = |u: String| {
            let this = this.clone();
            async move { this.snapshot(&u, today).await }
        };
        let poller = Poller {
            vendor: VENDOR,
            step,
            concurrency: this.cfg.http.max_concurrency,
            stats: &this.stats,
            hot: &this.hot,
            out: &sink,
            first_round: Some(&first_round),
        };
        let polls = run_polls(poller, schedule, fetch);
        let result = match stream {
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
        };
        if let Err(e) = &result {
            tracing::error!(vendor = VENDOR, "source stopped: {e}");
        }
        result
    }

    fn spot(&self, underlying: &str) -> Option<f64> {
        self.spots.lock().ok()?.get(underlying).copied()
    }

    fn set_spot(&self, underlying: &str, price: f64) {
        if let Ok(mut m) = self.spots.lock() {
            m.insert(underlying.to_string(), price);
        }
    }

    /// Fetches every page of one underlying's chain snapshot. A page that fails after retries
    /// is counted; the pages before it still flow.
    pub async fn snapshot(
        &self,
        underlying: &str,
        today: NaiveDate,
    ) -> Result<Snapshot, VendorError> {
        let (first, last) = self.cfg.filter.expiry_window(today);
        let path = format!("/v3/snapshot/options/{underlying}");
        let mut req = Request::get("snapshot", &path)
            .param("limit", self.cfg.page_limit.to_string())
            .param("expiration_date.gte", first.to_string())
            .param("expiration_date.lte", last.to_string());
        if let Some(spot) = self.spot(underlying) {
            let (lo, hi) = cents_outward(self.cfg.filter.strike_range(spot));
            req = req
                .param("strike_price.gte", lo)
                .param("strike_price.lte", hi);
        }
        let mut body = self.http.json(req).await?;
        let mut snap = Snapshot::default();
        let mut quotes = Vec::new();
        let mut underlying_price = None;
        loop {
            let page = match parse::snapshot_page(underlying, &body, &self.cfg.filter, today) {
                Ok(p) => p,
                Err(message) => {
                    let e = VendorError::Malformed {
                        vendor: VENDOR,
                        url: path.clone(),
                        message,
                    };
                    self.stats.error(e.kind(), &e.to_string());
                    if quotes.is_empty() {
                        return Err(e);
                    }
                    break;
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
            underlying_price = underlying_price.or(page.underlying);
            quotes.extend(page.quotes);
            let Some(next) = page.next_url else { break };
            body = match self.http.json(Request::get("snapshot", &next)).await {
                Ok(b) => b,
                Err(e) if e.is_fatal() => return Err(e),
                // Counted by the client; what arrived so far still flows.
                Err(_) => break,
            };
        }
        if let Some((price, at)) = underlying_price {
            self.set_spot(underlying, price);
            snap.vendor_time = Some(snap.vendor_time.map_or(at, |t| t.max(at)));
            snap.events.push(RawEvent::Tick(
                self.universe.tick(underlying, VENDOR, price, 0),
            ));
        }
        if let Ok(mut books) = self.books.lock() {
            for q in &quotes {
                books.insert(q.symbol.to_string(), (q.open_interest, q.volume));
            }
        }
        snap.events.extend(quotes.into_iter().map(RawEvent::Quote));
        Ok(snap)
    }

    /// Daily aggregates over `history-days` and today's minute aggregates, as time-ordered
    /// batches (one per distinct time), before anything live.
    async fn history(&self, sink: &BatchSink, today: NaiveDate) -> Result<(), VendorError> {
        let mut ticks: BTreeMap<i64, Vec<RawEvent>> = BTreeMap::new();
        for u in self.universe.names() {
            let sector = self.universe.sector(&u);
            if self.cfg.history_days > 0 {
                // Calendar days covering the sessions asked for (weekends and holidays).
                let from = today - chrono::Days::new(u64::from(self.cfg.history_days) * 7 / 5 + 7);
                let to = today - chrono::Days::new(1);
                let bars = self.aggregates(&u, "day", from, to).await?;
                let skip = bars.len().saturating_sub(self.cfg.history_days as usize);
                for bar in &bars[skip..] {
                    for t in parse::daily_bar_ticks(&u, sector, bar) {
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
            if self.cfg.minute_history {
                let bars = self.aggregates(&u, "minute", today, today).await?;
                let mut volume = 0;
                for bar in &bars {
                    volume += bar.volume;
                    let t = parse::minute_bar_tick(&u, sector, bar, volume);
                    ticks
                        .entry(t.event_time)
                        .or_default()
                        .push(RawEvent::Tick(t));
                }
                if let Some(b) = bars.last() {
                    self.set_spot(&u, b.close);
                }
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

    /// Bars of one underlying; a failure other than auth is counted and yields no bars.
    async fn aggregates(
        &self,
        u: &str,
        span: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<parse::Bar>, VendorError> {
        let path = format!("/v2/aggs/ticker/{u}/range/1/{span}/{from}/{to}");
        let mut req = Request::get("aggregates", &path)
            .param("adjusted", "true")
            .param("sort", "asc")
            .param("limit", "50000");
        let mut bars = Vec::new();
        let mut target: String;
        loop {
            let body = match self.http.json(req).await {
                Ok(b) => b,
                Err(e) if e.is_fatal() => return Err(e),
                Err(_) => break,
            };
            match parse::aggregates(&body) {
                Ok((page, bad, next)) => {
                    for _ in 0..bad {
                        self.stats
                            .bad_row("bad_bar", &format!("{u} {span} bar without o/h/l/c/t"));
                    }
                    bars.extend(page);
                    match next {
                        Some(n) => target = n,
                        None => break,
                    }
                }
                Err(message) => {
                    let e = VendorError::Malformed {
                        vendor: VENDOR,
                        url: path.clone(),
                        message,
                    };
                    self.stats.error(e.kind(), &e.to_string());
                    break;
                }
            }
            req = Request::get("aggregates", &target);
        }
        Ok(bars)
    }

    /// The Polygon tickers in scope for the stream: reference contracts inside the filter, the
    /// nearest the money first, at most `max-stream-contracts` over all underlyings.
    pub async fn stream_contracts(
        &self,
        today: NaiveDate,
    ) -> Result<Vec<(String, String)>, VendorError> {
        let (first, last) = self.cfg.filter.expiry_window(today);
        let mut all: Vec<(u64, String, String)> = Vec::new();
        for u in self.universe.names() {
            let spot = self.spot(&u);
            let mut req = Request::get("contracts", "/v3/reference/options/contracts")
                .param("underlying_ticker", u.clone())
                .param("expired", "false")
                .param("expiration_date.gte", first.to_string())
                .param("expiration_date.lte", last.to_string())
                .param("limit", "1000");
            if let Some(s) = spot {
                let (lo, hi) = cents_outward(self.cfg.filter.strike_range(s));
                req = req
                    .param("strike_price.gte", lo)
                    .param("strike_price.lte", hi);
            }
            let mut target;
            loop {
                let body = match self.http.json(req).await {
                    Ok(b) => b,
                    Err(e) if e.is_fatal() => return Err(e),
                    Err(_) => break,
                };
                let Ok((tickers, next)) =
                    parse::reference_page(&body, &self.cfg.filter, spot, today)
                else {
                    self.stats
                        .error("malformed", "reference contracts page without results");
                    break;
                };
                for t in tickers {
                    let distance = parse::occ_from_ticker(&t)
                        .ok()
                        .zip(spot)
                        .map_or(u64::MAX, |((_, _, _, k), s)| {
                            ((k / s - 1.0).abs() * 1e6) as u64
                        });
                    all.push((distance, u.clone(), t));
                }
                match next {
                    Some(n) => target = n,
                    None => break,
                }
                req = Request::get("contracts", &target);
            }
        }
        all.sort();
        all.truncate(self.cfg.max_stream_contracts);
        let mut tickers: Vec<(String, String)> = all.into_iter().map(|(_, u, t)| (u, t)).collect();
        tickers.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(tickers)
    }
}

/// A strike band as query values, rounded outward to the cent so rounding never drops a strike
/// inside the band.
fn cents_outward((lo, hi): (f64, f64)) -> (String, String) {
    let lo = (lo * 100.0).floor() / 100.0;
    let hi = (hi * 100.0).ceil() / 100.0;
    (format!("{lo:.2}"), format!("{hi:.2}"))
}

/// Today's date in New York (the trading day the expiry window counts from).
pub fn today_new_york() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .date_naive()
}
