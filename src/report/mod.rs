//! Result rows, their collection into one Arrow IPC file, the Polars summary, and the report
//! page with its figures (`negsweep report`).

mod data;
mod figures;
mod heatmaps;
mod html;
mod page;
mod plot;
mod provenance;
mod rates;
mod summary;

pub use crate::stages::columns::ResultRow;
pub use page::{REPORT_HTML, ReportOptions, Written, write_report};
pub use provenance::PipelineInfo;
pub use summary::{Summary, summarise, to_parquet as summary_parquet};

use std::collections::HashMap;

use arrow::array::{RecordBatch, StringArray};
use arrow::compute::concat_batches;
use futures::{StreamExt, TryStreamExt};

use crate::Result;
use crate::plan::{Plan, SweepPoint};
use crate::stages::{layout, tables};
use crate::storage::{Store, encode_parquet, read_parquet};

/// The smallest Parquet file: magic, footer length and magic again. A result file shorter than
/// this (an emptied or truncated one) is damaged without reading it.
const PARQUET_MIN_BYTES: u64 = 12;

/// Every result file under `results/`, by point id (one point may sit in two places for a
/// moment while [`relocate`] moves it), paths sorted. Files too short to be Parquet are moved
/// aside (see [`quarantine`]) and left out: their points are not done.
async fn result_files(store: &Store) -> Result<HashMap<String, Vec<String>>> {
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for (rel, meta) in store.list("results").await? {
        if let Some(id) = layout::result_id(&rel) {
            if meta.size < PARQUET_MIN_BYTES {
                quarantine(store, &rel, &format!("{} bytes", meta.size)).await?;
                continue;
            }
            by_id.entry(id.to_owned()).or_default().push(rel.clone());
        }
    }
    by_id.values_mut().for_each(|v| v.sort());
    Ok(by_id)
}

/// Moves a damaged result file to `damaged/<its path>` (the bytes kept for inspection), so its
/// point counts as not done and the next run computes it again.
async fn quarantine(store: &Store, rel: &str, why: &str) -> Result<()> {
    let aside = format!("{}/{rel}", layout::DAMAGED);
    if let Some(bytes) = store.get(rel).await? {
        store.put(&aside, bytes).await?;
    }
    store.delete(rel).await?;
    tracing::warn!(
        result = %store.display(rel),
        moved_to = %store.display(&aside),
        reason = why,
        "a damaged result file was moved aside; its point will be computed again"
    );
    Ok(())
}

/// Result files moved aside as damaged (see [`quarantine`]).
pub async fn damaged(store: &Store) -> Result<usize> {
    Ok(store.list(layout::DAMAGED).await?.len())
}

/// Ids of the points whose result file exists, with that file.
pub async fn finished(store: &Store) -> Result<HashMap<String, String>> {
    Ok(result_files(store)
        .await?
        .into_iter()
        .map(|(id, mut rels)| (id, rels.swap_remove(0)))
        .collect())
}

/// Reads the result file `rel` and brings it to the current layout at `target` (the plan's
/// partition of its point): the upgraded file is written first and the old one deleted after,
/// so a process killed in between leaves the result in one place or both, never in none. Files
/// already in the current layout and place are left alone.
async fn settle(
    store: &Store,
    rel: &str,
    target: &str,
    (dataset, n, k): (&str, u32, u32),
) -> Result<Vec<RecordBatch>> {
    let (schema, parts) = read_parquet(store, rel).await?;
    let batches = parts
        .iter()
        .map(|b| crate::stages::columns::upgraded(b, dataset, n, k))
        .collect::<Result<Vec<_>>>()?;
    let stored_name_differs = parts.iter().any(|b| {
        b.column_by_name("dataset")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .is_some_and(|c| c.iter().any(|v| v != Some(dataset)))
    });
    if target != rel || schema.fields() != tables::results(true).fields() || stored_name_differs {
        let bytes = encode_parquet(tables::results(true), &batches)?;
        store.put(target, bytes.into()).await?;
        if target != rel {
            store.delete(rel).await?;
        }
    }
    Ok(batches)
}

