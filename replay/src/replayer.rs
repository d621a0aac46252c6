//! What `optionflow replay TAPE --out DIR` runs.

use optionflow_pipeline::runtime::embedded::{files, SessionInput};
use std::path::{Path, PathBuf};

/// Why a replay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Neither a tape nor a run's data directory.
    #[error("{0}: not a tape, nor a data directory holding {tape}", tape = files::TAPE)]
    NoTape(String),
    /// The output directory is the run being replayed.
    #[error("--out {0} is the data directory being replayed; choose another directory")]
    OutIsInput(String),
    /// File system.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The tape behind `input`: the file itself, or `<dir>/quotes.raw.avro` for a run's data
/// directory.
pub fn resolve_tape(input: &Path) -> Result<PathBuf, ReplayError> {
    let tape = if input.is_dir() {
        input.join(files::TAPE)
    } else {
        input.to_path_buf()
    };
    if !tape.is_file() {
        return Err(ReplayError::NoTape(input.display().to_string()));
    }
    Ok(tape)
}

/// The session input replaying `input` into `out`.
pub fn replay_input(input: &Path, out: &Path) -> Result<SessionInput, ReplayError> {
    let tape = resolve_tape(input)?;
    let io = |what: String| move |source| ReplayError::Io { what, source };
    let tape = tape
        .canonicalize()
        .map_err(io(format!("resolving {}", tape.display())))?;
    // Writing the outputs into the directory being replayed would overwrite its own results.
    if let (Some(parent), Ok(out)) = (tape.parent(), out.canonicalize()) {
        if parent == out {
            return Err(ReplayError::OutIsInput(out.display().to_string()));
        }
    }
    let bytes = std::fs::metadata(&tape)
        .map_err(io(format!("reading {}", tape.display())))?
        .len();
    Ok(SessionInput::Tape { path: tape, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_resolves_to_its_tape_and_cannot_be_its_own_output() {
        let run = tempfile::tempdir().unwrap();
        std::fs::write(run.path().join(files::TAPE), b"x").unwrap();
        let out = tempfile::tempdir().unwrap();
        match replay_input(run.path(), out.path()).unwrap() {
            SessionInput::Tape { path, bytes } => {
                assert!(path.ends_with(files::TAPE));
                assert_eq!(bytes, 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            replay_input(run.path(), run.path()),
            Err(ReplayError::OutIsInput(_))
        ));
        assert!(matches!(
            replay_input(out.path(), run.path()),
            Err(ReplayError::NoTape(_))
        ));
    }
}
