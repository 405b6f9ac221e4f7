//! The command line: argument parsing, logging, and the commands. The only module that prints.

mod advise;
mod bench;
mod commands;
pub mod exit;
mod pipeline;
mod progress;
mod results;
mod schema;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use progress::BarProgress;
pub use schema::{render_schemas, schema_files};

/// Sweeps the number of negatives in contrastive learning.
#[derive(Debug, Parser)]
#[command(name = "negsweep", version, about, long_about = None)]
pub struct Args {
    /// Only warnings and errors; no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Pipeline file and `--set` overrides, shared by the commands that read a pipeline.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// Pipeline file (TOML).
    pub file: PathBuf,
    /// Override a key before resolving, e.g. `--set sweep.k=[1,4,16]` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Memory one point may use (`8G`, `512M`); default: the machine's, or its cgroup's limit.
    /// A point whose estimate exceeds it is refused before anything runs.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

/// The k values the theory commands evaluate.
#[derive(Debug, clap::Args)]
pub struct Ks {
    /// Negatives per anchor, comma-separated. Default: powers of two up to 16 N (at least 1024).
    #[arg(
        long = "k",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub values: Option<Vec<u32>>,
}

/// negsweep's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a pipeline file: parse, resolve, report every problem.
    Validate(PipelineArgs),
    /// Show the expanded sweep points and which are already done; runs nothing.
    Plan(PipelineArgs),
    /// Run a pipeline: compute every unfinished point, then summarise.
    Run {
        /// The pipeline.
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Points trained at once, each on cores / N threads (at least one). Default: the
        /// number of cores.
        #[arg(short, long, value_parser = at_least_one)]
        jobs: Option<usize>,
        /// Compute only shard INDEX of COUNT (`0/4`): point i belongs to shard i mod COUNT.
        /// Default: from SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX
        /// when set (with SLURM_ARRAY_TASK_COUNT or NEGSWEEP_SHARDS). A shard does not write
        /// the summary: run `negsweep collect` once every shard is done.
        #[arg(long, value_name = "INDEX/COUNT")]
        shard: Option<String>,
    },
    /// Count done, failed and pending points, per shard.
    Status {
        /// The pipeline.
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Shards to count for. Default: from the array job's environment, else 1.
        #[arg(long)]
        shards: Option<usize>,
    },
    /// Rebuild results.arrow, the summary and best k from every finished point. Idempotent;
    /// safe while shards are still running (it reports the points finished so far).
    Collect(PipelineArgs),
    /// Measure training-step throughput against the GEMM peak, and per-point overhead.
    Bench {
        /// Seconds per step measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Pipeline whose points measure the per-point overhead (run into memory://).
        #[arg(long, default_value = "pipelines/quickstart.toml")]
        pipeline: PathBuf,
        /// Overrides for that pipeline, e.g. `--set sweep.seed=[0]`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Skip the overhead measurement.
        #[arg(long)]
        no_overhead: bool,
        /// Encoders to measure.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "embedding-bag,gru,mlp,cnn"
        )]
        encoders: Vec<String>,
        /// Negatives per anchor to measure.
        #[arg(long = "k", value_delimiter = ',', default_value = "1,16,128")]
        ks: Vec<usize>,
        /// Number format of the fully connected layers' products (`train.precision`).
        #[arg(long, value_enum, default_value = "f32")]
        precision: PrecisionArg,
        /// Compute threads (with `--ingest`, the ingest's threads). Default: every core (or
        /// RAYON_NUM_THREADS / SLURM_CPUS_PER_TASK when set).
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
        /// Print one JSON object per row instead of the table.
        #[arg(long)]
        json: bool,
        /// Instead: measure the streaming ingest of this text file (`.jsonl`, `.csv` or
        /// `.parquet`, columns `text` and `label`): MB/s and peak memory.
        #[arg(long, value_name = "FILE")]
        ingest: Option<PathBuf>,
        /// With `--ingest`: write into this folder and keep what was written
        /// (`d/examples.parquet`, `d/vocab.parquet`), to compare two versions' bytes.
        #[arg(long, value_name = "DIR", requires = "ingest")]
        keep: Option<PathBuf>,
        /// Instead: measure the ingest of this ImageFolder (`<class>/<file>.png`, stored as 32 x
        /// 32 RGB): images/s and peak memory.
        #[arg(long, value_name = "DIR")]
        ingest_images: Option<PathBuf>,
        /// With `--ingest-images`: first write this many synthetic 32 x 32 PNGs there.
        #[arg(long, value_name = "COUNT", requires = "ingest_images")]
        generate: Option<usize>,
        /// Instead: time the theory functions per value on the grid N in {2, 10, 100, 1000},
        /// k from 1 to 20 N.
        #[arg(long)]
        theory: bool,
        /// Instead: write this many finished points (copies of one trained point) into a
        /// temporary output and time `collect` over them, with its peak memory.
        #[arg(long, value_name = "POINTS")]
        collect: Option<usize>,
    },
    /// Print the collision-coverage theory at each k: for N uniform concepts, or for measured
    /// class counts or frequencies read from a file.
    Theory {
        /// Number of uniform concepts N.
        #[arg(long, value_parser = clap::value_parser!(u32).range(2..), required_unless_present = "rho", conflicts_with = "rho")]
        concepts: Option<u32>,
        /// File of per-concept counts or frequencies (numbers separated by spaces, commas or
        /// new lines; `name,count` lines keep the count).
        #[arg(long, value_name = "FILE")]
        rho: Option<PathBuf>,
        /// Negatives per anchor.
        #[command(flatten)]
        k: Ks,
    },
    /// Recommend a range of k: N and the class frequencies, then collision and coverage at
    /// each k. Given a pipeline file, for the concepts each of its N trains on, exactly as a
    /// run chooses them (the run's k* and this one agree); given an ingested dataset, for all
    /// of its labels.
    Advise {
        /// A pipeline file (`.toml`), or an ingested dataset: its folder under a run's
        /// `datasets/` (or its `examples.parquet`), as a path or object store URL.
        dataset: String,
        /// With a pipeline file: override a key before resolving (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Negatives per anchor.
        #[command(flatten)]
        k: Ks,
    },
    /// The answer with its uncertainty: per group of points differing only by k and seed, each
    /// k's mean with t and bootstrap intervals, paired comparisons with the best k (Holm),
    /// P(k is best), the one-standard-error k and the best set.
    Analyze {
        /// A pipeline file (`.toml`: its output's results), an output folder, or a
        /// `results.arrow` file, as a path or URL.
        target: String,
        /// Metric: mean_acc (the mean classifier), knn_acc, probe_top1 or test_loss.
        #[arg(long, default_value = "mean_acc")]
        metric: String,
        /// Bootstrap resamples of the seeds, 1 to 1,000,000.
        #[arg(long, default_value_t = 2000, value_parser = resamples_in_range)]
        resamples: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Choose k on all seeds but the M largest and report the chosen k's metric on those M
        /// (the accuracy of a k chosen on the same seeds is biased upward).
        #[arg(long, value_name = "M", default_value_t = 0)]
        holdout_seeds: usize,
    },
    /// Write the report of a sweep: one self-contained `report.html` with its figures inline
    /// (the metric against k per N, best k against N, P(k is best), collision and coverage
    /// against k with the theory, the metric per N and k), the analysis table and the
    /// provenance, plus each figure as `figures/<name>.svg` and `.png`.
    Report {
        /// A pipeline file (`.toml`: its output's results), an output folder, or a
        /// `results.arrow` file, as a path or URL.
        target: String,
        /// Folder (path or URL) to write into. Default: the output folder of TARGET (the
        /// folder of a `results.arrow` file).
        #[arg(long, value_name = "DIR")]
        out: Option<String>,
        /// Metric: mean_acc (the mean classifier), knn_acc, probe_top1 or test_loss.
        #[arg(long, default_value = "mean_acc")]
        metric: String,
        /// Bootstrap resamples of the seeds, 1 to 1,000,000.
        #[arg(long, default_value_t = 2000, value_parser = resamples_in_range)]
        resamples: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write (or check) the JSON Schema of pipeline files and the table layouts.
    Schema {
        /// Folder to write into.
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
        /// Fail if the files differ from what would be written.
        #[arg(long)]
        check: bool,
    },
}

