//! Two kernels of the training step that do less work than candle's stock ops.
//!
//! - [`DataMatmul`]: `x w` whose backward pass computes the input's gradient only when the
//!   input needs one. candle's `matmul` backward computes both operands' gradients, so a first
//!   layer fed with data paid one extra GEMM the size of its forward pass every step.
//! - [`PairScores`]: the step's logits `<e_anchor, e_candidate>` for each anchor's positive and
//!   k negatives, computed directly: B (k + 1) dot products of length dim, instead of the
//!   `B x U` similarity matrix against every distinct row (U up to B (k + 2)) and a gather.
//!
//! (A layer's product, bias and ReLU are one op of their own: [`super::dense`].) All are
//! deterministic: every output row is written by one thread, and the backward accumulations run
//! in a fixed order.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::dense::{product, product_grads};
use super::ops::{f32_input, with_f32};

/// `x (m, k) @ w (k, n)`, as candle's matmul computes it, with a backward pass that skips the
/// gradient of `x` when `x` is data (tracks no variable).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataMatmul;

impl CustomOp2 for DataMatmul {
    fn name(&self) -> &'static str {
        "data-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (out, (m, n)) = product(self.name(), (s1, l1), (s2, l2), false)?;
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = product_grads(x, w, &grad.contiguous()?, false)?;
        Ok((dx, Some(dw)))
    }
}

/// Logits of a contrastive step: for anchor i, `out[i, j] = <e[anchors[i]], e[candidates[i *
/// per + j]]>` over `per` candidates (the positive, then the negatives). Input `e` is `(U,
/// dim)`, output `(B, per)`.
#[derive(Debug, Clone)]
pub(crate) struct PairScores {
    /// Row of each anchor in `e`, `B` of them.
    pub(crate) anchors: Vec<u32>,
    /// Rows of each anchor's candidates, `B x per`.
    pub(crate) candidates: Vec<u32>,
    /// Candidates per anchor.
    pub(crate) per: usize,
}

impl PairScores {
    fn check(&self, rows: usize) -> Result<()> {
        if self.candidates.len() != self.anchors.len() * self.per {
            bail!(
                "pair-scores: {} candidates for {} anchors of {}",
                self.candidates.len(),
                self.anchors.len(),
                self.per
            )
        }
        if let Some(r) = self
            .anchors
            .iter()
            .chain(&self.candidates)
            .find(|&&r| r as usize >= rows)
        {
            bail!("pair-scores: row {r} of {rows}")
        }
        Ok(())
    }
}

impl CustomOp1 for PairScores {
    fn name(&self) -> &'static str {
        "pair-scores"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let e = f32_input(s, l, self.name())?;
        let &[rows, dim] = l.dims() else {
            bail!("{}: (rows, dim) expected", self.name())
        };
        self.check(rows)?;
        let (b, per) = (self.anchors.len(), self.per);
        let mut out = vec![0f32; b * per];
        let row = |r: u32| &e[r as usize * dim..(r as usize + 1) * dim];
        out.par_chunks_mut(per.max(1))
            .zip(self.anchors.par_iter())
            .zip(self.candidates.par_chunks(per.max(1)))
            .for_each(|((o, &a), cands)| {
                let a = row(a);
                for (o, &c) in o.iter_mut().zip(cands) {
                    *o = dot(a, row(c));
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, per))))
    }

    fn bwd(&self, e: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (rows, dim) = e.dims2()?;
        let mut de = vec![0f32; rows * dim];
        with_f32(e, |ev| {
            with_f32(grad, |g| {
                let per = self.per;
                // In anchor order, then candidate order: the same sums whatever the threads.
                for (i, &a) in self.anchors.iter().enumerate() {
                    let a = a as usize;
                    for (j, &c) in self.candidates[i * per..(i + 1) * per].iter().enumerate() {
                        let (c, gij) = (c as usize, g[i * per + j]);
                        if gij == 0.0 {
                            continue;
                        }
                        // d<e_a, e_c>/d e_a = e_c and / d e_c = e_a (both when a == c).
                        let (ea, ec) = (&ev[a * dim..(a + 1) * dim], &ev[c * dim..(c + 1) * dim]);
                        axpy(&mut de[a * dim..(a + 1) * dim], gij, ec);
                        axpy(&mut de[c * dim..(c + 1) * dim], gij, ea);
                    }
                }
                Ok(())
            })
        })?;
        Ok(Some(Tensor::from_vec(de, (rows, dim), e.device())?))
    }
}

