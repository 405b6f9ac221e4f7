//! `analyze` and `report`: the results table a TARGET names, and where a report went.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use super::PipelineArgs;
use super::commands::load;
use super::pipeline::read_results;
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// Where a `report` or `analyze` TARGET's results table lies (a pipeline file's output, an
/// output folder, or a `results.arrow` file), and, when TARGET is a pipeline, the pipeline and
/// its groups' k values.
struct Location {
    /// The results table's URL or path.
    location: String,
    pipeline: Option<crate::report::PipelineInfo>,
    /// The storage settings to open it with: the pipeline's, else the defaults.
    settings: StorageSettings,
    /// The plan's groups as [`crate::plan::Plan::k_grids`] gives them; empty without a plan.
    planned: Vec<(Vec<String>, Vec<u32>)>,
}

fn results_location(target: &str) -> Result<Location> {
    if target.ends_with(".toml") {
        let plan = load(&PipelineArgs {
            file: target.into(),
            set: Vec::new(),
            max_memory: None,
        })?;
        Ok(Location {
            location: format!("{}{}", plan.output, crate::stages::layout::RESULTS_IPC),
            planned: plan.k_grids(),
            pipeline: Some(crate::report::PipelineInfo {
                name: plan.name,
                file: target.to_owned(),
            }),
            settings: plan.storage,
        })
    } else if target.ends_with(".arrow") {
        Ok(Location {
            location: target.to_owned(),
            pipeline: None,
            settings: StorageSettings::default(),
            planned: Vec::new(),
        })
    } else {
        Ok(Location {
            location: format!(
                "{}/{}",
                target.trim_end_matches('/'),
                crate::stages::layout::RESULTS_IPC
            ),
            pipeline: None,
            settings: StorageSettings::default(),
            planned: Vec::new(),
        })
    }
}

/// The results table a TARGET names, ready to analyse.
pub(super) struct Target {
    /// The store it was read from, and its path there.
    pub(super) store: Store,
    pub(super) rel: String,
    /// Its rows, less those of k values an adaptive sweep dropped (see [`analysable`]).
    pub(super) batches: Vec<arrow::array::RecordBatch>,
    /// Each group's k values, with those left out (see [`crate::analyze::grid_of`]).
    pub(super) grid: crate::analyze::Grid,
    /// The pipeline when TARGET is one.
    pub(super) pipeline: Option<crate::report::PipelineInfo>,
    /// The storage settings it was opened with.
    pub(super) settings: StorageSettings,
}

/// The results table `target` names (see [`results_location`]).
pub(super) async fn results_of(target: &str) -> Result<Target> {
    let at = results_location(target)?;
    let (store, rel) = Store::open_file(&at.location, &at.settings)?;
    let batches = read_results(&store, &rel).await?.ok_or_else(|| {
        Error::data(
            store.display(&rel),
            "no results here: run or collect the pipeline first",
        )
    })?;
    let (batches, grid) = analysable(&store, &batches, &at.planned).await?;
    Ok(Target {
        store,
        rel,
        batches,
        grid,
        pipeline: at.pipeline,
        settings: at.settings,
    })
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
/// would otherwise cut every other k down to the seeds they share; and each group's grid,
/// taken before the drops and with the `planned` k values (see [`crate::analyze::grid_of`]).
pub(super) async fn analysable(
    store: &Store,
    batches: &[arrow::array::RecordBatch],
    planned: &[(Vec<String>, Vec<u32>)],
) -> Result<(Vec<arrow::array::RecordBatch>, crate::analyze::Grid)> {
    let grid = crate::analyze::grid_of(batches, planned)?;
    let dropped = crate::stages::decisions::dropped_ids(store).await?;
    let kept = batches
        .iter()
        .map(|b| crate::stages::decisions::without(b, &dropped))
        .collect::<Result<Vec<_>>>()?;
    Ok((kept, grid))
}