/// `--resamples`: at least one (the bootstrap intervals and P(best) need one) and at most a
/// million (memory grows with resamples x k; more would not change a printed digit).
fn resamples_in_range(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err(format!("expected a count from 1 to 1000000, got `{s}`")),
    }
}

/// `train.precision` on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PrecisionArg {
    /// f32 operands and sums.
    F32,
    /// bf16 operands, f32 sums.
    Bf16,
}

impl From<PrecisionArg> for crate::spec::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Self::F32,
            PrecisionArg::Bf16 => Self::Bf16,
        }
    }
}

/// How many points run at once and how many threads each one gets.
#[derive(Debug, Clone, Copy)]
pub struct ThreadPlan {
    /// Concurrent points.
    pub jobs: usize,
    /// Compute threads per point.
    pub threads_per_job: usize,
    /// The cores the plan was made for ([`cores`] when it was made).
    pub cores: usize,
}

impl ThreadPlan {
    /// A warning when the plan runs more threads than this process has cores: each then waits
    /// on the others, and steps run slower than with fewer.
    pub fn oversubscribed(&self) -> Option<String> {
        let (threads, cores) = (self.jobs * self.threads_per_job, self.cores);
        (threads > cores).then(|| {
            format!(
                "{} x {} = {threads} compute threads on {} (at most as many threads as cores \
                 run fastest)",
                crate::count(self.jobs, "job"),
                crate::count(self.threads_per_job, "thread"),
                crate::count(cores, "core")
            )
        })
    }
}

