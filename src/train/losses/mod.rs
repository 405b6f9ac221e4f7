//! The contrastive losses, one file each. Every loss reads the same scores: each anchor's
//! similarity to its positive (column 0) and to its `k` negatives, `(B, k + 1)` f32, raw dot
//! products for NCE and cosines for the temperature losses (`LossConfig::represent`), and
//! returns the mean over anchors, a scalar.
//!
//! A new loss: a file here with its `loss` function, a variant of `spec::Loss` (and its
//! `as_str` arm), one arm below, one in `LossConfig::represent` and one in
//! `plan::uses_temperature`; no arm is a wildcard, so the compiler names each of them.

mod debiased;
mod decoupled;
mod infonce;
mod nce;

use candle_core::Tensor;

use crate::Result;
use crate::objective::LossConfig;
use crate::spec::Loss;

/// The point's loss on `scores` (`(B, k + 1)`, positive first): a scalar, the mean over the
/// `B` anchors.
///
/// # Errors
/// A candle error if `scores` is not `(B, k + 1)`.
pub(crate) fn loss(scores: &Tensor, k: usize, cfg: &LossConfig) -> Result<Tensor> {
    match cfg.loss {
        Loss::Nce => nce::loss(scores),
        Loss::Infonce => infonce::loss(scores, cfg.temperature),
        Loss::Debiased => debiased::loss(scores, k, cfg.temperature, cfg.tau_plus),
        Loss::Decoupled => decoupled::loss(scores, k, cfg.temperature),
    }
}
