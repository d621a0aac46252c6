//! `optionflow silence add|list|expire`: edit a data directory's silences file, which a running
//! session picks up within a couple of seconds (and a replay of that directory applies too).

use anyhow::{bail, Context, Result};
use optionflow_operators::dispatch::matcher::Matcher;
use optionflow_operators::dispatch::silence::{Silence, SilenceFile};
use optionflow_pipeline::duration::parse_market_duration;
use optionflow_pipeline::runtime::embedded::{files, SessionInput, SessionParams};
use optionflow_pipeline::silences;
use optionflow_pipeline::store::{FileStateStore, StateStore};
use optionflow_replay::tapes::parse_time;
use optionflow_schemas::time::MICROS_PER_DAY;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub(crate) enum SilenceCommand {
    /// Mute alerts matching every given condition, from --from (default: the session's "now")
    /// for --duration or until --to.
    Add(AddArgs),
    /// List the silences, active ones first.
    List(DirArg),
    /// End a silence now (it stays in the file, expired).
    Expire {
        /// The silence's id (from `silence list`).
        id: String,
        #[command(flatten)]
        dir: DirArg,
    },
}

#[derive(clap::Args)]
pub(crate) struct DirArg {
    /// The session's data directory.
    #[arg(long, default_value = "./optionflow-data")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Underlyings to mute (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    underlying: Vec<String>,
    /// Sectors to mute.
    #[arg(long, value_delimiter = ',')]
    sector: Vec<String>,
    /// Directions to mute: bullish, bearish, volatility.
    #[arg(long, value_delimiter = ',')]
    direction: Vec<String>,
    /// Mute only signals with a composite at or above this.
    #[arg(long)]
    min_composite: Option<f64>,
    /// Start: RFC 3339, New York time (2024-01-02 10:00) or µs since the epoch. Default: the
    /// session's "now" — its latest checkpoint's event time for a simulated or replayed session,
    /// the wall clock for a live one or a directory with no session yet.
    #[arg(long)]
    from: Option<String>,
    /// End, in the same forms as --from.
    #[arg(long, conflicts_with = "duration")]
    to: Option<String>,
    /// Length: 30m, 2h, 3d (clock time: 1d = 24h).
    #[arg(long)]
    duration: Option<String>,
    /// Why, and who asked.
    #[arg(long, default_value = "")]
    comment: String,
}

pub(crate) fn run(cmd: SilenceCommand) -> Result<()> {
    match cmd {
        SilenceCommand::Add(args) => add(args),
        SilenceCommand::List(dir) => list(&dir.data_dir),
        SilenceCommand::Expire { id, dir } => expire(&dir.data_dir, &id),
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(files::SILENCES)
}

/// Clock-time durations: `s`, `m`, `h` as everywhere, and `d` as 24 hours (not a session).
fn parse_clock_duration(text: &str) -> Result<i64> {
    if let Some(days) = text.trim().strip_suffix('d') {
        let n: f64 = days
            .parse()
            .with_context(|| format!("--duration {text:?}: e.g. 30m, 2h, 3d"))?;
        if !(n > 0.0 && n < 1e4) {
            bail!("--duration {text:?}: give a positive number of days");
        }
        return Ok((n * MICROS_PER_DAY as f64).round() as i64);
    }
    parse_market_duration(text)
        .map_err(anyhow::Error::msg)
        .with_context(|| "--duration")
}

/// The session's "now": see `AddArgs::from`.
fn session_now(dir: &Path) -> i64 {
    let wall = chrono::Utc::now().timestamp_micros();
    let params: Option<SessionParams> = std::fs::read(dir.join(files::SESSION))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match params.map(|p| p.input) {
        Some(SessionInput::Live { .. }) | None => wall,
        Some(_) => FileStateStore::open(&dir.join(files::CHECKPOINTS))
            .ok()
            .and_then(|s| s.load_latest().ok().flatten())
            .map_or(wall, |c| c.event_time),
    }
}

fn add(args: AddArgs) -> Result<()> {
    let dir = &args.dir.data_dir;
    let starts_at = match &args.from {
        Some(t) => parse_time(t)
            .map_err(anyhow::Error::msg)
            .context("--from")?,
        None => session_now(dir),
    };
    let ends_at = match (&args.to, &args.duration) {
        (Some(t), _) => parse_time(t).map_err(anyhow::Error::msg).context("--to")?,
        (None, Some(d)) => starts_at + parse_clock_duration(d)?,
        (None, None) => bail!("give --duration (e.g. 2h) or --to"),
    };
    let matcher = Matcher {
        underlying: args.underlying,
        sector: args.sector,
        direction: args.direction,
        min_composite: args.min_composite,
        ..Default::default()
    };
    if matcher == Matcher::default() {
        bail!("give at least one of --underlying, --sector, --direction, --min-composite (a silence of everything is rarely meant)");
    }
    let path = path(dir);
    let mut file = silences::load(&path)?;
    let silence = Silence {
        id: file.next_id(),
        matcher,
        starts_at,
        ends_at,
        comment: args.comment,
    };
    file.silences.push(silence.clone());
    // Validate the whole file as the session will read it.
    SilenceFile::parse(&file.to_text()).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    silences::save(&path, &file)?;
    println!("added {}", line(&silence, starts_at));
    Ok(())
}

fn line(s: &Silence, now: i64) -> String {
    let state = if s.ends_at <= now {
        "expired"
    } else if s.starts_at > now {
        "pending"
    } else {
        "active"
    };
    format!(
        "{}  {:<7}  {} → {}  {}{}",
        s.id,
        state,
        crate::et(s.starts_at),
        crate::et(s.ends_at),
        s.matcher.describe(),
        if s.comment.is_empty() {
            String::new()
        } else {
            format!("  # {}", s.comment)
        }
    )
}

fn list(dir: &Path) -> Result<()> {
    let file = silences::load(&path(dir))?;
    if file.silences.is_empty() {
        println!("no silences in {}", path(dir).display());
        return Ok(());
    }
    let now = session_now(dir);
    let mut all = file.silences;
    // Active and pending first, then expired; each by start.
    all.sort_by_key(|s| (s.ends_at <= now, s.starts_at));
    for s in &all {
        println!("{}", line(s, now));
    }
    Ok(())
}

fn expire(dir: &Path, id: &str) -> Result<()> {
    let path = path(dir);
    let mut file = silences::load(&path)?;
    let now = session_now(dir);
    let Some(s) = file.silences.iter_mut().find(|s| s.id == id) else {
        bail!("no silence {id:?} in {}", path.display());
    };
    if s.ends_at <= now {
        println!("{id} had already expired");
        return Ok(());
    }
    // A silence that has not started yet ends before it starts: keep the file valid.
    s.ends_at = now.max(s.starts_at + 1);
    let shown = line(s, now);
    silences::save(&path, &file)?;
    println!("expired {shown}");
    Ok(())
}