/// A count of jobs or threads: a whole number, 1 or more.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The cores this process may use: the machine's (cgroup quotas included), or fewer when Slurm
/// allotted fewer or RAYON_NUM_THREADS asks for fewer.
pub fn cores() -> usize {
    // Slurm without CPU binding does not shrink what the process sees.
    let visible = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let allotted = THREAD_VARIABLES
        .iter()
        .filter_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .min();
    allotted.map_or(visible, |n| n.min(visible))
}

/// The environment variables that can shrink [`cores`].
const THREAD_VARIABLES: [&str; 2] = ["SLURM_CPUS_PER_TASK", "RAYON_NUM_THREADS"];

/// A warning for each of [`cores`]' variables that is set to something other than a positive
/// whole number, which [`cores`] ignores (an empty one counts as unset).
pub fn ignored_thread_settings() -> Vec<String> {
    THREAD_VARIABLES
        .iter()
        .filter_map(|v| {
            let value = std::env::var(v).ok()?;
            let n = value.trim();
            (!n.is_empty() && !n.parse::<usize>().is_ok_and(|n| n > 0))
                .then(|| format!("{v}={value:?} is not a positive whole number, so it is ignored"))
        })
        .collect()
}

/// Splits the cores between concurrent points: cores / jobs threads each, at least one, so
/// `jobs x threads` exceeds the cores only where `--jobs` (or `bench --threads`) asks for more
/// than there are; [`ThreadPlan::oversubscribed`] says so.
pub fn thread_plan(args: &Args) -> ThreadPlan {
    let cores = cores();
    if let Command::Bench {
        threads: Some(t), ..
    } = &args.command
    {
        return ThreadPlan {
            jobs: 1,
            threads_per_job: (*t).max(1),
            cores,
        };
    }
    let jobs = match &args.command {
        Command::Run { jobs: Some(j), .. } => (*j).max(1),
        // Benchmarks give every core to one computation at a time.
        Command::Bench { .. } => 1,
        _ => cores,
    };
    ThreadPlan {
        jobs,
        threads_per_job: (cores / jobs).max(1),
        cores,
    }
}

