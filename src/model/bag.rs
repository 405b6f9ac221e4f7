//! The embedding-bag encoder: the mean of an example's token embeddings, projected.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use super::text::{bag_mean, embedding};
use super::{Dense, Encode, EncoderConfig, dropout, fused};
use crate::data::Batch;

/// Mean of token embeddings, then a linear projection: `(B, dim)`.
///
/// Parameters: `emb.weight` `(input, hidden)`, N(0, 1); `proj.weight` `(hidden, dim)` and
/// `proj.bias` `(1, dim)`, drawn in that order.
#[derive(Debug)]
pub struct EmbeddingBag {
    emb: Tensor,
    proj: Dense,
    dropout: f32,
}

impl EmbeddingBag {
    /// Builds the encoder for a vocabulary of `cfg.input` words, embeddings `cfg.hidden` wide,
    /// and `cfg.dropout` on the mean embedding while training.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            emb: embedding(cfg, &vb)?,
            proj: Dense::new(cfg.hidden, cfg.dim, vb.pp("proj"))?,
            dropout: cfg.dropout,
        })
    }
}

impl Encode for EmbeddingBag {
    /// Token ids, or dense `(B, input)` bag-of-words rows (a weighted mean of embeddings).
    fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let mean = match x {
            Batch::Tokens(t) => bag_mean(&self.emb, t)?,
            Batch::Dense(x) => x.contiguous()?.apply_op2(&self.emb, fused::DataMatmul)?,
        };
        self.proj.forward(&dropout(mean, self.dropout, train)?)
    }
}
