//! `optionflow`: the command line. It parses arguments, prints, and calls the crates; all the
//! work happens in `optionflow-pipeline` and `optionflow-operators`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use optionflow_pipeline::config::Config;
use optionflow_pipeline::dashboard::hub::Hub;
use optionflow_pipeline::duration::parse_market_duration;
use optionflow_pipeline::runtime::embedded::{
    self, RunOptions, RunSummary, SessionInput, SessionParams,
};
use optionflow_pipeline::telemetry::Status;
use optionflow_schemas::Alert;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// See the `mimalloc` entry in `Cargo.toml`: the pipeline's events cross threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backtest_cli;
mod calibrate_cli;
mod import_cli;
mod kafka_cli;
mod quant;
mod record_cli;
mod scenario_cli;
mod silence_cli;
mod tape_cli;
mod tracing_setup;

#[derive(Parser)]
#[command(
    name = "optionflow",
    version,
    about = "Option quotes in; scored, explained, risk-gated alerts out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline embedded in this process, on the built-in market simulator.
    ///
    /// Alerts go to stdout (one line each) and to <data-dir>/alerts.jsonl; a status line goes to
    /// stderr. Interrupted? Run the same command again: it resumes from the last checkpoint.
    Run(RunArgs),
    /// Print every event schema with its Rabin fingerprint.
    Schemas,
    /// Measure throughput and quote→alert latency of the embedded pipeline at full speed.
    ///
    /// With --kafka (or a --config whose [bus] kind is "kafka") the same session then runs
    /// again over Kafka in the same invocation, and both results are printed.
    Bench(BenchArgs),
    /// Replay a tape (or an earlier run's data directory) through every stage.
    ///
    /// Writes signals, explanations, decisions and alerts to --out as JSON lines, in the same
    /// format as `run`; replaying a run's own tape gives byte-identical files.
    Replay(tape_cli::ReplayArgs),
    /// Backtest the signals of a tape: replay it, trade its approved signals, report.
    ///
    /// Replays TAPE through every stage into <out>/replay (the risk gate decides as live), then
    /// simulates a position per approved signal: contracts chosen from the chain as of the
    /// signal, filled at the bid/ask of the next quote, closed on take-profit, stop-loss, time
    /// stop or expiry. Writes trades.csv, summary.json and report.html ([backtest] in --config).
    Backtest(backtest_cli::BacktestArgs),
    /// Import historical option chain files (or underlying daily bars) into a tape.
    ///
    /// Formats: generic, cboe-eod, deltaneutral, daily-bars. Rows from every file are merged in
    /// event time; rows that cannot be read are listed with file and line and skipped.
    Import(import_cli::ImportArgs),
    /// Inspect tapes: `tape info`, `tape cat`, `tape slice`.
    Tape {
        #[command(subcommand)]
        command: tape_cli::TapeCommand,
    },
    /// Record a source's raw events to a tape: Polygon, Tradier or the simulator.
    ///
    /// Keys come from the environment (POLYGON_API_KEY, TRADIER_TOKEN), underlyings from
    /// [universe] in --config. With --pipeline DIR every stage also runs on the events live.
    Record(record_cli::RecordArgs),
    /// Label a session's signals with their forward outcomes and fit the consensus calibration.
    ///
    /// Writes the isotonic calibration file `[consensus] calibration-file` loads, from the hit
    /// rate by composite over the first --horizon.
    Calibrate(calibrate_cli::CalibrateArgs),
    /// Mute alerts for a while: `silence add`, `silence list`, `silence expire`.
    ///
    /// Silences live in <data-dir>/silences.json; a running session applies a change within a
    /// couple of seconds, and a replay of that directory applies the same silences. Muted alerts
    /// are listed with the silence that muted them in <data-dir>/suppressed.jsonl.
    Silence {
        #[command(subcommand)]
        command: silence_cli::SilenceCommand,
    },
    /// Run one stage as a Kafka consumer-group member (start more copies to scale).
    ///
    /// Reads its input topic, restores each assigned partition's checkpoint from the state
    /// store, writes its output topic. Stops on Ctrl-C/SIGTERM after checkpointing.
    Stage(kafka_cli::StageArgs),
    /// Produce a source onto `quotes.raw`: simulator, tape, polygon or tradier.
    Source(kafka_cli::SourceArgs),
    /// Kafka topics: `topics create` (idempotent), `topics list`.
    Topics {
        #[command(subcommand)]
        command: kafka_cli::TopicsCommand,
    },
    /// Apply the CQL migrations in pipeline/migrations/ to `[scylla]` (idempotent).
    Migrate(kafka_cli::MigrateArgs),
    /// Scenario tapes (real daily bars, synthesised chains): `scenario build`.
    Scenario {
        #[command(subcommand)]
        command: scenario_cli::ScenarioCommand,
    },
    /// Option calculator: `quant price` (price and greeks) and `quant iv` (implied volatility).
    Quant {
        #[command(subcommand)]
        command: quant::QuantCommand,
    },
}

