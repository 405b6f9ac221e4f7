//! Token ids and what text encoders share: batches of token ids, the embedding matrix, and the
//! embedding-bag mean (a sparse mean of embedding rows, as a custom op, so a 30k-word
//! vocabulary costs what the tokens cost, not a dense bag-of-words matrix).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, bail};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

use super::EncoderConfig;
use super::fused::weighted_row_sum;
pub use crate::data::TokenBatch;

/// Mean of the embedding rows of each example's tokens: `(vocab, width)` to `(B, width)`; an
/// example without tokens gets zeros. The gradient is scattered back onto the rows used.
#[derive(Debug, Clone)]
struct BagMean(Arc<TokenBatch>);

impl CustomOp1 for BagMean {
    fn name(&self) -> &'static str {
        "embedding-bag-mean"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(v) = s else {
            bail!("embedding-bag: f32 only")
        };
        let Some((a, b)) = l.contiguous_offsets() else {
            bail!("embedding-bag: contiguous embedding only")
        };
        let (emb, (vocab, width)) = (&v[a..b], l.shape().dims2()?);
        let batch = &self.0;
        if let Some(&t) = batch.tokens.iter().find(|&&t| t as usize >= vocab) {
            bail!("embedding-bag: token id {t} is outside the vocabulary of {vocab}")
        }
        let mut out = vec![0f32; batch.len() * width];
        let ones = vec![
            1f32;
            (0..batch.len())
                .map(|i| batch.row(i).len())
                .max()
                .unwrap_or(0)
        ];
        out.par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(i, o)| {
                let row = batch.row(i);
                weighted_row_sum(o, emb, row, &ones[..row.len()]);
                let scale = 1.0 / row.len().max(1) as f32;
                o.iter_mut().for_each(|o| *o *= scale);
            });
        Ok((CpuStorage::F32(out), Shape::from((batch.len(), width))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (vocab, width) = arg.dims2()?;
        let g = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let batch = &self.0;
        // Each word's row sums the gradients of the examples holding it, in example order (a
        // stable counting sort): the order the per-example scatter used, so the same sums, but
        // each row is written once, by one thread.
        let mut starts = vec![0usize; vocab + 1];
        for &t in &batch.tokens {
            starts[t as usize + 1] += 1;
        }
        for t in 0..vocab {
            starts[t + 1] += starts[t];
        }
        let (mut examples, mut scales) = (
            vec![0u32; batch.tokens.len()],
            vec![0f32; batch.tokens.len()],
        );
        let mut next = starts.clone();
        for i in 0..batch.len() {
            let row = batch.row(i);
            let scale = 1.0 / row.len().max(1) as f32;
            for &t in row {
                let at = &mut next[t as usize];
                (examples[*at], scales[*at]) = (i as u32, scale);
                *at += 1;
            }
        }
        let mut d = vec![0f32; vocab * width];
        d.par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(t, dt)| {
                let (a, b) = (starts[t], starts[t + 1]);
                weighted_row_sum(dt, &g, &examples[a..b], &scales[a..b]);
            });
        Ok(Some(Tensor::from_vec(d, (vocab, width), arg.device())?))
    }
}

/// Mean token embedding of each example of `batch`: `(B, width)`.
pub fn bag_mean(emb: &Tensor, batch: &Arc<TokenBatch>) -> candle_core::Result<Tensor> {
    emb.contiguous()?.apply_op1(BagMean(Arc::clone(batch)))
}

/// The `(input, hidden)` embedding matrix of a text encoder, `emb.weight` under `vb`, drawn
/// from N(0, 1).
pub(crate) fn embedding(cfg: &EncoderConfig, vb: &VarBuilder) -> candle_core::Result<Tensor> {
    let init = Init::Randn {
        mean: 0.0,
        stdev: 1.0,
    };
    vb.pp("emb")
        .get_with_hints((cfg.input, cfg.hidden), "weight", init)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn batch(rows: &[&[u32]]) -> TokenBatch {
        TokenBatch::from_rows(rows.iter().copied())
    }

    #[test]
    fn bag_mean_and_its_gradient_equal_a_dense_bag_of_words_product() {
        let dev = Device::Cpu;
        let (vocab, width) = (7, 5);
        let emb =
            Var::from_tensor(&Tensor::randn(0f32, 1.0, (vocab, width), &dev).unwrap()).unwrap();
        let b = Arc::new(batch(&[&[1, 3, 3], &[], &[6, 0, 2, 2]]));
        let mut dense = vec![0f32; b.len() * vocab];
        for i in 0..b.len() {
            for &t in b.row(i) {
                dense[i * vocab + t as usize] += 1.0 / b.row(i).len() as f32;
            }
        }
        let dense = Tensor::from_vec(dense, (b.len(), vocab), &dev).unwrap();
        let reference = dense.matmul(emb.as_tensor()).unwrap();
        let fast = bag_mean(emb.as_tensor(), &b).unwrap();
        crate::testing::assert_close(&fast, &reference, 1e-6, 1e-6, "bag");
        let w = Tensor::randn(0f32, 1.0, (b.len(), width), &dev).unwrap();
        let loss = |t: &Tensor| (t * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (gf, gr) = (loss(&fast), loss(&reference));
        crate::testing::assert_grads_close(&gf, &gr, emb.as_tensor(), 1e-6, 1e-6, "bag grad");
    }

    #[test]
    fn a_token_outside_the_vocabulary_is_an_error() {
        let emb = Tensor::zeros((3, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = bag_mean(&emb, &Arc::new(batch(&[&[0, 3]])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("token id 3"), "{err}");
    }
}
