//! Chuang et al.'s debiased contrastive loss ("Debiased Contrastive Learning", NeurIPS 2020,
//! eq. 6): InfoNCE whose negative term is corrected for the expected share `tau+` of
//! same-concept negatives.

use candle_core::Tensor;

use crate::Result;

/// `-log(e+ / (e+ + g))` with `g = max((sum_i e_i - k tau+ e+) / (1 - tau+), k e^{-1/t})` and
/// `e = exp(s / t)`, on cosines `(B, k + 1)` (positive first), per anchor: `(B, 1)`. With
/// `kept` (`(B, 1)`, negatives left after elimination), `k` is each anchor's own count.
///
/// Every exponent is shifted by the largest possible logit `1/t` (cosines are at most 1), so
/// nothing overflows; the plan keeps `t >= 0.05` so `e^{-2/t}` stays a normal f32.
pub(super) fn rows(
    cos: &Tensor,
    k: usize,
    t: f64,
    tau_plus: f64,
    kept: Option<&Tensor>,
) -> Result<Tensor> {
    let shifted = ((cos - 1.0)? / t)?;
    let e = shifted.exp()?;
    let e_pos = e.narrow(1, 0, 1)?;
    let e_neg = e.narrow(1, 1, k)?.sum_keepdim(1)?;
    let g = match kept {
        None => {
            let kf = k as f64;
            let g = ((e_neg - (&e_pos * (kf * tau_plus))?)? / (1.0 - tau_plus))?;
            g.maximum(kf * (-2.0 / t).exp())?
        }
        Some(kept) => {
            let g = ((e_neg - (&e_pos * (kept * tau_plus)?)?)? / (1.0 - tau_plus))?;
            g.maximum(&(kept * (-2.0 / t).exp())?)?
        }
    };
    Ok(((&e_pos + g)?.log()? - shifted.narrow(1, 0, 1)?)?)
}
