//! Result rows, their collection into one Arrow IPC file, and the Polars summary.

mod summary;

pub use summary::{Summary, summarise, to_parquet as summary_parquet};

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::compute::concat_batches;
use futures::{StreamExt, TryStreamExt};

use crate::Result;
use crate::plan::Plan;
use crate::stages::{layout, tables};
use crate::storage::{Store, read_parquet};

/// One finished sweep point.
#[derive(Debug, Clone, PartialEq)]
#[expect(missing_docs, reason = "columns are documented in schemas/results.md")]
pub struct ResultRow {
    pub dataset: String,
    pub n: u32,
    pub k: u32,
    pub point_id: String,
    pub seed: u64,
    pub loss: &'static str,
    pub temperature: f64,
    pub tau_plus: f64,
    pub lr: f64,
    pub encoder: &'static str,
    pub dim: u32,
    pub hidden: u32,
    pub batch_size: u32,
    pub epochs: u32,
    pub positive: &'static str,
    pub strategy: &'static str,
    pub mean_acc: f64,
    pub knn_acc: f64,
    pub probe_top1: f64,
    pub probe_top5: f64,
    pub test_loss: f64,
    pub train_loss: f64,
    pub collision_rate: f64,
    pub collisions_mean: f64,
    pub coverage_rate: f64,
    pub covered_fraction: f64,
    pub tau_k: f64,
    pub expected_collisions: f64,
    pub coverage_theory: f64,
    pub ash_coefficient: f64,
    pub arora_coefficient: f64,
    pub n_train: u32,
    pub n_test: u32,
    pub steps: u32,
    pub train_seconds: f64,
    pub step_seconds: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
    pub config_hash: String,
    pub data_hash: String,
    pub version: String,
    pub git_revision: Option<String>,
    pub finished_at: String,
}

impl ResultRow {
    /// The row as a one-row batch; `partitions` includes `dataset`, `n` and `k`.
    pub fn to_batch(&self, partitions: bool) -> Result<RecordBatch> {
        let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let f = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let u = |v: u32| Arc::new(UInt32Array::from(vec![v])) as ArrayRef;
        let mut cols = Vec::new();
        if partitions {
            cols.extend([s(&self.dataset), u(self.n), u(self.k)]);
        }
        cols.extend([
            s(&self.point_id),
            Arc::new(UInt64Array::from(vec![self.seed])) as ArrayRef,
            s(self.loss),
            f(self.temperature),
            f(self.tau_plus),
            f(self.lr),
            s(self.encoder),
            u(self.dim),
            u(self.hidden),
            u(self.batch_size),
            u(self.epochs),
            s(self.positive),
            s(self.strategy),
            f(self.mean_acc),
            f(self.knn_acc),
            f(self.probe_top1),
            f(self.probe_top5),
            f(self.test_loss),
            f(self.train_loss),
            f(self.collision_rate),
            f(self.collisions_mean),
            f(self.coverage_rate),
            f(self.covered_fraction),
            f(self.tau_k),
            f(self.expected_collisions),
            f(self.coverage_theory),
            f(self.ash_coefficient),
            f(self.arora_coefficient),
            u(self.n_train),
            u(self.n_test),
            u(self.steps),
            f(self.train_seconds),
            f(self.step_seconds),
            f(self.eval_seconds),
            f(self.total_seconds),
            s(&self.config_hash),
            s(&self.data_hash),
            s(&self.version),
            Arc::new(StringArray::from(vec![self.git_revision.clone()])) as ArrayRef,
            s(&self.finished_at),
        ]);
        Ok(RecordBatch::try_new(tables::results(partitions), cols)?)
    }
}

/// Ids of the points whose result file exists, with that file.
pub async fn finished(store: &Store) -> Result<HashMap<String, String>> {
    Ok(store
        .list("results")
        .await?
        .into_iter()
        .filter_map(|(rel, _)| layout::result_id(&rel).map(|id| (id.to_owned(), rel.clone())))
        .collect())
}

/// The columns of a stored result in the current layout: a column that a result written by an
/// older version lacks gets its documented default.
fn current_columns(b: &RecordBatch) -> Result<Vec<ArrayRef>> {
    tables::results(false)
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) => Ok(Arc::clone(c)),
            None if f.name() == "positive" => {
                Ok(Arc::new(StringArray::from(vec!["same-concept"; b.num_rows()])) as ArrayRef)
            }
            None if f.name() == "strategy" => {
                Ok(Arc::new(StringArray::from(vec!["uniform"; b.num_rows()])) as ArrayRef)
            }
            None if f.name() == "tau_plus" => {
                Ok(Arc::new(Float64Array::from(vec![0.0; b.num_rows()])) as ArrayRef)
            }
            None if matches!(
                f.name().as_str(),
                "coverage_theory" | "ash_coefficient" | "arora_coefficient"
            ) =>
            {
                Ok(Arc::new(Float64Array::from(vec![f64::NAN; b.num_rows()])) as ArrayRef)
            }
            None => Err(crate::Error::data(
                "results",
                format!("a stored result lacks column `{}`", f.name()),
            )),
        })
        .collect()
}

/// Reads the result of every finished point of `plan` and joins them, with the partition
/// columns, into one batch (rows in plan order).
pub async fn collect(store: &Store, plan: &Plan) -> Result<RecordBatch> {
    let done = finished(store).await?;
    let wanted: Vec<_> = plan
        .points
        .iter()
        .filter_map(|p| done.get(&p.id).map(|rel| (p, rel.clone())))
        .collect();
    let batches: Vec<RecordBatch> = futures::stream::iter(wanted)
        .map(|(p, rel)| async move {
            let (_, parts) = read_parquet(store, &rel).await?;
            let ds = &plan.datasets[p.dataset].name;
            parts
                .into_iter()
                .map(|b| {
                    let rows = b.num_rows();
                    let mut cols: Vec<ArrayRef> = vec![
                        Arc::new(StringArray::from(vec![ds.as_str(); rows])),
                        Arc::new(UInt32Array::from(vec![
                            layout::result_n(&rel).unwrap_or(p.n);
                            rows
                        ])),
                        Arc::new(UInt32Array::from(vec![p.k; rows])),
                    ];
                    cols.extend(current_columns(&b)?);
                    Ok(RecordBatch::try_new(tables::results(true), cols)?)
                })
                .collect::<Result<Vec<_>>>()
        })
        .buffered(16)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(concat_batches(&tables::results(true), &batches)?)
}
