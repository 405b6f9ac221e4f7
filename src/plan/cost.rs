//! Training-time estimates of sweep points, from their settings and the machine's measured GEMM
//! rate: the floating-point work of their optimiser steps at the efficiency negsweep's step
//! reaches (`negsweep bench`: about half the GEMM rate), plus the per-point overhead.
//!
//! An estimate for planning, good to a factor of about two: the step's work is counted as
//! `6 x distinct rows x multiply-adds per row` (forward, and backward with both gradients);
//! evaluation, the probe and storage are the fixed overhead.

use super::{DataSource, Plan, SweepPoint};
use crate::spec::EncoderKind;

/// Fraction of the GEMM rate a training step reaches (`negsweep bench` measures 45-80%).
const STEP_EFFICIENCY: f64 = 0.5;
/// Seconds each point spends outside its optimiser steps (evaluation, probe, writing), as
/// measured by `negsweep bench`'s per-point overhead.
const OVERHEAD_S: f64 = 0.05;

/// Multiply-adds per example through the encoder of `p` on `source`.
fn macs_per_row(source: &DataSource, p: &SweepPoint) -> f64 {
    let (hidden, dim) = (f64::from(p.hidden), f64::from(p.dim));
    let s = super::memory::shape(source);
    let (tokens, side, channels) = (s.tokens, s.side, s.channels);
    match p.encoder {
        // The bag sums token rows: the projection dominates.
        EncoderKind::EmbeddingBag => tokens * hidden + hidden * dim,
        EncoderKind::Gru => tokens * 6.0 * hidden * hidden + hidden * dim,
        EncoderKind::Mlp => side * side * channels * hidden + hidden * dim,
        EncoderKind::Cnn => {
            let (mut s, mut c_in, mut total) = (side, channels, 0.0);
            for &c in &p.channels {
                total += s * s * 9.0 * c_in * f64::from(c);
                c_in = f64::from(c);
                s /= 2.0;
            }
            total + s * s * c_in * dim
        }
    }
}

/// The estimated time of point `p` of `plan`, seconds, at `gflops` GFLOP/s of GEMM; `None` when
/// the dataset's size is known only once it is read.
pub fn seconds(plan: &Plan, p: &SweepPoint, gflops: f64) -> Option<f64> {
    let source = &plan.datasets[p.dataset].source;
    let examples = super::memory::shape(source).examples?;
    let share = match (p.n, source.concepts()) {
        (0, _) | (_, None) => 1.0,
        (n, Some(c)) => (f64::from(n) / f64::from(c)).min(1.0),
    };
    let anchors = examples * share * (1.0 - plan.shared.test_fraction);
    let batch = f64::from(p.batch_size);
    let steps = (f64::from(p.epochs) * anchors / batch).ceil();
    let rows = (batch * (f64::from(p.k) + 2.0)).min(examples * share);
    let flops = steps * 6.0 * rows * macs_per_row(source, p);
    Some(flops / (gflops * 1e9 * STEP_EFFICIENCY) + OVERHEAD_S)
}

/// `s` seconds for people: `0.4 s`, `12 s`, `3.2 min`, `5.1 h`.
pub fn duration(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mlp_point_costs_its_steps_work() {
        let text = r#"
[pipeline]
name = "t"
[[datasets]]
kind = "synthetic-image"
name = "s"
concepts = 10
examples-per-concept = 40
size = 8
[train]
dim = 4
hidden = 16
batch-size = 10
epochs = 2
[sweep]
k = [3]
n = [5]
seed = [0]
"#;
        let spec = crate::spec::PipelineSpec::parse("t", text).unwrap();
        let plan = crate::plan::resolve(&spec, "t").unwrap();
        // 5 of 10 concepts: 200 examples, 150 in training; 2 epochs of 10 = 30 steps; 10 x 5
        // rows; 64 x 16 + 16 x 4 multiply-adds per row; 6 flops per multiply-add and row.
        let flops = 30.0 * 6.0 * 50.0 * (64.0 * 16.0 + 16.0 * 4.0);
        let s = seconds(&plan, &plan.points[0], 1.0).unwrap();
        assert!((s - (flops / 0.5e9 + OVERHEAD_S)).abs() < 1e-12, "{s}");
        assert_eq!(duration(0.42), "0.4 s");
        assert_eq!(duration(200.0), "3.3 min");
    }
}
