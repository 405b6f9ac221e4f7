//! The analysis as Parquet tables (`schemas/analysis*.md`), written under
//! `analysis/metric=<metric>/` beside the results.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, ListBuilder, RecordBatch, StringArray, UInt32Array,
    UInt32Builder, UInt64Builder,
};

use super::{GroupAnalysis, GroupKey, Holdout, Scaling};
use crate::stages::tables::{self, GROUP_SETTINGS};
use crate::storage::{Store, encode_parquet};

/// Everything `negsweep analyze` computes for one metric.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The metric analysed.
    pub metric: String,
    /// One entry per group.
    pub groups: Vec<(GroupKey, GroupAnalysis)>,
    /// One entry per family of groups spanning two N or more, with its dataset.
    pub scaling: Vec<(String, Scaling)>,
    /// Selection on held-out seeds, per group that has enough seeds (empty unless asked).
    pub holdouts: Vec<(GroupKey, Holdout)>,
}

/// How to analyse a results table.
#[derive(Debug, Clone)]
pub struct Options {
    /// `mean_acc`, `knn_acc`, `probe_top1` or `test_loss`.
    pub metric: String,
    /// Bootstrap resamples of the seeds.
    pub resamples: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Seeds held out to judge the chosen k (0: none).
    pub holdout_seeds: usize,
    /// Each group's k values without rows in the table analysed (see [`super::grid_of`]), so
    /// that its best set is never printed as a range over one of them.
    pub grid: super::Grid,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metric: "mean_acc".into(),
            resamples: 2000,
            seed: 0,
            holdout_seeds: 0,
            grid: super::Grid::new(),
        }
    }
}

/// Analyses the rows of a results table (`results.arrow`).
///
/// # Errors
/// An unknown metric, or a table without the columns of a results table.
pub fn analyse_table(batches: &[RecordBatch], options: &Options) -> crate::Result<Analysis> {
    let (metric, resamples, seed) = (options.metric.as_str(), options.resamples, options.seed);
    Ok(Analysis {
        metric: metric.to_owned(),
        groups: super::analyse_results(batches, metric, resamples, seed, &options.grid)?,
        scaling: super::scaling_of(batches, metric, resamples, seed)?,
        holdouts: if options.holdout_seeds > 0 {
            super::holdouts(batches, metric, options.holdout_seeds)?
        } else {
            Vec::new()
        },
    })
}

/// File names of the tables in [`folder`]: per k, per group, per family.
pub const TABLE_FILES: [&str; 3] = ["k.parquet", "groups.parquet", "scaling.parquet"];

/// Folder of one metric's tables, relative to the output root.
pub fn folder(metric: &str) -> String {
    format!("analysis/metric={metric}")
}

impl Analysis {
    /// The three tables: (file name, batch) for `k.parquet`, `groups.parquet` and
    /// `scaling.parquet`.
    ///
    /// # Errors
    /// Only if a column's length disagrees with its schema (a bug).
    pub fn tables(&self) -> crate::Result<Vec<(&'static str, RecordBatch)>> {
        let [k, groups, scaling] = TABLE_FILES;
        Ok(vec![
            (k, self.per_k()?),
            (groups, self.per_group()?),
            (scaling, self.per_family()?),
        ])
    }

