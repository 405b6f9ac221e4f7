//! The fully connected layer every encoder ends with, and its fused ops.
//!
//! - [`Linear`]: a layer's product, bias add and (for a hidden layer) ReLU as one op whose
//!   backward pass computes the weight and bias gradients, and the input's only when the input
//!   needs one (a first layer fed with data does not). As one node of candle's graph, the
//!   pre-activation of the layer is never a tensor of its own: candle sums every gradient into
//!   a freshly zeroed tensor of its node's size (`zeros_like`, then `add`, on one thread), 5% of
//!   a two-thread MLP step's cycles with the other core idle.
//! - [`Bias`]: a bias add alone, for outputs that are not a product of this layer.
//!
//! [`Bias`] gives candle's values and gradients bit for bit; [`Linear`] gives them within f32
//! rounding (its bias gradient is summed over blocks of rows, added in order), or within bf16's
//! with bf16 products ([`super::bf16`]). Both are deterministic at any thread count: every
//! output row is written by one thread, and every sum runs in an order the threads do not
//! change.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Module, Result, Shape, Tensor, bail};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::init::fan_in_uniform;
use super::ops::{f32_input, gemm_with, parallelism, with_f32};
use super::{bf16, rows};
use crate::spec::Precision;

/// A fully connected layer whose weight is stored pre-transposed, `(input, output)`, so the
/// forward product reads it contiguously.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `(input, output)`.
    pub weight: Tensor,
    /// `(output)`.
    pub bias: Tensor,
    /// Products with bf16 operands ([`super::bf16`]).
    pub bf16: bool,
}

impl Dense {
    /// `input -> output`, parameters `weight` `(input, output)` and `bias` `(1, output)` under
    /// `vb`, both drawn from PyTorch's default U(-1/sqrt(input), 1/sqrt(input)), weight first;
    /// its products in `precision`.
    pub fn new(input: usize, output: usize, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let init = fan_in_uniform(input);
        let weight = vb.get_with_hints((input, output), "weight", init)?;
        // Stored as a row so that checkpoints keep the shape they always had.
        let bias = vb.get_with_hints((1, output), "bias", init)?;
        let bf16 = precision == Precision::Bf16;
        if bf16 && !bf16::available() {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "train.precision = \"bf16\": this CPU has no AVX512-BF16, so the products take \
                     a portable path, slower than f32 (same rounding)"
                )
            });
        }
        Ok(Self {
            weight,
            bias: bias.reshape(output)?,
            bf16,
        })
    }

    /// `(B, input)` to `(B, output)`, then ReLU: one op ([`Linear`]).
    pub fn forward_relu(&self, xs: &Tensor) -> Result<Tensor> {
        self.linear(xs, true)
    }

    /// `xs + bias` for `xs` `(B, output)` ([`Bias`]).
    pub fn add_bias(&self, xs: &Tensor) -> Result<Tensor> {
        xs.contiguous()?.apply_op2(&self.bias, Bias)
    }

    fn linear(&self, xs: &Tensor, relu: bool) -> Result<Tensor> {
        xs.contiguous()?
            .apply_op3(&self.weight, &self.bias, Linear::new(relu, self.bf16))
    }
}

impl Module for Dense {
    /// `(B, input)` to `(B, output)`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.linear(xs, false)
    }
}

/// `x W + b`, then ReLU where `relu`: `x` `(m, k)`, `W` `(k, n)`, `b` `(n)`, out `(m, n)`. The
/// gradient passes the ReLU where the pre-activation is at least 0, an exact zero included
/// (candle's rule, so the same results as candle's ops; PyTorch passes none at zero); the input
/// gets a gradient only when it tracks a variable.
#[derive(Debug, Default)]
pub(crate) struct Linear {
    /// ReLU after the bias.
    relu: bool,
    /// bf16 operands in every product ([`super::bf16`]).
    bf16: bool,
    /// With `relu`: the flat indices where the forward pass's pre-activation was exactly 0
    /// (the output cannot tell those from negative values), in order.
    zeros: std::sync::Mutex<Vec<usize>>,
}

