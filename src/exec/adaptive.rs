//! Adaptive runs (`[sweep.adaptive]`): the rounds of [`crate::adaptive`] over each group of
//! the plan, replayed from the results on storage before every round, so a killed run, a
//! rerun or the next job of an array continues the same rounds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    UInt32Array,
};
use arrow::datatypes::SchemaRef;

use tracing::info;

use super::{Progress, RunOptions, RunReport};
use crate::adaptive::{AdaptiveConfig, GroupRounds, advance};
use crate::plan::Plan;
use crate::plan::axes::{AXES, Role};
use crate::report;
use crate::storage::{Store, encode_parquet};
use crate::{Error, Result};

pub use crate::stages::decisions::{DECISIONS, decision_lines, dropped_ids, without};

/// One group of the plan (points differing only by k and seed) and where its rounds stand.
#[derive(Debug, Clone)]
pub struct GroupState {
    /// `dataset N=.. setting=..`, for people.
    pub label: String,
    /// Dataset name.
    pub dataset: String,
    /// N as planned (0: every concept).
    pub n: u32,
    /// The rounds.
    pub rounds: GroupRounds,
    /// Point index of (k, seed position).
    points: HashMap<(u32, usize), usize>,
    /// The group's k values, ascending, and its seed budget.
    ks: Vec<u32>,
}

impl GroupState {
    /// Indices (into the plan's points) of the points the current round still needs.
    pub fn needed(&self) -> Vec<usize> {
        self.rounds
            .needed
            .iter()
            .map(|key| self.points[key])
            .collect()
    }

    /// Indices of every point of the current round: the k values in play at its seeds, done
    /// or not. Shards split this set, which stays the same until the round is complete, so
    /// shards started at different times still share it out without gaps.
    pub fn round_points(&self) -> Vec<usize> {
        if self.rounds.settled {
            return Vec::new();
        }
        self.rounds
            .active
            .iter()
            .flat_map(|&k| (0..self.rounds.seeds).filter_map(move |s| self.points.get(&(k, s))))
            .copied()
            .collect()
    }

    /// Points this group trains in all: each k's seeds up to the round it left in.
    pub fn points_spent(&self) -> usize {
        self.ks
            .iter()
            .map(|k| {
                self.rounds
                    .decisions
                    .iter()
                    .find(|d| d.k == Some(*k))
                    .map_or(self.rounds.seeds, |d| d.seeds)
            })
            .sum()
    }
}

