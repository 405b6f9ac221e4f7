//! The contrastive losses, one file each. Every loss reads the same scores: each anchor's
//! similarity to its positive (column 0) and to its `k` negatives, `(B, k + 1)` f32, raw dot
//! products for NCE and cosines for the temperature losses (`LossConfig::represent`), and
//! returns each anchor's loss, `(B, 1)`; [`loss`] averages them and applies false-negative
//! handling.
//!
//! A new loss: a file here with its `rows` function, a variant of `spec::Loss` (and its
//! `as_str` arm), one arm below, one in `LossConfig::represent` and one in
//! `plan::uses_temperature`; no arm is a wildcard, so the compiler names each of them.

mod debiased;
mod decoupled;
mod hcl;
mod infonce;
mod nce;
mod sigmoid;

pub use sigmoid::Learned;

use candle_core::{D, Tensor};

use crate::Result;
use crate::objective::LossConfig;
use crate::spec::{FalseNegatives, Loss};

/// Added to the score of an eliminated negative: its exponential is exactly 0 in f32 after
/// any temperature, and it stays finite, so a row with every negative eliminated does not
/// produce `inf - inf`.
const ELIMINATED: f64 = -1e30;

/// A batch's detected false negatives and what the loss does with them.
#[derive(Debug, Clone)]
pub(crate) struct Flagged {
    /// `(B, k + 1)` f32: 1 where a negative is flagged, 0 elsewhere (column 0, the positive,
    /// is always 0).
    pub(crate) mask: Tensor,
    /// Elimination or attraction.
    pub(crate) mode: FalseNegatives,
}

/// The point's loss on `scores` (`(B, k + 1)`, positive first): a scalar, the mean over the
/// `B` anchors.
///
/// With `flagged` in elimination mode the flagged negatives leave every loss's denominator
/// (the debiased loss counts only the negatives left; a decoupled row with none left
/// contributes 0). In attraction mode (NCE and InfoNCE) each anchor's loss is the mean of
/// `-log softmax` over its positive and its flagged negatives, all against the full
/// denominator (Huynh et al., WACV 2022, eq. 4; the supervised-contrastive form).
///
/// `learned` holds the sigmoid loss's temperature and bias (other losses ignore it).
///
/// # Errors
/// A candle error if `scores` or the mask is not `(B, k + 1)`; attraction with a loss other
/// than NCE and InfoNCE (the plan rejects it first); the sigmoid loss without `learned`.
pub(crate) fn loss(
    scores: &Tensor,
    k: usize,
    cfg: &LossConfig,
    learned: Option<&Learned>,
    flagged: Option<&Flagged>,
) -> Result<Tensor> {
    let rows = match flagged {
        None => rows(scores, k, cfg, learned, None)?,
        Some(f) => match f.mode {
            FalseNegatives::Keep => rows(scores, k, cfg, learned, None)?,
            FalseNegatives::Eliminate => {
                let kept = (f.mask.sum_keepdim(1)?.neg()? + k as f64)?;
                let s = (scores + (&f.mask * ELIMINATED)?)?;
                rows(&s, k, cfg, learned, Some(&kept))?
            }
            FalseNegatives::Attract => {
                let lp = match cfg.loss {
                    Loss::Nce => candle_nn::ops::log_softmax(scores, D::Minus1)?,
                    Loss::Infonce => {
                        candle_nn::ops::log_softmax(&(scores / cfg.temperature)?, D::Minus1)?
                    }
                    Loss::Debiased | Loss::Decoupled | Loss::Hcl | Loss::Sigmoid => {
                        return Err(crate::Error::Internal(format!(
                            "false-negative attraction has no {} form",
                            cfg.loss.as_str()
                        )));
                    }
                };
                // The positive's column joins the flagged ones.
                let first = Tensor::ones((scores.dim(0)?, 1), scores.dtype(), scores.device())?;
                let zeros = f.mask.narrow(1, 1, k)?;
                let positives = Tensor::cat(&[&first, &zeros], 1)?;
                let count = positives.sum_keepdim(1)?;
                ((lp * &positives)?.sum_keepdim(1)? / count)?.neg()?
            }
        },
    };
    Ok(rows.mean_all()?)
}

/// Each anchor's loss, `(B, 1)`; `kept` is the number of negatives left per anchor, `(B, 1)`,
/// when some were eliminated.
fn rows(
    scores: &Tensor,
    k: usize,
    cfg: &LossConfig,
    learned: Option<&Learned>,
    kept: Option<&Tensor>,
) -> Result<Tensor> {
    match cfg.loss {
        Loss::Nce => nce::rows(scores),
        Loss::Infonce => infonce::rows(scores, cfg.temperature),
        Loss::Debiased => debiased::rows(scores, k, cfg.temperature, cfg.tau_plus, kept),
        Loss::Decoupled => decoupled::rows(scores, k, cfg.temperature, kept),
        Loss::Hcl => hcl::rows(scores, k, cfg, kept),
        Loss::Sigmoid => {
            let learned = learned.ok_or_else(|| {
                crate::Error::Internal("the sigmoid loss needs its learned scalars".into())
            })?;
            sigmoid::rows(scores, k, learned, cfg.negative_weight)
        }
    }
}