#[derive(clap::Args)]
pub(crate) struct SessionArgs {
    /// Market time to simulate: 30s, 20m, 2h, 5d (1d = one 6h30m session; nights are skipped).
    #[arg(long, default_value = "1d")]
    pub(crate) duration: String,
    /// Number of underlyings from the simulator's universe (1-20).
    #[arg(long, default_value_t = 20)]
    pub(crate) underlyings: usize,
    /// Simulator seed: the same seed gives the same market, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// TOML configuration file (every key: deploy/optionflow.example.toml).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Event-time pace: 1 = real time, 60 = a minute per second, max = as fast as possible.
    #[arg(long, default_value = "1")]
    speed: String,
    /// Where the session's tape, outputs and checkpoints live.
    #[arg(long, default_value = "./optionflow-data")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Replay this tape (or a run's data directory) instead of simulating: the replay
    /// throughput, next to the live figure. --duration, --seed and --underlyings are then unused.
    #[arg(long)]
    tape: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Event-time pace: max (the default) measures throughput, where a quote's latency includes
    /// the batches queued ahead of it; a finite pace (60 = a minute per second) measures the
    /// time to insight of a market arriving at that rate.
    #[arg(long, default_value = "max")]
    speed: String,
    /// After the embedded run, run the same session over Kafka at these brokers
    /// (host:port[,host:port…]): the source and all seven stages in this process, under topic
    /// and group names of their own (`bench-<time>-<pid>`), checkpoints as [state] says
    /// (files in the scratch directory by default). Other [kafka] keys come from --config.
    /// Without it, a --config with [bus] kind = "kafka" uses its [kafka] brokers.
    #[arg(long, value_name = "BROKERS")]
    kafka: Option<String>,
}

fn main() -> std::process::ExitCode {
    // Dropped at the end of main: the last spans are flushed to the collector.
    let _tracing = tracing_setup::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Schemas => {
            schemas();
            Ok(())
        }
        Command::Bench(args) => bench(args),
        Command::Quant { command } => quant::run(command),
        Command::Silence { command } => silence_cli::run(command),
        Command::Replay(args) => tape_cli::replay(args),
        Command::Backtest(args) => backtest_cli::backtest(args),
        Command::Record(args) => record_cli::record(args),
        Command::Calibrate(args) => calibrate_cli::calibrate(args),
        Command::Tape { command } => tape_cli::tape(command),
        Command::Import(args) => import_cli::import(args),
        Command::Stage(args) => kafka_cli::stage(args),
        Command::Source(args) => kafka_cli::source(args),
        Command::Topics { command } => kafka_cli::topics(command),
        Command::Migrate(args) => kafka_cli::migrate(args),
        Command::Scenario { command } => scenario_cli::run(command),
    };
    // A user-facing message with its causes, not a Debug dump with a backtrace.
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn parse_speed(text: &str) -> Result<Option<f64>> {
    if text == "max" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Some(x)),
        _ => bail!("--speed {text:?}: give a positive number (1 = real time) or max"),
    }
}

