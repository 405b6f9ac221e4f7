//! The decoupled contrastive loss (Yeh et al., "Decoupled Contrastive Learning", ECCV 2022,
//! eq. 6): InfoNCE with the positive removed from the denominator, which removes the
//! negative-positive coupling that shrinks InfoNCE's gradient when the positive already wins
//! (their section 3).

use candle_core::Tensor;

use crate::Result;

/// `-s_+ / t + log(sum_i exp(s_i / t))` over the `k` negatives, on cosines `(B, k + 1)`
/// (positive first), per anchor: `(B, 1)`. Unlike InfoNCE it can be negative: once the
/// positive is far ahead of every negative, the loss keeps falling. With `kept` (`(B, 1)`,
/// negatives left after elimination), an anchor with none left has nothing to contrast and
/// contributes 0.
///
/// The log-sum-exp is shifted by each row's largest negative logit (held constant, so the
/// gradient is the softmax over the negatives exactly), so no temperature overflows or
/// underflows it.
pub(super) fn rows(cos: &Tensor, k: usize, t: f64, kept: Option<&Tensor>) -> Result<Tensor> {
    let logits = (cos / t)?;
    let neg = logits.narrow(1, 1, k)?;
    let top = neg.max_keepdim(1)?.detach();
    let lse = (neg.broadcast_sub(&top)?.exp()?.sum_keepdim(1)?.log()? + top)?;
    let rows = (lse - logits.narrow(1, 0, 1)?)?;
    match kept {
        None => Ok(rows),
        Some(kept) => Ok((rows * kept.gt(0.0)?.to_dtype(cos.dtype())?)?),
    }
}
