//! InfoNCE (van den Oord et al. 2018; Chen et al., SimCLR, 2020): cross-entropy of the positive
//! among cosines divided by a temperature.

use candle_core::Tensor;

use crate::Result;

/// `-log(exp(s_+ / t) / (exp(s_+ / t) + sum_i exp(s_i / t)))` on cosines `(B, k + 1)`, positive
/// first, per anchor: `(B, 1)`; `t` is the temperature.
pub(super) fn rows(cos: &Tensor, t: f64) -> Result<Tensor> {
    let lsm = candle_nn::ops::log_softmax(&(cos / t)?, 1)?;
    Ok(lsm.narrow(1, 0, 1)?.neg()?)
}
