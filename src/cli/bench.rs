//! `negsweep bench`: the training-step table against the measured GEMM peak, and the
//! per-point overhead of a pipeline's sweep.
#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use super::commands::load;
use super::exit;
use super::{PipelineArgs, ThreadPlan};
use crate::Result;

pub(super) async fn bench(
    seconds: f64,
    pipeline: &PipelineArgs,
    no_overhead: bool,
    (encoders, ks): (&[String], &[usize]),
    precision: crate::spec::Precision,
    threads: ThreadPlan,
    json: bool,
) -> Result<u8> {
    use crate::bench;
    use crate::model::EncoderConfig;
    use crate::spec::EncoderKind;

    let plan = if no_overhead {
        None
    } else {
        Some(load(pipeline)?)
    };
    // This kind of machine speeds up and slows down over minutes, so each row is set against a
    // GEMM peak measured right before it.
    if !json {
        println!(
            "% peak: against an f32 GEMM (1536 x 1536 x 1536, {}, best of 4) measured just before each row\n",
            crate::count(threads.threads_per_job, "thread")
        );
        println!(
            "{:<14} {:<18} {:>4} {:>4} {:>9} {:>12} {:>14} {:>8} {:>9} {:>7}",
            "encoder",
            "shape",
            "B",
            "k",
            "steps/s",
            "examples/s",
            "distinct/step",
            "GFLOP/s",
            "peak",
            "% peak"
        );
    }
    let shapes = [
        EncoderConfig::dense(EncoderKind::EmbeddingBag, 512, 256, 128),
        EncoderConfig::dense(EncoderKind::Gru, 512, 256, 128),
        EncoderConfig::dense(EncoderKind::Mlp, 256, 512, 128),
    ]
    .map(|cfg| EncoderConfig { precision, ..cfg });
    let cnn = EncoderConfig {
        kind: EncoderKind::Cnn,
        input: 3 * 32 * 32,
        hidden: 0,
        dim: 128,
        channels: vec![16, 32],
        in_channels: 3,
        dropout: 0.0,
        precision,
    };
    let mut runs: Vec<(&EncoderConfig, usize, bool)> = Vec::new();
    for cfg in shapes.iter().chain([&cnn]) {
        runs.extend(ks.iter().map(|&k| (cfg, k, false)));
    }
    // The stock CNN (candle's conv2d) shows what the fused op gains; json rows leave it out.
    if !json && ks.contains(&16) {
        runs.push((&cnn, 16, true));
    }
    runs.retain(|(cfg, _, _)| encoders.iter().any(|e| e == cfg.kind.as_str()));
    for (cfg, k, stock) in runs {
        let peak = bench::gemm_peak(1536, 4)?;
        let r = bench::step_bench(cfg, 4096, 256, k, seconds, stock)?;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "encoder": r.encoder,
                    "shape": r.shape,
                    "batch": r.batch,
                    "k": r.k,
                    "threads": threads.threads_per_job,
                    "precision": precision.as_str(),
                    "steps_per_s": r.steps_per_s,
                    "distinct": r.distinct,
                    "gflops": r.gflops,
                    "gemm_peak": peak,
                })
            );
            continue;
        }
        println!(
            "{:<14} {:<18} {:>4} {:>4} {:>9.2} {:>12.0} {:>14.0} {:>8.1} {:>9.1} {:>6.1}%",
            r.encoder,
            r.shape,
            r.batch,
            r.k,
            r.steps_per_s,
            r.examples_per_s,
            r.distinct,
            r.gflops,
            peak,
            100.0 * r.gflops / peak
        );
    }
    if let Some(plan) = plan {
        let o = bench::overhead(&plan, threads.threads_per_job).await?;
        println!(
            "\nper-point overhead, {} ({}, one at a time, into memory://): {:.1} ms per point\n  \
             point phase {:.2} s, of which optimiser steps {:.2} s; shared stages {:.2} s; whole run {:.2} s",
            pipeline.file.display(),
            crate::count(o.points, "point"),
            o.per_point_ms(),
            o.points_seconds,
            o.step_seconds,
            o.shared_seconds,
            o.wall_seconds
        );
    }
    Ok(exit::OK)
}
