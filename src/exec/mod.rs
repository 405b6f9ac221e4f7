//! The executor: shared stages once, then sweep points concurrently (bounded), then the report.
//!
//! A point's result file is its completion marker, written last and atomically; a rerun skips
//! every point whose result exists, so a killed run resumes where it stopped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub mod adaptive;
mod claims;

pub use adaptive::status as adaptive_status;
mod shard;

use claims::{CLAIM_POLL, Computed, claim_and_compute};

pub use shard::Shard;

use crate::analyze::Analysis;
use crate::plan::Plan;
use crate::report::{self, Summary, summarise};
use crate::stages::pools::Prepared;
use crate::stages::{ingest, layout, point, pools, tables};
use crate::storage::{StorageSettings, Store, encode_ipc, encode_parquet};
use crate::{Error, Result};

/// Observer of a run's progress (the CLI draws a progress bar with it).
pub trait Progress: Send + Sync {
    /// `total` points will be computed.
    fn start(&self, total: usize);
    /// A point finished (`ok`) or failed.
    fn point(&self, label: &str, ok: bool);
    /// No more points.
    fn finish(&self);
}

/// A progress observer that ignores everything.
#[derive(Debug)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: usize) {}
    fn point(&self, _: &str, _: bool) {}
    fn finish(&self) {}
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Points trained at once.
    pub jobs: usize,
    /// Compute threads per point.
    pub threads_per_job: usize,
    /// Compute only this shard's points, and leave the report to `collect`.
    pub shard: Option<Shard>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// Points in the plan.
    pub total: usize,
    /// Points already finished before this run.
    pub skipped: usize,
    /// Points computed now.
    pub computed: usize,
    /// Failed points: id and error.
    pub failed: Vec<(String, String)>,
    /// Points another process computed while this run was under way (each point is claimed by
    /// the process that computes it).
    pub elsewhere: usize,
    /// Points not computed because another point of the plan is the same point once N is
    /// resolved (N = 0 is every concept, and the plan lists that N too).
    pub twins: usize,
    /// Finished points whose results were moved to their dataset's current name.
    pub moved: usize,
    /// Result files under `results/` of points not in this plan (an earlier version of the
    /// pipeline); `results.arrow` and the summary leave them out.
    pub other_points: usize,
    /// Summary over every finished point of the plan.
    pub summary: Option<Summary>,
    /// The analysis of the mean classifier's accuracy over the seeds (with the summary).
    pub analysis: Option<Analysis>,
    /// Wall time of the shared stages (ingest, concepts, pools), seconds.
    pub shared_seconds: f64,
    /// Wall time of the point phase, seconds.
    pub points_seconds: f64,
    /// Time the computed points spent in optimiser steps, summed, seconds.
    pub step_seconds: f64,
    /// Adaptive sweeps: every group and where its rounds stand (empty for a full grid).
    pub groups: Vec<adaptive::GroupState>,
}

/// Encoder inputs of a dataset, shared by its points.
#[derive(Debug)]
struct DatasetInputs {
    x: crate::data::Inputs,
    data_hash: String,
    channels: usize,
}

/// Ids of the finished points: those with a result, and those whose twin has one (see
/// [`layout::alias`]).
pub async fn finished_ids(store: &Store) -> Result<HashSet<String>> {
    let mut done: HashSet<String> = report::finished(store).await?.into_keys().collect();
    let aliases: Vec<(String, String)> = store
        .list("aliases")
        .await?
        .iter()
        .filter_map(|(rel, _)| {
            layout::alias_ids(rel).map(|(id, twin)| (id.to_owned(), twin.to_owned()))
        })
        .collect();
    for (id, twin) in aliases {
        if done.contains(&twin) {
            done.insert(id);
        }
    }
    Ok(done)
}

/// Opens and checks the output store of `plan`, with its storage settings.
async fn open_output(plan: &Plan) -> Result<Store> {
    let store = Store::open(&plan.output, &plan.storage)?;
    store.check().await?;
    Ok(store)
}

