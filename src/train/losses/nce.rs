//! Logistic NCE on raw dot products (Ash et al. 2021, section 2; Arora et al. 2019, eq. 1).

use candle_core::Tensor;

use crate::Result;

/// `log(1 + sum_i exp(s_i - s_+))`, the cross-entropy of the positive among the `k + 1`
/// scores (`(B, k + 1)`, positive first), per anchor: `(B, 1)`.
pub(super) fn rows(scores: &Tensor) -> Result<Tensor> {
    let lsm = candle_nn::ops::log_softmax(scores, 1)?;
    Ok(lsm.narrow(1, 0, 1)?.neg()?)
}
