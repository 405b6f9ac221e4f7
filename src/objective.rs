//! What the loss, the evaluation and the negative samplers share: a point's loss settings and
//! the representation they imply ([`LossConfig`], [`represent`]), and a run of pool rows as
//! example ids ([`Triplets`]).
//!
//! It sits below `train`, `eval` and `negatives`: the training loop asks a `negatives::Sampler`
//! for triplets, and the hard miner represents candidates as the loss does.

use candle_core::{D, Tensor};

use crate::Result;
use crate::data::Inputs;
use crate::model::Encoder;
use crate::spec::Loss;

/// Loss settings of one point.
#[derive(Debug, Clone, Copy)]
pub struct LossConfig {
    /// Which loss.
    pub loss: Loss,
    /// Temperature of InfoNCE, the debiased and the decoupled loss.
    pub temperature: f64,
    /// Class prior of the debiased and hcl losses.
    pub tau_plus: f64,
    /// Hardness concentration of the hcl loss.
    pub beta: f64,
    /// Weight of the negatives' terms in the sigmoid loss.
    pub negative_weight: f64,
}

impl LossConfig {
    /// The representation the loss and the evaluation use: raw for NCE, unit-norm for the
    /// temperature losses.
    pub fn represent(&self, f: &Tensor) -> candle_core::Result<Tensor> {
        match self.loss {
            Loss::Nce => Ok(f.clone()),
            Loss::Infonce | Loss::Debiased | Loss::Decoupled | Loss::Hcl | Loss::Sigmoid => {
                let norm = f
                    .sqr()?
                    .sum_keepdim(D::Minus1)?
                    .sqrt()?
                    .clamp(1e-12, f64::MAX)?;
                f.broadcast_div(&norm)
            }
        }
    }
}

/// Anchors, positives and negatives of a run of pool rows, as example ids.
#[derive(Debug, Clone, Copy)]
pub struct Triplets<'a> {
    /// Anchor id per row.
    pub anchors: &'a [u32],
    /// Positive id per row.
    pub positives: &'a [u32],
    /// `k_max` negative ids per row, row-major.
    pub negatives: &'a [u32],
    /// Negatives stored per row.
    pub k_max: usize,
}

impl Triplets<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Encodes `ids` in chunks (no gradient) and returns the representations, `ids.len() x dim`.
pub fn represent(
    encoder: &Encoder,
    inputs: &Inputs,
    ids: &[u32],
    cfg: &LossConfig,
) -> Result<Tensor> {
    let mut parts = Vec::new();
    for chunk in ids.chunks(4096) {
        let f = encoder.encode(&inputs.select(chunk)?, None)?;
        parts.push(cfg.represent(&f)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}
