//! The commands behind `negsweep validate | plan | run | collect | analyze | report | schema`.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use std::path::Path;

use super::bench::bench;
use super::exit;
use super::{Args, BarProgress, Command, PipelineArgs, ThreadPlan};
use crate::exec::{self, RunOptions, Shard};
use crate::plan::{self, Plan};
use crate::spec::PipelineSpec;
use crate::stages::tables;
use crate::storage::Store;
use crate::{Error, Result};

pub(super) fn load(args: &PipelineArgs) -> Result<Plan> {
    let spec = PipelineSpec::load(&args.file, &args.set)?;
    let plan = plan::resolve(&spec, &args.file.display().to_string())?;
    if let Some(limit) = memory_limit(args)? {
        plan::memory::check(&plan, limit)?;
    }
    crate::storage::configure(plan.storage.clone());
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
async fn load_keyed(args: &PipelineArgs) -> Result<Plan> {
    let mut plan = load(args)?;
    plan::inputs::check_all(&plan).await?;
    let output = Store::open(&plan.output)?;
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
                "ok: {}: pipeline `{}`, {} dataset(s), {} sweep points, output {}",
                p.file.display(),
                plan.name,
                plan.datasets.len(),
                plan.points.len(),
                plan.output
            );
            Ok(exit::OK)
        }
        Command::Plan(p) => {
            let plan = load_keyed(&p).await?;
            show_plan(&plan).await?;
            Ok(exit::OK)
        }
        Command::Status { pipeline, shards } => {
            let plan = load_keyed(&pipeline).await?;
            let count = match shards {
                Some(n) => n,
                None => shard_of(None)?.map_or(1, |s| s.count),
            };
            let rows = exec::status(&plan, count).await?;
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
            let done: usize = rows.iter().map(|r| r.done).sum();
            println!(
                "{done} of {} points done ({})",
                plan.points.len(),
                plan.output
            );
            let damaged = crate::report::damaged(&Store::open(&plan.output)?).await?;
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
                    let store = Store::open(&plan.output)?;
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
                    "{} points are the same point as another once N = 0 is resolved to every concept: computed once",
                    report.twins
                );
            }
            if report.skipped == report.total {
                println!(
                    "nothing to compute: all {} points are already done",
                    report.total
                );
            } else {
                println!(
                    "computed {} points, skipped {} already done, {} failed{}",
                    report.computed,
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
            if let Some(summary) = &report.summary {
                println!("\n{}", summary.render()?);
            }
            if let Some(analysis) = &report.analysis {
                print_verdicts(analysis, &plan.output.to_string());
                let store = Store::open(&plan.output)?;
                if let Some(batches) =
                    read_results(&store, crate::stages::layout::RESULTS_IPC).await?
                {
                    report_after(&plan, &pipeline.file, &batches).await;
                }
            }
            if let Some(s) = shard {
                println!(
                    "shard {s}: {} of its points done; run `negsweep collect` once every shard has finished",
                    report.skipped + report.computed
                );
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
            let (store, rel, batches, _) = results_of(&target).await?;
            let options = crate::analyze::Options {
                metric,
                resamples,
                seed,
                holdout_seeds,
            };
            let analysis = crate::analyze::analyse_table(&batches, &options)?;
            if holdout_seeds > 0 && analysis.holdouts.is_empty() {
                return Err(Error::Usage(format!(
                    "--holdout-seeds {holdout_seeds}: no group has more than {holdout_seeds} seeds, so none is left to choose k on"
                )));
            }
            print!("{}", analysis.render());
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
            let (store, rel, batches, pipeline) = results_of(&target).await?;
            let out = match out {
                Some(dir) => Store::open_str(&dir)?,
                None => store.clone(),
            };
            let options = crate::report::ReportOptions {
                metric,
                resamples,
                seed,
                pipeline,
            };
            let written =
                crate::report::write_report(&store, &rel, &batches, &out, &options).await?;
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
                "negsweep collect on {} points: {:.2} s ({:.0} points/s), peak RSS {:.0} MB \
                 (writing the {} result files first took {:.1} s)",
                r.points,
                r.seconds,
                r.points as f64 / r.seconds,
                r.peak_rss_mb,
                r.points,
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
                "ingest {}: {} images in {:.2} s = {:.0} images/s; peak RSS {:.0} MB",
                dir.display(),
                r.images,
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
                "ingest {}: {:.1} MB in {:.2} s = {:.1} MB/s; {} examples, {} concepts, vocabulary {}; peak RSS {:.0} MB",
                file.display(),
                r.megabytes,
                r.seconds,
                r.megabytes / r.seconds,
                r.report.examples,
                r.report.concepts,
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
                threads,
                json,
            )
            .await
        }
    }
}