/// Ids of the points whose last attempt failed (a failure record exists).
pub async fn failed_ids(store: &Store) -> Result<HashSet<String>> {
    Ok(store
        .list("failures")
        .await?
        .into_iter()
        .filter_map(|(rel, _)| {
            rel.rsplit('/')
                .next()?
                .strip_suffix(".json")
                .map(str::to_owned)
        })
        .collect())
}

/// Runs `plan`: computes every unfinished point (of `opts.shard`, if given) and, unsharded,
/// rewrites the report. An adaptive plan runs its rounds instead: unsharded until every group
/// settles, sharded the shard's part of each group's current round (the next array job goes
/// on from there).
pub async fn run(plan: &Plan, opts: RunOptions, progress: &dyn Progress) -> Result<RunReport> {
    match plan.adaptive {
        Some(cfg) => adaptive::run(plan, &cfg, opts, progress).await,
        None => run_points_of(plan, opts, progress, true).await,
    }
}

/// Computes the unfinished points of `plan` (of `opts.shard`) and, with `report` and
/// unsharded, rewrites the report.
async fn run_points_of(
    plan: &Plan,
    opts: RunOptions,
    progress: &dyn Progress,
    report: bool,
) -> Result<RunReport> {
    let store = open_output(plan).await?;
    let moved = report::relocate(&store, plan).await?;
    let done = finished_ids(&store).await?;
    let in_plan: HashSet<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
    let other_points = report::finished(&store)
        .await?
        .keys()
        .filter(|id| !in_plan.contains(id.as_str()))
        .count();
    let mine: Vec<usize> = (0..plan.points.len())
        .filter(|&i| opts.shard.is_none_or(|s| s.owns(i)))
        .collect();
    let pending: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| !done.contains(&plan.points[i].id))
        .collect();
    let skipped = mine.len() - pending.len();
    let shard = opts
        .shard
        .map(|s| s.to_string())
        .unwrap_or_else(|| "all".into());
    info!(total = mine.len(), skipped, pending = pending.len(), %shard, output = %plan.output, "planned");
    let mut t = Timings::default();
    let (mut failed, mut twins, mut elsewhere) = (Vec::new(), 0, 0);
    if !pending.is_empty() {
        let ctx = PointsCtx {
            store: &store,
            plan,
            done: &done,
            opts,
            progress,
        };
        (failed, twins, elsewhere) = run_points(ctx, &pending, &mut t).await?;
    }
    // Shards finish at different times: the report is `collect`'s job once they are all done.
    let damaged_before = report::damaged(&store).await?;
    let (summary, analysis) = match opts.shard {
        Some(_) => (None, None),
        None if !report => (None, None),
        None => report_on(&store, plan).await?.0.unzip(),
    };
    // Reading the results set aside files that did not read back: their points are computed
    // now, not by the next run.
    if report && opts.shard.is_none() && report::damaged(&store).await? > damaged_before {
        warn!("results that did not read back were set aside; computing their points again");
        return Box::pin(run(plan, opts, progress)).await;
    }
    Ok(RunReport {
        total: mine.len(),
        skipped,
        computed: pending.len() - failed.len() - twins - elsewhere,
        elsewhere,
        failed,
        twins,
        moved,
        other_points,
        summary,
        analysis,
        shared_seconds: t.shared,
        points_seconds: t.points,
        step_seconds: t.steps,
        groups: Vec::new(),
    })
}

/// What the point phase of a run reads.
struct PointsCtx<'a> {
    store: &'a Store,
    plan: &'a Plan,
    /// Ids of the points finished before the run.
    done: &'a HashSet<String>,
    opts: RunOptions,
    progress: &'a dyn Progress,
}

