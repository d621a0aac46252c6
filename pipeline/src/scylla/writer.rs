//! The embedded runtime's path into the query tables: a stage observer that turns each batch
//! into rows, and a task of its own that writes them, so no stage waits on ScyllaDB.
//!
//! The checkpoint coordinator calls [`TableWriter::flush`] before it saves a checkpoint. Every
//! stage hands its outputs to its observer before it acknowledges a barrier, so by the time
//! every acknowledgement is in, each row of an input the checkpoint reflects is queued ahead of
//! the flush; the flush returns once those are written. Rows of later inputs may be written too,
//! which is harmless: after a restore the same inputs rewrite the same rows.

use super::tables::{Projector, Row};
use super::ScyllaState;
use crate::runtime::stage::StageObserver;
use optionflow_schemas::RejectedQuote;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

enum Command {
    Rows(Vec<Row>),
    Fail(String),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Projects stage outputs into the query tables and writes them in the background.
pub struct TableWriter {
    projectors: Mutex<BTreeMap<&'static str, Projector>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl TableWriter {
    /// Starts the writing task on the current runtime.
    pub fn start(db: Arc<ScyllaState>) -> Arc<TableWriter> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // The first failure is kept and reported at the next flush; later rows are not
            // written (the checkpoint that would cover them fails, so a restart redoes them).
            let mut failed: Option<String> = None;
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Command::Rows(rows) => {
                        if failed.is_none() {
                            if let Err(e) = db.write_rows(rows).await {
                                tracing::error!(error = %e, "writing the query tables failed");
                                failed = Some(e.to_string());
                            }
                        }
                    }
                    Command::Fail(e) => {
                        failed.get_or_insert(e);
                    }
                    Command::Flush(done) => {
                        let _ = done.send(failed.clone().map_or(Ok(()), Err));
                    }
                }
            }
        });
        Arc::new(TableWriter {
            projectors: Mutex::new(BTreeMap::new()),
            commands: tx,
        })
    }

    /// Returns once every row queued so far, and the open minutes of IV history, is written.
    pub async fn flush(&self) -> Result<(), String> {
        let open: Vec<Row> = {
            let mut p = self.projectors.lock().map_err(|_| "projector poisoned")?;
            p.values_mut().flat_map(Projector::drain).collect()
        };
        let (done, wait) = oneshot::channel();
        self.commands
            .send(Command::Rows(open))
            .and_then(|_| self.commands.send(Command::Flush(done)))
            .map_err(|_| "the table writer stopped".to_string())?;
        wait.await
            .map_err(|_| "the table writer stopped".to_string())?
    }
}

impl StageObserver for TableWriter {
    fn observe(&self, stage: &'static str, events: &dyn Any, _rejected: &[RejectedQuote]) {
        let rows = match self.projectors.lock() {
            Ok(mut p) => p.entry(stage).or_default().project(stage, events),
            Err(_) => return,
        };
        let cmd = match rows {
            Ok(rows) if rows.is_empty() => return,
            Ok(rows) => Command::Rows(rows),
            // Reported at the next flush, which fails the checkpoint.
            Err(e) => {
                tracing::error!(stage, error = %e, "projecting outputs failed");
                Command::Fail(e.to_string())
            }
        };
        let _ = self.commands.send(cmd);
    }
}
