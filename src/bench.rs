//! `negsweep bench`: training-step throughput of the shipped encoders against the machine's
//! measured GEMM peak, and the per-point overhead of a small sweep.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Result;
use crate::data::Inputs;
use crate::exec::{self, NoProgress, RunOptions};
use crate::model::text::TokenBatch;
use crate::model::{Cnn, Encoder, EncoderConfig, seeded};
use crate::objective::{LossConfig, Triplets};
use crate::plan::Plan;
use crate::spec::{EncoderKind, Loss};
use crate::storage::StoreUrl;
use crate::train::FusedAdamW;
use crate::train::{Dedup, Step, batch_loss};

/// Measured f32 GEMM rate of this machine, GFLOP/s (best of a few square products).
pub fn gemm_peak(size: usize, reps: usize) -> Result<f64> {
    let dev = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (size, size), &dev)?;
    let b = Tensor::randn(0f32, 1.0, (size, size), &dev)?;
    a.matmul(&b)?; // warm-up
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        a.matmul(&b)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (size as f64).powi(3) / best / 1e9)
}

/// One row of the step benchmark.
#[derive(Debug, Clone)]
pub struct StepBench {
    /// Encoder name.
    pub encoder: &'static str,
    /// Encoder shape, `input -> hidden -> dim`.
    pub shape: String,
    /// Anchors per step.
    pub batch: usize,
    /// Negatives per anchor.
    pub k: usize,
    /// Optimiser steps per second.
    pub steps_per_s: f64,
    /// Examples the loss sees per second (`B (k + 2)` per step).
    pub examples_per_s: f64,
    /// Distinct examples encoded per step (mean).
    pub distinct: f64,
    /// Achieved GFLOP/s (forward + backward of the encoder on distinct rows, and the logits).
    pub gflops: f64,
}

/// Matmul FLOPs of one step: the encoder's forward pass on `u` distinct rows, its backward pass
/// (each layer's weight gradient, and its input gradient except for a first layer fed with
/// data), and the `b (k + 1)` logits of length dim (forward and both gradients). The GRU's
/// input gates are one product per vocabulary word or per token, whichever is fewer (see
/// `model::gru`), outside the per-row count; so is the embedding bag's projection when the
/// step projects the vocabulary instead of each example (see `model::bag`).
fn step_flops(cfg: &EncoderConfig, u: f64, b: f64, k: f64) -> f64 {
    let (i, h, d) = (cfg.input as f64, cfg.hidden as f64, cfg.dim as f64);
    // The bag's choice, as `EmbeddingBag::per_word` makes it for 24 tokens an example.
    let bag_per_word = cfg.dropout == 0.0
        && 2.0 * 24.0 * u * d + 3.0 * i * h * d < 2.0 * 24.0 * u * h + 3.0 * u * h * d;
    let per_vocabulary = match cfg.kind {
        EncoderKind::Gru => 2.0 * 3.0 * i.min(24.0 * u) * h * 3.0 * h,
        EncoderKind::EmbeddingBag if bag_per_word => 2.0 * 3.0 * i * h * d,
        _ => 0.0,
    };
    // (first layer on data: forward + weight gradient, the rest: forward + both gradients)
    let (first, rest) = match cfg.kind {
        // The bag sums 24 rows per example (see `step_bench`) and scatters back: embedding
        // rows, or the projected table's, which is `dim` wide.
        EncoderKind::EmbeddingBag if bag_per_word => (0.0, 24.0 * d),
        EncoderKind::EmbeddingBag => (0.0, 24.0 * h + h * d),
        EncoderKind::Gru => (0.0, 24.0 * 3.0 * h * h + h * d),
        EncoderKind::Mlp => (i * h, h * d),
        EncoderKind::Cnn => {
            let mut side = (cfg.input as f64 / cfg.in_channels as f64).sqrt();
            let mut cin = cfg.in_channels as f64;
            let mut macs = Vec::new();
            for &c in &cfg.channels {
                macs.push(side * side * 9.0 * cin * c as f64);
                side /= 2.0;
                cin = c as f64;
            }
            (
                macs[0],
                macs[1..].iter().sum::<f64>() + side * side * cin * d,
            )
        }
    };
    2.0 * u * (2.0 * first + 3.0 * rest) + 3.0 * 2.0 * b * (k + 1.0) * d + per_vocabulary
}

