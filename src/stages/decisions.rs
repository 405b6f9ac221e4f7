//! An adaptive sweep's decisions table (`adaptive.parquet`, beside `results.arrow`): read back
//! for people and for the analysis, which leaves the dropped k values' points out. `exec`
//! writes it; `analyze`, the report and the CLI read it here.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch, StringArray, UInt32Array};

use crate::storage::Store;
use crate::{Error, Result};

/// Where the decisions table lives, beside `results.arrow`.
pub const DECISIONS: &str = "adaptive.parquet";

/// The decisions table at `store`, if there is one.
async fn read_decisions(store: &Store) -> Result<Option<Vec<RecordBatch>>> {
    let Some(bytes) = store.get(DECISIONS).await? else {
        return Ok(None);
    };
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(Some(reader.collect::<std::result::Result<Vec<_>, _>>()?))
}

/// Ids of the points the decisions table at `store` says were dropped; empty without one.
pub async fn dropped_ids(store: &Store) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for batch in read_decisions(store).await?.unwrap_or_default() {
        let Some(list) = batch
            .column_by_name("points")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::ListArray>())
        else {
            return Err(Error::data(
                store.display(DECISIONS),
                "no `points` list column",
            ));
        };
        for r in 0..list.len() {
            let ids = list.value(r);
            let ids = ids
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| Error::data(store.display(DECISIONS), "`points` is not text"))?;
            out.extend(ids.iter().flatten().map(str::to_owned));
        }
    }
    Ok(out)
}

/// The decisions table at `store` for people: a heading and one line per decision; empty
/// without a table.
pub async fn decision_lines(store: &Store) -> Result<Vec<String>> {
    let Some(batches) = read_decisions(store).await? else {
        return Ok(Vec::new());
    };
    let mut out = vec![format!(
        "\nadaptive sweep: the rounds' decisions ({}; the analysis above leaves out the \
         points of dropped k values)",
        store.display(DECISIONS)
    )];
    let bad = || Error::data(store.display(DECISIONS), "not a decisions table");
    for batch in batches {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .ok_or_else(bad)
        };
        let number = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt32Array>().cloned())
                .ok_or_else(bad)
        };
        let (group, action, reason) = (text("group")?, text("action")?, text("reason")?);
        let (round, k) = (number("round")?, number("k")?);
        for r in 0..batch.num_rows() {
            let what = if k.is_null(r) {
                action.value(r).to_owned()
            } else {
                format!("{} k = {}", action.value(r), k.value(r))
            };
            out.push(format!(
                "  {} round {}: {what}: {}",
                group.value(r),
                round.value(r),
                reason.value(r)
            ));
        }
    }
    Ok(out)
}

/// `rows` without the rows of `dropped` points.
pub fn without(rows: &RecordBatch, dropped: &HashSet<String>) -> Result<RecordBatch> {
    if dropped.is_empty() {
        return Ok(rows.clone());
    }
    let ids = rows
        .column_by_name("point_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Error::data("results", "no text `point_id` column"))?;
    let keep: arrow::array::BooleanArray = ids
        .iter()
        .map(|id| Some(!id.is_some_and(|id| dropped.contains(id))))
        .collect();
    Ok(arrow::compute::filter_record_batch(rows, &keep)?)
}