impl Linear {
    /// The op, with a ReLU after the bias where `relu`, its products with bf16 operands where
    /// `bf16`.
    pub(crate) fn new(relu: bool, bf16: bool) -> Self {
        Self {
            relu,
            bf16,
            ..Self::default()
        }
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        if self.relu { "linear-relu" } else { "linear" }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (mut out, (m, n)) = product(self.name(), (s1, l1), (s2, l2), self.bf16)?;
        let b = f32_input(s3, l3, self.name())?;
        if b.len() != n {
            bail!("{}: ({m}, {n}) + ({})", self.name(), b.len())
        }
        if self.relu {
            // The output tells where the gradient passes (above 0) except at an exact-zero
            // pre-activation, which is rare: those positions are kept aside. A mask of the
            // layer's size written and read back cost 11% of a one-thread MLP step.
            let zeros: Vec<usize> = out
                .par_chunks_mut(n.max(1))
                .enumerate()
                .flat_map_iter(|(row, o)| {
                    let mut zeros = Vec::new();
                    rows::bias_relu_row(o, b, &mut zeros);
                    zeros.into_iter().map(move |c| row * n + c)
                })
                .collect();
            *self.zeros.lock().unwrap_or_else(|e| e.into_inner()) = zeros;
        } else {
            out.par_chunks_mut(n.max(1))
                .for_each(|o| rows::bias_row(o, b));
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (m, n) = (x.dim(0)?, w.dim(1)?);
        let grad = grad.contiguous()?;
        let (dh, db) = with_f32(&grad, |g| {
            if g.len() != m * n {
                bail!("{}: ({m}, {n}) gradient expected", self.name())
            }
            if !self.relu {
                return Ok((None, block_column_sums(g, n)));
            }
            let zeros = self.zeros.lock().unwrap_or_else(|e| e.into_inner());
            with_f32(res, |r| {
                if r.len() != m * n {
                    bail!("{}: backward pass without its forward pass", self.name())
                }
                let (d, db) = relu_grad(g, r, &zeros, n);
                Ok((Some(d), db))
            })
        })?;
        let dh = match dh {
            Some(d) => Tensor::from_vec(d, (m, n), x.device())?,
            None => grad,
        };
        let (dx, dw) = product_grads(x, w, &dh, self.bf16)?;
        Ok((dx, Some(dw), Some(Tensor::from_vec(db, n, b.device())?)))
    }
}

/// Rows per block of the bias gradient's partial sums: fixed, so that the sums, added block
/// by block in order, do not depend on the thread count.
const SUM_ROWS: usize = 16;

/// The gradient through the ReLU, `g` where the output `r` is above 0 or the pre-activation
/// was an exact zero (`zeros`, flat indices in order), and its column sums (the bias
/// gradient), both `(rows, n)` row-major. One pass: the sums read rows still in cache.
fn relu_grad(g: &[f32], r: &[f32], zeros: &[usize], n: usize) -> (Vec<f32>, Vec<f32>) {
    let block = SUM_ROWS * n.max(1);
    let mut d: Vec<f32> = Vec::with_capacity(g.len());
    let partials: Vec<Vec<f32>> = d.spare_capacity_mut()[..g.len()]
        .par_chunks_mut(block)
        .zip(g.par_chunks(block).zip(r.par_chunks(block)))
        .enumerate()
        .map(|(i, (d, (g, r)))| {
            let mut sums = vec![0f32; n];
            let (at, len) = (i * block, d.len());
            let from = zeros.partition_point(|&z| z < at);
            let mine = &zeros[from..from + zeros[from..].partition_point(|&z| z < at + len)];
            if mine.is_empty() {
                rows::relu_grad_rows(d, g, r, &mut sums);
            } else {
                let d = rows::relu_grad_rows(d, g, r, &mut vec![0f32; n]);
                for &z in mine {
                    d[z - at] = g[z - at];
                }
                rows::add_rows(&mut sums, d);
            }
            sums
        })
        .collect();
    // SAFETY: the blocks cover the first `g.len()` elements, each written above.
    unsafe { d.set_len(g.len()) };
    (d, add_in_order(partials, n))
}

/// The column sums of `m` (rows of `n`), by blocks of [`SUM_ROWS`] rows on different threads.
fn block_column_sums(m: &[f32], n: usize) -> Vec<f32> {
    let partials = m
        .par_chunks(SUM_ROWS * n.max(1))
        .map(|rows| row_sums(rows, n))
        .collect();
    add_in_order(partials, n)
}

/// Sums of the rows of `m`, row by row in order: `n` columns.
fn row_sums(m: &[f32], n: usize) -> Vec<f32> {
    let mut sums = vec![0f32; n];
    rows::add_rows(&mut sums, m);
    sums
}

/// The element-wise sum of `partials`, each of `n`, added in their order.
fn add_in_order(partials: Vec<Vec<f32>>, n: usize) -> Vec<f32> {
    let mut sums = vec![0f32; n];
    for p in partials {
        rows::add_rows(&mut sums, &p);
    }
    sums
}

/// `x (m, k) @ w (k, n)` for an op's forward pass, row-major `(m, n)`, with bf16 operands where
/// `bf16`; `op` names it in errors.
///
/// # Errors
/// Non-f32 or non-contiguous inputs, or shapes that do not multiply.
pub(super) fn product(
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    bf16: bool,
) -> Result<(Vec<f32>, (usize, usize))> {
    let x = f32_input(s1, l1, op)?;
    let w = f32_input(s2, l2, op)?;
    let (&[m, k], &[k2, n]) = (l1.dims(), l2.dims()) else {
        bail!("{op}: two matrices expected")
    };
    if k != k2 {
        bail!("{op}: ({m}, {k}) @ ({k2}, {n})")
    }
    // Zeroed: gemm's edge tiles read the destination.
    let mut out = vec![0f32; m * n];
    multiply(&mut out, (m, n, k), (x, (k, 1)), (w, (n, 1)), bf16);
    Ok((out, (m, n)))
}

/// `dst = lhs @ rhs` (strides as [`gemm_with`]'s) on the point's threads: gemm's f32 kernel,
/// or bf16 operands where `bf16`.
fn multiply(
    dst: &mut [f32],
    mnk: (usize, usize, usize),
    lhs: (&[f32], (usize, usize)),
    rhs: (&[f32], (usize, usize)),
    bf16: bool,
) {
    if bf16 {
        bf16::gemm(dst, mnk, lhs, rhs, candle_core::utils::get_num_threads());
    } else {
        gemm_with(dst, mnk, lhs, rhs, false, parallelism());
    }
}

/// The gradients of `x (m, k) @ w (k, n)` given the output's, `dy (m, n)`: `dx = dy w^T`, only
/// when `x` tracks a variable (data needs none: candle's `matmul` backward computes it
/// anyway, one more GEMM the size of the forward pass), and `dw = x^T dy`. Transposes are read
/// through strides. With bf16 operands where `bf16`.
///
/// # Errors
/// Non-f32 inputs.
pub(super) fn product_grads(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    bf16: bool,
) -> Result<(Option<Tensor>, Tensor)> {
    let ((m, k), n) = (x.dims2()?, w.dim(1)?);
    let (dx, dw) = with_f32(dy, |d| {
        with_f32(x, |xv| {
            with_f32(w, |wv| {
                let mut dw = vec![0f32; k * n];
                multiply(&mut dw, (k, n, m), (xv, (1, k)), (d, (n, 1)), bf16);
                let dx = x.track_op().then(|| {
                    let mut dx = vec![0f32; m * k];
                    multiply(&mut dx, (m, k, n), (d, (n, 1)), (wv, (1, n)), bf16);
                    dx
                });
                Ok((dx, dw))
            })
        })
    })?;
    Ok((
        dx.map(|dx| Tensor::from_vec(dx, (m, k), x.device()))
            .transpose()?,
        Tensor::from_vec(dw, (k, n), w.device())?,
    ))
}

/// `h + b` with `b` added to every row: `h` is `(rows, n)`, `b` is `(n)`. The same values and
/// gradients as candle's `broadcast_add`: the bias gradient sums the rows in order for each
/// column, as candle's `sum(0)` does, with columns split between threads; tested bit for bit.
/// candle's sum over rows is a strided reduction on one thread (3% of a two-thread MLP step's
/// cycles, with the other core idle).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bias;

impl CustomOp2 for Bias {
    fn name(&self) -> &'static str {
        "bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (h, b) = (
            f32_input(s1, l1, self.name())?,
            f32_input(s2, l2, self.name())?,
        );
        let (&[rows, n], &[nb]) = (l1.dims(), l2.dims()) else {
            bail!("{}: (rows, n) and (n) expected", self.name())
        };
        if n != nb {
            bail!("{}: ({rows}, {n}) + ({nb})", self.name())
        }
        let mut out = vec![0f32; rows * n];
        out.par_chunks_mut(n.max(1))
            .zip(h.par_chunks(n.max(1)))
            .for_each(|(o, hr)| {
                for ((o, &x), &bj) in o.iter_mut().zip(hr).zip(b) {
                    *o = x + bj;
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }

    fn bwd(
        &self,
        _h: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let n = b.dim(0)?;
        let db = with_f32(&grad, |g| Ok(column_sums(g, n)))?;
        Ok((Some(grad), Some(Tensor::from_vec(db, n, b.device())?)))
    }
}

/// Sums of the columns of `m` (rows of `n`), each over the rows in order: the sums candle's
/// `sum(0)` makes. Blocks of columns go to different threads; each sum keeps its order.
fn column_sums(m: &[f32], n: usize) -> Vec<f32> {
    const BLOCK: usize = 64;
    let mut sums = vec![0f32; n];
    sums.par_chunks_mut(BLOCK).enumerate().for_each(|(blk, s)| {
        let at = blk * BLOCK;
        let width = s.len();
        for row in m.chunks(n.max(1)) {
            for (s, &v) in s.iter_mut().zip(&row[at..at + width]) {
                *s += v;
            }
        }
    });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::weighted_grads;
    use candle_core::{Device, Var};

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The layer on candle's stock ops: matmul, broadcast add, and ReLU where `relu`.
    fn candles(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Tensor {
        let added = x.matmul(w).unwrap().broadcast_add(b).unwrap();
        if relu { added.relu().unwrap() } else { added }
    }

    /// The fused layer against candle's matmul, broadcast add and ReLU: values, and the
    /// gradients of the weight, the bias and (only when tracked) the input.
    #[test]
    fn linear_equals_candles_ops() {
        let dev = Device::Cpu;
        for (relu, tracked) in [(true, false), (false, true), (true, true)] {
            let x = Var::randn(0f32, 1.0, (37, 19), &dev).unwrap();
            let x = if tracked {
                x.as_tensor().clone()
            } else {
                x.as_tensor().detach()
            };
            let w = Var::randn(0f32, 1.0, (19, 70), &dev).unwrap();
            let b = Var::randn(0f32, 1.0, 70, &dev).unwrap();
            let weights = Tensor::randn(0f32, 1.0, (37, 70), &dev).unwrap();
            let fused = x
                .apply_op3(w.as_tensor(), b.as_tensor(), Linear::new(relu, false))
                .unwrap();
            let stock = candles(&x, w.as_tensor(), b.as_tensor(), relu);
            crate::testing::assert_close(&fused, &stock, 1e-5, 1e-5, "linear");
            let (g1, g2) = (
                weighted_grads(fused, &weights),
                weighted_grads(stock, &weights),
            );
            for (v, what) in [(w.as_tensor(), "weight"), (b.as_tensor(), "bias")] {
                crate::testing::assert_grads_close(&g1, &g2, v, 1e-5, 1e-5, what);
            }
            if tracked {
                crate::testing::assert_grads_close(&g1, &g2, &x, 1e-5, 1e-5, "input");
            } else {
                assert!(g1.get(&x).is_none(), "data gets no gradient");
            }
        }
    }

    /// With bf16 operands: values and every gradient within bf16's rounding (8 significant
    /// bits per operand, sums of 19 to 37 products of unit normals) of candle's f32 ops, and
    /// not f32's values. Without the ReLU, whose mask flips where a pre-activation is within
    /// rounding of 0.
    #[test]
    fn bf16_linear_is_candles_within_bf16_rounding() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (37, 19), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (19, 70), &dev).unwrap();
        let b = Var::randn(0f32, 1.0, 70, &dev).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (37, 70), &dev).unwrap();
        let (xt, wt, bt) = (x.as_tensor(), w.as_tensor(), b.as_tensor());
        let fused = xt.apply_op3(wt, bt, Linear::new(false, true)).unwrap();
        let f32s = xt.apply_op3(wt, bt, Linear::new(false, false)).unwrap();
        assert_ne!(bits(&fused), bits(&f32s), "bf16 rounds the operands");
        let stock = candles(xt, wt, bt, false);
        crate::testing::assert_close(&fused, &stock, 0.1, 0.02, "bf16 linear");
        let (g1, g2) = (
            weighted_grads(fused, &weights),
            weighted_grads(stock, &weights),
        );
        for (v, what) in [(wt, "weight"), (bt, "bias"), (xt, "input")] {
            crate::testing::assert_grads_close(&g1, &g2, v, 0.15, 0.02, what);
        }
    }