/// `<a, b>` with eight lanes, summed in a fixed order.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { simd::dot(a, b) };
    }
    let mut lanes = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] = ca[l].mul_add(cb[l], lanes[l]);
        }
    }
    let mut s = lanes.iter().sum::<f32>();
    for (x, y) in a[chunks..].iter().zip(&b[chunks..]) {
        s = x.mul_add(*y, s);
    }
    s
}

/// `y += alpha x`, fused multiply-adds.
pub(crate) fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { simd::axpy(y, alpha, x) };
    }
    for (y, x) in y.iter_mut().zip(x) {
        *y = alpha.mul_add(*x, *y);
    }
}

/// `out = sum_j alpha[j] src[idx[j]]` over rows of `src` `out.len()` wide, by fused
/// multiply-adds from zero in `j` order: the sums a loop of [`axpy`] makes, bit for bit, with
/// the output held in registers across the rows instead of loaded and stored per row.
///
/// # Panics
/// When `idx` and `alpha` differ in length or a row is outside `src`.
pub(crate) fn weighted_row_sum(out: &mut [f32], src: &[f32], idx: &[u32], alpha: &[f32]) {
    let width = out.len();
    assert_eq!(idx.len(), alpha.len(), "one weight per row");
    assert!(
        idx.iter().all(|&t| (t as usize + 1) * width <= src.len()),
        "row outside the source"
    );
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above), and every row read is inside
        // `src` (asserted above).
        done = unsafe { simd::weighted_row_sum(out, src, idx, alpha) };
    }
    for c in done..width {
        let mut acc = 0f32;
        for (&t, &a) in idx.iter().zip(alpha) {
            acc = a.mul_add(src[t as usize * width + c], acc);
        }
        out[c] = acc;
    }
}

