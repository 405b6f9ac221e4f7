//! Robinson et al.'s hard-negative contrastive loss ("Contrastive Learning with Hard Negative
//! Samples", ICLR 2021, eq. 5 and their reference code): the debiased loss whose negative term
//! is an importance-weighted estimate under a distribution tilted towards the negatives most
//! similar to the anchor, `q_beta(x-) ~ exp(beta s(x, x-) / t)`.

use candle_core::Tensor;

use crate::Result;
use crate::objective::LossConfig;

/// `-log(e+ / (e+ + g))` with `g = max((R - k tau+ e+) / (1 - tau+), k e^{-1/t})`,
/// `R = sum_i w_i e_i / mean_i w_i`, `w_i = e_i^beta` and `e = exp(s / t)`, on cosines
/// `(B, k + 1)` (positive first), per anchor: `(B, 1)`. `beta = 0` is the debiased loss, and
/// `beta = 0, tau+ = 0` InfoNCE. With `kept` (`(B, 1)`, negatives left after elimination), `k`
/// and the mean weight count only each anchor's own negatives.
///
/// The weights are not detached, as in the reference code. Every exponent is shifted by the
/// largest possible logit `1/t`, which cancels in `R`; the plan keeps `t >= 0.05`.
pub(super) fn rows(
    cos: &Tensor,
    k: usize,
    cfg: &LossConfig,
    kept: Option<&Tensor>,
) -> Result<Tensor> {
    let (t, tau_plus, beta) = (cfg.temperature, cfg.tau_plus, cfg.beta);
    let shifted = ((cos - 1.0)? / t)?;
    let e = shifted.exp()?;
    let e_pos = e.narrow(1, 0, 1)?;
    let count = match kept {
        Some(kept) => kept.clone(),
        None => Tensor::full(k as f32, (cos.dim(0)?, 1), cos.device())?,
    };
    let reweighted = if beta == 0.0 {
        e.narrow(1, 1, k)?.sum_keepdim(1)?
    } else {
        // R = count e^m sum_i e^{(1 + beta)(z_i - m)} / sum_i e^{beta (z_i - m)} with m each
        // row's largest negative logit (held constant: it cancels), so neither sum
        // underflows for a large beta / t. An eliminated negative's terms are exactly 0 (its
        // logit sits about 1e30 below), so the sums run over the negatives left; with none
        // left, e^m is 0 and so is R.
        let z = shifted.narrow(1, 1, k)?;
        let m = z.max_keepdim(1)?.detach();
        let d = z.broadcast_sub(&m)?;
        let tilted = (&d * (1.0 + beta))?.exp()?.sum_keepdim(1)?;
        let weights = (&d * beta)?.exp()?.sum_keepdim(1)?;
        ((&count * m.exp()?)? * (tilted / weights)?)?
    };
    let g = ((reweighted - (&e_pos * (&count * tau_plus)?)?)? / (1.0 - tau_plus))?;
    let g = g.maximum(&(&count * (-2.0 / t).exp())?)?;
    Ok(((&e_pos + g)?.log()? - shifted.narrow(1, 0, 1)?)?)
}
