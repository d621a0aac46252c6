//! The distributed mode's commands: `stage`, `source`, `topics`, `migrate`, and `run` when
//! `[bus] kind = "kafka"`.

use anyhow::{bail, Context, Result};
use optionflow_pipeline::config::Config;
use optionflow_pipeline::kafka::{self, run::AllInOne, topics, KafkaEnv};
use optionflow_pipeline::runtime::stage::StageObserver;
use optionflow_pipeline::source::{simulator::Simulator, tape::TapeSource, TickSource};
use optionflow_schemas::{Alert, RejectedQuote};
use std::path::PathBuf;
use std::sync::Arc;

/// A source for `optionflow source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SourceKind {
    /// The built-in market simulator (--seed, --duration, --underlyings).
    Simulator,
    /// A recorded tape (--tape).
    Tape,
    /// Polygon.io (POLYGON_API_KEY; [universe], [polygon]).
    Polygon,
    /// Tradier (TRADIER_TOKEN; [universe], [tradier]).
    Tradier,
}

#[derive(clap::Args)]
pub(crate) struct StageArgs {
    /// normalize, greeks, score, consensus, explain, risk-gate or dispatch.
    name: String,
    /// TOML configuration file ([kafka], [state], [scylla], the stage's own section).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Local directory for this process: dispatch's alerts.jsonl, consensus's signals.jsonl,
    /// risk-gate's decisions.jsonl, and checkpoints when `[state] kind = "embedded"`.
    #[arg(long, default_value = "./optionflow-data")]
    data_dir: PathBuf,
    /// Exit once the end of the session has come through every partition of the input (a copy
    /// that owns them all: a single-partition stage, or a one-copy backfill), instead of
    /// serving on.
    #[arg(long)]
    exit_on_end: bool,
}

#[derive(clap::Args)]
pub(crate) struct SourceArgs {
    /// Where the events come from.
    kind: SourceKind,
    #[command(flatten)]
    session: crate::SessionArgs,
    /// The tape, for `source tape`.
    #[arg(long)]
    tape: Option<PathBuf>,
    /// Event-time pace: 1 = real time, 60 = a minute per second, max = as fast as possible.
    #[arg(long, default_value = "1")]
    speed: String,
    /// Local directory (checkpoints when `[state] kind = "embedded"`).
    #[arg(long, default_value = "./optionflow-data")]
    data_dir: PathBuf,
}

#[derive(clap::Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create every topic (and its dead-letter topic) with the configured partitions,
    /// replication and retention; existing topics are left alone.
    Create {
        /// TOML configuration file ([kafka]).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List this deployment's topics with their partition counts.
    List {
        /// TOML configuration file ([kafka]).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// TOML configuration file ([scylla]).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn load(config: &Option<PathBuf>) -> Result<Config> {
    Ok(Config::load(config.as_deref(), std::env::vars())?)
}

/// Stops the stages on Ctrl-C or SIGTERM (they checkpoint first).
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            #[cfg(unix)]
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("stopping: checkpointing first");
        let _ = tx.send(true);
    });
    rx
}

pub(crate) fn stage(args: StageArgs) -> Result<()> {
    let config = load(&args.config)?;
    if kafka::spec(&args.name).is_none() {
        bail!(
            "no stage {:?}; stages are {}",
            args.name,
            kafka::STAGES.join(", ")
        );
    }
    crate::runtime()?.block_on(async {
        let listen = config.http.listen.clone();
        optionflow_pipeline::exporter::serve(&listen, None).await;
        let env = KafkaEnv::connect(config, &args.data_dir, stop_on_signal()).await?;
        let env = KafkaEnv {
            observer: Some(Arc::new(PrintAlerts)),
            exit_on_end: args.exit_on_end,
            ..env
        };
        kafka::run_stage(&args.name, env).await?;
        Ok(())
    })
}

pub(crate) fn source(args: SourceArgs) -> Result<()> {
    let config = load(&args.session.config)?;
    let speed = crate::parse_speed(&args.speed)?;
    crate::runtime()?.block_on(async {
        let src = make_source(&args, &config)?;
        let topics = topics::create_all_retrying(&config.kafka).await?;
        tracing::info!(topics = topics.len(), "kafka topics ready");
        let env = KafkaEnv::connect(config, &args.data_dir, stop_on_signal()).await?;
        let ticks = kafka::source::run(src, env, speed).await?;
        eprintln!("source wrote {ticks} ticks to quotes.raw");
        Ok(())
    })
}

fn make_source(args: &SourceArgs, config: &Config) -> Result<Box<dyn TickSource>> {
    let s = &args.session;
    Ok(match args.kind {
        SourceKind::Simulator => {
            let micros = optionflow_pipeline::duration::parse_market_duration(&s.duration)
                .map_err(anyhow::Error::msg)
                .context("--duration")?;
            Box::new(
                Simulator::new(&config.simulator, s.seed, s.underlyings, micros)
                    .map_err(|e| anyhow::anyhow!("simulator: {e}"))?,
            )
        }
        SourceKind::Tape => {
            let Some(tape) = &args.tape else {
                bail!("source tape needs --tape FILE");
            };
            Box::new(TapeSource::open(tape)?)
        }
        SourceKind::Polygon | SourceKind::Tradier => {
            crate::record_cli::live_source(matches!(args.kind, SourceKind::Polygon), config)?
        }
    })
}

