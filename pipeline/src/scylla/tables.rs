//! The query tables: what each stage's outputs project into ScyllaDB with `[state] kind =
//! "scylla"`, and the reads a user (or a dashboard) runs against them.
//!
//! The operator checkpoints are what a stage restores from; these tables are views of the
//! outputs, written by event id (or by a key the outputs determine), so a redelivered or
//! replayed event rewrites a row with the value it already holds. Rows within one write are
//! distinct keys (later rows of the same key replace earlier ones before the write), so they
//! go out concurrently without a race; successive writes are sequential.

use super::{ScyllaError, ScyllaState};
use futures_util::{StreamExt, TryStreamExt};
use optionflow_schemas::{
    Alert, ContractGreeks, Explanation, FactorScore, GreeksEvent, RiskDecision, Signal,
};
use scylla::statement::prepared::PreparedStatement;
use std::any::Any;
use std::collections::BTreeMap;

/// Statements in flight at once when writing rows.
const WRITE_CONCURRENCY: usize = 32;
/// Rows per page when reading a partition.
pub const PAGE_SIZE: i32 = 500;
/// The realized-vol factor, whose metadata carries the estimators.
const REALIZED_VOL: &str = "realized_vol";

/// Output tables that hold whole events as JSON, keyed by (underlying, day) and event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutputTable {
    /// `signals`.
    Signals,
    /// `explanations`.
    Explanations,
    /// `decisions`.
    Decisions,
    /// `alerts`.
    Alerts,
}

impl OutputTable {
    /// Every output table.
    pub const ALL: [OutputTable; 4] = [
        Self::Signals,
        Self::Explanations,
        Self::Decisions,
        Self::Alerts,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signals => "signals",
            Self::Explanations => "explanations",
            Self::Decisions => "decisions",
            Self::Alerts => "alerts",
        }
    }
}

/// One row of IV history: a contract's last quote in a minute of event time.
/// Read back by column name.
#[derive(Debug, Clone, PartialEq, scylla::DeserializeRow)]
pub struct IvRow {
    /// Underlying.
    pub underlying: String,
    /// OCC symbol.
    pub contract: String,
    /// Start of the minute, µs.
    pub minute: i64,
    /// Event time of the quote, µs.
    pub event_time: i64,
    /// The greeks event's id.
    pub event_id: String,
    /// Implied vol (raw, 0.25 = 25%).
    pub iv: f64,
    /// Delta.
    pub delta: f64,
    /// Mid price.
    pub mid: f64,
    /// Underlying spot.
    pub spot: f64,
}

/// One row of factor history.
/// Read back by column name.
#[derive(Debug, Clone, PartialEq, scylla::DeserializeRow)]
pub struct FactorRow {
    /// Underlying.
    pub underlying: String,
    /// Factor name.
    pub factor: String,
    /// Event time, µs.
    pub event_time: i64,
    /// The factor score's id.
    pub event_id: String,
    /// Raw value in the factor's units.
    pub raw_value: f64,
    /// Z-score.
    pub zscore: f64,
    /// 0–100 score.
    pub score: f64,
    /// Direction.
    pub direction: String,
    /// Samples behind the statistics.
    pub samples: i64,
    /// One-line detail.
    pub detail: String,
}

/// One row of realized-vol history: an underlying's estimators on a session day.
#[derive(Debug, Clone, PartialEq)]
pub struct RvRow {
    /// Underlying.
    pub underlying: String,
    /// Session day, `YYYY-MM-DD`.
    pub day: String,
    /// Event time of the estimate, µs.
    pub event_time: i64,
    /// Estimator name (`rv_close_to_close_20`, …) to annualised vol.
    pub estimators: BTreeMap<String, f64>,
}