/// AVX2 + FMA forms of [`dot`] and [`axpy`]: this crate is built for the baseline x86-64 CPU,
/// whose vectors hold four f32 and have no fused multiply-add, and these run B (k + 1) times a
/// step. Same results as the portable forms: eight lanes, summed in the same order.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let chunks = n / 8 * 8;
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < chunks {
            // SAFETY: i + 8 <= chunks <= both lengths.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                )
            };
            acc = _mm256_fmadd_ps(x, y, acc);
            i += 8;
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds eight f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        let mut s = lanes.iter().sum::<f32>();
        for j in chunks..n {
            s = a[j].mul_add(b[j], s);
        }
        s
    }

    /// [`super::weighted_row_sum`] over the first multiple of eight columns, 64 at a time in
    /// eight registers; returns how many columns it wrote.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `idx` and `alpha` are equally long and every row
    /// `idx[j]` of `out.len()` values lies inside `src`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_row_sum(
        out: &mut [f32],
        src: &[f32],
        idx: &[u32],
        alpha: &[f32],
    ) -> usize {
        let width = out.len();
        let mut c = 0;
        while c + 64 <= width {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (&t, &a) in idx.iter().zip(alpha) {
                let a = _mm256_set1_ps(a);
                // SAFETY: row t holds `width` values inside `src` and c + 64 <= width.
                let p = unsafe { src.as_ptr().add(t as usize * width + c) };
                let [a0, a1, a2, a3, a4, a5, a6, a7] = &mut acc;
                // SAFETY: as above; eight loads of eight lanes cover the 64 columns.
                unsafe {
                    *a0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p), *a0);
                    *a1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(8)), *a1);
                    *a2 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(16)), *a2);
                    *a3 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(24)), *a3);
                    *a4 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(32)), *a4);
                    *a5 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(40)), *a5);
                    *a6 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(48)), *a6);
                    *a7 = _mm256_fmadd_ps(a, _mm256_loadu_ps(p.add(56)), *a7);
                }
            }
            for (l, v) in acc.iter().enumerate() {
                // SAFETY: c + 64 <= width = out.len().
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c + 8 * l), *v) };
            }
            c += 64;
        }
        while c + 8 <= width {
            let mut acc = _mm256_setzero_ps();
            for (&t, &a) in idx.iter().zip(alpha) {
                // SAFETY: as above, for eight columns.
                acc = unsafe {
                    _mm256_fmadd_ps(
                        _mm256_set1_ps(a),
                        _mm256_loadu_ps(src.as_ptr().add(t as usize * width + c)),
                        acc,
                    )
                };
            }
            // SAFETY: c + 8 <= width = out.len().
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c), acc) };
            c += 8;
        }
        c
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
        let n = y.len().min(x.len());
        let chunks = n / 8 * 8;
        let a = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i < chunks {
            // SAFETY: i + 8 <= chunks <= both lengths; `y` is borrowed mutably, so no alias.
            unsafe {
                let v = _mm256_fmadd_ps(
                    a,
                    _mm256_loadu_ps(x.as_ptr().add(i)),
                    _mm256_loadu_ps(y.as_ptr().add(i)),
                );
                _mm256_storeu_ps(y.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        for j in chunks..n {
            y[j] = alpha.mul_add(x[j], y[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::weighted_grads;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn data_matmul_equals_matmul_and_skips_the_data_gradient() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (37, 19), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (19, 11), &dev).unwrap();
        let fused = x.apply_op2(w.as_tensor(), DataMatmul).unwrap();
        let stock = x.matmul(w.as_tensor()).unwrap();
        assert_eq!(
            fused.to_vec2::<f32>().unwrap(),
            stock.to_vec2::<f32>().unwrap(),
            "the same GEMM, bit for bit"
        );
        let g1 = fused.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = stock.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        close(
            g1.get(w.as_tensor()).unwrap(),
            g2.get(w.as_tensor()).unwrap(),
            1e-6,
        );
        assert!(g1.get(&x).is_none(), "data gets no gradient");
        // A tracked input gets its gradient.
        let xv = Var::from_tensor(&x).unwrap();
        let f = xv.apply_op2(w.as_tensor(), DataMatmul).unwrap();
        let s = xv.as_tensor().matmul(w.as_tensor()).unwrap();
        let g1 = f.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = s.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        close(
            g1.get(xv.as_tensor()).unwrap(),
            g2.get(xv.as_tensor()).unwrap(),
            1e-6,
        );
    }

    #[test]
    fn pair_scores_equal_the_similarity_matrix_gathered() {
        let dev = Device::Cpu;
        // dim 13: eight lanes and a tail; an anchor among its own candidates (a == c).
        let e = Var::randn(0f32, 1.0, (9, 13), &dev).unwrap();
        let anchors = vec![0u32, 4, 8];
        let candidates = vec![1u32, 2, 3, 5, 4, 6, 8, 0, 0];
        let op = PairScores {
            anchors: anchors.clone(),
            candidates: candidates.clone(),
            per: 3,
        };
        let fused = e.apply_op1(op).unwrap();
        let a = e
            .index_select(&Tensor::new(anchors.as_slice(), &dev).unwrap(), 0)
            .unwrap();
        let stock = a
            .matmul(&e.as_tensor().t().unwrap())
            .unwrap()
            .gather(&Tensor::from_vec(candidates, (3, 3), &dev).unwrap(), 1)
            .unwrap();
        close(&fused, &stock, 1e-5);
        let weights = Tensor::randn(0f32, 1.0, (3, 3), &dev).unwrap();
        let (g1, g2) = (
            weighted_grads(fused, &weights),
            weighted_grads(stock, &weights),
        );
        close(
            g1.get(e.as_tensor()).unwrap(),
            g2.get(e.as_tensor()).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn weighted_row_sum_is_a_loop_of_axpy_bit_for_bit() {
        // 77 columns: one block of 64, one of 8 and a tail of 5; a row taken twice.
        let width = 77;
        let src: Vec<f32> = (0..6 * width).map(|i| (i as f32 * 0.37).sin()).collect();
        let (idx, alpha) = ([4u32, 0, 5, 4, 2], [0.5f32, -1.25, 3.0, 0.1, 1.0]);
        let mut want = vec![0f32; width];
        for (&t, &a) in idx.iter().zip(&alpha) {
            axpy(
                &mut want,
                a,
                &src[t as usize * width..(t as usize + 1) * width],
            );
        }
        let mut got = vec![f32::NAN; width];
        weighted_row_sum(&mut got, &src, &idx, &alpha);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        weighted_row_sum(&mut got, &src, &[], &[]);
        assert_eq!(got, vec![0.0; width], "no rows, zeros");
    }

    #[test]
    fn simd_and_portable_forms_agree() {
        let a: Vec<f32> = (0..29).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..29).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-5);
        let mut y = b.clone();
        axpy(&mut y, 0.5, &a);
        for i in 0..29 {
            assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
        }
    }
}
