//! The embedded state store: checkpoints under `<data-dir>/checkpoints/`.
//!
//! A checkpoint holds every operator's state together with the input position it reflects
//! (source state, tape length) and the length of every output file at that instant, so that
//! restoring it and re-running from there reproduces the uninterrupted session byte for byte.
//! Writes are atomic: a checkpoint file is written under a temporary name, synced, renamed, and
//! only then named in `CURRENT`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One consistent cut of the whole embedded pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Increasing checkpoint number.
    pub id: u64,
    /// Source ticks emitted before the cut.
    pub ticks: u64,
    /// Event time of the last tick before the cut.
    pub event_time: i64,
    /// The source's state.
    #[serde(with = "serde_bytes")]
    pub source: Vec<u8>,
    /// Tape length in bytes (a block boundary) and events.
    pub tape: (u64, u64),
    /// Operator states by stage name.
    #[serde(with = "byte_strings")]
    pub stages: BTreeMap<String, Vec<u8>>,
    /// Output file lengths by file name.
    pub files: BTreeMap<String, u64>,
}

/// A map of byte strings serialized as bytes rather than as sequences of integers: the same
/// postcard encoding (a length, then the bytes), written with one copy instead of one
/// serializer call per byte, which was most of a checkpoint's cost (a replay's state is
/// megabytes, checkpointed every minute of market time).
mod byte_strings {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};
    use std::collections::BTreeMap;

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(k, v)| (k, Bytes::new(v))))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let map = BTreeMap::<String, ByteBuf>::deserialize(deserializer)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.into_vec())).collect())
    }
}

/// Where checkpoints are kept.
pub trait StateStore: Send + 'static {
    /// Durably records `ckpt` as the latest checkpoint.
    fn save(&mut self, ckpt: &Checkpoint) -> std::io::Result<()>;
    /// The latest checkpoint, if any.
    fn load_latest(&self) -> std::io::Result<Option<Checkpoint>>;
}

/// Checkpoints as files in a directory.
#[derive(Debug)]
pub struct FileStateStore {
    dir: PathBuf,
    /// The last checkpoint's encoding buffer, kept for the next one: a fresh multi-megabyte
    /// vector each time costs its page faults and zeroing again.
    buffer: Vec<u8>,
}

impl FileStateStore {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            buffer: Vec::new(),
        })
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(name))?;
        // Make the rename itself durable.
        fs::File::open(&self.dir)?.sync_all()
    }
}

impl StateStore for FileStateStore {
    fn save(&mut self, ckpt: &Checkpoint) -> std::io::Result<()> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let bytes = postcard::to_extend(ckpt, buffer).map_err(std::io::Error::other)?;
        let name = format!("ckpt-{:010}.bin", ckpt.id);
        let written = self.write_atomic(&name, &bytes);
        self.buffer = bytes;
        written?;
        self.write_atomic("CURRENT", name.as_bytes())?;
        // Keep the previous one too; older ones are no longer needed.
        for entry in fs::read_dir(&self.dir)? {
            let file = entry?.file_name().to_string_lossy().to_string();
            if let Some(n) = file
                .strip_prefix("ckpt-")
                .and_then(|s| s.strip_suffix(".bin"))
            {
                if n.parse::<u64>().is_ok_and(|n| n + 1 < ckpt.id) {
                    let _ = fs::remove_file(self.dir.join(&file));
                }
            }
        }
        Ok(())
    }

    fn load_latest(&self) -> std::io::Result<Option<Checkpoint>> {
        let current = match fs::read_to_string(self.dir.join("CURRENT")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = fs::read(self.dir.join(current.trim()))?;
        postcard::from_bytes(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "checkpoint {} is unreadable ({e}); start with a fresh data directory",
                    current.trim()
                ),
            )
        })
    }
}

/// Where the embedded runtime keeps its checkpoints: `[state] kind`.
pub enum SessionStore {
    /// Files under `<data-dir>/checkpoints/`.
    Files(FileStateStore),
    /// The `session_checkpoints` table, keyed by the data directory's session id; the outputs
    /// also go to the query tables through `tables`, flushed before each checkpoint.
    Scylla {
        /// The connected store.
        db: std::sync::Arc<crate::scylla::ScyllaState>,
        /// The session's key (`<data-dir>/session-id`).
        session: String,
        /// The query-table writer (also a stage observer).
        tables: std::sync::Arc<crate::scylla::TableWriter>,
    },
}

