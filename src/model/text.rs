//! Text encoders on token ids: the embedding bag (a sparse mean of embedding rows, as a custom
//! op, so a 30k-word vocabulary costs what the tokens cost, not a dense bag-of-words matrix) and
//! a GRU whose gate weights are stored pre-transposed.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor, bail};
use rayon::prelude::*;

use super::Dense;

/// Token ids of a batch of examples, CSR: example `i` is `tokens[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenBatch {
    /// `len + 1` offsets into `tokens`.
    pub offsets: Vec<usize>,
    /// All token ids.
    pub tokens: Vec<u32>,
}

impl TokenBatch {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens of example `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.tokens[self.offsets[i]..self.offsets[i + 1]]
    }
}

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
        out.par_chunks_mut(width).enumerate().for_each(|(i, o)| {
            let row = batch.row(i);
            for &t in row {
                super::fused::axpy(o, 1.0, &emb[t as usize * width..(t as usize + 1) * width]);
            }
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
        // Sequential, so the sum order (and the result) never depends on thread timing; it is
        // tokens x width additions, small beside the rest of the step.
        let mut d = vec![0f32; vocab * width];
        for i in 0..batch.len() {
            let row = batch.row(i);
            let scale = 1.0 / row.len().max(1) as f32;
            let gi = &g[i * width..(i + 1) * width];
            for &t in row {
                super::fused::axpy(
                    &mut d[t as usize * width..(t as usize + 1) * width],
                    scale,
                    gi,
                );
            }
        }
        Ok(Some(Tensor::from_vec(d, (vocab, width), arg.device())?))
    }
}

/// Mean token embedding of each example of `batch`: `(B, width)`.
pub fn bag_mean(emb: &Tensor, batch: &Arc<TokenBatch>) -> candle_core::Result<Tensor> {
    emb.contiguous()?.apply_op1(BagMean(Arc::clone(batch)))
}

/// A one-layer GRU (PyTorch's gate equations) over padded token sequences; the state after each
/// example's last token is its feature.
#[derive(Debug, Clone)]
pub struct Gru {
    /// Input to (r, z, n) gates, `(width, 3 hidden)`.
    pub input: Dense,
    /// State to (r, z, n) gates, `(hidden, 3 hidden)`.
    pub state: Dense,
}

impl Gru {
    /// Final states, `(B, hidden)`, of the examples of `batch` embedded by `emb`.
    pub fn forward(&self, emb: &Tensor, batch: &TokenBatch) -> candle_core::Result<Tensor> {
        let b = batch.len();
        let hidden = self.state.weight.dim(0)?;
        let steps = (0..b).map(|i| batch.row(i).len()).max().unwrap_or(0);
        let dev = emb.device();
        let mut state = Tensor::zeros((b, hidden), emb.dtype(), dev)?;
        if steps == 0 {
            return Ok(state);
        }
        // Time-major padded ids, so that step t is one contiguous slice; padding reuses id 0 and
        // is masked out below.
        let mut ids = vec![0u32; steps * b];
        let mut live = vec![0f32; steps * b];
        for i in 0..b {
            for (t, &tok) in batch.row(i).iter().enumerate() {
                ids[t * b + i] = tok;
                live[t * b + i] = 1.0;
            }
        }
        let x = emb.index_select(&Tensor::from_vec(ids, steps * b, dev)?, 0)?;
        // All input gates in one GEMM.
        let gi = self.input.forward(&x)?;
        let live = Tensor::from_vec(live, (steps * b, 1), dev)?;
        for t in 0..steps {
            let gi = gi.narrow(0, t * b, b)?;
            let gh = self.state.forward(&state)?;
            let (ir, iz, inn) = (
                gi.narrow(1, 0, hidden)?,
                gi.narrow(1, hidden, hidden)?,
                gi.narrow(1, 2 * hidden, hidden)?,
            );
            let (hr, hz, hn) = (
                gh.narrow(1, 0, hidden)?,
                gh.narrow(1, hidden, hidden)?,
                gh.narrow(1, 2 * hidden, hidden)?,
            );
            let r = candle_nn::ops::sigmoid(&(ir + hr)?)?;
            let z = candle_nn::ops::sigmoid(&(iz + hz)?)?;
            let n = (inn + (r * hn)?)?.tanh()?;
            // h' = n + z (h - n); finished examples keep their state.
            let next = (&n + z.mul(&(&state - &n)?)?)?;
            let m = live.narrow(0, t * b, b)?;
            state = (&state + m.broadcast_mul(&(next - &state)?)?)?;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn batch(rows: &[&[u32]]) -> TokenBatch {
        let mut b = TokenBatch {
            offsets: vec![0],
            tokens: Vec::new(),
        };
        for r in rows {
            b.tokens.extend_from_slice(r);
            b.offsets.push(b.tokens.len());
        }
        b
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

    #[test]
    fn gru_ignores_padding_and_matches_an_unbatched_run() {
        let dev = Device::Cpu;
        let (vocab, width, hidden) = (6, 4, 3);
        let r = |shape: (usize, usize)| Tensor::randn(0f32, 0.5, shape, &dev).unwrap();
        let gru = Gru {
            input: Dense {
                weight: r((width, 3 * hidden)),
                bias: r((1, 3 * hidden)).flatten_all().unwrap(),
            },
            state: Dense {
                weight: r((hidden, 3 * hidden)),
                bias: r((1, 3 * hidden)).flatten_all().unwrap(),
            },
        };
        let emb = r((vocab, width));
        let together = gru
            .forward(&emb, &batch(&[&[1, 2, 3, 4], &[5], &[]]))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let alone = gru
            .forward(&emb, &batch(&[&[5]]))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (a, b) in together[1].iter().zip(&alone[0]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(together[2], vec![0.0; hidden], "no tokens, zero state");
        assert_ne!(together[0], together[1]);
    }
}
