//! The GRU encoder: token embeddings through a one-layer GRU; the last state, projected.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Module, Shape, Tensor, bail};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::fused::axpy;
use super::gates::{self, Gates, Saved};
use super::ops::{f32_input, gemm_with, parallelism, with_f32};
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
            input: Dense::new(h, 3 * h, cfg.precision, vb.pp("gru.input"))?,
            state: Dense::new(h, 3 * h, cfg.precision, vb.pp("gru.state"))?,
        };
        Ok(Self {
            emb,
            gru,
            proj: Dense::new(h, cfg.dim, cfg.precision, vb.pp("proj"))?,
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
    ///
    /// The input gates of a token depend on the token alone, so when the vocabulary has no more
    /// words than the batch has tokens they are computed once per word, `emb W_i + b_i`
    /// (`(vocab, 3 hidden)`), and looked up; otherwise once per token. Same values either way;
    /// the per-word table turns the largest GEMM of the step (tokens x width x 3 hidden, forward
    /// and twice backward) into one the vocabulary's size.
    fn forward(&self, emb: &Tensor, batch: &TokenBatch) -> candle_core::Result<Tensor> {
        let hidden = self.state.weight.dim(0)?;
        let scan = GruScan::new(batch, hidden);
        if scan.tokens.is_empty() {
            return Tensor::zeros((batch.len(), hidden), emb.dtype(), emb.device());
        }
        let (table, scan) = if emb.dim(0)? <= scan.tokens.len() {
            let rows = scan.tokens.clone();
            (self.input.forward(emb)?, scan.reading(rows))
        } else {
            let ids = Tensor::new(scan.tokens.as_slice(), emb.device())?;
            let x = emb.index_select(&ids, 0)?;
            let rows = (0..scan.tokens.len() as u32).collect();
            (self.input.forward(&x)?, scan.reading(rows))
        };
        table.apply_op3(&self.state.weight, &self.state.bias, scan)
    }
}

/// The GRU recurrence over a batch as one op: `(table (R, 3 hidden), W_h (hidden, 3 hidden),
/// b_h (3 hidden))` to the final states `(B, hidden)`, where row `rows[p]` of `table` holds the
/// input gates `x W_i + b_i` of token p. Per step and example, PyTorch's `nn.GRU`:
///
/// ```text
/// r = sigmoid(i_r + h W_hr + b_hr)    z = sigmoid(i_z + h W_hz + b_hz)
/// n = tanh(i_n + r * (h W_hn + b_hn))  h' = n + z * (h - n)
/// ```
///
/// Each step is one GEMM over the examples still reading and one pass over their gates; the
/// backward pass walks the steps back with two GEMMs and one pass each. candle's stock ops took
/// about twenty passes a step, each through a fresh buffer, and four times the memory traffic.
/// Examples are sorted longest first so that those still reading are a prefix of the rows and
/// the GEMMs skip finished ones. Every element is written by one thread, the accumulations run
/// in a fixed order and gemm splits its work over output blocks only, so results do not depend
/// on the thread count (tested end to end).
#[derive(Debug)]
struct GruScan {
    hidden: usize,
    /// Example in each row, longest first.
    order: Vec<u32>,
    /// Rows still reading at each step (non-increasing, at least one).
    live: Vec<usize>,
    /// Where each step's tokens start in `tokens` and `rows` (steps + 1 entries).
    starts: Vec<usize>,
    /// Token ids, step-major, the live rows of each step in row order.
    tokens: Vec<u32>,
    /// Row of `table` holding each token's input gates.
    rows: Vec<u32>,
    /// Written by the forward pass for the backward pass, per step: the state before it, r, z,
    /// n and `h W_hn + b_hn`, each `(live, hidden)`.
    saved: Mutex<Vec<f32>>,
}

impl GruScan {
    fn new(batch: &TokenBatch, hidden: usize) -> Self {
        let mut order: Vec<u32> = (0..batch.len() as u32).collect();
        // Stable: equal lengths keep their order.
        order.sort_by_key(|&i| std::cmp::Reverse(batch.row(i as usize).len()));
        let steps = order.first().map_or(0, |&i| batch.row(i as usize).len());
        let (mut live, mut starts, mut tokens) = (Vec::new(), vec![0], Vec::new());
        for t in 0..steps {
            let before = tokens.len();
            for &i in &order {
                match batch.row(i as usize).get(t) {
                    Some(&tok) => tokens.push(tok),
                    None => break,
                }
            }
            live.push(tokens.len() - before);
            starts.push(tokens.len());
        }
        Self {
            hidden,
            order,
            live,
            starts,
            tokens,
            rows: Vec::new(),
            saved: Mutex::new(Vec::new()),
        }
    }

    /// The op, reading token p's input gates from row `rows[p]` of its table.
    fn reading(mut self, rows: Vec<u32>) -> Self {
        self.rows = rows;
        self
    }

    /// Step t's saved block, `5 x live x hidden`.
    fn block(&self, t: usize) -> std::ops::Range<usize> {
        5 * self.hidden * self.starts[t]..5 * self.hidden * self.starts[t + 1]
    }
}

impl CustomOp3 for GruScan {
    fn name(&self) -> &'static str {
        "gru-scan"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (table, wh, bh) = (
            f32_input(s1, l1, self.name())?,
            f32_input(s2, l2, self.name())?,
            f32_input(s3, l3, self.name())?,
        );
        let (h, g) = (self.hidden, 3 * self.hidden);
        let (&[r, g1], &[h2, g2], &[g3]) = (l1.dims(), l2.dims(), l3.dims()) else {
            bail!("{}: (rows, 3h), (h, 3h) and (3h) expected", self.name())
        };
        if (g1, h2, g2, g3) != (g, h, g, g) {
            bail!(
                "{}: ({r}, {g1}), ({h2}, {g2}), ({g3}) for h = {h}",
                self.name()
            )
        }
        if self.rows.len() != self.tokens.len() {
            bail!(
                "{}: {} rows for {} tokens",
                self.name(),
                self.rows.len(),
                self.tokens.len()
            )
        }
        if let Some(&bad) = self.rows.iter().find(|&&row| row as usize >= r) {
            bail!("{}: row {bad} of a {r}-row table", self.name())
        }
        let b = self.order.len();
        let mut state = vec![0f32; b * h];
        let mut gh = vec![0f32; b * g];
        let mut saved = vec![0f32; 5 * h * self.tokens.len()];
        for (t, &l) in self.live.iter().enumerate() {
            let gh = &mut gh[..l * g];
            gemm_with(
                gh,
                (l, g, h),
                (&state[..l * h], (h, 1)),
                (wh, (g, 1)),
                false,
                parallelism(),
            );
            let block = &mut saved[self.block(t)];
            let (prev, block) = block.split_at_mut(l * h);
            let (rs, block) = block.split_at_mut(l * h);
            let (zs, block) = block.split_at_mut(l * h);
            let (ns, hns) = block.split_at_mut(l * h);
            prev.copy_from_slice(&state[..l * h]);
            let rows = &self.rows[self.starts[t]..self.starts[t + 1]];
            (
                state[..l * h].par_chunks_mut(h),
                rs.par_chunks_mut(h),
                zs.par_chunks_mut(h),
                ns.par_chunks_mut(h),
                hns.par_chunks_mut(h),
                gh.par_chunks(g),
                rows.par_iter(),
            )
                .into_par_iter()
                .for_each(|(s, r, z, n, hn, ghr, &row)| {
                    let gi = &table[row as usize * g..(row as usize + 1) * g];
                    gates::forward(Gates { r, z, n, hn }, s, gi, ghr, bh);
                });
        }
        let mut out = vec![0f32; b * h];
        for (j, &i) in self.order.iter().enumerate() {
            out[i as usize * h..(i as usize + 1) * h].copy_from_slice(&state[j * h..(j + 1) * h]);
        }
        *self
            .saved
            .lock()
            .expect("the forward pass holds no lock across a panic") = saved;
        Ok((CpuStorage::F32(out), Shape::from((b, h))))
    }

    fn bwd(
        &self,
        table: &Tensor,
        wh: &Tensor,
        _bh: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (h, g) = (self.hidden, 3 * self.hidden);
        let r = table.dim(0)?;
        let b = self.order.len();
        let saved = self
            .saved
            .lock()
            .expect("the forward pass holds no lock across a panic");
        if saved.len() != 5 * h * self.tokens.len() {
            bail!("{}: backward pass before the forward pass", self.name())
        }
        let mut dh = vec![0f32; b * h];
        with_f32(grad, |gv| {
            for (j, &i) in self.order.iter().enumerate() {
                dh[j * h..(j + 1) * h].copy_from_slice(&gv[i as usize * h..(i as usize + 1) * h]);
            }
            Ok(())
        })?;
        let (mut dtable, mut dwh, mut dbh) = (vec![0f32; r * g], vec![0f32; h * g], vec![0f32; g]);
        let (mut dgh, mut dgn) = (vec![0f32; b * g], vec![0f32; b * h]);
        with_f32(wh, |whv| {
            for (t, &l) in self.live.iter().enumerate().rev() {
                let block = &saved[self.block(t)];
                let (prev, block) = block.split_at(l * h);
                let (rs, block) = block.split_at(l * h);
                let (zs, block) = block.split_at(l * h);
                let (ns, hns) = block.split_at(l * h);
                let (dgh, dgn) = (&mut dgh[..l * g], &mut dgn[..l * h]);
                (
                    dh[..l * h].par_chunks_mut(h),
                    dgh.par_chunks_mut(g),
                    dgn.par_chunks_mut(h),
                    prev.par_chunks(h),
                    rs.par_chunks(h),
                    zs.par_chunks(h),
                    ns.par_chunks(h),
                    hns.par_chunks(h),
                )
                    .into_par_iter()
                    .for_each(|(dh, dgh, dgn, prev, r, z, n, hn)| {
                        gates::backward(dh, dgh, dgn, Saved { prev, r, z, n, hn });
                    });
                // dh_prev = dh z (above) + dgh W_h^T; dW_h += h^T dgh.
                gemm_with(
                    &mut dh[..l * h],
                    (l, h, g),
                    (dgh, (g, 1)),
                    (whv, (1, g)),
                    true,
                    parallelism(),
                );
                gemm_with(
                    &mut dwh,
                    (h, g, l),
                    (prev, (1, h)),
                    (dgh, (g, 1)),
                    true,
                    parallelism(),
                );
                // In row order, so the sums never depend on thread timing.
                let rows = &self.rows[self.starts[t]..self.starts[t + 1]];
                for (j, &row) in rows.iter().enumerate() {
                    let src = &dgh[j * g..(j + 1) * g];
                    axpy(&mut dbh, 1.0, src);
                    let d = &mut dtable[row as usize * g..(row as usize + 1) * g];
                    axpy(&mut d[..2 * h], 1.0, &src[..2 * h]);
                    axpy(&mut d[2 * h..], 1.0, &dgn[j * h..(j + 1) * h]);
                }
            }
            Ok(())
        })?;
        let dev = table.device();
        Ok((
            Some(Tensor::from_vec(dtable, (r, g), dev)?),
            Some(Tensor::from_vec(dwh, (h, g), dev)?),
            Some(Tensor::from_vec(dbh, g, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn batch(rows: &[&[u32]]) -> TokenBatch {
        TokenBatch::from_rows(rows.iter().copied())
    }

    /// The recurrence as candle's stock ops compute it, one step at a time over padded
    /// time-major rows: the reference for [`GruScan`].
    fn stock(cell: &GruCell, emb: &Tensor, batch: &TokenBatch) -> Tensor {
        let b = batch.len();
        let hidden = cell.state.weight.dim(0).unwrap();
        let steps = (0..b).map(|i| batch.row(i).len()).max().unwrap_or(0);
        let dev = emb.device();
        let mut ids = vec![0u32; steps * b];
        let mut live = vec![0f32; steps * b];
        for i in 0..b {
            for (t, &tok) in batch.row(i).iter().enumerate() {
                ids[t * b + i] = tok;
                live[t * b + i] = 1.0;
            }
        }
        let x = emb
            .index_select(&Tensor::from_vec(ids, steps * b, dev).unwrap(), 0)
            .unwrap();
        let x = x.matmul(&cell.input.weight).unwrap();
        let gi = x.broadcast_add(&cell.input.bias).unwrap();
        let live = Tensor::from_vec(live, (steps * b, 1), dev).unwrap();
        let mut state = Tensor::zeros((b, hidden), emb.dtype(), dev).unwrap();
        let sig = |t: Tensor| candle_nn::ops::sigmoid(&t).unwrap();
        for t in 0..steps {
            let gi = gi.narrow(0, t * b, b).unwrap();
            let gh = state
                .matmul(&cell.state.weight)
                .unwrap()
                .broadcast_add(&cell.state.bias)
                .unwrap();
            let part = |m: &Tensor, i: usize| m.narrow(1, i * hidden, hidden).unwrap();
            let r = sig((part(&gi, 0) + part(&gh, 0)).unwrap());
            let z = sig((part(&gi, 1) + part(&gh, 1)).unwrap());
            let n = (part(&gi, 2) + (r * part(&gh, 2)).unwrap())
                .unwrap()
                .tanh()
                .unwrap();
            let next = (&n + z.mul(&(&state - &n).unwrap()).unwrap()).unwrap();
            let m = live.narrow(0, t * b, b).unwrap();
            state = (&state + m.broadcast_mul(&(next - &state).unwrap()).unwrap()).unwrap();
        }
        state
    }

    /// The scan against candle's stock ops, values and every gradient, with a vocabulary
    /// smaller than the batch's tokens (the per-word table) and larger (per token).
    #[test]
    fn scan_equals_the_stock_recurrence_and_its_gradients() {
        use candle_core::Var;
        let dev = Device::Cpu;
        let (width, hidden) = (5, 11);
        for vocab in [7, 400] {
            let var = |shape: &[usize]| Var::randn(0f32, 0.6, shape, &dev).unwrap();
            let (emb, wi, bi, wh, bh) = (
                var(&[vocab, width]),
                var(&[width, 3 * hidden]),
                var(&[3 * hidden]),
                var(&[hidden, 3 * hidden]),
                var(&[3 * hidden]),
            );
            let cell = GruCell {
                input: Dense {
                    weight: wi.as_tensor().clone(),
                    bias: bi.as_tensor().clone(),
                    bf16: false,
                },
                state: Dense {
                    weight: wh.as_tensor().clone(),
                    bias: bh.as_tensor().clone(),
                    bf16: false,
                },
            };
            let tok = |i: u32| i * 5 % vocab as u32;
            let rows: Vec<Vec<u32>> = [3usize, 9, 0, 1, 9, 4, 6]
                .iter()
                .enumerate()
                .map(|(i, &len)| (0..len as u32).map(|t| tok(i as u32 * 13 + t)).collect())
                .collect();
            let batch = TokenBatch::from_rows(rows.iter().map(Vec::as_slice));
            let fused = cell.forward(emb.as_tensor(), &batch).unwrap();
            let reference = stock(&cell, emb.as_tensor(), &batch);
            let weights = Tensor::randn(0f32, 1.0, fused.shape(), &dev).unwrap();
            let grads = |t: &Tensor| {
                (t * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            };
            let (g1, g2) = (grads(&fused), grads(&reference));
            let close = |a: &Tensor, b: &Tensor, what: &str| {
                let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{what}: {x} vs {y}"
                    );
                }
            };
            close(&fused, &reference, "states");
            for (v, what) in [
                (&emb, "emb"),
                (&wi, "W_i"),
                (&bi, "b_i"),
                (&wh, "W_h"),
                (&bh, "b_h"),
            ] {
                let a = g1.get(v.as_tensor()).unwrap();
                let b = g2.get(v.as_tensor()).unwrap();
                close(a, b, what);
            }
        }
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
                bf16: false,
            },
            state: Dense {
                weight: r((hidden, 3 * hidden)),
                bias: r((1, 3 * hidden)).flatten_all().unwrap(),
                bf16: false,
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
