//! The commands behind `negsweep validate | plan | run | collect | analyze | report | schema`:
//! loading a pipeline, and the dispatch to each command (their larger parts in `pipeline`,
//! `results`, `schema` and `advise`).

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use super::advise::{advise, advise_pipeline, theory};
use super::bench::bench;
use super::exit;
use super::pipeline::{print_verdicts, read_results, report_after, show_plan};
use super::results::{results_of, show_written};
use super::schema::schema;
use super::{Args, BarProgress, Command, PipelineArgs, ThreadPlan};
use crate::exec::{self, RunOptions, Shard};
use crate::plan::{self, Plan};
use crate::storage::Store;
use crate::{Error, Result};

/// Loads a pipeline with its `--set` overrides, checks each point's memory and prints the
/// warnings (a key without effect).
pub(super) fn load(args: &PipelineArgs) -> Result<Plan> {
    let limit = memory_limit(args)?;
    let check = |plan: &Plan| match limit {
        Some(limit) => plan::memory::check(plan, limit),
        None => Ok(()),
    };
    let plan = plan::load(&args.file, &args.set, &check)?;
    for w in &plan.warnings {
        eprintln!("warning: {}: {w}", plan.source);
    }
    Ok(plan)
}

/// `--max-memory`, else the machine's memory; `None` where neither is known.
fn memory_limit(args: &PipelineArgs) -> Result<Option<f64>> {
    match &args.max_memory {
        Some(text) => plan::memory::parse_size(text)
            .map(Some)
            .map_err(|m| Error::Usage(format!("--max-memory: {m}"))),
        None => Ok(plan::memory::machine_memory()),
    }
}

/// Loads a pipeline, checks that every input can be read and keys each file dataset by its
/// content, so point ids name the data they train on.
pub(super) async fn load_keyed(args: &PipelineArgs) -> Result<Plan> {
    let mut plan = load(args)?;
    plan::inputs::check_all(&plan).await?;
    let output = Store::open(&plan.output, &plan.storage)?;
    output.check().await?;
    plan::inputs::key_by_content(&mut plan, &output).await?;
    Ok(plan)
}

/// The shard named by `--shard`, else by the array job's environment.
fn shard_of(arg: Option<&str>) -> Result<Option<Shard>> {
    match arg {
        Some(text) => Shard::parse(text).map(Some),
        None => Shard::from_env(|k| std::env::var(k).ok()),
    }
}

