//! The sigmoid loss (Zhai et al., "Sigmoid Loss for Language Image Pre-Training", ICCV 2023,
//! section 3.2 and algorithm 1): an independent binary term per (anchor, candidate) pair on
//! `t s + b`, with the log-temperature and the bias learned (initialised to log 10 and -10,
//! their section 3.3), and the negatives' terms weighted against the positive's.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarMap};

use crate::Result;

/// The sigmoid loss's learned scalars, `(1, 1)` f32 each, trained with the encoder.
#[derive(Debug, Clone)]
pub struct Learned {
    /// `log t`: the logits are `exp(log t) s + b`.
    pub log_t: Tensor,
    /// `b`.
    pub bias: Tensor,
}

impl Learned {
    /// Registers the two scalars in `varmap` (as `loss.log_t` and `loss.bias`) at Zhai et al.'s
    /// initial values, so the optimiser trains them and checkpoints hold them.
    ///
    /// # Errors
    /// A candle error creating the variables.
    pub fn new(varmap: &VarMap, device: &Device) -> Result<Self> {
        let scalar = |name, v: f64| varmap.get((1, 1), name, Init::Const(v), DType::F32, device);
        Ok(Self {
            log_t: scalar("loss.log_t", 10f64.ln())?,
            bias: scalar("loss.bias", -10.0)?,
        })
    }

    /// The current `(t, b)`.
    ///
    /// # Errors
    /// A candle error reading the variables.
    pub fn values(&self) -> Result<(f64, f64)> {
        let read =
            |t: &Tensor| -> Result<f64> { Ok(f64::from(t.flatten_all()?.to_vec1::<f32>()?[0])) };
        Ok((read(&self.log_t)?.exp(), read(&self.bias)?))
    }
}

/// `softplus(-z_+) + w sum_i softplus(z_i)` with `z = exp(log t) s + b`, on cosines `(B, k + 1)`
/// (positive first), per anchor: `(B, 1)`; that is `-log sigmoid(z_+) - w sum_i log
/// sigmoid(-z_i)`, where `w` is the negatives' weight. An eliminated negative (its cosine about
/// -1e30 lower) adds exactly 0.
pub(super) fn rows(cos: &Tensor, k: usize, learned: &Learned, w: f64) -> Result<Tensor> {
    let z = cos
        .broadcast_mul(&learned.log_t.exp()?)?
        .broadcast_add(&learned.bias)?;
    let pos = softplus(&z.narrow(1, 0, 1)?.neg()?)?;
    let neg = softplus(&z.narrow(1, 1, k)?)?.sum_keepdim(1)?;
    Ok((pos + (neg * w)?)?)
}

/// `log(1 + e^x)` without overflow: `max(x, 0) + log(1 + e^{-|x|})`.
fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}
