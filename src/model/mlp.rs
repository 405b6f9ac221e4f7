//! The MLP encoder: flattened pixels through two fully connected layers.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use super::{Dense, Encode, EncoderConfig};
use crate::data::Batch;

/// Two-layer ReLU MLP on dense `(B, input)` rows: `(B, dim)`.
///
/// Parameters: `fc1.weight` `(input, hidden)`, `fc1.bias` `(1, hidden)`, `fc2.weight`
/// `(hidden, dim)`, `fc2.bias` `(1, dim)`, drawn in that order.
#[derive(Debug)]
pub struct Mlp {
    fc1: Dense,
    fc2: Dense,
}

impl Mlp {
    /// Builds `cfg.input -> cfg.hidden -> cfg.dim`.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: Dense::new(cfg.input, cfg.hidden, cfg.precision, vb.pp("fc1"))?,
            fc2: Dense::new(cfg.hidden, cfg.dim, cfg.precision, vb.pp("fc2"))?,
        })
    }
}

impl Encode for Mlp {
    /// Dense rows only; there is no dropout.
    fn encode(&self, x: &Batch, _train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let Batch::Dense(xs) = x else {
            candle_core::bail!("the MLP encoder takes dense rows, not token ids")
        };
        self.fc2.forward(&self.fc1.forward_relu(xs)?)
    }
}
