//! The CPU kernel candle lacks: a fused convolution + 2 x 2 max pooling + ReLU on channels-last
//! images, as a custom op with its backward pass.
//!
//! candle's stock `conv2d` backward is slow on CPU, and an im2col matrix for a whole batch is
//! hundreds of megabytes, so the step was memory-bound. Here the work is cut into chunks of a
//! few images: each chunk gathers its patches into a cache-sized buffer, runs one
//! single-threaded GEMM, and pools straight out of the cache; rayon spreads the chunks over the
//! point's threads. The backward pass re-gathers the patches per chunk, so nothing batch-sized
//! but the inputs and outputs is ever allocated. Every chunk is written by one thread and the
//! per-chunk weight gradients are summed in chunk order, so results are deterministic.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor, bail};
use rayon::prelude::*;

use super::fused::axpy;

/// Bytes of patches a chunk gathers at once: small enough to stay in L2 beside the weights.
const CHUNK_BYTES: usize = 512 * 1024;

/// Runs `f` on the contiguous f32 data of `t`.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(v)) = &*storage else {
        bail!("expected f32 CPU tensor")
    };
    let Some((a, b)) = layout.contiguous_offsets() else {
        bail!("expected a contiguous tensor")
    };
    f(&v[a..b])
}

pub(super) fn f32_input<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: f32 only")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op}: contiguous input only")
    };
    Ok(&v[a..b])
}

/// One 2 x 2 window's max pooling and ReLU over `cout` channels: `cells` are the window's four
/// conv outputs (row-major), `out` gets the ReLU of the maximum and `win` the first cell that
/// holds it, or `u8::MAX` where ReLU cut it (a NaN maximum included). candle's ReLU passes the
/// gradient at 0 too; so does this.
fn pool_window(cells: [&[f32]; 4], out: &mut [f32], win: &mut [u8]) {
    let n = out.len();
    assert!(win.len() == n && cells.iter().all(|c| c.len() == n));
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); all six slices hold `n` values.
        done = unsafe { simd::pool_window(cells, out, win) };
    }
    for ch in done..n {
        let mut best = 0;
        for cell in 1..4 {
            if cells[cell][ch] > cells[best][ch] {
                best = cell;
            }
        }
        let v = cells[best][ch];
        (out[ch], win[ch]) = if v >= 0.0 {
            (v, best as u8)
        } else {
            (0.0, u8::MAX)
        };
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// [`super::pool_window`] over the first multiple of eight channels; returns how many.
    ///
    /// # Safety
    /// The CPU has AVX2; the cells, `out` and `win` hold `out.len()` values each.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pool_window(cells: [&[f32]; 4], out: &mut [f32], win: &mut [u8]) -> usize {
        let n = out.len() / 8 * 8;
        let mut ch = 0;
        while ch < n {
            // SAFETY: ch + 8 <= n <= every slice's length.
            unsafe {
                let mut best = _mm256_loadu_ps(cells[0].as_ptr().add(ch));
                let mut idx = _mm256_setzero_ps();
                for (c, cell) in cells.iter().enumerate().skip(1) {
                    let v = _mm256_loadu_ps(cell.as_ptr().add(ch));
                    // Strictly greater, as the scalar form: the first maximum wins, NaN never.
                    let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best);
                    best = _mm256_blendv_ps(best, v, gt);
                    idx = _mm256_blendv_ps(idx, _mm256_set1_ps(c as f32), gt);
                }
                let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(best, _mm256_setzero_ps());
                _mm256_storeu_ps(out.as_mut_ptr().add(ch), _mm256_and_ps(best, keep));
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(
                    lanes.as_mut_ptr(),
                    _mm256_blendv_ps(_mm256_set1_ps(255.0), idx, keep),
                );
                for (w, l) in win[ch..ch + 8].iter_mut().zip(lanes) {
                    *w = l as u8;
                }
            }
            ch += 8;
        }
        n
    }
}

/// `v = 0` through `write_bytes`: a memset at any optimisation level.
fn zero(v: &mut [f32]) {
    // SAFETY: all-zero bytes are the f32 0.0, and the range is `v`'s own.
    unsafe { std::ptr::write_bytes(v.as_mut_ptr(), 0, v.len()) }
}

/// Row-major `dst (m x n) = lhs (m x k) * rhs (k x n)` on the calling thread, where lhs and rhs
/// are given by their (row, column) strides so that transposes cost nothing.
fn gemm(
    dst: &mut [f32],
    dims: (usize, usize, usize),
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    gemm_with(
        dst,
        dims,
        (lhs, lhs_strides),
        (rhs, rhs_strides),
        false,
        gemm::Parallelism::None,
    )
}