/// Computes the `pending` points; returns the failed ones and the number not computed because
/// their twin is.
async fn run_points(
    ctx: PointsCtx<'_>,
    pending: &[usize],
    t: &mut Timings,
) -> Result<(Vec<(String, String)>, usize, usize)> {
    let PointsCtx {
        store,
        plan,
        done,
        opts,
        progress,
    } = ctx;
    let start = Instant::now();
    let mut pending = pending.to_vec();
    let mut aliased = 0;
    // Shared stages: each dataset and pool once, loaded once and shared by the points using it.
    let mut inputs: HashMap<usize, Arc<DatasetInputs>> = HashMap::new();
    let mut prepared: HashMap<String, Arc<Prepared>> = HashMap::new();
    let device = crate::train::device();
    let mut used: Vec<usize> = pending.iter().map(|&i| plan.points[i].dataset).collect();
    used.sort_unstable();
    used.dedup();
    // Every dataset is read before any pool is drawn, so every impossible N is reported at
    // once, before any work that depends on it.
    let mut ingested = Vec::with_capacity(used.len());
    let mut problems = Vec::new();
    for &d in &used {
        let ds = &plan.datasets[d];
        let ing = ingest::run(store, ds, &plan.storage)
            .await
            .map_err(|e| e.in_stage("ingest", None))?;
        problems.extend(check_n(plan, d, &ing.examples, &pending));
        ingested.push((d, ing));
    }
    if !problems.is_empty() {
        return Err(plan.invalid(problems));
    }
    for (d, ing) in ingested {
        let ds = &plan.datasets[d];
        // N is resolved now that the data is read: a point whose twin (the same point once
        // N = 0 is resolved) is done or computed in this run is not computed again.
        let resolved = |n| pools::resolve_n(&ing.examples, n, &plan.shared);
        for (i, twin) in twins_of(plan, d, &pending, done, &resolved) {
            let p = &plan.points[i];
            info!(point = %p.id, twin = %twin, "the same point as its twin: not computed twice");
            store
                .put(&layout::alias(&p.id, &twin), bytes::Bytes::new())
                .await?;
            pending.retain(|&j| j != i);
            aliased += 1;
        }
        for q in pending
            .iter()
            .map(|&j| &plan.points[j])
            .filter(|q| q.dataset == d)
        {
            if !prepared.contains_key(&q.pool) {
                let prep = pools::run(store, ds, &ing.examples, q, &plan.shared)
                    .await
                    .map_err(|e| e.in_stage("negatives", None))?;
                prepared.insert(q.pool.clone(), Arc::new(prep));
            }
            if let Err(message) = point::preflight(q, &prepared[&q.pool]) {
                problems.push(crate::Diagnostic {
                    key: point::preflight_key(q).into(),
                    origin: crate::Origin::File,
                    message: format!(
                        "dataset `{}`, N = {}, seed {}: {message}",
                        ds.name,
                        q.n_label(),
                        q.seed
                    ),
                });
            }
        }
        let x = crate::data::Inputs::new(&ing.examples, &device)?;
        inputs.insert(
            d,
            Arc::new(DatasetInputs {
                x,
                channels: ing.examples.channels() as usize,
                data_hash: ing.data_hash,
            }),
        );
    }

    if !problems.is_empty() {
        problems.dedup();
        return Err(plan.invalid(problems));
    }
    t.shared = start.elapsed().as_secs_f64();
    let start = Instant::now();
    progress.start(pending.len());
    let plan = Arc::new(plan.clone());
    let limit = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let (mut failed, mut elsewhere) = (Vec::new(), 0);
    // Points another process claimed: waited for, and taken over if their claim is broken
    // (its holder died), until each is done somewhere.
    let mut todo = pending.clone();
    loop {
        let mut set = JoinSet::new();
        for &i in &todo {
            let (plan, store, limit) = (Arc::clone(&plan), store.clone(), Arc::clone(&limit));
            let x = Arc::clone(&inputs[&plan.points[i].dataset]);
            let prep = Arc::clone(&prepared[&plan.points[i].pool]);
            let threads = opts.threads_per_job.max(1);
            // The claims a point takes belong to the command's lock scope, so an interrupt
            // releases them too.
            let scope = crate::stages::lock::current_scope();
            set.spawn(crate::stages::lock::within(scope, async move {
                let _permit = limit
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let outcome = claim_and_compute(&store, &plan, i, &x, &prep, threads).await;
                (i, outcome)
            }));
        }
        let mut claimed = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, outcome) =
                joined.map_err(|e| Error::Internal(format!("point task failed to join: {e}")))?;
            let p = &plan.points[i];
            let label = format!(
                "{} N={} k={} seed={}",
                plan.datasets[p.dataset].name,
                p.n_label(),
                p.k,
                p.seed
            );
            match outcome {
                Ok(Computed::Here(steps)) => {
                    t.steps += steps;
                    info!(point = %p.id, %label, "point done");
                    progress.point(&label, true);
                }
                Ok(Computed::Elsewhere) => claimed.push(i),
                Ok(Computed::DoneElsewhere) => {
                    elsewhere += 1;
                    progress.point(&label, true);
                }
                Err(e) => {
                    let e = e.in_stage("point", Some(&p.id));
                    warn!(point = %p.id, %label, error = %e, "point failed");
                    let record = serde_json::json!({ "point": p.id, "label": label, "error": e.to_string() });
                    if let Err(w) = store
                        .put(&layout::failure(&p.id), record.to_string().into())
                        .await
                    {
                        warn!(error = %w, "could not record the failure");
                    }
                    progress.point(&label, false);
                    failed.push((p.id.clone(), e.to_string()));
                }
            }
        }
        if claimed.is_empty() {
            break;
        }
        info!(
            points = claimed.len(),
            "points are being computed by other processes; waiting for them (or to take them over)"
        );
        tokio::time::sleep(CLAIM_POLL).await;
        let done_now = finished_ids(store).await?;
        todo = Vec::new();
        for i in claimed {
            if done_now.contains(&plan.points[i].id) {
                elsewhere += 1;
                progress.point(&plan.points[i].id, true);
            } else {
                todo.push(i);
            }
        }
        if todo.is_empty() {
            break;
        }
    }
    progress.finish();
    t.points = start.elapsed().as_secs_f64();
    Ok((failed, aliased, elsewhere))
}

