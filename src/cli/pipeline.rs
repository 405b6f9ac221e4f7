//! What `plan`, `run` and `collect` print beyond their counts: the plan's table, the verdicts,
//! and the report written after the results.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use std::path::Path;

use super::results::show_written;
use crate::Result;
use crate::exec;
use crate::plan::{self, Plan};
use crate::storage::Store;

pub(super) async fn show_plan(plan: &Plan) -> Result<()> {
    let store = Store::open(&plan.output, &plan.storage)?;
    let done = exec::finished_ids(&store).await?;
    let failed = exec::failed_ids(&store).await?;
    // Swept settings beyond the leading columns get a column each, so no two rows look alike.
    let extras: Vec<&plan::axes::Axis> = plan::axes::AXES
        .iter()
        .filter(|a| !a.lead && plan.swept.contains(&a.key))
        .collect();
    let mut header = format!(
        "{:<16}  {:<12}  {:>5}  {:>5}  {:>5}  {:<8}  {:>8}  {:>8}",
        "point", "dataset", "N", "k", "seed", "loss", "temp", "lr"
    );
    for a in &extras {
        header.push_str(&format!("  {:>14}", a.key));
    }
    println!("{header}  {:>9}  {:>8}  status", "memory", "time");
    // The machine's GEMM rate, measured now, prices each point's steps.
    let gflops = crate::bench::gemm_peak(384, 3)?;
    let mut total_s = 0.0;
    let mut unknown = 0;
    let (mut n_done, mut n_failed) = (0, 0);
    let mut peak = 0f64;
    for p in &plan.points {
        let status = if done.contains(&p.id) {
            n_done += 1;
            "done"
        } else if failed.contains(&p.id) {
            n_failed += 1;
            "failed"
        } else {
            "pending"
        };
        let mut row = format!(
            "{:<16}  {:<12}  {:>5}  {:>5}  {:>5}  {:<8}  {:>8}  {:>8}",
            p.id,
            plan.datasets[p.dataset].name,
            p.n_label(),
            p.k,
            p.seed,
            p.loss.as_str(),
            p.temperature,
            p.lr
        );
        for a in &extras {
            row.push_str(&format!("  {:>14}", (a.get)(p)));
        }
        let memory = plan::memory::estimate(plan, p).total();
        peak = peak.max(memory);
        let time = match plan::cost::seconds(plan, p, gflops) {
            Some(s) => {
                if status == "pending" {
                    total_s += s;
                }
                plan::cost::duration(s)
            }
            None => {
                if status == "pending" {
                    unknown += 1;
                }
                "?".to_owned()
            }
        };
        println!(
            "{row}  {:>9}  {time:>8}  {status}",
            plan::memory::bytes(memory)
        );
    }
    println!(
        "{}: {n_done} done, {n_failed} failed, {} pending; output {}",
        crate::count(plan.points.len(), "point"),
        plan.points.len() - n_done - n_failed,
        plan.output
    );
    println!(
        "pending compute: about {}{} at {gflops:.0} GFLOP/s (divide by --jobs for the wall time)",
        plan::cost::duration(total_s),
        if unknown > 0 {
            format!(
                " plus {} on file datasets (`?`: their size is known once read)",
                crate::count(unknown, "point")
            )
        } else {
            String::new()
        }
    );
    println!(
        "peak memory per point: about {}{} (estimated from the settings; data read from files \
         counts once it is read)",
        plan::memory::bytes(peak),
        plan::memory::machine_memory()
            .map(|m| format!(" of {} available", plan::memory::bytes(m)))
            .unwrap_or_default()
    );
    Ok(())
}

/// The verdict per group and the scaling lines, after a run or collect.
pub(super) fn print_verdicts(analysis: &crate::analyze::Analysis, output: &str) {
    println!(
        "best k per group (mean classifier; `negsweep analyze` for every k; tables in {output}{}/):\n{}",
        crate::analyze::folder(&analysis.metric),
        analysis.render_verdicts()
    );
}

/// Writes the report of the results just written into `plan`'s output; a failure is a
/// warning: the results are complete without it and `negsweep report` makes it again.
pub(super) async fn report_after(plan: &Plan, file: &Path, batches: &[arrow::array::RecordBatch]) {
    let written = async {
        let store = Store::open(&plan.output, &plan.storage)?;
        let (batches, grid) = super::results::analysable(&store, batches, &plan.k_grids()).await?;
        let options = crate::report::ReportOptions {
            metric: "mean_acc".to_owned(),
            resamples: 2000,
            seed: 0,
            pipeline: Some(crate::report::PipelineInfo {
                name: plan.name.clone(),
                file: file.display().to_string(),
            }),
            grid,
        };
        crate::report::write_report(
            &store,
            crate::stages::layout::RESULTS_IPC,
            &batches,
            &store,
            &options,
        )
        .await
    }
    .await;
    match written {
        Ok(w) => show_written(&w),
        Err(e) => eprintln!(
            "warning: the report was not written ({e:#}); the results are complete, and \
             `negsweep report {}` makes it again",
            plan.output
        ),
    }
}

/// The rows of the Arrow IPC results table at `rel`; `None` where there is none.
pub(super) async fn read_results(
    store: &Store,
    rel: &str,
) -> Result<Option<Vec<arrow::array::RecordBatch>>> {
    let Some(bytes) = store.get(rel).await? else {
        return Ok(None);
    };
    let reader = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(Some(reader.collect::<std::result::Result<Vec<_>, _>>()?))
}