/// Times training steps of `cfg` with `batch` anchors and `k` uniform negatives drawn from
/// `examples` random inputs, for about `seconds` (best of three windows). `stock` runs a CNN through candle's `conv2d`.
pub fn step_bench(
    cfg: &EncoderConfig,
    examples: usize,
    batch: usize,
    k: usize,
    seconds: f64,
    stock: bool,
) -> Result<StepBench> {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = match cfg.kind {
        // 24 random tokens per example.
        EncoderKind::EmbeddingBag | EncoderKind::Gru => {
            let mut all = TokenBatch {
                offsets: vec![0],
                tokens: Vec::with_capacity(examples * 24),
            };
            for _ in 0..examples {
                all.tokens
                    .extend((0..24).map(|_| rng.random_range(0..cfg.input as u32)));
                all.offsets.push(all.tokens.len());
            }
            Inputs::Tokens {
                vocab: cfg.input,
                all,
                device: dev.clone(),
            }
        }
        EncoderKind::Mlp | EncoderKind::Cnn => {
            Inputs::Dense(Tensor::rand(0f32, 1.0, (examples, cfg.input), &dev)?)
        }
    };
    let rows = 64 * batch;
    let anchors: Vec<u32> = (0..rows)
        .map(|_| rng.random_range(0..examples as u32))
        .collect();
    let positives: Vec<u32> = (0..rows)
        .map(|_| rng.random_range(0..examples as u32))
        .collect();
    let negatives: Vec<u32> = (0..rows * k)
        .map(|_| rng.random_range(0..examples as u32))
        .collect();
    let t = Triplets {
        anchors: &anchors,
        positives: &positives,
        negatives: &negatives,
        k_max: k,
    };
    let varmap = VarMap::new();
    let enc = if stock && cfg.kind == EncoderKind::Cnn {
        Encoder::from(Cnn::new(cfg, seeded(&varmap, 0, &dev))?.stock())
    } else {
        Encoder::new(cfg, 0, &varmap, &dev)?
    };
    let mut opt = FusedAdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let loss = LossConfig {
        loss: Loss::Nce,
        temperature: 1.0,
        tau_plus: 0.0,
        beta: 0.0,
        negative_weight: 1.0,
    };
    let mut dedup = Dedup::new(examples);
    let mut step = |s: usize, dedup: &mut Dedup| -> Result<usize> {
        let lo = (s * batch) % rows;
        let step = Step {
            k,
            loss,
            views: None,
            false_negatives: None,
            learned: None,
        };
        let l = batch_loss(&enc, &x, &t, lo..lo + batch, &step, dedup, None)?;
        opt.backward_step(&l)?;
        Ok(dedup.last_distinct())
    };
    step(0, &mut dedup)?;
    // Best of three windows: this kind of machine has transient slowdowns, and the best window
    // is the repeatable figure (as for the GEMM peak).
    let (mut s, mut total_steps, mut distinct) = (0usize, 0usize, 0usize);
    let mut steps_per_s = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0usize;
        while n < 2 || start.elapsed().as_secs_f64() < seconds / 3.0 {
            s += 1;
            distinct += step(s, &mut dedup)?;
            n += 1;
        }
        total_steps += n;
        steps_per_s = steps_per_s.max(n as f64 / start.elapsed().as_secs_f64());
    }
    let u = distinct as f64 / total_steps as f64;
    Ok(StepBench {
        encoder: if stock {
            "cnn (stock)"
        } else {
            cfg.kind.as_str()
        },
        shape: match cfg.kind {
            EncoderKind::Cnn => format!(
                "{}x{} c{:?} -> {}",
                cfg.in_channels,
                cfg.input / cfg.in_channels,
                cfg.channels,
                cfg.dim
            ),
            _ => format!("{} -> {} -> {}", cfg.input, cfg.hidden, cfg.dim),
        },
        batch,
        k,
        steps_per_s,
        examples_per_s: steps_per_s * (batch * (k + 2)) as f64,
        distinct: u,
        gflops: steps_per_s * step_flops(cfg, u, batch as f64, k as f64) / 1e9,
    })
}

/// Per-point overhead of a sweep: everything in a point that is not an optimiser step.
#[derive(Debug, Clone)]
pub struct OverheadBench {
    /// Points computed.
    pub points: usize,
    /// Wall time of the point phase, seconds.
    pub points_seconds: f64,
    /// Time in optimiser steps, seconds.
    pub step_seconds: f64,
    /// Shared stages (ingest, concepts, pools), seconds, once per run.
    pub shared_seconds: f64,
    /// Wall time of the whole run, summary included, seconds.
    pub wall_seconds: f64,
}

