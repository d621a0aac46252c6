//! The delivery ledger, `<data-dir>/deliveries.jsonl`: one line per final outcome of an
//! (alert, channel), fsync'd before the next alert on that channel is taken. It is what makes
//! a restart skip what already went out. A crash between a send and its line means that one
//! alert is sent again on restart, with the same idempotency key (at-least-once).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::Path;

/// A final outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The channel accepted the alert.
    Delivered,
    /// Refused, or retries exhausted; `error` says why.
    Failed,
}

impl Status {
    /// `delivered` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The alert's `event_id`.
    pub alert_id: String,
    /// The channel.
    pub channel: String,
    /// The outcome.
    pub status: Status,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed, `null` when delivered.
    pub error: Option<String>,
    /// Wall-clock time of the outcome, RFC 3339.
    pub at: String,
}

/// The ledger: what is recorded, and the file to append to; with a shared store (ScyllaDB's
/// `deliveries` table) as well, so that another process taking over dispatch knows what this
/// one sent.
pub struct Ledger {
    file: File,
    done: BTreeSet<(String, String)>,
    shared: Option<std::sync::Arc<crate::scylla::ScyllaState>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("done", &self.done.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// Runs a ScyllaDB call from the synchronous ledger (called on a multi-threaded runtime).
fn blocking<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(fut))
}

impl Ledger {
    /// Opens (or creates) the ledger and loads it. A torn last line, from a crash mid-write, is
    /// cut off; a line that does not parse is logged and ignored.
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let bytes = std::fs::read(path)?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            tracing::warn!(path = %path.display(), "cutting a torn last line off the delivery ledger");
            file.set_len(complete as u64)?;
            file.sync_data()?;
        }
        let mut done = BTreeSet::new();
        for (n, line) in bytes[..complete].lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<LedgerEntry>(&line) {
                Ok(e) => {
                    done.insert((e.alert_id, e.channel));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), line = n + 1, error = %e, "unreadable delivery ledger line ignored")
                }
            }
        }
        file.flush()?;
        Ok(Ledger {
            file,
            done,
            shared: None,
        })
    }

    /// Also records in, and consults, the shared `deliveries` table.
    pub fn with_shared(mut self, db: std::sync::Arc<crate::scylla::ScyllaState>) -> Ledger {
        self.shared = Some(db);
        self
    }

    /// Whether (alert, channel) has a final outcome, here or (with a shared store) anywhere.
    pub fn contains(&mut self, alert_id: &str, channel: &str) -> bool {
        let key = (alert_id.to_string(), channel.to_string());
        if self.done.contains(&key) {
            return true;
        }
        let Some(db) = &self.shared else {
            return false;
        };
        match blocking(db.delivered_channels(alert_id)) {
            Ok(channels) if channels.iter().any(|c| c == channel) => {
                self.done.insert(key);
                true
            }
            Ok(_) => false,
            Err(e) => {
                // Sending once more is the lesser harm: the receiver drops it by its key.
                tracing::warn!(alert_id, channel, error = %e, "delivery ledger unreadable; sending (receivers dedupe by Idempotency-Key)");
                false
            }
        }
    }

    /// Outcomes recorded.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Appends `entry` and makes it durable.
    pub fn record(&mut self, entry: &LedgerEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        if let Some(db) = &self.shared {
            blocking(db.record_delivery(entry)).map_err(std::io::Error::other)?;
        }
        self.done
            .insert((entry.alert_id.clone(), entry.channel.clone()));
        Ok(())
    }

    /// Reads every entry of the ledger at `path` (the dashboard, tools and tests).
    pub fn read(path: &Path) -> std::io::Result<Vec<LedgerEntry>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> LedgerEntry {
        LedgerEntry {
            alert_id: id.into(),
            channel: "webhook".into(),
            status: Status::Delivered,
            attempts: 1,
            error: None,
            at: "2026-12-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn outcomes_survive_a_reopen_and_a_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deliveries.jsonl");
        let mut l = Ledger::open(&path).unwrap();
        l.record(&entry("a")).unwrap();
        drop(l);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"alert_id\":\"b\",\"chan").unwrap();
        drop(f);
        let mut l = Ledger::open(&path).unwrap();
        assert!(l.contains("a", "webhook"));
        assert!(!l.contains("a", "slack"));
        assert_eq!(l.len(), 1);
        l.record(&entry("c")).unwrap();
        let all = Ledger::read(&path).unwrap();
        assert_eq!(
            all.iter().map(|e| e.alert_id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(r#"{"alert_id":"a","channel":"webhook","status":"delivered","attempts":1,"error":null,"at":"#));
    }
}