/// Sets up `tracing` (stderr) and the progress bar it must not tear.
pub fn init_logging(args: &Args) -> BarProgress {
    use tracing_subscriber::EnvFilter;
    let level = match (args.quiet, args.verbose) {
        (true, _) => "warn",
        (false, 0) => "negsweep=info,warn",
        (false, 1) => "negsweep=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let progress = BarProgress::new(args.quiet);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(progress.writer())
        .try_init();
    progress
}

/// Runs the parsed command; returns the process exit code.
pub async fn run(args: Args, threads: ThreadPlan, progress: BarProgress) -> u8 {
    guarded(commands::dispatch(args, threads, progress), interrupts()).await
}

/// The first SIGINT or SIGTERM; a second one ends the process at once.
fn interrupts() -> impl std::future::Future<Output = i32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let (tx, rx) = tokio::sync::oneshot::channel();
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for signal in signals.forever() {
                    match tx.take() {
                        Some(tx) => {
                            let _ = tx.send(signal);
                        }
                        // Asked twice: stop cleaning up.
                        None => std::process::exit(128 + signal),
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot catch interrupts: locks may outlive one"),
    }
    async move {
        match rx.await {
            Ok(signal) => signal,
            Err(_) => std::future::pending().await,
        }
    }
}

/// How a command ended.
enum Ended {
    /// It returned, or panicked.
    Returned(std::thread::Result<crate::Result<u8>>),
    /// A signal interrupted it.
    Interrupted(i32),
}

/// Runs a command to its exit code. A panic is a bug like any other internal error, and an
/// interrupt (SIGINT, SIGTERM) stops the command where it is: either way every build lock this
/// command holds is given up, the temporary files in their folders are removed, and the exit
/// code is the documented one (70 for a panic, 128 + the signal for an interrupt: 130, 143).
async fn guarded(
    command: impl std::future::Future<Output = crate::Result<u8>>,
    interrupt: impl std::future::Future<Output = i32>,
) -> u8 {
    use futures::FutureExt;
    let (scope, ended) = crate::stages::lock::in_scope(async {
        tokio::select! {
            outcome = std::panic::AssertUnwindSafe(command).catch_unwind() => Ended::Returned(outcome),
            signal = interrupt => Ended::Interrupted(signal),
        }
    })
    .await;
    let outcome = match ended {
        Ended::Returned(outcome) => outcome,
        Ended::Interrupted(signal) => {
            crate::stages::lock::release_all(scope).await;
            eprintln!("interrupted (signal {signal}): build locks released, partial files removed");
            return u8::try_from(128 + signal).unwrap_or(exit::INTERNAL);
        }
    };
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            let code = exit::of(&e);
            eprintln!("error: {e}");
            code
        }
        Err(panic) => {
            crate::stages::lock::release_all(scope).await;
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let e = crate::Error::Internal(what);
            eprintln!("error: {e}");
            exit::of(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::lock::BuildLock;
    use crate::storage::Store;

    #[test]
    fn more_threads_than_cores_is_said_and_as_many_is_not() {
        let fits = ThreadPlan {
            jobs: 2,
            threads_per_job: 2,
            cores: 4,
        };
        assert_eq!(fits.oversubscribed(), None);
        let over = ThreadPlan {
            jobs: 3,
            threads_per_job: 1,
            cores: 2,
        };
        assert_eq!(
            over.oversubscribed().as_deref(),
            Some(
                "3 jobs x 1 thread = 3 compute threads on 2 cores (at most as many threads as \
                 cores run fastest)"
            )
        );
        assert_eq!(at_least_one("0"), Err("must be at least 1".to_owned()));
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("-1").is_err());
    }

    #[tokio::test]
    async fn a_panic_exits_70_and_releases_every_lock() {
        let store = Store::open_str("memory://guarded-test/out", &Default::default()).unwrap();
        let held = store.clone();
        let never = std::future::pending::<i32>();
        let code = guarded(
            async move {
                let _lock = BuildLock::acquire(&held, "datasets/x").await?;
                let names: Vec<&str> = Vec::new();
                // A broken invariant, as `every class is named` once was.
                let first = names.first().expect("every class is named");
                Ok(first.len() as u8)
            },
            never,
        )
        .await;
        assert_eq!(code, exit::INTERNAL);
        assert!(
            !store.exists("datasets/x/_building.json").await.unwrap(),
            "the lock is gone, so the next run need not wait"
        );
        // An interrupt while a lock is held: the lock and the temporaries in its folder go.
        let dir = tempfile::tempdir().unwrap();
        let local = Store::open_str(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
        let held = local.clone();
        let tmp = dir.path().join("pools/p/pool.parquet#7");
        let tmp2 = tmp.clone();
        let code = guarded(
            async move {
                let _lock = BuildLock::acquire(&held, "pools/p").await?;
                std::fs::write(&tmp2, b"half written").unwrap();
                let _ = entered_tx.send(());
                std::future::pending::<crate::Result<u8>>().await
            },
            async move {
                let _ = entered.await;
                2
            },
        )
        .await;
        assert_eq!(code, 130);
        assert!(!local.exists("pools/p/_building.json").await.unwrap());
        assert!(!tmp.exists(), "the partial file is removed");
        assert_eq!(guarded(async { Ok(0) }, std::future::pending()).await, 0);
        let e = guarded(
            async { Err(crate::Error::Usage("x".into())) },
            std::future::pending(),
        )
        .await;
        assert_eq!(e, exit::CONFIG);
    }
}