pub(super) async fn dispatch(args: Args, threads: ThreadPlan, progress: BarProgress) -> Result<u8> {
    match args.command {
        Command::Validate(p) => {
            let plan = load(&p)?;
            plan::inputs::check_all(&plan).await?;
            println!(
                "ok: {}: pipeline `{}`, {}, {}, output {}",
                p.file.display(),
                plan.name,
                crate::count(plan.datasets.len(), "dataset"),
                crate::count(plan.points.len(), "sweep point"),
                plan.output
            );
            Ok(exit::OK)
        }
        Command::Plan(p) => {
            let plan = load_keyed(&p).await?;
            show_plan(&plan).await?;
            if let Some(a) = plan.adaptive {
                println!(
                    "adaptive ([sweep.adaptive]): these are the full grid's points; round 1 trains \
                     every k at {} seed(s), later rounds add {} seed(s) to the k values still in \
                     play, so some points are never trained (`status` shows the rounds)",
                    a.initial_seeds, a.seeds_per_round
                );
            }
            Ok(exit::OK)
        }
        Command::Status { pipeline, shards } => {
            let plan = load_keyed(&pipeline).await?;
            let count = match shards {
                Some(n) => n,
                None => shard_of(None)?.map_or(1, |s| s.count),
            };
            let (rows, done) = exec::status(&plan, count).await?;
            if plan.adaptive.is_some() {
                println!("the groups still in rounds, as their shards split them:");
            }
            println!(
                "{:>8} {:>7} {:>7} {:>7} {:>8}",
                "shard", "points", "done", "failed", "pending"
            );
            for r in &rows {
                let name = r.shard.map_or_else(|| "all".to_owned(), |s| s.to_string());
                println!(
                    "{name:>8} {:>7} {:>7} {:>7} {:>8}",
                    r.points, r.done, r.failed, r.pending
                );
            }
            println!(
                "{done} of {} done ({})",
                crate::count(plan.points.len(), "point"),
                plan.output
            );
            if plan.adaptive.is_some() {
                // An adaptive sweep never trains the whole grid: where its rounds stand.
                let groups = exec::adaptive_status(&plan).await?;
                print_rounds(&groups, plan.points.len(), &plan.output.to_string());
            }
            let damaged =
                crate::report::damaged(&Store::open(&plan.output, &plan.storage)?).await?;
            if damaged > 0 {
                println!(
                    "{damaged} damaged result files are kept for inspection under {}{}/; a point whose result was damaged is pending until it is computed again",
                    plan.output,
                    crate::stages::layout::DAMAGED
                );
            }
            Ok(exit::OK)
        }
        Command::Collect(p) => {
            let plan = load_keyed(&p).await?;
            match exec::collect(&plan).await? {
                Some((summary, analysis)) => {
                    println!("{}", summary.render()?);
                    print_verdicts(&analysis, &plan.output.to_string());
                    println!(
                        "collected into {}results.arrow, {}summary.parquet, {}best_k.parquet",
                        plan.output, plan.output, plan.output
                    );
                    let store = Store::open(&plan.output, &plan.storage)?;
                    if let Some(batches) =
                        read_results(&store, crate::stages::layout::RESULTS_IPC).await?
                    {
                        report_after(&plan, &p.file, &batches).await;
                    }
                }
                None => println!("no finished points yet under {}", plan.output),
            }
            Ok(exit::OK)
        }
        Command::Run {
            pipeline, shard: s, ..
        } => {
            let plan = load_keyed(&pipeline).await?;
            let shard = shard_of(s.as_deref())?;
            let opts = RunOptions {
                shard,
                jobs: threads.jobs,
                threads_per_job: threads.threads_per_job,
            };
            let report = exec::run(&plan, opts, &progress).await?;
            if report.other_points > 0 {
                eprintln!(
                    "warning: {} result files under {}results/ are of points not in this plan (another version of the pipeline); results.arrow and the summary hold only this plan's points",
                    report.other_points, plan.output
                );
            }
            if report.moved > 0 {
                println!(
                    "moved the results of {} finished points to their dataset's current name",
                    report.moved
                );
            }
            if report.twins > 0 {
                println!(
                    "{} the same point as another once N = 0 is resolved to every concept: computed once",
                    if report.twins == 1 {
                        "1 point is".to_owned()
                    } else {
                        format!("{} points are", report.twins)
                    }
                );
            }
            if report.skipped == report.total {
                if report.total == 1 {
                    println!("nothing to compute: the 1 point is already done");
                } else {
                    println!(
                        "nothing to compute: all {} points are already done",
                        report.total
                    );
                }
            } else {
                println!(
                    "computed {}, skipped {} already done, {} failed{}",
                    crate::count(report.computed, "point"),
                    report.skipped,
                    report.failed.len(),
                    if report.elsewhere > 0 {
                        format!(
                            ", {} computed meanwhile by other processes",
                            report.elsewhere
                        )
                    } else {
                        String::new()
                    }
                );
            }
            if !report.groups.is_empty() {
                print_rounds(&report.groups, report.total, &plan.output.to_string());
            }
            if let Some(summary) = &report.summary {
                println!("\n{}", summary.render()?);
            }
            if let Some(analysis) = &report.analysis {
                print_verdicts(analysis, &plan.output.to_string());
                let store = Store::open(&plan.output, &plan.storage)?;
                if let Some(batches) =
                    read_results(&store, crate::stages::layout::RESULTS_IPC).await?
                {
                    report_after(&plan, &pipeline.file, &batches).await;
                }
            }
            if let Some(s) = shard {
                if plan.adaptive.is_some() {
                    // Its share is of one round; the counts of the grid are `status`'s.
                    println!(
                        "shard {s}: its part of the current adaptive round done ({} computed); \
                         run the shards again for the next round (`negsweep status` shows \
                         the rounds), and `negsweep collect` once every group has settled",
                        report.computed
                    );
                } else {
                    println!(
                        "shard {s}: {} of its points done; run `negsweep collect` once every shard has finished",
                        report.skipped + report.computed
                    );
                }
            }
            if shard.is_none() {
                println!(
                    "results: {}results/ (hive-partitioned Parquet), {}results.arrow, {}summary.parquet",
                    plan.output, plan.output, plan.output
                );
            } else {
                println!(
                    "results: {}results/ (hive-partitioned Parquet)",
                    plan.output
                );
            }
            for (id, err) in &report.failed {
                eprintln!("failed: {id}: {err}");
            }
            if report.failed.is_empty() {
                Ok(exit::OK)
            } else {
                Err(Error::PointsFailed {
                    failed: report.failed.len(),
                    total: report.total - report.skipped,
                })
            }
        }
        Command::Analyze {
            target,
            metric,
            resamples,
            seed,
            holdout_seeds,
        } => {
            let t = results_of(&target).await?;
            let (store, rel) = (t.store, t.rel);
            let options = crate::analyze::Options {
                metric,
                resamples,
                seed,
                holdout_seeds,
                grid: t.grid,
            };
            let analysis = crate::analyze::analyse_table(&t.batches, &options)?;
            if holdout_seeds > 0 && analysis.holdouts.is_empty() {
                return Err(Error::Usage(format!(
                    "--holdout-seeds {holdout_seeds}: no group has more than {}, so none is left to choose k on",
                    crate::count(holdout_seeds, "seed")
                )));
            }
            print!("{}", analysis.render());
            for line in crate::exec::adaptive::decision_lines(&store).await? {
                println!("{line}");
            }
            // The tables go beside the results; a read-only location still gets the printout.
            let prefix = rel
                .rsplit_once('/')
                .map_or(String::new(), |(dir, _)| format!("{dir}/"));
            match analysis.write(&store, &prefix).await {
                Ok(dir) => println!("tables: {dir}/ (k.parquet, groups.parquet, scaling.parquet)"),
                Err(e) => eprintln!("warning: the analysis tables were not written: {e}"),
            }
            Ok(exit::OK)
        }
        Command::Report {
            target,
            out,
            metric,
            resamples,
            seed,
        } => {
            let t = results_of(&target).await?;
            let out = match out {
                Some(dir) => Store::open_str(&dir, &t.settings)?,
                None => t.store.clone(),
            };
            let options = crate::report::ReportOptions {
                metric,
                resamples,
                seed,
                pipeline: t.pipeline,
                grid: t.grid,
            };
            let written =
                crate::report::write_report(&t.store, &t.rel, &t.batches, &out, &options).await?;
            show_written(&written);
            Ok(exit::OK)
        }
        Command::Schema { dir, check } => schema(&dir, check),
        Command::Theory { concepts, rho, k } => theory(concepts, rho.as_deref(), k.values),
        Command::Advise { dataset, set, k } if dataset.ends_with(".toml") => {
            let args = PipelineArgs {
                file: dataset.into(),
                set,
                max_memory: None,
            };
            advise_pipeline(&args, k.values).await
        }
        Command::Advise { dataset, set, k } => {
            if !set.is_empty() {
                return Err(Error::Usage(
                    "--set applies to a pipeline file (`.toml`), not to a dataset".into(),
                ));
            }
            advise(&dataset, k.values).await
        }
        Command::Bench {
            collect: Some(points),
            ..
        } => {
            let r = crate::bench::collect(points).await?;
            println!(
                "negsweep collect on {}: {:.2} s ({:.0} points/s), peak RSS {:.0} MB \
                 (writing the {} first took {:.1} s)",
                crate::count(r.points, "point"),
                r.seconds,
                r.points as f64 / r.seconds,
                r.peak_rss_mb,
                crate::count(r.points, "result file"),
                r.setup_seconds
            );
            Ok(exit::OK)
        }
        Command::Bench { theory: true, .. } => {
            println!("{}", crate::bench::theory().render());
            Ok(exit::OK)
        }
        Command::Bench {
            ingest_images: Some(dir),
            generate,
            ..
        } => {
            if let Some(count) = generate {
                crate::bench::generate_image_folder(&dir, count)?;
            }
            let r = crate::bench::ingest_images(&dir).await?;
            println!(
                "ingest {}: {} in {:.2} s = {:.0} images/s; peak RSS {:.0} MB",
                dir.display(),
                crate::count(r.images, "image"),
                r.seconds,
                r.images as f64 / r.seconds,
                r.peak_rss_mb
            );
            Ok(exit::OK)
        }
        Command::Bench {
            ingest: Some(file),
            keep,
            ..
        } => {
            let r = crate::bench::ingest(&file, keep.as_deref()).await?;
            println!(
                "ingest {}: {:.1} MB in {:.2} s = {:.1} MB/s; {}, {}, vocabulary {}; peak RSS {:.0} MB",
                file.display(),
                r.megabytes,
                r.seconds,
                r.megabytes / r.seconds,
                crate::count(r.report.examples as usize, "example"),
                crate::count(r.report.concepts as usize, "concept"),
                r.report.vocab,
                r.peak_rss_mb
            );
            Ok(exit::OK)
        }
        Command::Bench {
            seconds,
            pipeline,
            set,
            no_overhead,
            encoders,
            ks,
            precision,
            json,
            ingest: None,
            ingest_images: None,
            ..
        } => {
            bench(
                seconds,
                &PipelineArgs {
                    file: pipeline,
                    set,
                    max_memory: None,
                },
                no_overhead,
                (&encoders, &ks),
                precision.into(),
                threads,
                json,
            )
            .await
        }
    }
}

/// Where each group of an adaptive sweep stands, and the points it trained against the grid's.
fn print_rounds(groups: &[crate::exec::adaptive::GroupState], grid: usize, output: &str) {
    println!(
        "\nadaptive rounds (each run writes every decision to {output}{}):",
        crate::exec::adaptive::DECISIONS
    );
    let mut spent = 0;
    for g in groups {
        let r = &g.rounds;
        spent += g.points_spent();
        let state = if r.settled {
            let why = r.decisions.last().map_or("", |d| d.reason.as_str());
            format!("settled in round {}: {why}", r.round)
        } else {
            format!(
                "round {}, {} point(s) to go, k in play {:?}",
                r.round,
                r.needed.len(),
                r.active
            )
        };
        let dropped = r
            .decisions
            .iter()
            .filter(|d| d.action == crate::adaptive::Action::Drop)
            .count();
        println!("  {}: {state}; {dropped} k dropped", g.label);
    }
    println!(
        "the rounds so far take {spent} of the full grid's {grid} points ({:.0}%); the others \
         are never trained",
        100.0 * spent as f64 / grid.max(1) as f64
    );
}