/// The groups of `plan` and their rounds over `values` (metric by point id).
pub fn groups(plan: &Plan, cfg: &AdaptiveConfig, values: &HashMap<String, f64>) -> Vec<GroupState> {
    // Group -> (k -> seed position -> point index), seeds in the order the plan lists them.
    let mut by_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in plan.points.iter().enumerate() {
        by_group.entry(p.group_key()).or_default().push(i);
    }
    let settings: Vec<_> = AXES
        .iter()
        .filter(|a| a.role == Role::Setting && plan.swept.contains(&a.key))
        .collect();
    let mut out: Vec<GroupState> = by_group
        .into_values()
        .map(|members| {
            let first = &plan.points[members[0]];
            let mut ks: Vec<u32> = members.iter().map(|&i| plan.points[i].k).collect();
            ks.sort_unstable();
            ks.dedup();
            let mut seeds: Vec<u64> = Vec::new();
            for &i in &members {
                if !seeds.contains(&plan.points[i].seed) {
                    seeds.push(plan.points[i].seed);
                }
            }
            let points: HashMap<(u32, usize), usize> = members
                .iter()
                .map(|&i| {
                    let p = &plan.points[i];
                    let s = seeds.iter().position(|&x| x == p.seed).expect("listed");
                    ((p.k, s), i)
                })
                .collect();
            let value = |ki: usize, s: usize| {
                points
                    .get(&(ks[ki], s))
                    .and_then(|&i| values.get(&plan.points[i].id).copied())
            };
            let rounds = advance(&ks, seeds.len(), &value, true, cfg);
            let dataset = plan.datasets[first.dataset].name.clone();
            let mut label = format!("{dataset} N={}", first.n_label());
            for a in &settings {
                label.push_str(&format!(" {}={}", a.column, (a.get)(first)));
            }
            GroupState {
                label,
                dataset,
                n: first.n,
                rounds,
                points,
                ks,
            }
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// Where the rounds of an adaptive plan's groups stand, from the results on storage.
///
/// # Errors
/// Storage errors, or a plan without `[sweep.adaptive]`.
pub async fn status(plan: &Plan) -> Result<Vec<GroupState>> {
    let cfg = plan
        .adaptive
        .ok_or_else(|| Error::Internal("not an adaptive plan".into()))?;
    let store = super::open_output(plan).await?;
    let rows = report::collect(&store, plan).await?.rows;
    Ok(groups(plan, &cfg, &values(&rows)?))
}

/// Indices, in plan order, of the points of every group's current round: the set shards
/// split (see [`GroupState::round_points`]); empty once every group has settled.
pub(super) fn round_indices(now: &[GroupState]) -> Vec<usize> {
    let members: HashSet<usize> = now.iter().flat_map(|g| g.round_points()).collect();
    let mut indices: Vec<usize> = members.into_iter().collect();
    indices.sort_unstable();
    indices
}

/// The points of the current round of an adaptive plan, as [`round_indices`] gives them,
/// from the results on storage.
///
/// # Errors
/// Storage errors.
pub(super) async fn current_round(
    plan: &Plan,
    cfg: &AdaptiveConfig,
    store: &Store,
) -> Result<Vec<usize>> {
    let rows = report::collect(store, plan).await?.rows;
    Ok(round_indices(&groups(plan, cfg, &values(&rows)?)))
}

/// The rounds of an adaptive plan; see [`super::run`].
pub(super) async fn run(
    plan: &Plan,
    cfg: &AdaptiveConfig,
    opts: RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport> {
    let store = super::open_output(plan).await?;
    let before = super::finished_ids(&store).await?;
    let skipped = plan
        .points
        .iter()
        .filter(|p| before.contains(&p.id))
        .count();
    let mut last: Option<RunReport> = None;
    let (mut computed, mut failed, mut elsewhere, mut twins) = (0, Vec::new(), 0, 0);
    let mut times = (0.0, 0.0, 0.0);
    let settled = loop {
        let rows = report::collect(&store, plan).await?.rows;
        let now = groups(plan, cfg, &values(&rows)?);
        let needed = now.iter().any(|g| !g.needed().is_empty());
        if !needed || !failed.is_empty() {
            break now;
        }
        // The whole current round of every group, done points included, so that shards split
        // the same set whenever they start.
        let round = Plan {
            points: round_indices(&now)
                .into_iter()
                .map(|i| plan.points[i].clone())
                .collect(),
            ..plan.clone()
        };
        info!(points = round.points.len(), "adaptive round");
        let r = super::run_points_of(&round, opts, progress, false).await?;
        computed += r.computed;
        elsewhere += r.elsewhere;
        twins += r.twins;
        failed.extend(r.failed.iter().cloned());
        times = (
            times.0 + r.shared_seconds,
            times.1 + r.points_seconds,
            times.2 + r.step_seconds,
        );
        let stalled = r.computed == 0 && r.skipped < r.total;
        last = Some(r);
        // A shard does its part of one round; a round whose points all failed or were left
        // to other processes does not advance here either.
        if opts.shard.is_some() || stalled {
            let rows = report::collect(&store, plan).await?.rows;
            break groups(plan, cfg, &values(&rows)?);
        }
    };
    let table = decisions_table(plan, &settled)?;
    store
        .put(DECISIONS, encode_parquet(schema(), &[table])?.into())
        .await?;
    let (summary, analysis) = match opts.shard {
        Some(_) => (None, None),
        None => super::report_on(&store, plan).await?.0.unzip(),
    };
    Ok(RunReport {
        total: plan.points.len(),
        skipped,
        computed,
        failed,
        elsewhere,
        twins,
        moved: last.as_ref().map_or(0, |r| r.moved),
        other_points: {
            let in_plan: HashSet<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
            report::finished(&store)
                .await?
                .keys()
                .filter(|id| !in_plan.contains(id.as_str()))
                .count()
        },
        summary,
        analysis,
        shared_seconds: times.0,
        points_seconds: times.1,
        step_seconds: times.2,
        groups: settled,
    })
}

/// Mean-classifier accuracy by point id, from the results rows.
pub fn values(rows: &RecordBatch) -> Result<HashMap<String, f64>> {
    let col = |name: &str| {
        rows.column_by_name(name)
            .ok_or_else(|| Error::data("results", format!("no `{name}` column")))
    };
    let ids = col("point_id")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::data("results", "`point_id` is not text"))?;
    let acc = col("mean_acc")?
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| Error::data("results", "`mean_acc` is not Float64"))?;
    Ok((0..rows.num_rows())
        .map(|r| (ids.value(r).to_owned(), acc.value(r)))
        .collect())
}

/// The schema of the decisions table.
pub fn schema() -> SchemaRef {
    crate::stages::tables::adaptive_decisions()
}

/// Every decision of every group, one row each; a drop lists the ids of every point of the
/// dropped k, each seed of the budget, which the analysis leaves out: also the seeds past the
/// drop that an earlier full grid in the same output computed (keeping those would cut the
/// group's analysis to the seeds every k shares).
pub fn decisions_table(plan: &Plan, groups: &[GroupState]) -> Result<RecordBatch> {
    let (mut dataset, mut n, mut group, mut round, mut k, mut action, mut seeds, mut p, mut why) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut points = ListBuilder::new(StringBuilder::new());
    for g in groups {
        let budget = g.points.keys().map(|&(_, s)| s + 1).max().unwrap_or(0);
        for d in &g.rounds.decisions {
            dataset.push(g.dataset.clone());
            n.push(g.n);
            group.push(g.label.clone());
            round.push(d.round);
            k.push(d.k);
            action.push(d.action.as_str());
            seeds.push(d.seeds as u32);
            p.push(d.p);
            why.push(d.reason.clone());
            if let Some(dk) = d.k {
                for s in 0..budget {
                    if let Some(&i) = g.points.get(&(dk, s)) {
                        points.values().append_value(&plan.points[i].id);
                    }
                }
            }
            points.append(true);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(dataset)),
        Arc::new(UInt32Array::from(n)),
        Arc::new(StringArray::from(group)),
        Arc::new(UInt32Array::from(round)),
        Arc::new(UInt32Array::from(k)),
        Arc::new(StringArray::from(action)),
        Arc::new(UInt32Array::from(seeds)),
        Arc::new(Float64Array::from(p)),
        Arc::new(StringArray::from(why)),
        Arc::new(points.finish()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}
