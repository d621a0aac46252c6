//! Checkpoints of one stage instance (one input partition), kept in the state store.
//!
//! In the Kafka mode every input partition has its own operator instance, so a partition's
//! state moves with the partition when the group rebalances: the new owner restores the
//! checkpoint and resumes from its offset. A checkpoint is saved only after every output the
//! inputs before its offset caused has been acknowledged by the brokers.

use super::stream::{InputState, OutputState};
use crate::scylla::ScyllaState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One instance's consistent cut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionCheckpoint {
    /// The first input offset not reflected in `state`.
    pub next_offset: i64,
    /// The operator's (or source's) state.
    pub state: Vec<u8>,
    /// Input bookkeeping.
    pub input: InputState,
    /// Output sequence numbers, by topic.
    pub outputs: BTreeMap<String, OutputState>,
    /// Lengths of the instance's local output files.
    pub files: BTreeMap<String, u64>,
    /// Event time the state reflects.
    pub event_time: i64,
    /// The instance has handled its end of stream.
    pub finished: bool,
}

/// Where instance checkpoints are kept: `[state] kind`.
#[derive(Clone)]
pub enum CheckpointStore {
    /// Files under `<data-dir>/kafka-checkpoints/`.
    Files(PathBuf),
    /// The `partition_checkpoints` table.
    Scylla(Arc<ScyllaState>),
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files(dir) => write!(f, "files in {}", dir.display()),
            Self::Scylla(_) => f.write_str("scylla"),
        }
    }
}

impl CheckpointStore {
    /// The checkpoint of `owner` (stage name with the deployment's prefix) for `partition`.
    pub async fn load(
        &self,
        owner: &str,
        partition: i32,
    ) -> std::io::Result<Option<PartitionCheckpoint>> {
        let bytes = match self {
            Self::Files(dir) => match std::fs::read(dir.join(file_name(owner, partition))) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
            Self::Scylla(db) => db
                .load_partition_checkpoint(owner, partition)
                .await
                .map_err(std::io::Error::other)?,
        };
        bytes
            .map(|b| {
                postcard::from_bytes(&b).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("checkpoint of {owner} partition {partition} is unreadable: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// Durably records `ckpt` as the latest of `owner`/`partition`.
    pub async fn save(
        &self,
        owner: &str,
        partition: i32,
        ckpt: &PartitionCheckpoint,
    ) -> std::io::Result<()> {
        let bytes = postcard::to_stdvec(ckpt).map_err(std::io::Error::other)?;
        match self {
            Self::Files(dir) => {
                std::fs::create_dir_all(dir)?;
                let name = file_name(owner, partition);
                let tmp = dir.join(format!("{name}.tmp"));
                std::fs::write(&tmp, &bytes)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, dir.join(name))
            }
            Self::Scylla(db) => db
                .save_partition_checkpoint(owner, partition, ckpt.next_offset, &bytes)
                .await
                .map_err(std::io::Error::other),
        }
    }
}

fn file_name(owner: &str, partition: i32) -> String {
    format!("{owner}-{partition}.bin")
}