/// Row-major `dst (m x n) = lhs (m x k) * rhs (k x n)`, or `dst += lhs * rhs` when
/// `accumulate`; lhs and rhs come with their (row, column) strides so that transposes cost
/// nothing.
///
/// # Panics
/// When a slice is too small for its dimensions and strides.
pub(super) fn gemm_with(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    (lhs, (lhs_rs, lhs_cs)): (&[f32], (usize, usize)),
    (rhs, (rhs_rs, rhs_cs)): (&[f32], (usize, usize)),
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n, "gemm: destination too small");
    assert!(m == 0 || k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len());
    assert!(k == 0 || n == 0 || (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len());
    // SAFETY: the asserts above keep every index the kernel touches inside the three slices,
    // and `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// gemm's threading for one product of the step: candle's thread count (the point's threads).
pub(super) fn parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        t if t > 1 => gemm::Parallelism::Rayon(t),
        _ => gemm::Parallelism::None,
    }
}

/// `relu(max_pool_2x2(conv(x)))` for a stride-1, zero-padded `k x k` convolution: `(B, h * w *
/// c)` HWC inputs and a `(k * k * c + 1, cout)` weight whose last row is the bias give `(B, h/2 *
/// w/2 * cout)`. Max pooling before ReLU is exact (the two commute) and the gradient of a window
/// goes to its first maximum, when that maximum is not negative.
#[derive(Debug)]
pub(crate) struct ConvPoolRelu {
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) k: usize,
    pub(crate) cout: usize,
    /// Images per chunk.
    pub(crate) chunk: usize,
    /// Per output cell, the winning window cell (0..4), or `u8::MAX` when ReLU cut it: written
    /// by the forward pass for the backward pass, so it need not redo the forward GEMM.
    winners: Mutex<Vec<u8>>,
}

impl ConvPoolRelu {
    pub(crate) fn new(c: usize, h: usize, w: usize, k: usize, cout: usize) -> Self {
        let patch_bytes = h * w * (k * k * c + 1) * 4;
        Self {
            c,
            h,
            w,
            k,
            cout,
            chunk: (CHUNK_BYTES / patch_bytes).max(1),
            winners: Mutex::new(Vec::new()),
        }
    }

    /// Width of one patch, bias column included.
    fn patch(&self) -> usize {
        self.k * self.k * self.c + 1
    }

    fn per_in(&self) -> usize {
        self.h * self.w * self.c
    }

    fn per_out(&self) -> usize {
        (self.h / 2) * (self.w / 2) * self.cout
    }

    /// Calls `f(patch_offset, image_offset, len)` for each row `dy` of each output pixel's
    /// window: a run of `len` values at `image_offset` in the image (HWC) that lands at
    /// `patch_offset` in the im2col matrix (the window's columns of a row are adjacent in both),
    /// clipped at the image's edges. Where the window hangs over an edge nothing is called; the
    /// patch holds zeros there (`im2col` writes them).
    fn each_run(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (c, h, w, k) = (self.c, self.h, self.w, self.k);
        let pad = k / 2;
        for y in 0..h {
            for x in 0..w {
                let row = (y * w + x) * self.patch();
                // The window's columns inside the image: dx in lo..hi.
                let lo = pad.saturating_sub(x);
                let hi = k.min(w + pad - x);
                for dy in 0..k {
                    let sy = y + dy;
                    if sy < pad || sy - pad >= h {
                        continue;
                    }
                    let from = ((sy - pad) * w + x + lo - pad) * c;
                    f(row + (dy * k + lo) * c, from, (hi - lo) * c);
                }
            }
        }
    }

    /// Gathers the patches of the images in `xs` into `cols` (resized to fit).
    fn im2col(&self, xs: &[f32], cols: &mut Vec<f32>) {
        let per_img = self.h * self.w * self.patch();
        let n = xs.len() / self.per_in() * per_img;
        // Every patch value is written below: zeros over the edges, then the runs, then the
        // bias column's ones; so a reused buffer is not cleared first.
        cols.resize(n, 0.0);
        cols.truncate(n);
        let edges = self.k / 2;
        for (o, xi) in cols.chunks_mut(per_img).zip(xs.chunks(self.per_in())) {
            // Zero only the patches of pixels within `edges` of a border: the others'
            // windows lie inside the image.
            for y in 0..self.h {
                for x in 0..self.w {
                    if (edges..self.h.saturating_sub(edges)).contains(&y)
                        && (edges..self.w.saturating_sub(edges)).contains(&x)
                    {
                        continue;
                    }
                    let row = (y * self.w + x) * self.patch();
                    zero(&mut o[row..row + self.patch() - 1]);
                }
            }
            self.each_run(|to, from, len| o[to..to + len].copy_from_slice(&xi[from..from + len]));
            o.iter_mut()
                .skip(self.patch() - 1)
                .step_by(self.patch())
                .for_each(|one| *one = 1.0);
        }
    }