    /// An exact zero pre-activation passes the gradient, as candle's ReLU does (PyTorch's does
    /// not): rows of zeros make the pre-activation the bias, zero in some columns.
    #[test]
    fn an_exact_zero_pre_activation_passes_the_gradient_as_in_candle() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((5, 3), candle_core::DType::F32, &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (3, 4), &dev).unwrap();
        let b = Var::from_vec(vec![0f32, 1.0, -1.0, 0.0], 4, &dev).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (5, 4), &dev).unwrap();
        let fused = x
            .apply_op3(w.as_tensor(), b.as_tensor(), Linear::new(true, false))
            .unwrap();
        let stock = candles(&x, w.as_tensor(), b.as_tensor(), true);
        let (g1, g2) = (
            weighted_grads(fused, &weights),
            weighted_grads(stock, &weights),
        );
        let db = bits(g1.get(b.as_tensor()).unwrap());
        assert_eq!(db, bits(g2.get(b.as_tensor()).unwrap()));
        assert_ne!(db[0], 0, "the gradient passes an exact zero");
        assert_eq!(db[2], 0, "and stops at a negative pre-activation");
    }

    #[test]
    fn bias_is_candles_bit_for_bit() {
        // 150 columns: two blocks of 64 and a short one.
        for cols in [19, 150] {
            bias_is_candles(cols);
        }
    }

    fn bias_is_candles(cols: usize) {
        let dev = candle_core::Device::Cpu;
        let h = candle_core::Var::randn(0f32, 1.0, (37, cols), &dev).unwrap();
        let b = candle_core::Var::randn(0f32, 1.0, cols, &dev).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (37, cols), &dev).unwrap();
        let fused = h.as_tensor().apply_op2(b.as_tensor(), Bias).unwrap();
        let stock = h.as_tensor().broadcast_add(b.as_tensor()).unwrap();
        assert_eq!(bits(&fused), bits(&stock));
        let (g1, g2) = (
            weighted_grads(fused, &weights),
            weighted_grads(stock, &weights),
        );
        for v in [&h, &b] {
            assert_eq!(
                bits(g1.get(v.as_tensor()).unwrap()),
                bits(g2.get(v.as_tensor()).unwrap())
            );
        }
    }
}