/// The pending points of dataset `d` that are not computed, each with the id of its twin: the
/// point computing the same thing once N is resolved (`resolve` turns N = 0 into the number of
/// eligible concepts). Of a group of twins, a finished one is kept, else the first with an
/// explicit N.
fn twins_of(
    plan: &Plan,
    d: usize,
    pending: &[usize],
    done: &HashSet<String>,
    resolve: &dyn Fn(u32) -> u32,
) -> Vec<(usize, String)> {
    let is_pending: HashSet<usize> = pending.iter().copied().collect();
    let mut kept: HashMap<String, &str> = HashMap::new();
    let mut order: Vec<usize> = (0..plan.points.len())
        .filter(|&i| plan.points[i].dataset == d)
        .collect();
    // Finished points first, then explicit N ahead of N = 0, otherwise plan order: every shard
    // picks the same point of a group.
    order.sort_by_key(|&i| {
        let p = &plan.points[i];
        (!done.contains(&p.id), p.n == 0)
    });
    let mut twins = Vec::new();
    for i in order {
        let p = &plan.points[i];
        let key = p.twin_key(resolve(p.n));
        match kept.get(&key) {
            Some(twin) if is_pending.contains(&i) => twins.push((i, (*twin).to_owned())),
            Some(_) => {}
            None => {
                kept.insert(key, &p.id);
            }
        }
    }
    twins
}