fn session(args: &SessionArgs) -> Result<(Config, SessionParams)> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let duration_micros = parse_market_duration(&args.duration)
        .map_err(anyhow::Error::msg)
        .context("--duration")?;
    if !(1..=20).contains(&args.underlyings) {
        bail!(
            "--underlyings {}: the simulator has 20 names; choose 1 to 20",
            args.underlyings
        );
    }
    let params = SessionParams {
        input: SessionInput::Simulator {
            seed: args.seed,
            duration_micros,
            underlyings: args.underlyings,
        },
        config_fingerprint: config.fingerprint(),
    };
    Ok((config, params))
}

pub(crate) fn et(micros: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::America::New_York
        .timestamp_micros(micros)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_default()
}

pub(crate) fn print_alert(a: &Alert) {
    println!("{}  ALERT  {}", et(a.event_time), a.headline);
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(args: RunArgs) -> Result<()> {
    let (config, params) = session(&args.session)?;
    let speed = parse_speed(&args.speed)?;
    if config.bus.kind == optionflow_pipeline::kafka::config::BusKind::Kafka {
        return kafka_cli::run_all(config, &args.session, &args.data_dir, speed);
    }
    run_session(config, params, &args.data_dir, speed)
}

/// Runs (or resumes) one session of the embedded runtime, printing alerts and status.
fn run_session(
    config: Config,
    params: SessionParams,
    data_dir: &std::path::Path,
    speed: Option<f64>,
) -> Result<()> {
    run_session_with(config, params, data_dir, speed, None, None, Hub::new())
}

/// The dashboard's routes for `hub`, with the chain view's settings from `config`.
pub(crate) fn dashboard_routes(config: &Config, hub: &Arc<Hub>) -> axum::Router {
    optionflow_pipeline::dashboard::router(
        hub.clone(),
        optionflow_pipeline::dashboard::DashboardSettings {
            gex_sign: config.score.gex_sign,
            flip_range_pct: config.score.gex_flip_range_pct,
        },
    )
}

/// Runs a live session on `feed` (from `record --pipeline`), in its own runtime.
pub(crate) fn run_session_live(
    config: Config,
    params: SessionParams,
    data_dir: &std::path::Path,
    feed: Box<dyn optionflow_pipeline::source::TickSource>,
    on_alert: Option<embedded::AlertHook>,
    dashboard: Arc<Hub>,
) -> Result<()> {
    run_session_with(
        config,
        params,
        data_dir,
        None,
        Some(feed),
        on_alert,
        dashboard,
    )
}

fn run_session_with(
    config: Config,
    params: SessionParams,
    data_dir: &std::path::Path,
    speed: Option<f64>,
    live: Option<Box<dyn optionflow_pipeline::source::TickSource>>,
    also_on_alert: Option<embedded::AlertHook>,
    dashboard: Arc<Hub>,
) -> Result<()> {
    let config_listen = config.http.listen.clone();
    let routes = dashboard_routes(&config, &dashboard);
    let started = Instant::now();
    let last = std::sync::Mutex::new((Instant::now(), 0u64));
    let status = move |s: &Status| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let rate = (s.quotes - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9);
        *last = (Instant::now(), s.quotes);
        eprintln!(
            "[{}] {} quotes ({:.0}/s) · {} signals · {} alerts · {} rejected · {} checkpoints",
            et(s.event_time),
            s.quotes,
            rate,
            s.signals,
            s.alerts,
            s.rejected,
            s.checkpoints
        );
    };
    let opts = RunOptions {
        config,
        data_dir: data_dir.to_path_buf(),
        params,
        speed,
        on_alert: Some(Box::new(move |a: &Alert| {
            // The stdout line is the "file" channel's; the other channels' copies of the same
            // alert are delivered, not printed again.
            if a.channel == "file" {
                print_alert(a);
            }
            if let Some(f) = &also_on_alert {
                f(a);
            }
        })),
        on_status: Some(Box::new(status)),
        live,
        dashboard: Some(dashboard),
    };
    // A live session ends when its feed does: the recorder owns Ctrl-C, so that it can make the
    // tape durable first.
    let own_ctrl_c = opts.live.is_none();
    let rt = runtime()?;
    let listen = config_listen.clone();
    let summary = rt.block_on(async {
        // `record` serves /metrics itself for a live session.
        if own_ctrl_c {
            optionflow_pipeline::exporter::serve(&listen, Some(routes)).await;
        }
        let interrupt = async {
            if own_ctrl_c {
                let _ = tokio::signal::ctrl_c().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = embedded::run(opts) => r.map(Some),
            _ = interrupt => Ok(None),
        }
    })?;
    let Some(summary) = summary else {
        eprintln!("interrupted: run the same command again to resume from the last checkpoint");
        std::process::exit(130);
    };
    if summary.already_finished {
        eprintln!(
            "session in {} has already finished ({} alerts); nothing to do. Use another directory for a new session.",
            data_dir.display(),
            summary.alerts
        );
        return Ok(());
    }
    report(&summary, started);
    Ok(())
}

fn report(s: &RunSummary, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "finished{}: {} quotes in {:.1}s ({:.0} quotes/s), {} signals, {} alerts, {} rejected; latency p50 {} p99 {}",
        s.resumed_from.map(|c| format!(" (resumed from checkpoint {c})")).unwrap_or_default(),
        s.quotes,
        secs,
        s.quotes as f64 / secs.max(1e-9),
        s.signals,
        s.alerts,
        s.rejected,
        s.latency_p50_us.map_or("-".into(), |v| format!("{:.1} ms", v as f64 / 1000.0)),
        s.latency_p99_us.map_or("-".into(), |v| format!("{:.1} ms", v as f64 / 1000.0)),
    );
}