impl SessionStore {
    /// The latest checkpoint, if any.
    pub async fn load_latest(&self) -> std::io::Result<Option<Checkpoint>> {
        match self {
            Self::Files(f) => f.load_latest(),
            Self::Scylla { db, session, .. } => {
                let Some(bytes) = db
                    .load_session_checkpoint(session)
                    .await
                    .map_err(std::io::Error::other)?
                else {
                    return Ok(None);
                };
                postcard::from_bytes(&bytes).map(Some).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the checkpoint of session {session} in ScyllaDB is unreadable ({e}); start with a fresh data directory"),
                    )
                })
            }
        }
    }

    /// Durably records `ckpt` as the latest checkpoint, after syncing `outputs` (the files
    /// whose lengths it records, written but not yet synced) and, with ScyllaDB, after the
    /// query tables hold every output it covers.
    pub async fn save(&mut self, ckpt: &Checkpoint, outputs: &[fs::File]) -> std::io::Result<()> {
        let sync_outputs = || outputs.iter().try_for_each(fs::File::sync_data);
        match self {
            Self::Files(f) => tokio::task::block_in_place(|| {
                sync_outputs()?;
                f.save(ckpt)
            }),
            Self::Scylla {
                db,
                session,
                tables,
            } => {
                tokio::task::block_in_place(sync_outputs)?;
                tables.flush().await.map_err(std::io::Error::other)?;
                let bytes = postcard::to_stdvec(ckpt).map_err(std::io::Error::other)?;
                db.save_session_checkpoint(session, ckpt.id, &bytes)
                    .await
                    .map_err(std::io::Error::other)
            }
        }
    }
}

/// The data directory's session id (`session-id`, made on first use): the key of its
/// checkpoints in ScyllaDB, so that a fresh directory never restores another's.
pub fn session_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("session-id");
    match fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{}|{nanos}|{}", dir.display(), std::process::id());
    let id = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(seed.as_bytes()));
    let tmp = dir.join("session-id.tmp");
    fs::write(&tmp, &id)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_checkpoint_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStateStore::open(dir.path()).unwrap();
        assert_eq!(store.load_latest().unwrap(), None);
        for id in 1..=4 {
            let mut c = Checkpoint {
                id,
                ticks: id * 10,
                ..Default::default()
            };
            c.stages.insert("score".into(), vec![id as u8; 3]);
            store.save(&c).unwrap();
        }
        let reopened = FileStateStore::open(dir.path()).unwrap();
        let latest = reopened.load_latest().unwrap().unwrap();
        assert_eq!((latest.id, latest.ticks), (4, 40));
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 3, "CURRENT plus the last two checkpoints");
    }

    /// The state blobs are written as bytes, not as sequences of integers: the file format is
    /// the one checkpoints always had, so a data directory from before still restores.
    #[test]
    fn checkpoint_bytes_are_the_format_of_plain_vectors() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Plain {
            id: u64,
            ticks: u64,
            event_time: i64,
            source: Vec<u8>,
            tape: (u64, u64),
            stages: BTreeMap<String, Vec<u8>>,
            files: BTreeMap<String, u64>,
        }
        let mut c = Checkpoint {
            id: 7,
            ticks: 70,
            event_time: -5,
            source: (0..=255u8).collect(),
            tape: (4096, 12),
            ..Default::default()
        };
        c.stages.insert("greeks".into(), vec![200; 300]);
        c.stages.insert("score".into(), Vec::new());
        c.files.insert("signals.jsonl".into(), 99);
        let plain = Plain {
            id: c.id,
            ticks: c.ticks,
            event_time: c.event_time,
            source: c.source.clone(),
            tape: c.tape,
            stages: c.stages.clone(),
            files: c.files.clone(),
        };
        let bytes = postcard::to_stdvec(&c).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&plain).unwrap());
        assert_eq!(postcard::from_bytes::<Checkpoint>(&bytes).unwrap(), c);
    }
}