/// The N values of `pending` points on dataset `d` that its data cannot supply: more concepts
/// than have `concepts.min-examples` examples.
pub(crate) fn check_n(
    plan: &Plan,
    d: usize,
    ex: &crate::data::Examples,
    pending: &[usize],
) -> Vec<crate::Diagnostic> {
    let ds = &plan.datasets[d];
    let min = plan.shared.min_examples as usize;
    let mut counts = vec![0usize; ex.concept_names.len()];
    for &l in &ex.labels {
        counts[l as usize] += 1;
    }
    let eligible = counts.iter().filter(|&&c| c >= min).count() as u32;
    let fewer = counts.len() as u32 - eligible;
    let mut ns: Vec<u32> = pending
        .iter()
        .map(|&i| &plan.points[i])
        .filter(|p| p.dataset == d)
        .map(|p| p.n)
        .collect();
    ns.sort_unstable();
    ns.dedup();
    let key = if ds.n.is_some() {
        format!("datasets[{d}].n")
    } else {
        "sweep.n".to_owned()
    };
    let have = format!(
        "dataset `{}` ({}) has {} concepts, {eligible} of them with at least {min} examples \
         (concepts.min-examples){}",
        ds.name,
        ds.source.location(),
        counts.len(),
        if fewer > 0 {
            format!("; {fewer} with fewer are left out")
        } else {
            String::new()
        }
    );
    let possible = if eligible >= 2 {
        format!("possible N: 2 to {eligible}, or 0 for all {eligible}")
    } else {
        "no N is possible: a sweep needs at least 2 such concepts".to_owned()
    };
    ns.into_iter()
        .filter(|&n| n > eligible || eligible < 2)
        .map(|n| crate::Diagnostic {
            key: key.clone(),
            origin: crate::Origin::File,
            message: format!(
                "N = {} asks for more concepts than there are: {have}; {possible}",
                if n == 0 {
                    "0 (all)".to_owned()
                } else {
                    n.to_string()
                }
            ),
        })
        .collect()
}

#[derive(Debug, Default)]
struct Timings {
    shared: f64,
    points: f64,
    steps: f64,
}

/// Writes a finished point: weights first, the result (its completion marker) last. Returns the
/// point's time in optimiser steps.
async fn write_point(store: &Store, plan: &Plan, i: usize, out: point::PointOutput) -> Result<f64> {
    let steps = out.row.step_seconds;
    let p = &plan.points[i];
    if let Some(bytes) = out.checkpoint {
        store.put(&layout::checkpoint(p), bytes.into()).await?;
    }
    // The partition columns are stored in the file too: a reader of the part files then never
    // infers their types from the path (a dataset named `007` stays a string).
    let batch = out.row.to_batch(true)?;
    let bytes = encode_parquet(tables::results(true), &[batch])?;
    store
        .put(
            &layout::result_file(&plan.datasets[p.dataset], p, out.row.n),
            bytes.into(),
        )
        .await?;
    store.delete(&layout::failure(&p.id)).await?;
    Ok(steps)
}

/// Rewrites the report (results.arrow, summary, best k) from every finished point of `plan`.
/// Idempotent, and safe while other processes still write points: each result file is
/// complete or absent, so the report holds the points finished so far.
pub async fn collect(plan: &Plan) -> Result<Option<(Summary, Analysis)>> {
    let store = open_output(plan).await?;
    let (summary, other) = report_on(&store, plan).await?;
    if other > 0 {
        warn!(
            "{other} result files under results/ are of points not in this plan (another version of the pipeline); results.arrow and the summary hold only this plan's points"
        );
    }
    Ok(summary)
}

/// Rewrites the report; returns the summary and the number of result files of points not in
/// the plan.
async fn report_on(store: &Store, plan: &Plan) -> Result<(Option<(Summary, Analysis)>, usize)> {
    // Decisions of an earlier, adaptive version of the pipeline do not apply to a full grid.
    if plan.adaptive.is_none() {
        store.delete(adaptive::DECISIONS).await?;
    }
    let collected = report::collect(store, plan).await?;
    let other = collected.other;
    if collected.twins > 0 {
        warn!(
            twins = collected.twins,
            "finished points that are the same point as another (N = 0 resolving to a listed N) are counted once"
        );
    }
    if collected.rows.num_rows() == 0 {
        // results.arrow is the current plan's table: an earlier plan's rows must not stay.
        let ipc = encode_ipc(tables::results(true), &[collected.rows])?;
        store.put(layout::RESULTS_IPC, ipc.into()).await?;
        store.delete(layout::SUMMARY).await?;
        store.delete(layout::BEST_K).await?;
        for name in crate::analyze::TABLE_FILES {
            store
                .delete(&format!("{}/{name}", crate::analyze::folder("mean_acc")))
                .await?;
        }
        return Ok((None, other));
    }
    Ok((
        Some(write_report(store, plan, collected.rows).await?),
        other,
    ))
}

