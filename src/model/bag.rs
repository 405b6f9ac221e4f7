//! The embedding-bag encoder: the mean of an example's token embeddings, projected.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use super::text::{bag_mean, embedding};
use super::{Dense, Encode, EncoderConfig, dropout, fused};
use crate::data::{Batch, TokenBatch};

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
            proj: Dense::new(cfg.hidden, cfg.dim, cfg.precision, vb.pp("proj"))?,
            dropout: cfg.dropout,
        })
    }

    /// Whether `batch` is cheaper to encode through the per-word table `emb W` `(vocab, dim)`
    /// than through its examples' mean embeddings: a mean and a product commute, `mean(E[t]) W
    /// = mean((E W)[t])`, so the projection can run once per vocabulary word instead of once
    /// per example, and the token sums (forward, and their scatter backward) then run `dim`
    /// wide instead of `hidden` wide. Counted in multiply-adds, forward and backward: the
    /// product three times (`x W`, `x^T dy`, `dy W^T`), the token sums twice. Never with
    /// dropout in training, which acts on the mean embedding itself.
    fn per_word(&self, batch: &TokenBatch, dropout_on: bool) -> candle_core::Result<bool> {
        let (vocab, hidden) = self.emb.dims2()?;
        let dim = self.proj.weight.dim(1)?;
        let tokens = batch.tokens.len();
        let per_example = 2 * tokens * hidden + 3 * batch.len() * hidden * dim;
        let per_word = 2 * tokens * dim + 3 * vocab * hidden * dim;
        Ok(!dropout_on && per_word < per_example)
    }
}

impl Encode for EmbeddingBag {
    /// Token ids, or dense `(B, input)` bag-of-words rows (a weighted mean of embeddings).
    fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let dropout_on = train.is_some() && self.dropout > 0.0;
        let mean = match x {
            Batch::Tokens(t) if self.per_word(t, dropout_on)? => {
                // Same values up to rounding (see `per_word`); an example without tokens
                // still gets the bias alone.
                let table = self.emb.matmul(&self.proj.weight)?;
                return self.proj.add_bias(&bag_mean(&table, t)?);
            }
            Batch::Tokens(t) => bag_mean(&self.emb, t)?,
            Batch::Dense(x) => x.contiguous()?.apply_op2(&self.emb, fused::DataMatmul)?,
        };
        self.proj.forward(&dropout(mean, self.dropout, train)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::model::EncoderKind;
    use crate::testing::{assert_close, assert_grads_close, weighted_grads};

    /// The per-word table gives the per-example path's values and gradients (emb, weight and
    /// bias), an example without tokens included.
    #[test]
    fn the_per_word_table_equals_the_per_example_mean() {
        let (vocab, hidden, dim) = (6, 8, 3);
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let cfg = EncoderConfig::dense(EncoderKind::EmbeddingBag, vocab, hidden, dim);
        let bag = EmbeddingBag::new(&cfg, vb).unwrap();
        let rows: Vec<Vec<u32>> = (0..40u32)
            .map(|i| (0..i % 7).map(|j| (i * 3 + j * 5) % vocab as u32).collect())
            .collect();
        let batch = Arc::new(TokenBatch::from_rows(rows.iter().map(Vec::as_slice)));
        assert!(bag.per_word(&batch, false).unwrap(), "40 examples, 6 words");
        assert!(
            !bag.per_word(&batch, true).unwrap(),
            "dropout acts on the mean"
        );
        let fast = bag
            .encode(&Batch::Tokens(Arc::clone(&batch)), None)
            .unwrap();
        let slow = bag
            .proj
            .forward(&bag_mean(&bag.emb, &batch).unwrap())
            .unwrap();
        assert_close(&fast, &slow, 1e-5, 1e-5, "per-word bag");
        // The empty first example is the bias alone.
        let bias = bag.proj.bias.to_vec1::<f32>().unwrap();
        assert_eq!(fast.get(0).unwrap().to_vec1::<f32>().unwrap(), bias);
        let w = Tensor::randn(0f32, 1.0, fast.shape(), &Device::Cpu).unwrap();
        let (gf, gs) = (weighted_grads(fast, &w), weighted_grads(slow, &w));
        let vars = map.data().lock().unwrap();
        for name in ["emb.weight", "proj.weight", "proj.bias"] {
            assert_grads_close(&gf, &gs, vars[name].as_tensor(), 1e-5, 1e-5, name);
        }
    }
}