pub(crate) fn topics(command: TopicsCommand) -> Result<()> {
    crate::runtime()?.block_on(async {
        match command {
            TopicsCommand::Create { config } => {
                let config = load(&config)?;
                for t in topics::create_all(&config.kafka).await? {
                    println!(
                        "{}\t{} partitions\t{}",
                        t.name,
                        t.partitions,
                        if t.new { "created" } else { "exists" }
                    );
                }
            }
            TopicsCommand::List { config } => {
                let config = load(&config)?;
                for t in topics::list(&config.kafka).await? {
                    println!("{}\t{} partitions", t.name, t.partitions);
                }
            }
        }
        Ok(())
    })
}

pub(crate) fn migrate(args: MigrateArgs) -> Result<()> {
    let config = load(&args.config)?;
    crate::runtime()?.block_on(async {
        let session = optionflow_pipeline::scylla::connect_session(&config.scylla).await?;
        let done = optionflow_pipeline::scylla::migrate::apply(&session, &config.scylla).await?;
        println!(
            "keyspace {}: schema version {} ({} applied now)",
            config.scylla.keyspace,
            done.version,
            done.applied.len()
        );
        Ok(())
    })
}

/// `optionflow run` on Kafka: the simulator and every stage in this process.
pub(crate) fn run_all(
    config: Config,
    session: &crate::SessionArgs,
    data_dir: &std::path::Path,
    speed: Option<f64>,
) -> Result<()> {
    let sim = simulator(&config, session)?;
    let started = std::time::Instant::now();
    let summary = crate::runtime()?.block_on(kafka::run::run(AllInOne {
        config,
        data_dir: data_dir.to_path_buf(),
        source: Box::new(sim),
        speed,
        observer: Some(Arc::new(PrintAlerts)),
    }))?;
    if summary.already_finished {
        eprintln!(
            "session in {} has already finished ({} alerts); nothing to do",
            data_dir.display(),
            summary.alerts
        );
        return Ok(());
    }
    crate::report(&summary, started);
    Ok(())
}

/// The simulator of `session`.
fn simulator(config: &Config, session: &crate::SessionArgs) -> Result<Simulator> {
    let micros = optionflow_pipeline::duration::parse_market_duration(&session.duration)
        .map_err(anyhow::Error::msg)
        .context("--duration")?;
    Simulator::new(&config.simulator, session.seed, session.underlyings, micros)
        .map_err(|e| anyhow::anyhow!("simulator: {e}"))
}

/// What `bench --kafka` measured.
pub(crate) struct KafkaBench {
    /// The run's summary, latency included.
    pub(crate) summary: optionflow_pipeline::runtime::embedded::RunSummary,
    /// Its topic and group prefix (without the trailing dot).
    pub(crate) name: String,
    /// Partitions of the per-underlying topics.
    pub(crate) partitions: i32,
}

/// The configuration of `bench --kafka` at `brokers`: `config` on Kafka under topic and group
/// names no earlier run used (`bench-<unix time>-<pid>`), which it returns too; an error names
/// a broker list that is not one.
pub(crate) fn bench_config(config: &Config, brokers: &str) -> Result<(Config, String)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("bench-{stamp}-{}", std::process::id());
    let mut config = config.clone();
    config.bus.kind = kafka::config::BusKind::Kafka;
    config.kafka.brokers = brokers.to_string();
    config.kafka.topic_prefix = format!("{name}.");
    config.kafka.group_prefix = name.clone();
    config
        .kafka
        .validate()
        .map_err(|e| anyhow::anyhow!("--kafka {brokers:?}: {e}"))?;
    Ok((config, name))
}

/// `bench --kafka`: `session` over Kafka with `config` from [`bench_config`] (named `name`),
/// the source and every stage in this process, into `data_dir`.
pub(crate) fn bench(
    config: Config,
    name: String,
    session: &crate::SessionArgs,
    data_dir: &std::path::Path,
    speed: Option<f64>,
) -> Result<KafkaBench> {
    let partitions = config.kafka.partitions;
    let sim = simulator(&config, session)?;
    eprintln!(
        "kafka run at {}: topics {name}.* (waits for the brokers if they are down)",
        config.kafka.brokers
    );
    let summary = crate::runtime()?.block_on(kafka::run::run(AllInOne {
        config,
        data_dir: data_dir.to_path_buf(),
        source: Box::new(sim),
        speed,
        observer: None,
    }))?;
    Ok(KafkaBench {
        summary,
        name,
        partitions,
    })
}

/// Prints dispatch's alerts, one line each, as the embedded `run` does.
struct PrintAlerts;

impl StageObserver for PrintAlerts {
    fn observe(&self, stage: &'static str, events: &dyn std::any::Any, _: &[RejectedQuote]) {
        if stage != "dispatch" {
            return;
        }
        if let Some(alerts) = events.downcast_ref::<Vec<Alert>>() {
            for a in alerts.iter().filter(|a| a.channel == "file") {
                crate::print_alert(a);
            }
        }
    }
}