/// One open position of the risk gate: an approved decision.
/// Read back by column name.
#[derive(Debug, Clone, PartialEq, scylla::DeserializeRow)]
pub struct PositionRow {
    /// Underlying.
    pub underlying: String,
    /// The signal the position is for.
    pub signal_id: String,
    /// The decision that approved it.
    pub decision_id: String,
    /// Event time of the decision, µs.
    pub event_time: i64,
    /// Sector.
    pub sector: String,
    /// Direction.
    pub direction: String,
    /// Composite score.
    pub composite: f64,
    /// Open signals after this one.
    pub open_signals: i32,
    /// Paper equity at the decision.
    pub equity: f64,
    /// Drawdown at the decision.
    pub drawdown: f64,
}

/// A row for one of the query tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A whole event in an [`OutputTable`].
    Output {
        /// Which table.
        table: OutputTable,
        /// Underlying.
        underlying: String,
        /// Event time, µs.
        event_time: i64,
        /// Event id.
        event_id: String,
        /// The event as JSON.
        body: String,
    },
    /// `iv_history`.
    Iv(IvRow),
    /// `factor_history`.
    Factor(FactorRow),
    /// `rv_history`.
    Rv(RvRow),
    /// `risk_positions`.
    Position(PositionRow),
    /// `signal_outcomes`: one labelled outcome as JSON.
    Outcome {
        /// Underlying.
        underlying: String,
        /// The signal.
        signal_id: String,
        /// Horizon, seconds.
        horizon_secs: i64,
        /// The signal's event time, µs.
        event_time: i64,
        /// The outcome as JSON.
        body: String,
    },
}

impl Row {
    /// The row's primary key, to keep the last of several rows with one key.
    fn key(&self) -> (u8, String) {
        match self {
            Row::Output {
                table,
                underlying,
                event_time,
                event_id,
                ..
            } => (
                *table as u8,
                format!(
                    "{underlying}\0{}\0{event_time}\0{event_id}",
                    day(*event_time)
                ),
            ),
            Row::Iv(r) => (
                10,
                format!("{}\0{}\0{}", r.underlying, r.contract, r.minute),
            ),
            Row::Factor(r) => (
                11,
                format!(
                    "{}\0{}\0{}\0{}",
                    r.underlying, r.factor, r.event_time, r.event_id
                ),
            ),
            Row::Rv(r) => (12, format!("{}\0{}", r.underlying, r.day)),
            Row::Position(r) => (
                13,
                format!("{}\0{}\0{}", day(r.event_time), r.underlying, r.signal_id),
            ),
            Row::Outcome {
                underlying,
                signal_id,
                horizon_secs,
                ..
            } => (14, format!("{underlying}\0{signal_id}\0{horizon_secs}")),
        }
    }
}

/// The UTC day of an event time, `YYYY-MM-DD` (a US session falls within one).
pub fn day(event_time: i64) -> String {
    chrono::DateTime::from_timestamp_micros(event_time)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn year(day: &str) -> i32 {
    day.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0)
}

/// Turns one stage's outputs into rows. IV history keeps each contract's latest quote of the
/// current minute back until a later minute (or [`Projector::drain`]) closes it, so a contract
/// costs one write a minute rather than one a quote.
#[derive(Debug, Default)]
pub struct Projector {
    open_minutes: BTreeMap<String, IvRow>,
}

impl Projector {
    /// The rows `events` (a `&Vec<Out>` of stage `stage`) project to, ready to write.
    pub fn project(&mut self, stage: &str, events: &dyn Any) -> Result<Vec<Row>, ScyllaError> {
        let mut rows = Vec::new();
        match stage {
            "greeks" => {
                for ev in downcast::<GreeksEvent>(events) {
                    if let GreeksEvent::Greeks(g) = ev {
                        self.quote(g, &mut rows);
                    }
                }
            }
            "score" => {
                for f in downcast::<FactorScore>(events) {
                    rows.push(Row::Factor(factor_row(f)));
                    if f.factor == REALIZED_VOL {
                        rows.extend(rv_row(f).map(Row::Rv));
                    }
                }
            }
            "consensus" => {
                for s in downcast::<Signal>(events) {
                    rows.push(output(OutputTable::Signals, s, json(stage, s)?));
                }
            }
            "explain" => {
                for e in downcast::<Explanation>(events) {
                    rows.push(output(OutputTable::Explanations, e, json(stage, e)?));
                }
            }
            "risk-gate" => {
                for d in downcast::<RiskDecision>(events) {
                    rows.push(output(OutputTable::Decisions, d, json(stage, d)?));
                    if d.approved {
                        rows.push(Row::Position(position_row(d)));
                    }
                }
            }
            "dispatch" => {
                for a in downcast::<Alert>(events) {
                    rows.push(output(OutputTable::Alerts, a, json(stage, a)?));
                }
            }
            _ => {}
        }
        Ok(rows)
    }

