//! `analyze` and `report`: the results table a TARGET names, and where a report went.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use super::PipelineArgs;
use super::commands::load;
use super::pipeline::read_results;
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// The results table a `report` or `analyze` TARGET names (a pipeline file's output, an output
/// folder, or a `results.arrow` file), the pipeline when TARGET is one, and the storage
/// settings to open it with (the pipeline's, else the defaults).
fn results_location(
    target: &str,
) -> Result<(String, Option<crate::report::PipelineInfo>, StorageSettings)> {
    if target.ends_with(".toml") {
        let plan = load(&PipelineArgs {
            file: target.into(),
            set: Vec::new(),
            max_memory: None,
        })?;
        let location = format!("{}{}", plan.output, crate::stages::layout::RESULTS_IPC);
        let pipeline = crate::report::PipelineInfo {
            name: plan.name,
            file: target.to_owned(),
        };
        Ok((location, Some(pipeline), plan.storage))
    } else if target.ends_with(".arrow") {
        Ok((target.to_owned(), None, StorageSettings::default()))
    } else {
        Ok((
            format!(
                "{}/{}",
                target.trim_end_matches('/'),
                crate::stages::layout::RESULTS_IPC
            ),
            None,
            StorageSettings::default(),
        ))
    }
}

/// The store, path and rows of the results table `target` names (see [`results_location`]),
/// the pipeline when `target` is one, and the storage settings it was opened with.
pub(super) async fn results_of(
    target: &str,
) -> Result<(
    Store,
    String,
    Vec<arrow::array::RecordBatch>,
    Option<crate::report::PipelineInfo>,
    StorageSettings,
)> {
    let (location, pipeline, settings) = results_location(target)?;
    let (store, rel) = Store::open_file(&location, &settings)?;
    let batches = read_results(&store, &rel).await?.ok_or_else(|| {
        Error::data(
            store.display(&rel),
            "no results here: run or collect the pipeline first",
        )
    })?;
    let batches = analysable(&store, &batches).await?;
    Ok((store, rel, batches, pipeline, settings))
}

/// Prints where a report went and which figures it left out.
pub(super) fn show_written(written: &crate::report::Written) {
    println!(
        "report: {} ({} figure files beside it under figures/)",
        written.html,
        written.figures.len()
    );
    for why in &written.missing {
        println!("  not drawn: {why}");
    }
}

/// The rows the analysis and the report read: `batches` without the points of k values an
/// adaptive sweep dropped (the decisions table beside them lists those), whose fewer seeds
/// would otherwise cut every other k down to the seeds they share.
pub(super) async fn analysable(
    store: &Store,
    batches: &[arrow::array::RecordBatch],
) -> Result<Vec<arrow::array::RecordBatch>> {
    let dropped = crate::stages::decisions::dropped_ids(store).await?;
    batches
        .iter()
        .map(|b| crate::stages::decisions::without(b, &dropped))
        .collect()
}