/// Moves the results of `plan`'s points that sit under another dataset partition (the dataset
/// was renamed) to the plan's name, rewriting their stored `dataset` column, and removes the
/// second copy a move interrupted between its write and its delete left behind. Returns how
/// many points moved.
pub async fn relocate(store: &Store, plan: &Plan) -> Result<usize> {
    let files = result_files(store).await?;
    let moves: Vec<_> = plan
        .points
        .iter()
        .filter_map(|p| {
            let rels = files.get(&p.id)?;
            let n = layout::result_n(&rels[0]).unwrap_or(p.n);
            let target = layout::result_file(&plan.datasets[p.dataset], p, n);
            (rels.len() > 1 || rels[0] != target).then(|| (p, rels.clone(), target, n))
        })
        .collect();
    let moved = moves.len();
    futures::stream::iter(moves)
        .map(|(p, rels, target, n)| async move {
            let from = if rels.contains(&target) {
                target.clone()
            } else {
                let name = plan.datasets[p.dataset].name.as_str();
                settle(store, &rels[0], &target, (name, n, p.k)).await?;
                rels[0].clone()
            };
            for rel in rels.iter().filter(|r| **r != target && **r != from) {
                store.delete(rel).await?;
            }
            Ok::<_, crate::Error>(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(moved)
}

/// The current plan's results, and what else the output holds.
#[derive(Debug)]
pub struct Collected {
    /// One row per finished point of the plan (rows in plan order), with the partition columns.
    pub rows: RecordBatch,
    /// Result files of points that are not in the plan (earlier versions of the pipeline).
    pub other: usize,
    /// Finished points not counted because another finished point of the plan is the same
    /// point (N = 0 resolved to an N the plan lists too).
    pub twins: usize,
}

/// Reads the result of every finished point of `plan` and joins them, with the partition
/// columns, into one batch (rows in plan order). On the way, every result file under `results/`
/// is brought to the current layout in place (see [`settle`]), so a plain read of the part
/// files sees one schema, whichever negsweep version wrote them.
pub async fn collect(store: &Store, plan: &Plan) -> Result<Collected> {
    relocate(store, plan).await?;
    let mut done = finished(store).await?;
    // The plan's points first, in plan order, then the files of other points.
    let mut wanted: Vec<Stored<'_>> = Vec::new();
    for p in &plan.points {
        if let Some(rel) = done.remove(&p.id) {
            let n = layout::result_n(&rel).unwrap_or(p.n);
            let ds = &plan.datasets[p.dataset];
            let target = layout::result_file(ds, p, n);
            wanted.push(Stored {
                point: Some(p),
                rel,
                target,
                partitions: (ds.name.clone(), n, p.k),
            });
        }
    }
    let other = done.len();
    for rel in done.into_values() {
        if let (Some(d), Some(n), Some(k)) = (
            layout::result_dataset(&rel),
            layout::result_n(&rel),
            layout::result_k(&rel),
        ) {
            let partitions = (d.to_owned(), n, k);
            let target = rel.clone();
            wanted.push(Stored {
                point: None,
                rel,
                target,
                partitions,
            });
        }
    }
    // A point and its twin are one result: an explicit N counts ahead of N = 0, otherwise the
    // first in plan order. Decided from the listing, before anything is read.
    let mut by_preference: Vec<usize> = (0..wanted.len())
        .filter(|&i| wanted[i].point.is_some())
        .collect();
    by_preference.sort_by_key(|&i| wanted[i].point.is_some_and(|p| p.n == 0));
    let mut seen = std::collections::HashSet::new();
    let mut keep = vec![false; wanted.len()];
    for i in by_preference {
        let p = wanted[i].point.expect("filtered to the plan's points");
        keep[i] = seen.insert(p.twin_key(wanted[i].partitions.1));
    }
    let twins = wanted
        .iter()
        .zip(&keep)
        .filter(|(w, k)| w.point.is_some() && !**k)
        .count();
    // Streamed: each file read, brought to the current layout and its rows kept in compact
    // batches, so memory follows the rows, not the files (a decoded one-row batch holds
    // buffers sized for a thousand rows).
    let mut reads = futures::stream::iter(wanted.into_iter().zip(keep))
        .map(|(w, keep)| async move {
            let (d, n, k) = &w.partitions;
            match settle(store, &w.rel, &w.target, (d, *n, *k)).await {
                // Copied out at once: the decoder's buffers are sized for a thousand rows.
                Ok(batches) if keep => Ok(vec![concat_batches(&tables::results(true), &batches)?]),
                Ok(_) => Ok(Vec::new()),
                // A result that does not read back is damaged, not fatal: set aside, its point
                // is computed again.
                Err(
                    e @ (crate::Error::Data { .. }
                    | crate::Error::Parquet(_)
                    | crate::Error::Arrow(_)),
                ) => {
                    quarantine(store, &w.rel, &e.to_string()).await?;
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            }
        })
        .buffered(16);
    let schema = tables::results(true);
    let (mut pending, mut compacted) = (Vec::new(), Vec::new());
    while let Some(batches) = reads.next().await {
        pending.extend(batches?);
        if pending.len() >= COMPACT_ROWS {
            compacted.push(concat_batches(&schema, &std::mem::take(&mut pending))?);
        }
    }
    compacted.push(concat_batches(&schema, &pending)?);
    Ok(Collected {
        rows: concat_batches(&schema, &compacted)?,
        other,
        twins,
    })
}

/// Stored results gathered into one batch at a time by [`collect`].
const COMPACT_ROWS: usize = 1024;

/// A stored result file and where, and under which partition values, it belongs.
struct Stored<'a> {
    /// Its point, when the plan has it.
    point: Option<&'a SweepPoint>,
    rel: String,
    target: String,
    /// Dataset, N and k.
    partitions: (String, u32, u32),
}