async fn show_plan(plan: &Plan) -> Result<()> {
    let store = Store::open(&plan.output)?;
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
        "{} points: {n_done} done, {n_failed} failed, {} pending; output {}",
        plan.points.len(),
        plan.points.len() - n_done - n_failed,
        plan.output
    );
    println!(
        "pending compute: about {}{} at {gflops:.0} GFLOP/s (divide by --jobs for the wall time)",
        plan::cost::duration(total_s),
        if unknown > 0 {
            format!(" plus {unknown} points on file datasets (`?`: their size is known once read)")
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

/// The results table a `report` or `analyze` TARGET names (a pipeline file's output, an output
/// folder, or a `results.arrow` file), and the pipeline when TARGET is one.
fn results_location(target: &str) -> Result<(String, Option<crate::report::PipelineInfo>)> {
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
        Ok((location, Some(pipeline)))
    } else if target.ends_with(".arrow") {
        Ok((target.to_owned(), None))
    } else {
        Ok((
            format!(
                "{}/{}",
                target.trim_end_matches('/'),
                crate::stages::layout::RESULTS_IPC
            ),
            None,
        ))
    }
}

/// Prints where a report went and which figures it left out.
/// The store, path and rows of the results table `target` names (see [`results_location`]),
/// and the pipeline when `target` is one.
async fn results_of(
    target: &str,
) -> Result<(
    Store,
    String,
    Vec<arrow::array::RecordBatch>,
    Option<crate::report::PipelineInfo>,
)> {
    let (location, pipeline) = results_location(target)?;
    let (store, rel) = Store::open_file(&location)?;
    let batches = read_results(&store, &rel).await?.ok_or_else(|| {
        Error::data(
            store.display(&rel),
            "no results here: run or collect the pipeline first",
        )
    })?;
    Ok((store, rel, batches, pipeline))
}

fn show_written(written: &crate::report::Written) {
    println!(
        "report: {} ({} figure files beside it under figures/)",
        written.html,
        written.figures.len()
    );
    for why in &written.missing {
        println!("  not drawn: {why}");
    }
}

/// Writes the report of the results just written into `plan`'s output; a failure is a
/// warning: the results are complete without it and `negsweep report` makes it again.
async fn report_after(plan: &Plan, file: &Path, batches: &[arrow::array::RecordBatch]) {
    let written = async {
        let store = Store::open(&plan.output)?;
        let options = crate::report::ReportOptions {
            metric: "mean_acc".to_owned(),
            resamples: 2000,
            seed: 0,
            pipeline: Some(crate::report::PipelineInfo {
                name: plan.name.clone(),
                file: file.display().to_string(),
            }),
        };
        crate::report::write_report(
            &store,
            crate::stages::layout::RESULTS_IPC,
            batches,
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
async fn read_results(store: &Store, rel: &str) -> Result<Option<Vec<arrow::array::RecordBatch>>> {
    let Some(bytes) = store.get(rel).await? else {
        return Ok(None);
    };
    let reader = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(Some(reader.collect::<std::result::Result<Vec<_>, _>>()?))
}

/// Every generated schema file: name and content.
pub fn schema_files() -> Vec<(String, String)> {
    let mut files = vec![(
        "pipeline.schema.json".to_owned(),
        PipelineSpec::json_schema(),
    )];
    files.extend(
        tables::all()
            .iter()
            .map(|t| (format!("{}.md", t.name), tables::markdown(t))),
    );
    files
}

/// The verdict per group and the scaling lines, after a run or collect.
fn print_verdicts(analysis: &crate::analyze::Analysis, output: &str) {
    println!(
        "best k per group (mean classifier; `negsweep analyze` for every k; tables in {output}{}/):\n{}",
        crate::analyze::folder(&analysis.metric),
        analysis.render_verdicts()
    );
}

/// Writes the generated schema files into `dir`.
pub fn render_schemas(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in schema_files() {
        std::fs::write(dir.join(name), content)?;
    }
    Ok(())
}

fn schema(dir: &Path, check: bool) -> Result<u8> {
    let shown = dir.display();
    if check {
        let stale: Vec<String> = schema_files()
            .into_iter()
            .filter(|(name, content)| {
                std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(content.as_str())
            })
            .map(|(name, _)| name)
            .collect();
        if stale.is_empty() {
            println!("{shown}: up to date");
            return Ok(exit::OK);
        }
        eprintln!(
            "{shown}: stale or missing: {}; run `negsweep schema` to regenerate",
            stale.join(", ")
        );
        return Ok(exit::POINTS_FAILED);
    }
    render_schemas(dir).map_err(|e| Error::data(dir.display(), e))?;
    println!("wrote {} files to {shown}", schema_files().len());
    Ok(exit::OK)
}

/// The theory table for `n` uniform concepts or for the counts in `rho`.
fn theory(n: Option<u32>, rho: Option<&std::path::Path>, ks: Option<Vec<u32>>) -> Result<u8> {
    let counts = match (n, rho) {
        (Some(n), _) => vec![1; n as usize],
        (None, Some(path)) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::data(&shown, format!("cannot read: {e}")))?;
            crate::advise::parse_counts(&text, &shown)?
        }
        (None, None) => unreachable!("clap requires --concepts or --rho"),
    };
    print_advice(&counts, ks)
}

/// `negsweep advise`: the theory for the class counts of an ingested dataset.
async fn advise(dataset: &str, ks: Option<Vec<u32>>) -> Result<u8> {
    let counts = crate::advise::label_counts(dataset).await?;
    print_advice(&counts, ks)
}

/// `negsweep advise PIPELINE`: per dataset and N of the pipeline, the theory for the training
/// counts of the concepts a run chooses (the first swept seed's subsample), at the swept k
/// unless `--k` is given.
async fn advise_pipeline(args: &PipelineArgs, ks: Option<Vec<u32>>) -> Result<u8> {
    let plan = load_keyed(args).await?;
    let store = Store::open(&plan.output)?;
    for (d, ds) in plan.datasets.iter().enumerate() {
        let points: Vec<_> = plan.points.iter().filter(|p| p.dataset == d).collect();
        let Some(seed) = points.first().map(|p| p.seed) else {
            continue;
        };
        let mut ns: Vec<u32> = points.iter().map(|p| p.n).collect();
        ns.sort_unstable();
        ns.dedup();
        let mut swept: Vec<u32> = points.iter().map(|p| p.k).collect();
        swept.sort_unstable();
        swept.dedup();
        let ing = crate::stages::ingest::run(&store, ds)
            .await
            .map_err(|e| e.in_stage("ingest", None))?;
        // The same refusal as a run's, with the possible N.
        let all: Vec<usize> = (0..plan.points.len()).collect();
        let problems = exec::check_n(&plan, d, &ing.examples, &all);
        if !problems.is_empty() {
            return Err(Error::InvalidPipeline {
                path: plan.source.clone(),
                diagnostics: problems,
            });
        }
        for n in ns {
            let chosen = crate::stages::pools::choose(
                &ing.examples,
                n,
                seed,
                &plan.shared,
                &ds.source.location(),
            )?;
            let counts: Vec<u64> = chosen
                .concepts
                .iter()
                .map(|c| u64::from(c.n_train))
                .collect();
            println!(
                "dataset `{}`, N = {} (training split, seed {seed}):",
                ds.name,
                counts.len()
            );
            print_advice(&counts, Some(ks.clone().unwrap_or_else(|| swept.clone())))?;
            println!();
        }
    }
    Ok(exit::OK)
}

fn print_advice(counts: &[u64], ks: Option<Vec<u32>>) -> Result<u8> {
    let n = counts.iter().filter(|&&c| c > 0).count() as u32;
    let ks = ks.unwrap_or_else(|| crate::advise::default_ks(n));
    print!("{}", crate::advise::advise(counts, &ks)?.render());
    Ok(exit::OK)
}