    /// The IV rows of minutes still open: written at a checkpoint, so that the tables reflect
    /// every input the checkpoint does (a later quote of the same minute rewrites its row).
    pub fn drain(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.open_minutes)
            .into_values()
            .map(Row::Iv)
            .collect()
    }

    fn quote(&mut self, g: &ContractGreeks, rows: &mut Vec<Row>) {
        let minute = g.event_time.div_euclid(60_000_000) * 60_000_000;
        let row = IvRow {
            underlying: g.underlying.to_string(),
            contract: g.symbol.to_string(),
            minute,
            event_time: g.event_time,
            event_id: g.event_id.to_string(),
            iv: g.iv,
            delta: g.delta,
            mid: g.mid,
            spot: g.spot,
        };
        match self.open_minutes.get_mut(g.symbol.as_str()) {
            Some(open) => {
                let prev = std::mem::replace(open, row);
                if prev.minute != minute {
                    rows.push(Row::Iv(prev));
                }
            }
            None => {
                self.open_minutes.insert(g.symbol.to_string(), row);
            }
        }
    }
}

fn downcast<T: 'static>(events: &dyn Any) -> &[T] {
    events
        .downcast_ref::<Vec<T>>()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn output<E: optionflow_schemas::Event>(table: OutputTable, e: &E, body: String) -> Row {
    Row::Output {
        table,
        underlying: e.underlying().to_string(),
        event_time: e.event_time(),
        event_id: e.event_id().to_string(),
        body,
    }
}

fn factor_row(f: &FactorScore) -> FactorRow {
    FactorRow {
        underlying: f.underlying.clone(),
        factor: f.factor.clone(),
        event_time: f.event_time,
        event_id: f.event_id.to_string(),
        raw_value: f.raw_value,
        zscore: f.zscore,
        score: f.score,
        direction: f.direction.clone(),
        samples: f.samples,
        detail: f.detail.clone(),
    }
}

fn rv_row(f: &FactorScore) -> Option<RvRow> {
    let estimators: BTreeMap<String, f64> = f
        .metadata
        .iter()
        .filter(|(k, v)| k.starts_with("rv_") && v.is_finite())
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    (!estimators.is_empty()).then(|| RvRow {
        underlying: f.underlying.clone(),
        day: day(f.event_time),
        event_time: f.event_time,
        estimators,
    })
}

fn position_row(d: &RiskDecision) -> PositionRow {
    PositionRow {
        underlying: d.underlying.clone(),
        signal_id: d.signal_id.to_string(),
        decision_id: d.event_id.to_string(),
        event_time: d.event_time,
        sector: d.sector.clone(),
        direction: d.direction.clone(),
        composite: d.composite,
        open_signals: d.open_signals,
        equity: d.equity,
        drawdown: d.drawdown,
    }
}

fn json<T: serde::Serialize>(stage: &str, e: &T) -> Result<String, ScyllaError> {
    serde_json::to_string(e)
        .map_err(|m| ScyllaError::query(format!("serializing a {stage} output"))(m.to_string()))
}