fn schemas() {
    for e in optionflow_schemas::SCHEMAS.iter() {
        let fp: String = e.fingerprint.iter().map(|b| format!("{b:02x}")).collect();
        println!("# {} (schemas/avro/{})", e.name, e.file);
        println!("# fingerprint CRC-64-AVRO (Rabin): {fp}  (single-object header: c3 01 {fp})");
        println!("{}", e.source.trim_end());
        println!();
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let (config, mut params) = session(&args.session)?;
    let speed = parse_speed(&args.speed)?;
    let kafka = match &args.kafka {
        Some(brokers) => Some(brokers.clone()),
        None if config.bus.kind == optionflow_pipeline::kafka::config::BusKind::Kafka => {
            Some(config.kafka.brokers.clone())
        }
        None => None,
    };
    if kafka.is_some() && args.tape.is_some() {
        bail!("--tape replays in the embedded mode only; drop --kafka (or [bus] kind = \"kafka\") to bench a replay");
    }
    // Checked before the embedded half, so a mistyped broker list fails at once.
    let kafka = kafka
        .map(|brokers| kafka_cli::bench_config(&config, &brokers))
        .transpose()?;
    let dir = tempfile::tempdir().context("creating a scratch data directory")?;
    let embedded_dir = dir.path().join("embedded");
    let what = match &args.tape {
        Some(tape) => {
            params.input = optionflow_replay::replayer::replay_input(tape, &embedded_dir)?;
            format!("replay of {}", tape.display())
        }
        None => format!(
            "embedded pipeline, {} underlyings, {} of market time",
            args.session.underlyings, args.session.duration
        ),
    };
    let opts = RunOptions {
        config: config.clone(),
        data_dir: embedded_dir.clone(),
        params,
        speed,
        on_alert: None,
        on_status: None,
        live: None,
        dashboard: None,
    };
    let cpu_before = process_cpu_secs();
    let s = runtime()?.block_on(embedded::run(opts))?;
    let cpu = process_cpu_secs() - cpu_before;
    let Some((kafka_config, name)) = kafka else {
        if args.json {
            println!("{}", bench_json(&s, cpu));
        } else {
            println!("{}", bench_line(&what, &s, cpu));
        }
        return Ok(());
    };
    if !args.json {
        // The embedded figure first: the Kafka run takes a while longer.
        println!("{}", bench_line(&what, &s, cpu));
    }
    let kafka_dir = dir.path().join("kafka");
    let brokers = kafka_config.kafka.brokers.clone();
    let cpu_before = process_cpu_secs();
    let k = kafka_cli::bench(kafka_config, name, &args.session, &kafka_dir, speed)?;
    let kafka_cpu = process_cpu_secs() - cpu_before;
    let same_alerts = std::fs::read(embedded_dir.join(embedded::files::ALERTS)).ok()
        == std::fs::read(kafka_dir.join(embedded::files::ALERTS)).ok();
    if args.json {
        let mut kafka = bench_json(&k.summary, kafka_cpu);
        kafka["brokers"] = brokers.into();
        kafka["partitions"] = k.partitions.into();
        kafka["topic_prefix"] = format!("{}.", k.name).into();
        println!(
            "{}",
            serde_json::json!({
                "embedded": bench_json(&s, cpu), "kafka": kafka, "alerts_identical": same_alerts,
            })
        );
    } else {
        let what = format!(
            "the same over Kafka at {brokers} (topics {}.*, {} partitions)",
            k.name, k.partitions
        );
        println!("{}", bench_line(&what, &k.summary, kafka_cpu));
    }
    let k = k.summary;
    if k.quotes != s.quotes {
        bail!(
            "the Kafka run produced {} quotes, the embedded run {}: the same seed must give the same quotes",
            k.quotes,
            s.quotes
        );
    }
    if !same_alerts {
        eprintln!(
            "warning: the Kafka run's alerts.jsonl differs from the embedded run's ({} alerts against {})",
            k.alerts, s.alerts
        );
    }
    Ok(())
}

/// This process's CPU time so far, user and system, all threads, in seconds. `bench` reports
/// it beside the wall clock: on a shared host the wall clock of the same run drifts by ±15%
/// within minutes, its CPU time far less, so CPU per quote is the steadier figure to compare
/// builds by. (A Kafka broker is another process: its CPU is not in the figure.)
fn process_cpu_secs() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// What a run's CPU time comes to: cores busy on average, microseconds per quote.
fn cpu_figures(s: &RunSummary, cpu_secs: f64) -> (f64, f64) {
    let cores = cpu_secs / s.elapsed_secs.max(1e-9);
    let per_quote_us = 1e6 * cpu_secs / (s.quotes.max(1) as f64);
    (cores, per_quote_us)
}

/// One `bench` result as JSON.
fn bench_json(s: &RunSummary, cpu_secs: f64) -> serde_json::Value {
    let (cores, per_quote_us) = cpu_figures(s, cpu_secs);
    serde_json::json!({
        "quotes": s.quotes, "elapsed_secs": s.elapsed_secs,
        "quotes_per_sec": s.quotes as f64 / s.elapsed_secs.max(1e-9),
        "signals": s.signals, "alerts": s.alerts,
        "latency_p50_us": s.latency_p50_us, "latency_p99_us": s.latency_p99_us,
        "cpu_secs": cpu_secs, "cores_busy": cores, "cpu_us_per_quote": per_quote_us,
    })
}

/// One `bench` result as a line of text.
fn bench_line(what: &str, s: &RunSummary, cpu_secs: f64) -> String {
    let (cores, per_quote_us) = cpu_figures(s, cpu_secs);
    format!(
        "{what}: {} quotes in {:.2}s = {:.0} quotes/s; {} signals, {} alerts; quote→alert latency p50 {} µs, p99 {} µs; CPU {cpu_secs:.2}s ({cores:.2} cores busy, {per_quote_us:.2} µs per quote)",
        s.quotes,
        s.elapsed_secs,
        s.quotes as f64 / s.elapsed_secs.max(1e-9),
        s.signals,
        s.alerts,
        s.latency_p50_us.map_or("-".into(), |v| v.to_string()),
        s.latency_p99_us.map_or("-".into(), |v| v.to_string()),
    )
}
