//! The silences file of a data directory (`silences.json`): read and written atomically for
//! `optionflow silence`, and watched by a running session, whose dispatch stage picks up a
//! change within a couple of seconds.
//!
//! Silences are bounded in event time (see [`optionflow_operators::dispatch::silence`]), so the
//! wall-clock moment a change is noticed only matters for alerts whose event time falls inside
//! a silence that was added after they were dispatched, i.e. a silence back-dated into the past.

use optionflow_operators::dispatch::silence::{Silence, SilenceFile};
use optionflow_operators::dispatch::Dispatch;
use optionflow_operators::{Ctx, Emit, OpError, Operator};
use optionflow_schemas::{Alert, RiskDecision};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file's name in a data directory.
pub const FILE: &str = "silences.json";

/// How often a running session looks at the file.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why the silences file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SilencesError {
    /// It could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Its content is not a valid silences file.
    #[error("{path}: {problem} (fix or delete the file)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Reads `path`; a missing file is no silences.
pub fn load(path: &Path) -> Result<SilenceFile, SilencesError> {
    match std::fs::read_to_string(path) {
        Ok(text) => SilenceFile::parse(&text).map_err(|problem| SilencesError::Invalid {
            path: path.to_path_buf(),
            problem,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
        Err(source) => Err(SilencesError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `file` to `path` atomically (a reader sees the old or the new file, never half).
pub fn save(path: &Path, file: &SilenceFile) -> Result<(), SilencesError> {
    let io = |source| SilencesError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(file.to_text().as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The dispatch operator with its silences kept in step with a file. Checkpoints and names are
/// the inner operator's, so a session can switch between watching and not.
#[derive(Debug)]
pub struct WatchedDispatch {
    inner: Dispatch,
    path: PathBuf,
    modified: Option<SystemTime>,
    checked: Instant,
}

impl WatchedDispatch {
    /// Loads the silences in `path` into `inner` and watches the file from now on.
    pub fn new(mut inner: Dispatch, path: PathBuf) -> Result<Self, SilencesError> {
        let modified = modified(&path);
        let file = load(&path)?;
        log_loaded(&path, &file.silences);
        inner.set_silences(file.silences);
        Ok(Self {
            inner,
            path,
            modified,
            checked: Instant::now(),
        })
    }

    /// Reloads the file when it changed. A file made invalid keeps the silences last loaded.
    fn refresh(&mut self) {
        if self.checked.elapsed() < CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let now = modified(&self.path);
        if now == self.modified {
            return;
        }
        self.modified = now;
        match load(&self.path) {
            Ok(file) => {
                log_loaded(&self.path, &file.silences);
                self.inner.set_silences(file.silences);
            }
            Err(e) => tracing::warn!(error = %e, "silences unchanged: the file is invalid"),
        }
    }

    /// The inner operator.
    pub fn inner(&self) -> &Dispatch {
        &self.inner
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn log_loaded(path: &Path, silences: &[Silence]) {
    if !silences.is_empty() {
        tracing::info!(file = %path.display(), silences = silences.len(), "silences loaded");
    }
}

impl Operator for WatchedDispatch {
    type In = RiskDecision;
    type Out = Alert;

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn on_event(
        &mut self,
        ev: &RiskDecision,
        ctx: &Ctx,
        out: &mut Emit<Alert>,
    ) -> Result<(), OpError> {
        self.inner.on_event(ev, ctx, out)
    }

    fn on_watermark(&mut self, t: i64, ctx: &Ctx, out: &mut Emit<Alert>) -> Result<(), OpError> {
        // Decisions are only dispatched on watermarks: the file is looked at just before.
        self.refresh();
        self.inner.on_watermark(t, ctx, out)
    }

    fn snapshot(&self) -> Result<Vec<u8>, OpError> {
        self.inner.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), OpError> {
        self.inner.restore(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optionflow_operators::dispatch::matcher::Matcher;

    #[test]
    fn saved_silences_load_back_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(load(&path).unwrap(), SilenceFile::default());
        let file = SilenceFile {
            silences: vec![Silence {
                id: "s1".into(),
                matcher: Matcher {
                    underlying: vec!["GME".into()],
                    ..Default::default()
                },
                starts_at: 1_611_325_800_000_000,
                ends_at: 1_611_333_000_000_000,
                comment: "halted".into(),
            }],
        };
        save(&path, &file).unwrap();
        assert_eq!(load(&path).unwrap(), file);
        std::fs::write(&path, "{\"silences\": [{\"id\": 3}]}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("silences.json") && err.contains("fix or delete"),
            "{err}"
        );
    }
}