    /// Offset in one image's conv output of window cell `cell` (0..4) of pooled cell `(y, x)`.
    fn cell(&self, y: usize, x: usize, cell: u8) -> usize {
        let (yy, xx) = (2 * y + (cell as usize >> 1), 2 * x + (cell as usize & 1));
        (yy * self.w + xx) * self.cout
    }

    /// Spreads pooled gradients `g` back over the conv outputs of the same images, through the
    /// recorded winners.
    fn unpool(&self, winners: &[u8], g: &[f32], dconv: &mut Vec<f32>) {
        let (hw, cout, ow) = (self.h * self.w, self.cout, self.w / 2);
        let imgs = g.len() / self.per_out();
        dconv.resize(imgs * hw * cout, 0.0);
        dconv.truncate(imgs * hw * cout);
        zero(dconv);
        for i in 0..imgs {
            let di = &mut dconv[i * hw * cout..(i + 1) * hw * cout];
            for y in 0..self.h / 2 {
                for x in 0..ow {
                    let cells = [0, 1, 2, 3].map(|c| self.cell(y, x, c));
                    for ch in 0..cout {
                        let at = i * self.per_out() + (y * ow + x) * cout + ch;
                        if let Some(&cell) = cells.get(winners[at] as usize) {
                            di[cell + ch] = g[at];
                        }
                    }
                }
            }
        }
    }

    /// Adds patch gradients `dcols` back onto the images they were gathered from.
    fn col2im(&self, dcols: &[f32], dx: &mut [f32]) {
        let per_img = self.h * self.w * self.patch();
        for (gi, go) in dx.chunks_mut(self.per_in()).zip(dcols.chunks(per_img)) {
            // `d + 1 * s` by a fused multiply-add is `d + s`: the sums the tap-by-tap loop made.
            self.each_run(|from, to, len| axpy(&mut gi[to..to + len], 1.0, &go[from..from + len]));
        }
    }
}

