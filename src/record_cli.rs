//! `optionflow record`: a source's raw events onto a tape, optionally running the pipeline on
//! them as they arrive.

use anyhow::{bail, Context, Result};
use optionflow_pipeline::config::Config;
use optionflow_pipeline::duration::parse_market_duration;
use optionflow_pipeline::runtime::embedded::{SessionInput, SessionParams};
use optionflow_pipeline::source::live::LiveSource;
use optionflow_pipeline::source::simulator::Simulator;
use optionflow_pipeline::source::TickSource;
use optionflow_pipeline::tape::TapeWriter;
use optionflow_pipeline::vendor::polygon::PolygonSource;
use optionflow_pipeline::vendor::schedule::HotMarks;
use optionflow_pipeline::vendor::telemetry::VendorStats;
use optionflow_pipeline::vendor::tradier::TradierSource;
use optionflow_pipeline::vendor::{Batch, VendorError};
use optionflow_schemas::RawEvent;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where a recording's events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RecordSource {
    /// Polygon.io (key in POLYGON_API_KEY; underlyings in [universe]).
    Polygon,
    /// Tradier (token in TRADIER_TOKEN; underlyings in [universe]).
    Tradier,
    /// The built-in market simulator.
    Simulator,
}

#[derive(clap::Args)]
pub(crate) struct RecordArgs {
    /// Where the events come from.
    #[arg(long)]
    source: RecordSource,
    /// The tape to write (an Avro object container file; it must not exist yet).
    #[arg(long)]
    out: PathBuf,
    /// How long to record: market time for the simulator (default 1d = one session), wall-clock
    /// time for a vendor (default: until Ctrl-C). 30s, 20m, 2h.
    #[arg(long)]
    duration: Option<String>,
    /// Also run every stage on the events as they arrive, with this data directory (alerts,
    /// signals, checkpoints). `optionflow replay` of the tape reproduces its outputs.
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Simulator: number of underlyings (1-20).
    #[arg(long, default_value_t = 20)]
    underlyings: usize,
    /// Simulator: seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// TOML configuration file ([universe], [polygon], [tradier], [http], the stages).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// A running producer and what it reports.
struct Producer {
    name: &'static str,
    stats: Option<Arc<VendorStats>>,
    /// Marks underlyings hot for the poller (vendors).
    hot: Option<HotMarks>,
    task: tokio::task::JoinHandle<Result<(), VendorError>>,
    /// Wall-clock limit (vendors); the simulator ends by itself.
    deadline: Option<Instant>,
}

fn start_producer(args: &RecordArgs, cfg: &Config, tx: mpsc::Sender<Batch>) -> Result<Producer> {
    let env = |k: &str| std::env::var(k).ok();
    let wall = |d: &Option<String>| -> Result<Option<Instant>> {
        d.as_deref()
            .map(|text| {
                // Wall-clock: `d` would mean a 6h30m session here too, which is what a user
                // recording a trading day means.
                let micros = parse_market_duration(text)
                    .map_err(anyhow::Error::msg)
                    .context("--duration")?;
                Ok(Instant::now() + Duration::from_micros(micros as u64))
            })
            .transpose()
    };
    match args.source {
        RecordSource::Polygon => {
            let src = PolygonSource::new(cfg.polygon.clone(), cfg.universe.clone(), &env)?;
            let (stats, hot) = (src.stats(), src.hot_marks());
            Ok(Producer {
                name: "polygon",
                stats: Some(stats),
                hot: Some(hot),
                task: tokio::spawn(src.run(tx)),
                deadline: wall(&args.duration)?,
            })
        }
        RecordSource::Tradier => {
            let src = TradierSource::new(cfg.tradier.clone(), cfg.universe.clone(), &env)?;
            let (stats, hot) = (src.stats(), src.hot_marks());
            Ok(Producer {
                name: "tradier",
                stats: Some(stats),
                hot: Some(hot),
                task: tokio::spawn(src.run(tx)),
                deadline: wall(&args.duration)?,
            })
        }
        RecordSource::Simulator => {
            if !(1..=20).contains(&args.underlyings) {
                bail!(
                    "--underlyings {}: the simulator has 20 names; choose 1 to 20",
                    args.underlyings
                );
            }
            let micros = parse_market_duration(args.duration.as_deref().unwrap_or("1d"))
                .map_err(anyhow::Error::msg)
                .context("--duration")?;
            let mut sim = Simulator::new(&cfg.simulator, args.seed, args.underlyings, micros)
                .map_err(|e| anyhow::anyhow!("simulator: {e}"))?;
            let task = tokio::task::spawn_blocking(move || loop {
                let mut events = Vec::new();
                let Some(t) = sim.next_tick(&mut events) else {
                    return Ok(());
                };
                if tx.blocking_send((t, events)).is_err() {
                    return Ok(());
                }
            });
            Ok(Producer {
                name: "simulator",
                stats: None,
                hot: None,
                task,
                deadline: None,
            })
        }
    }
}

#[derive(Default)]
struct Counts {
    quotes: u64,
    ticks: u64,
    first: Option<i64>,
    last: Option<i64>,
    per_underlying: BTreeMap<String, u64>,
}

pub(crate) fn record(args: RecordArgs) -> Result<()> {
    let cfg = Config::load(args.config.as_deref(), std::env::vars())?;
    if args.out.exists() {
        bail!(
            "{} exists; record writes a new tape (choose another --out, or delete it)",
            args.out.display()
        );
    }
    let rt = crate::runtime()?;
    rt.block_on(record_async(args, cfg))
}

async fn record_async(args: RecordArgs, cfg: Config) -> Result<()> {
    // The dashboard shows the live pipeline when there is one (`--pipeline`).
    let hub = optionflow_pipeline::dashboard::hub::Hub::new();
    let routes = args
        .pipeline
        .is_some()
        .then(|| crate::dashboard_routes(&cfg, &hub));
    optionflow_pipeline::exporter::serve(&cfg.http.listen, routes).await;
    let (tx, mut rx) = mpsc::channel::<Batch>(64);
    let producer = start_producer(&args, &cfg, tx)?;
    let mut tape = TapeWriter::open(&args.out, 0, 0, cfg.tape.codec)
        .with_context(|| format!("creating {}", args.out.display()))?;

    // The pipeline, when asked for, reads the same batches through a second channel.
    let (pipe_tx, pipeline) = match &args.pipeline {
        Some(dir) => {
            let (ptx, prx) = mpsc::channel::<Batch>(64);
            let params = SessionParams {
                input: SessionInput::Live {
                    vendor: producer.name.to_string(),
                    underlyings: match args.source {
                        RecordSource::Simulator => vec![format!("{} simulated", args.underlyings)],
                        _ => cfg.universe.underlyings.clone(),
                    },
                },
                config_fingerprint: cfg.fingerprint(),
            };
            let live = Box::new(LiveSource::new(producer.name, prx));
            let (cfg, dir) = (cfg.clone(), dir.clone());
            // An alert on an underlying makes the poller refresh it every hot interval.
            let on_alert = producer.hot.clone().map(
                |hot| -> optionflow_pipeline::runtime::embedded::AlertHook {
                    Box::new(move |a: &optionflow_schemas::Alert| hot.mark(&a.underlying))
                },
            );
            // Its own thread and runtime, as `run` has: the stages never compete with the feed.
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = done_tx.send(crate::run_session_live(
                    cfg, params, &dir, live, on_alert, hub,
                ));
            });
            let handle = async move {
                done_rx
                    .await
                    .unwrap_or_else(|_| bail!("the pipeline thread died"))
            };
            (Some(ptx), Some(handle))
        }
        None => (None, None),
    };

    let started = Instant::now();
    let mut counts = Counts::default();
    let mut last_commit = Instant::now();
    let mut interrupted = false;
    let deadline = producer.deadline.map(tokio::time::Instant::from_std);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = tokio::select! {
            b = rx.recv() => b,
            _ = &mut ctrl_c => { interrupted = true; None }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => None,
        };
        let Some((t, events)) = next else { break };
        for ev in &events {
            tape.append(ev)?;
            match ev {
                RawEvent::Quote(q) => {
                    counts.quotes += 1;
                    *counts
                        .per_underlying
                        .entry(q.underlying.to_string())
                        .or_default() += 1;
                }
                RawEvent::Tick(_) => counts.ticks += 1,
            }
        }
        counts.first.get_or_insert(t);
        counts.last = Some(t);
        if let Some(ptx) = &pipe_tx {
            if ptx.send((t, events)).await.is_err() {
                bail!("the pipeline stopped; see the messages above");
            }
        }
        // Durable every second: a crash loses at most the last second of the recording.
        if last_commit.elapsed() >= Duration::from_secs(1) {
            tape.commit()?;
            last_commit = Instant::now();
        }
    }
    tape.commit()?;
    drop(rx);
    drop(pipe_tx);
    let outcome = if producer.task.is_finished() || !interrupted && deadline.is_none() {
        producer.task.await.unwrap_or(Ok(()))
    } else {
        producer.task.abort();
        Ok(())
    };
    if let Some(p) = pipeline {
        p.await.context("the pipeline")?;
    }
    eprintln!(
        "recorded {} quotes and {} underlying ticks to {} in {:.1}s{}",
        counts.quotes,
        counts.ticks,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        match (counts.first, counts.last) {
            (Some(a), Some(b)) => format!(", event time {} → {}", crate::et(a), crate::et(b)),
            _ => String::new(),
        }
    );
    for (u, n) in &counts.per_underlying {
        eprintln!("  {u}: {n} quotes");
    }
    if let Some(s) = &producer.stats {
        use std::sync::atomic::Ordering::Relaxed;
        eprintln!(
            "  {}: {} requests, {} retries, {} bad rows, {} reconnects, errors {:?}",
            s.vendor(),
            s.requests.load(Relaxed),
            s.retries.load(Relaxed),
            s.bad_rows.load(Relaxed),
            s.reconnects.load(Relaxed),
            s.errors()
        );
    }
    outcome.map_err(|e| anyhow::anyhow!("{e}"))?;
    if interrupted {
        eprintln!("interrupted: the tape holds everything recorded until now");
    }
    Ok(())
}

/// A vendor feed as a tick source (for `optionflow source polygon|tradier`): the poller and
/// stream run on their own task; the source reads their batches.
pub(crate) fn live_source(polygon: bool, cfg: &Config) -> Result<Box<dyn TickSource>> {
    let env = |k: &str| std::env::var(k).ok();
    let (tx, rx) = mpsc::channel::<Batch>(64);
    let name = if polygon {
        let src = PolygonSource::new(cfg.polygon.clone(), cfg.universe.clone(), &env)?;
        tokio::spawn(log_end(src.run(tx)));
        "polygon"
    } else {
        let src = TradierSource::new(cfg.tradier.clone(), cfg.universe.clone(), &env)?;
        tokio::spawn(log_end(src.run(tx)));
        "tradier"
    };
    Ok(Box::new(LiveSource::new(name, rx)))
}

async fn log_end(feed: impl std::future::Future<Output = Result<(), VendorError>>) {
    if let Err(e) = feed.await {
        tracing::error!(error = %e, "the vendor feed stopped");
    }
}
