//! The GRU encoder: token embeddings through a one-layer GRU; the last state, projected.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use super::text::{TokenBatch, embedding};
use super::{Dense, Encode, EncoderConfig, dropout};
use crate::data::Batch;

/// Token embeddings through a one-layer GRU; the state after each example's last token,
/// projected: `(B, dim)`.
///
/// Parameters: `emb.weight` `(input, hidden)`, N(0, 1); `gru.input.weight` and
/// `gru.state.weight` `(hidden, 3 hidden)` with their `(1, 3 hidden)` biases; `proj.weight`
/// `(hidden, dim)` and `proj.bias` `(1, dim)`; drawn in that order.
#[derive(Debug)]
pub struct Gru {
    emb: Tensor,
    gru: GruCell,
    proj: Dense,
    dropout: f32,
}

impl Gru {
    /// Builds the encoder for a vocabulary of `cfg.input` words, embeddings and state
    /// `cfg.hidden` wide, and `cfg.dropout` on the last state while training.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden;
        let emb = embedding(cfg, &vb)?;
        let gru = GruCell {
            input: Dense::new(h, 3 * h, vb.pp("gru.input"))?,
            state: Dense::new(h, 3 * h, vb.pp("gru.state"))?,
        };
        Ok(Self {
            emb,
            gru,
            proj: Dense::new(h, cfg.dim, vb.pp("proj"))?,
            dropout: cfg.dropout,
        })
    }
}

impl Encode for Gru {
    /// Token ids only.
    fn encode(&self, x: &Batch, train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let Batch::Tokens(t) = x else {
            candle_core::bail!("the GRU encoder takes token ids")
        };
        let last = self.gru.forward(&self.emb, t)?;
        self.proj.forward(&dropout(last, self.dropout, train)?)
    }
}

/// A one-layer GRU (PyTorch's gate equations) over padded token sequences; the state after each
/// example's last token is its feature.
#[derive(Debug, Clone)]
struct GruCell {
    /// Input to (r, z, n) gates, `(width, 3 hidden)`.
    input: Dense,
    /// State to (r, z, n) gates, `(hidden, 3 hidden)`.
    state: Dense,
}

impl GruCell {
    /// Final states, `(B, hidden)`, of the examples of `batch` embedded by `emb`.
    fn forward(&self, emb: &Tensor, batch: &TokenBatch) -> candle_core::Result<Tensor> {
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
    use candle_core::Device;

    fn batch(rows: &[&[u32]]) -> TokenBatch {
        TokenBatch::from_rows(rows.iter().copied())
    }

    #[test]
    fn gru_ignores_padding_and_matches_an_unbatched_run() {
        let dev = Device::Cpu;
        let (vocab, width, hidden) = (6, 4, 3);
        let r = |shape: (usize, usize)| Tensor::randn(0f32, 0.5, shape, &dev).unwrap();
        let gru = GruCell {
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