impl OverheadBench {
    /// Mean overhead per point in milliseconds: point-phase wall time not spent in steps.
    pub fn per_point_ms(&self) -> f64 {
        1e3 * (self.points_seconds - self.step_seconds) / self.points.max(1) as f64
    }
}

/// Runs `plan` once, one point at a time, into a fresh in-memory store, and splits its time.
pub async fn overhead(plan: &Plan, threads: usize) -> Result<OverheadBench> {
    let mut plan = plan.clone();
    let unique = format!("memory://bench-{}/", std::process::id());
    plan.output = StoreUrl::parse(&unique).map_err(crate::Error::Internal)?;
    let start = Instant::now();
    let report = exec::run(
        &plan,
        RunOptions {
            shard: None,
            jobs: 1,
            threads_per_job: threads,
        },
        &NoProgress,
    )
    .await?;
    Ok(OverheadBench {
        points: report.computed,
        points_seconds: report.points_seconds,
        step_seconds: report.step_seconds,
        shared_seconds: report.shared_seconds,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// A streaming text ingest, measured.
#[derive(Debug)]
pub struct IngestBench {
    /// Input size.
    pub megabytes: f64,
    /// Wall time of both passes (vocabulary count, then tokenize and write).
    pub seconds: f64,
    /// What was ingested.
    pub report: crate::stages::ingest_text::TextIngest,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
}

/// Ingests `file` (format from its extension, columns `text` and `label`, default tokenizer)
/// into a temporary folder, or into `keep` and left there, and measures throughput and peak
/// memory.
pub async fn ingest(file: &std::path::Path, keep: Option<&std::path::Path>) -> Result<IngestBench> {
    use crate::data::sources::TableFormat;
    use crate::data::tokenize::{TokenizeConfig, VocabMode};
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match extension.as_deref() {
        Some("jsonl" | "ndjson") => TableFormat::Jsonl,
        Some("csv") => TableFormat::Csv,
        Some("parquet") => TableFormat::Parquet,
        _ => {
            return Err(crate::Error::data(
                file.display(),
                "expected a .jsonl (or .ndjson), .csv or .parquet file",
            ));
        }
    };
    let bytes = std::fs::metadata(file)
        .map_err(|e| crate::Error::data(file.display(), e))?
        .len();
    let source = crate::plan::DataSource::Table(crate::plan::kinds::Table {
        format,
        url: std::path::absolute(file)
            .map_err(|e| crate::Error::data(file.display(), e))?
            .display()
            .to_string(),
        text_column: "text".into(),
        label_column: "label".into(),
        tokenize: TokenizeConfig {
            mode: VocabMode::Counted {
                min_count: 2,
                max_vocab: 30_000,
            },
            max_tokens: 64,
        },
    });
    let out = match keep {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("negsweep-ingest-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out).map_err(|e| crate::Error::data(out.display(), e))?;
    // A local folder and file: no cloud store, so the default settings.
    let settings = crate::storage::StorageSettings::default();
    let store = crate::storage::Store::open_str(&out.display().to_string(), &settings)?;
    let start = Instant::now();
    let report = crate::stages::ingest_text::write(&store, "d", &source, &settings).await;
    let seconds = start.elapsed().as_secs_f64();
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
    Ok(IngestBench {
        megabytes: bytes as f64 / 1e6,
        seconds,
        report: report?,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// What `bench --collect` measured.
#[derive(Debug, Clone)]
pub struct CollectBench {
    /// Finished points collected.
    pub points: usize,
    /// Wall time of `collect`, seconds.
    pub seconds: f64,
    /// Time spent writing the result files first, seconds.
    pub setup_seconds: f64,
    /// Peak resident memory of the `negsweep collect` process, MB.
    pub peak_rss_mb: f64,
}

/// Writes `points` finished points into a temporary output (one tiny point trained for real,
/// its result file copied under every other point's id and partition) and times `collect` over
/// them: the report's cost as a sweep grows.
pub async fn collect(points: usize) -> Result<CollectBench> {
    use futures::{StreamExt, TryStreamExt};
    let out = std::env::temp_dir().join(format!("negsweep-collect-bench-{}", std::process::id()));
    let ks = points.clamp(1, 1000);
    let seeds = points.div_ceil(ks);
    let text = format!(
        r#"
[pipeline]
name = "collect-bench"
output = "{}"
[[datasets]]
kind = "synthetic-text"
name = "bench"
concepts = 8
examples-per-concept = 12
vocab = 64
length = 8
[train]
dim = 4
hidden = 8
epochs = 1
checkpoints = false
[eval]
probe-epochs = 0
[negatives]
k-max = 1
[sweep]
k = [{}]
seed = [{}]
n = [4]
"#,
        out.display(),
        (1..=ks)
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        (0..seeds)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every point's k is within k-max only for the one trained point: the others are copies.
    let text = text.replace("k-max = 1", &format!("k-max = {ks}"));
    let spec = crate::spec::PipelineSpec::parse("collect-bench", &text)?;
    let mut plan = crate::plan::resolve(&spec, "collect-bench")?;
    plan.points.truncate(points);
    let start = Instant::now();
    let mut one = plan.clone();
    one.points.truncate(1);
    let opts = crate::exec::RunOptions {
        jobs: 1,
        threads_per_job: 1,
        shard: Some(crate::exec::Shard::new(0, 1, "bench")?),
    };
    crate::exec::run(&one, opts, &crate::exec::NoProgress).await?;
    let store = crate::storage::Store::open(&plan.output, &plan.storage)?;
    let ds = &plan.datasets[0];
    let first = crate::stages::layout::result_file(ds, &plan.points[0], 4);
    let bytes = store
        .get(&first)
        .await?
        .ok_or_else(|| crate::Error::Internal("the trained point wrote no result".into()))?;
    futures::stream::iter(plan.points.iter().skip(1))
        .map(|p| {
            let (store, bytes) = (store.clone(), bytes.clone());
            let rel = crate::stages::layout::result_file(ds, p, 4);
            async move { store.put(&rel, bytes).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let setup_seconds = start.elapsed().as_secs_f64();
    // `negsweep collect` itself, as a user runs it: its own process, its own peak memory.
    let file = out.join("pipeline.toml");
    std::fs::write(&file, &text).map_err(|e| crate::Error::data(file.display(), e))?;
    let exe = std::env::current_exe().map_err(|e| crate::Error::Internal(e.to_string()))?;
    let start = Instant::now();
    let status = std::process::Command::new(exe)
        .args(["collect", "-q"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| crate::Error::Internal(format!("cannot run collect: {e}")))?;
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    if !status.success() {
        return Err(crate::Error::Internal(format!(
            "collect exited with {status}"
        )));
    }
    Ok(CollectBench {
        points: plan.points.len(),
        seconds,
        setup_seconds,
        peak_rss_mb: children_peak_rss_mb(),
    })
}

/// Peak resident set size of the largest waited-for child process, in MB.
fn children_peak_rss_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as f64 / 1024.0
}

/// Peak resident set size of this process so far, in MB.
fn peak_rss_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    // ru_maxrss is in kilobytes on Linux.
    usage.ru_maxrss as f64 / 1024.0
}

/// Writes `count` synthetic 32 x 32 grey PNG images as an ImageFolder (100 classes) under `dir`.
pub fn generate_image_folder(dir: &std::path::Path, count: usize) -> Result<()> {
    let per = count.div_ceil(100);
    let ex = crate::data::synthetic::image(100, per as u32, 32, 0.5, 0);
    let crate::data::Features::Pixels { data, .. } = &ex.features else {
        unreachable!("images")
    };
    for (i, (px, &label)) in data.chunks(32 * 32).zip(&ex.labels).take(count).enumerate() {
        let class = dir.join(format!("class{label:03}"));
        std::fs::create_dir_all(&class).map_err(|e| crate::Error::data(class.display(), e))?;
        let path = class.join(format!("{i:06}.png"));
        std::fs::write(&path, crate::data::image_files::encode_png(px, 32)?)
            .map_err(|e| crate::Error::data(path.display(), e))?;
    }
    Ok(())
}

/// An ImageFolder ingest, measured.
#[derive(Debug)]
pub struct ImageIngestBench {
    /// Images decoded.
    pub images: usize,
    /// Wall time.
    pub seconds: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
}

/// Reads the ImageFolder at `dir` (32 x 32 RGB) and measures throughput and peak memory.
pub async fn ingest_images(dir: &std::path::Path) -> Result<ImageIngestBench> {
    // A local folder: no cloud store, so the default settings.
    let store = crate::storage::Store::open_str(
        &dir.display().to_string(),
        &crate::storage::StorageSettings::default(),
    )?;
    let start = Instant::now();
    let (ex, _) =
        crate::data::image_ingest::image_folder(&store, 32, crate::data::image_files::Color::Rgb)
            .await?;
    Ok(ImageIngestBench {
        images: ex.len(),
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Per-value cost of the theory functions.
#[derive(Debug, Clone)]
pub struct TheoryBench {
    /// Function name, values timed, median and largest nanoseconds per value.
    pub rows: Vec<(&'static str, usize, f64, f64)>,
}

impl TheoryBench {
    /// As printed by `negsweep bench --theory`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<44} {:>7} {:>12} {:>12}\n",
            "function (N in 2,10,100,1000; k 1..20N)", "values", "median us", "max us"
        );
        for (name, values, median, max) in &self.rows {
            out.push_str(&format!(
                "{name:<44} {values:>7} {:>12.2} {:>12.2}\n",
                median / 1e3,
                max / 1e3
            ));
        }
        out
    }
}

/// Times each theory function on every (N, k) of the grid N in {2, 10, 100, 1000} with k
/// on a geometric ladder from 1 to 20 N: the best of 5 runs per value, then the median and
/// the largest over values.
pub fn theory() -> TheoryBench {
    use crate::theory as t;
    use std::hint::black_box;
    let mut grid = Vec::new();
    for n in [2u32, 10, 100, 1000] {
        let mut k = 1.0f64;
        while k <= f64::from(20 * n) {
            grid.push((n, k as u32));
            k = (k * 1.15).max(k + 1.0);
        }
    }
    let time = |f: &dyn Fn(u32, u32) -> f64| {
        let mut ns: Vec<f64> = grid
            .iter()
            .map(|&(n, k)| {
                (0..5)
                    .map(|_| {
                        let start = Instant::now();
                        black_box(f(black_box(n), black_box(k)));
                        start.elapsed().as_nanos() as f64
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        ns.sort_by(f64::total_cmp);
        (ns.len(), ns[ns.len() / 2], ns[ns.len() - 1])
    };
    let uniform = |n: u32| vec![1.0 / f64::from(n); n as usize];
    // Measured-like counts: sizes 20..56 cycling, as after a min-examples filter.
    let skewed = |n: u32| (0..n).map(|i| 20 + u64::from(i % 37)).collect::<Vec<u64>>();
    let rhos: std::collections::HashMap<u32, Vec<f64>> =
        [2, 10, 100, 1000].map(|n| (n, uniform(n))).into();
    let counts: std::collections::HashMap<u32, Vec<u64>> =
        [2, 10, 100, 1000].map(|n| (n, skewed(n))).into();
    let mut rows = Vec::new();
    let mut add = |name, f: &dyn Fn(u32, u32) -> f64| {
        let (v, m, x) = time(f);
        rows.push((name, v, m, x));
    };
    add("coverage_probability (uniform)", &|n, k| {
        t::coverage_probability(n, k)
    });
    add("coverage_probability_counts (measured)", &|n, k| {
        t::coverage_probability_counts(&counts[&n], k)
    });
    add("collision_probability", &|n, k| {
        t::collision_probability(&rhos[&n], k)
    });
    add("ash_coefficient", &|n, k| {
        t::ash_coefficient(n, k, t::collision_probability(&rhos[&n], k))
    });
    TheoryBench { rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs()
    }

    /// The embedding bag's FLOPs follow the order its step runs: the vocabulary's table where
    /// that is fewer multiply-adds, each example's mean otherwise and under dropout.
    #[test]
    fn the_bag_counts_the_order_its_step_runs() {
        let cfg = EncoderConfig::dense(EncoderKind::EmbeddingBag, 512, 256, 128);
        let (u, b, k) = (2766.0, 256.0, 16.0);
        let logits = 6.0 * b * (k + 1.0) * 128.0;
        let table = 6.0 * 512.0 * 256.0 * 128.0 + 6.0 * u * 24.0 * 128.0;
        assert!(close(step_flops(&cfg, u, b, k), table + logits));
        let per_example = 6.0 * u * (24.0 * 256.0 + 256.0 * 128.0);
        let mut wide = cfg.clone();
        wide.input = 30_000;
        assert!(close(step_flops(&wide, u, b, k), per_example + logits));
        let mut dropout = cfg;
        dropout.dropout = 0.1;
        assert!(close(step_flops(&dropout, u, b, k), per_example + logits));
    }
}