    /// Writes the tables under `prefix` (a folder relative to `store`, `""` for its root) in
    /// `analysis/metric=<metric>/`; returns that folder's display name.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn write(&self, store: &Store, prefix: &str) -> crate::Result<String> {
        let dir = format!("{prefix}{}", folder(&self.metric));
        for (name, batch) in self.tables()? {
            let bytes = encode_parquet(batch.schema(), &[batch])?;
            store.put(&format!("{dir}/{name}"), bytes.into()).await?;
        }
        Ok(store.display(&dir))
    }

    /// The whole analysis as text: a block per group, then the scaling and held-out lines.
    pub fn render(&self) -> String {
        let mut out = super::render(&self.groups, &self.metric);
        if self.metric == "test_loss" {
            // The test loss scores k test negatives, so it rises with k whatever the encoder.
            out.push_str(
                "note: test_loss is the loss with k test negatives and grows with k by \
                 construction: its best k is the smallest; compare it across N and settings, \
                 not across k\n",
            );
        }
        if !self.scaling.is_empty() {
            out.push_str("how best k scales with N:\n");
            out.push_str(&super::render_scaling(&self.scaling));
        }
        if !self.holdouts.is_empty() {
            out.push_str("k chosen on some seeds, judged on the others:\n");
            out.push_str(&super::render_holdouts(&self.holdouts, &self.metric));
        }
        out
    }

    /// One line per group (the verdicts) and the scaling lines.
    pub fn render_verdicts(&self) -> String {
        let mut out = super::verdicts(&self.groups);
        out.push_str(&super::render_scaling(&self.scaling));
        out
    }

    fn per_k(&self) -> crate::Result<RecordBatch> {
        let rows: Vec<(&GroupKey, &GroupAnalysis, &super::KStats)> = self
            .groups
            .iter()
            .flat_map(|(key, g)| g.rows.iter().map(move |r| (key, g, r)))
            .collect();
        let keys: Vec<&GroupKey> = rows.iter().map(|r| r.0).collect();
        let mut cols = self.group_columns(&keys, true);
        let f = |v: &dyn Fn(&super::KStats) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter(
                rows.iter().map(|(_, _, r)| finite(v(r))),
            ))
        };
        let b = |v: &dyn Fn(&GroupAnalysis, &super::KStats) -> bool| -> ArrayRef {
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|(_, g, r)| Some(v(g, r))),
            ))
        };
        cols.extend([
            u32s(rows.iter().map(|r| r.2.k)),
            u32s(rows.iter().map(|r| r.2.seeds as u32)),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.2.mean),
            )) as ArrayRef,
            f(&|r| r.sd),
            f(&|r| r.se),
            f(&|r| r.t_ci.0),
            f(&|r| r.t_ci.1),
            f(&|r| r.boot_ci.0),
            f(&|r| r.boot_ci.1),
            u32s(rows.iter().map(|r| r.1.resamples as u32)),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.2.diff),
            )),
            f(&|r| r.diff_ci.0),
            f(&|r| r.diff_ci.1),
            f(&|r| r.p_holm),
            f(&|r| r.p_best),
            b(&|_, r| r.in_best_set),
            b(&|g, r| r.k == g.best_k),
            b(&|g, r| r.k == g.one_se_k),
            b(&|g, r| g.theory_k == Some(r.k)),
        ]);
        Ok(RecordBatch::try_new(tables::analysis(), cols)?)
    }

    fn per_group(&self) -> crate::Result<RecordBatch> {
        let keys: Vec<&GroupKey> = self.groups.iter().map(|(k, _)| k).collect();
        let mut cols = self.group_columns(&keys, true);
        let gs: Vec<&GroupAnalysis> = self.groups.iter().map(|(_, g)| g).collect();
        let best = |g: &GroupAnalysis| -> super::KStats {
            g.rows
                .iter()
                .find(|r| r.k == g.best_k)
                .expect("the best k has a row")
                .clone()
        };
        let bf = |v: &dyn Fn(&super::KStats) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter(
                gs.iter().map(|g| finite(v(&best(g)))),
            ))
        };
        let holdout: Vec<Option<&Holdout>> = keys
            .iter()
            .map(|k| {
                self.holdouts
                    .iter()
                    .find(|(hk, _)| hk == *k)
                    .map(|(_, h)| h)
            })
            .collect();
        let hf = |v: &dyn Fn(&Holdout) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter(
                holdout.iter().map(|h| h.and_then(|h| finite(v(h)))),
            ))
        };
        let mut held = ListBuilder::new(UInt64Builder::new()).with_field(Arc::new(
            arrow::datatypes::Field::new("item", arrow::datatypes::DataType::UInt64, false),
        ));
        for h in &holdout {
            match h {
                Some(h) => held.append_value(h.held_out_seeds.iter().map(|&s| Some(s))),
                None => held.append_null(),
            }
        }
        cols.extend([
            u32s(gs.iter().map(|g| g.seed_ids.len() as u32)),
            u64_lists(gs.iter().map(|g| g.seed_ids.clone())),
            u32_lists(gs.iter().map(|g| g.rows.iter().map(|r| r.k).collect())),
            u32s(gs.iter().map(|g| g.best_k)),
            Arc::new(Float64Array::from_iter_values(
                gs.iter().map(|g| best(g).mean),
            )),
            bf(&|r| r.t_ci.0),
            bf(&|r| r.t_ci.1),
            bf(&|r| r.boot_ci.0),
            bf(&|r| r.boot_ci.1),
            bf(&|r| r.p_best),
            u32_lists(gs.iter().map(|g| {
                g.rows
                    .iter()
                    .filter(|r| r.in_best_set)
                    .map(|r| r.k)
                    .collect()
            })),
            u32s(gs.iter().map(|g| g.one_se_k)),
            Arc::new(UInt32Array::from_iter(gs.iter().map(|g| g.theory_k))),
            u32s(gs.iter().map(|g| g.resamples as u32)),
            Arc::new(StringArray::from_iter_values(
                gs.iter().map(|g| g.verdict()),
            )),
            Arc::new(held.finish()),
            Arc::new(UInt32Array::from_iter(
                holdout.iter().map(|h| h.map(|h| h.k)),
            )),
            hf(&|h| h.selection_mean),
            hf(&|h| h.held_out_mean),
            hf(&|h| h.held_out_ci.0),
            hf(&|h| h.held_out_ci.1),
        ]);
        Ok(RecordBatch::try_new(tables::analysis_groups(), cols)?)
    }

    fn per_family(&self) -> crate::Result<RecordBatch> {
        let keys: Vec<GroupKey> = self
            .scaling
            .iter()
            .map(|(dataset, s)| GroupKey {
                dataset: dataset.clone(),
                n: 0,
                settings: s.settings.clone(),
            })
            .collect();
        let mut cols = self.group_columns(&keys.iter().collect::<Vec<_>>(), false);
        let ss: Vec<&Scaling> = self.scaling.iter().map(|(_, s)| s).collect();
        let mut theory = ListBuilder::new(UInt32Builder::new());
        for s in &ss {
            theory.append_value(s.theory_k.iter().copied());
        }
        cols.extend([
            u32_lists(ss.iter().map(|s| s.ns.clone())),
            u32_lists(ss.iter().map(|s| s.best_k.clone())),
            Arc::new(theory.finish()) as ArrayRef,
            Arc::new(Float64Array::from_iter_values(ss.iter().map(|s| s.slope))),
            Arc::new(Float64Array::from_iter(ss.iter().map(|s| finite(s.ci.0)))),
            Arc::new(Float64Array::from_iter(ss.iter().map(|s| finite(s.ci.1)))),
            Arc::new(Float64Array::from_iter(
                ss.iter().map(|s| s.theory_slope.and_then(finite)),
            )),
            u32s(
                self.groups
                    .first()
                    .map(|(_, g)| g.resamples as u32)
                    .into_iter()
                    .cycle()
                    .take(ss.len()),
            ),
        ]);
        Ok(RecordBatch::try_new(tables::analysis_scaling(), cols)?)
    }

    /// `dataset`, `n` (when `with_n`), every group setting and `metric`.
    fn group_columns(&self, keys: &[&GroupKey], with_n: bool) -> Vec<ArrayRef> {
        let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
            keys.iter().map(|k| k.dataset.as_str()),
        ))];
        if with_n {
            cols.push(u32s(keys.iter().map(|k| k.n)));
        }
        for name in GROUP_SETTINGS {
            cols.push(Arc::new(StringArray::from_iter(keys.iter().map(|k| {
                k.settings.iter().find_map(|s| {
                    s.split_once('=')
                        .filter(|(n, _)| n == name)
                        .map(|(_, v)| v.to_owned())
                })
            }))));
        }
        cols.push(Arc::new(StringArray::from_iter_values(
            keys.iter().map(|_| self.metric.as_str()),
        )));
        cols
    }
}

/// NaN and infinities as nulls: Polars and Parquet readers treat null as missing.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn u32s(values: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(values))
}

fn u32_lists(values: impl Iterator<Item = Vec<u32>>) -> ArrayRef {
    let mut b = ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(
        arrow::datatypes::Field::new("item", arrow::datatypes::DataType::UInt32, false),
    ));
    for v in values {
        b.append_value(v.into_iter().map(Some));
    }
    Arc::new(b.finish())
}

fn u64_lists(values: impl Iterator<Item = Vec<u64>>) -> ArrayRef {
    let mut b = ListBuilder::new(UInt64Builder::new()).with_field(Arc::new(
        arrow::datatypes::Field::new("item", arrow::datatypes::DataType::UInt64, false),
    ));
    for v in values {
        b.append_value(v.into_iter().map(Some));
    }
    Arc::new(b.finish())
}