/// The prepared statements of the query tables.
pub(super) struct TableStatements {
    upsert: BTreeMap<OutputTable, PreparedStatement>,
    select: BTreeMap<OutputTable, PreparedStatement>,
    upsert_iv: PreparedStatement,
    select_iv: PreparedStatement,
    upsert_factor: PreparedStatement,
    select_factor: PreparedStatement,
    upsert_rv: PreparedStatement,
    select_rv: PreparedStatement,
    upsert_position: PreparedStatement,
    select_positions: PreparedStatement,
    upsert_outcome: PreparedStatement,
    select_outcomes: PreparedStatement,
}

impl TableStatements {
    pub(super) async fn prepare(db: &super::Preparer<'_>) -> Result<Self, ScyllaError> {
        let ks = db.keyspace;
        let mut upsert = BTreeMap::new();
        let mut select = BTreeMap::new();
        for t in OutputTable::ALL {
            let name = t.name();
            upsert.insert(t, db.prepare(format!(
                "INSERT INTO {ks}.{name} (underlying, day, event_time, event_id, body) VALUES (?, ?, ?, ?, ?)"
            )).await?);
            select.insert(
                t,
                db.prepare(format!(
                    "SELECT event_id, body FROM {ks}.{name} WHERE underlying = ? AND day = ?"
                ))
                .await?,
            );
        }
        Ok(TableStatements {
            upsert,
            select,
            upsert_iv: db.prepare(format!(
                "INSERT INTO {ks}.iv_history (underlying, day, contract, minute, event_time, event_id, iv, delta, mid, spot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )).await?,
            select_iv: db.prepare(format!(
                "SELECT underlying, contract, minute, event_time, event_id, iv, delta, mid, spot FROM {ks}.iv_history WHERE underlying = ? AND day = ?"
            )).await?,
            upsert_factor: db.prepare(format!(
                "INSERT INTO {ks}.factor_history (underlying, day, factor, event_time, event_id, raw_value, zscore, score, direction, samples, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )).await?,
            select_factor: db.prepare(format!(
                "SELECT underlying, factor, event_time, event_id, raw_value, zscore, score, direction, samples, detail FROM {ks}.factor_history WHERE underlying = ? AND day = ?"
            )).await?,
            upsert_rv: db.prepare(format!(
                "INSERT INTO {ks}.rv_history (underlying, year, day, event_time, estimators) VALUES (?, ?, ?, ?, ?)"
            )).await?,
            select_rv: db.prepare(format!(
                "SELECT day, event_time, estimators FROM {ks}.rv_history WHERE underlying = ? AND year = ?"
            )).await?,
            upsert_position: db.prepare(format!(
                "INSERT INTO {ks}.risk_positions (day, underlying, signal_id, decision_id, event_time, sector, direction, composite, open_signals, equity, drawdown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )).await?,
            select_positions: db.prepare(format!(
                "SELECT underlying, signal_id, decision_id, event_time, sector, direction, composite, open_signals, equity, drawdown FROM {ks}.risk_positions WHERE day = ?"
            )).await?,
            upsert_outcome: db.prepare(format!(
                "INSERT INTO {ks}.signal_outcomes (underlying, day, signal_id, horizon_secs, event_time, body) VALUES (?, ?, ?, ?, ?, ?)"
            )).await?,
            select_outcomes: db.prepare(format!(
                "SELECT body FROM {ks}.signal_outcomes WHERE underlying = ? AND day = ?"
            )).await?,
        })
    }
}

impl ScyllaState {
    /// Writes `rows`, the last of any with the same key winning; returns once all are applied.
    pub async fn write_rows(&self, rows: Vec<Row>) -> Result<(), ScyllaError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut last: BTreeMap<(u8, String), Row> = BTreeMap::new();
        for r in rows {
            last.insert(r.key(), r);
        }
        futures_util::stream::iter(last.into_values().map(|r| self.write_row(r)))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn write_row(&self, row: Row) -> Result<(), ScyllaError> {
        let t = &self.tables;
        let (what, res) = match &row {
            Row::Output {
                table,
                underlying,
                event_time,
                event_id,
                body,
            } => (
                table.name(),
                self.session
                    .execute_unpaged(
                        &t.upsert[table],
                        (underlying, day(*event_time), event_time, event_id, body),
                    )
                    .await,
            ),
            Row::Iv(r) => (
                "iv_history",
                self.session
                    .execute_unpaged(
                        &t.upsert_iv,
                        (
                            &r.underlying,
                            day(r.minute),
                            &r.contract,
                            r.minute,
                            r.event_time,
                            &r.event_id,
                            r.iv,
                            r.delta,
                            r.mid,
                            r.spot,
                        ),
                    )
                    .await,
            ),
            Row::Factor(r) => (
                "factor_history",
                self.session
                    .execute_unpaged(
                        &t.upsert_factor,
                        (
                            &r.underlying,
                            day(r.event_time),
                            &r.factor,
                            r.event_time,
                            &r.event_id,
                            r.raw_value,
                            r.zscore,
                            r.score,
                            &r.direction,
                            r.samples,
                            &r.detail,
                        ),
                    )
                    .await,
            ),
            Row::Rv(r) => {
                let estimators = serde_json::to_string(&r.estimators).unwrap_or_default();
                (
                    "rv_history",
                    self.session
                        .execute_unpaged(
                            &t.upsert_rv,
                            (
                                &r.underlying,
                                year(&r.day),
                                &r.day,
                                r.event_time,
                                estimators,
                            ),
                        )
                        .await,
                )
            }
            Row::Position(r) => (
                "risk_positions",
                self.session
                    .execute_unpaged(
                        &t.upsert_position,
                        (
                            day(r.event_time),
                            &r.underlying,
                            &r.signal_id,
                            &r.decision_id,
                            r.event_time,
                            &r.sector,
                            &r.direction,
                            r.composite,
                            r.open_signals,
                            r.equity,
                            r.drawdown,
                        ),
                    )
                    .await,
            ),
            Row::Outcome {
                underlying,
                signal_id,
                horizon_secs,
                event_time,
                body,
            } => (
                "signal_outcomes",
                self.session
                    .execute_unpaged(
                        &t.upsert_outcome,
                        (
                            underlying,
                            day(*event_time),
                            signal_id,
                            horizon_secs,
                            event_time,
                            body,
                        ),
                    )
                    .await,
            ),
        };
        res.map(|_| ())
            .map_err(|e| ScyllaError::query(format!("upserting into {what}"))(e.to_string()))
    }

    /// Reads every row of one partition, a page of [`PAGE_SIZE`] rows at a time.
    async fn scan<T>(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &str,
    ) -> Result<Vec<T>, ScyllaError>
    where
        T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + 'static,
    {
        let err = |e: String| ScyllaError::query(format!("reading {what}"))(e);
        self.session
            .execute_iter(stmt.clone(), values)
            .await
            .map_err(|e| err(e.to_string()))?
            .rows_stream::<T>()
            .map_err(|e| err(e.to_string()))?
            .map_err(|e| err(e.to_string()))
            .try_collect()
            .await
    }

    /// One underlying's rows of `table` on `day` (`YYYY-MM-DD`, UTC), in event-time order:
    /// (event id, the event as JSON).
    pub async fn outputs(
        &self,
        table: OutputTable,
        underlying: &str,
        day: &str,
    ) -> Result<Vec<(String, String)>, ScyllaError> {
        self.scan(&self.tables.select[&table], (underlying, day), table.name())
            .await
    }

    /// One underlying's IV history on `day`, by contract then minute.
    pub async fn iv_history(&self, underlying: &str, day: &str) -> Result<Vec<IvRow>, ScyllaError> {
        self.scan(&self.tables.select_iv, (underlying, day), "iv_history")
            .await
    }

    /// One underlying's factor scores on `day`, by factor then event time.
    pub async fn factor_history(
        &self,
        underlying: &str,
        day: &str,
    ) -> Result<Vec<FactorRow>, ScyllaError> {
        self.scan(
            &self.tables.select_factor,
            (underlying, day),
            "factor_history",
        )
        .await
    }

    /// One underlying's realized-vol estimates per session day of `year`.
    pub async fn rv_history(&self, underlying: &str, year: i32) -> Result<Vec<RvRow>, ScyllaError> {
        let rows: Vec<(String, i64, String)> = self
            .scan(&self.tables.select_rv, (underlying, year), "rv_history")
            .await?;
        Ok(rows
            .into_iter()
            .map(|(day, event_time, estimators)| RvRow {
                underlying: underlying.to_string(),
                day,
                event_time,
                estimators: serde_json::from_str(&estimators).unwrap_or_default(),
            })
            .collect())
    }

    /// The positions the risk gate opened on `day`, by underlying then signal.
    pub async fn risk_positions(&self, day: &str) -> Result<Vec<PositionRow>, ScyllaError> {
        self.scan(&self.tables.select_positions, (day,), "risk_positions")
            .await
    }

    /// The labelled outcomes (JSON) of one underlying's signals of `day`.
    pub async fn signal_outcomes(
        &self,
        underlying: &str,
        day: &str,
    ) -> Result<Vec<String>, ScyllaError> {
        let rows: Vec<(String,)> = self
            .scan(
                &self.tables.select_outcomes,
                (underlying, day),
                "signal_outcomes",
            )
            .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeks(symbol: &str, t: i64, iv: f64) -> GreeksEvent {
        GreeksEvent::Greeks(ContractGreeks {
            event_id: format!("g-{symbol}-{t}").into(),
            event_time: t,
            underlying: "ACME".into(),
            source_event_id: Default::default(),
            symbol: symbol.into(),
            root: "ACME".into(),
            expiry: "2026-12-18".into(),
            right: "C".into(),
            strike: 100.0,
            spot: 100.0,
            years_to_expiry: 0.1,
            rate: 0.04,
            dividend_yield: 0.0,
            bid: 1.0,
            ask: 1.1,
            mid: 1.05,
            iv,
            delta: 0.5,
            gamma: 0.0,
            vega: 0.0,
            theta: 0.0,
            rho: 0.0,
            volume: 0,
            open_interest: 0,
            sector: None,
            exercise_style: "american".into(),
            vanna: 0.0,
            charm: 0.0,
            vomma: 0.0,
        })
    }

    #[test]
    fn iv_history_keeps_each_minutes_last_quote_and_drains_open_minutes() {
        let mut p = Projector::default();
        let m = 60_000_000;
        let batch = vec![
            greeks("A", 10 * m, 0.20),
            greeks("A", 10 * m + 30_000_000, 0.21),
            greeks("B", 10 * m + 5, 0.30),
        ];
        assert!(p.project("greeks", &batch).unwrap().is_empty());
        let rows = p
            .project("greeks", &vec![greeks("A", 11 * m + 1, 0.22)])
            .unwrap();
        match rows.as_slice() {
            [Row::Iv(r)] => {
                assert_eq!((r.contract.as_str(), r.minute, r.iv), ("A", 10 * m, 0.21));
            }
            other => panic!("expected A's closed minute, got {other:?}"),
        }
        let drained = p.drain();
        let ivs: Vec<(String, f64)> = drained
            .iter()
            .map(|r| match r {
                Row::Iv(r) => (r.contract.clone(), r.iv),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ivs, vec![("A".into(), 0.22), ("B".into(), 0.30)]);
        assert!(p.drain().is_empty());
    }

    #[test]
    fn other_stages_outputs_are_ignored_and_unknown_types_give_no_rows() {
        let mut p = Projector::default();
        assert!(p.project("normalize", &vec![1u8]).unwrap().is_empty());
        assert!(p.project("consensus", &vec![1u8]).unwrap().is_empty());
    }
}