/// Progress of one shard's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard (`None`: the whole plan).
    pub shard: Option<Shard>,
    /// Points assigned.
    pub points: usize,
    /// Points with a result.
    pub done: usize,
    /// Points whose last attempt failed (and have no result).
    pub failed: usize,
    /// Points neither done nor failed.
    pub pending: usize,
}

/// Done, failed and pending points of `plan`, per shard of `shards` (one row for the whole
/// plan when `shards` is 1), and the points of the whole plan done. For an adaptive plan the
/// rows count the points of the groups still in rounds (every seed so far of the k values in
/// play, done or not), which is what its shards split (none once every group has settled).
pub async fn status(plan: &Plan, shards: usize) -> Result<(Vec<ShardStatus>, usize)> {
    let store = open_output(plan).await?;
    let done = finished_ids(&store).await?;
    let failed = failed_ids(&store).await?;
    let shards = shards.max(1);
    let all_done = plan.points.iter().filter(|p| done.contains(&p.id)).count();
    let points: Vec<&str> = match &plan.adaptive {
        Some(cfg) => adaptive::current_round(plan, cfg, &store)
            .await?
            .into_iter()
            .map(|i| plan.points[i].id.as_str())
            .collect(),
        None => plan.points.iter().map(|p| p.id.as_str()).collect(),
    };
    let rows = (0..shards)
        .map(|index| {
            let shard = (shards > 1).then_some(Shard {
                index,
                count: shards,
            });
            let ids: Vec<&str> = points
                .iter()
                .enumerate()
                .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)))
                .map(|(_, id)| *id)
                .collect();
            let d = ids.iter().filter(|id| done.contains(**id)).count();
            let f = ids
                .iter()
                .filter(|id| !done.contains(**id) && failed.contains(**id))
                .count();
            Ok(ShardStatus {
                shard,
                points: ids.len(),
                done: d,
                failed: f,
                pending: ids.len() - d - f,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((rows, all_done))
}

async fn write_report(
    store: &Store,
    plan: &Plan,
    rows: RecordBatch,
) -> Result<(Summary, Analysis)> {
    // An adaptive sweep's dropped k values have fewer seeds: the answer is the k values it
    // kept, over all their seeds (the decisions table lists the rest).
    let dropped = adaptive::dropped_ids(store).await?;
    let analysed = adaptive::without(&rows, &dropped)?;
    // The grid before the drops, so that no best set is printed as a range over a dropped k.
    let grid = crate::analyze::grid_of(std::slice::from_ref(&rows), &plan.k_grids())?;
    let analysis = crate::analyze::analyse_table(
        std::slice::from_ref(&analysed),
        &crate::analyze::Options {
            grid,
            ..Default::default()
        },
    )?;
    analysis.write(store, "").await?;
    let ipc = encode_ipc(tables::results(true), &[rows])?;
    store.put(layout::RESULTS_IPC, ipc.clone().into()).await?;
    let summary = summarise(ipc, &plan.swept)?;
    store
        .put(
            layout::SUMMARY,
            report::summary_parquet(&summary.by_k)?.into(),
        )
        .await?;
    store
        .put(
            layout::BEST_K,
            report::summary_parquet(&summary.best_k)?.into(),
        )
        .await?;
    Ok((summary, analysis))
}

/// The bytes of a hard-negative reference checkpoint: an object store URL, or a path relative
/// to the output location; `settings` open a URL's store.
async fn reference_checkpoint(
    output: &Store,
    reference: &str,
    settings: &StorageSettings,
) -> Result<bytes::Bytes> {
    let (store, rel) = if reference.contains("://") {
        Store::open_file(reference, settings)?
    } else {
        (output.clone(), reference.trim_start_matches('/').to_owned())
    };
    store.get(&rel).await?.ok_or_else(|| {
        Error::data(
            store.display(&rel),
            "the hard-negative reference checkpoint (negatives.hard.reference) does not exist",
        )
    })
}