impl CustomOp2 for ConvPoolRelu {
    fn name(&self) -> &'static str {
        "conv-pool-relu-hwc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_input(s1, l1, self.name())?;
        let wb = f32_input(s2, l2, self.name())?;
        if wb.len() != self.patch() * self.cout || x.len() % self.per_in() != 0 {
            bail!("{}: shapes do not fit the layer", self.name())
        }
        let (b, chunk, hw, cout) = (
            x.len() / self.per_in(),
            self.chunk,
            self.h * self.w,
            self.cout,
        );
        let (oh, ow) = (self.h / 2, self.w / 2);
        let mut out = vec![0f32; b * self.per_out()];
        let mut winners = vec![0u8; b * self.per_out()];
        out.par_chunks_mut(chunk * self.per_out())
            .zip(winners.par_chunks_mut(chunk * self.per_out()))
            .zip(x.par_chunks(chunk * self.per_in()))
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(cols, conv), ((o, win), xs)| {
                    let imgs = xs.len() / self.per_in();
                    self.im2col(xs, cols);
                    conv.resize(imgs * hw * cout, 0.0);
                    gemm(
                        conv,
                        (imgs * hw, cout, self.patch()),
                        cols,
                        (self.patch(), 1),
                        wb,
                        (cout, 1),
                    );
                    for i in 0..imgs {
                        let yi = &conv[i * hw * cout..(i + 1) * hw * cout];
                        for y in 0..oh {
                            for x in 0..ow {
                                let cells = [0, 1, 2, 3].map(|c| {
                                    let at = self.cell(y, x, c);
                                    &yi[at..at + cout]
                                });
                                let at = i * self.per_out() + (y * ow + x) * cout;
                                pool_window(cells, &mut o[at..at + cout], &mut win[at..at + cout]);
                            }
                        }
                    }
                },
            );
        *self.winners.lock().expect("never poisoned") = winners;
        Ok((CpuStorage::F32(out), Shape::from((b, self.per_out()))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        wb: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let winners = std::mem::take(&mut *self.winners.lock().expect("never poisoned"));
        let (b, chunk, patch, cout) = (x.dim(0)?, self.chunk, self.patch(), self.cout);
        if winners.len() != b * self.per_out() {
            bail!("{}: backward without its forward pass", self.name())
        }
        // Data inputs need no gradient: skip the col2im half of the work for them.
        let want_dx = x.track_op();
        let mut dx = vec![0f32; if want_dx { b * self.per_in() } else { 0 }];
        let mut dws = vec![0f32; b.div_ceil(chunk) * patch * cout];
        with_f32(x, |x| {
            with_f32(wb, |wbv| {
                with_f32(grad, |g| {
                    let work =
                        |bufs: &mut Buffers, ci: usize, dw: &mut [f32], dx: Option<&mut [f32]>| {
                            let first = ci * chunk;
                            let imgs = chunk.min(b - first);
                            let rows = imgs * self.h * self.w;
                            self.im2col(
                                &x[first * self.per_in()..(first + imgs) * self.per_in()],
                                &mut bufs.cols,
                            );
                            self.unpool(
                                &winners[first * self.per_out()..(first + imgs) * self.per_out()],
                                &g[first * self.per_out()..(first + imgs) * self.per_out()],
                                &mut bufs.dconv,
                            );
                            gemm(
                                dw,
                                (patch, cout, rows),
                                &bufs.cols,
                                (1, patch),
                                &bufs.dconv,
                                (cout, 1),
                            );
                            if let Some(dx) = dx {
                                bufs.cols.resize(rows * patch, 0.0);
                                let dcols = &mut bufs.cols;
                                gemm(
                                    dcols,
                                    (rows, patch, cout),
                                    &bufs.dconv,
                                    (cout, 1),
                                    wbv,
                                    (1, cout),
                                );
                                self.col2im(dcols, dx);
                            }
                        };
                    if want_dx {
                        dws.par_chunks_mut(patch * cout)
                            .zip(dx.par_chunks_mut(chunk * self.per_in()))
                            .enumerate()
                            .for_each_init(Buffers::default, |bufs, (ci, (dw, dx))| {
                                work(bufs, ci, dw, Some(dx))
                            });
                    } else {
                        dws.par_chunks_mut(patch * cout)
                            .enumerate()
                            .for_each_init(Buffers::default, |bufs, (ci, dw)| {
                                work(bufs, ci, dw, None)
                            });
                    }
                    Ok(())
                })
            })
        })?;
        // Summed in chunk order, whatever thread ran which chunk.
        let mut dw = vec![0f32; patch * cout];
        for part in dws.chunks(patch * cout) {
            dw.iter_mut().zip(part).for_each(|(d, p)| *d += p);
        }
        let dw = Tensor::from_vec(dw, (patch, cout), wb.device())?;
        let dx = if want_dx {
            Some(Tensor::from_vec(dx, (b, self.per_in()), x.device())?)
        } else {
            None
        };
        Ok((dx, Some(dw)))
    }
}

/// Per-thread scratch of the backward pass.
#[derive(Default)]
struct Buffers {
    cols: Vec<f32>,
    dconv: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight lanes and a tail of five against the rule written out: ties go to the first
    /// cell, a NaN never wins a comparison, a negative or NaN maximum is cut by ReLU, -0 is not.
    #[test]
    fn pooling_windows_take_the_first_maximum_in_the_lanes_and_the_tail() {
        let n = 13;
        let mut cells: [Vec<f32>; 4] = std::array::from_fn(|c| {
            (0..n)
                .map(|ch| ((ch * 7 + c * 3) % 11) as f32 - 5.0)
                .collect()
        });
        for ch in [2, 10] {
            cells[0][ch] = f32::NAN;
        }
        cells[1][4] = f32::NAN;
        for (ch, v) in [(5, 1.5), (12, 1.5)] {
            for cell in &mut cells {
                cell[ch] = v;
            }
        }
        for cell in &mut cells {
            cell[7] = -0.0;
        }
        let (mut out, mut win) = (vec![9.0; n], vec![7u8; n]);
        pool_window(
            std::array::from_fn(|c| cells[c].as_slice()),
            &mut out,
            &mut win,
        );
        for ch in 0..n {
            let mut best = 0;
            for c in 1..4 {
                if cells[c][ch] > cells[best][ch] {
                    best = c;
                }
            }
            let v = cells[best][ch];
            let want = if v >= 0.0 {
                (v, best as u8)
            } else {
                (0.0, u8::MAX)
            };
            assert_eq!(
                (out[ch].to_bits(), win[ch]),
                (want.0.to_bits(), want.1),
                "channel {ch}"
            );
        }
        assert_eq!((win[5], win[12]), (0, 0), "ties go to the first cell");
        assert_eq!((out[2], win[2]), (0.0, u8::MAX), "a NaN maximum is cut");
        assert_eq!(out[7].to_bits(), (-0.0f32).to_bits());
    }
}
