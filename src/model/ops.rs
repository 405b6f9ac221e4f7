//! CPU kernels candle lacks, as custom ops with backward passes: im2col / col2im on
//! channels-last images, and 2 x 2 max pooling. Each parallelises over images with rayon (the
//! per-point pool), and each image's output is written by one thread, so results are
//! deterministic.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor, bail};
use rayon::prelude::*;

/// Runs `f` on the contiguous f32 data of `t`.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
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

fn f32_input<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: f32 only")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("{op}: contiguous input only")
    };
    Ok(&v[a..b])
}

/// Patches of a stride-1, zero-padded `k x k` convolution: `(B, h * w * c)` (HWC) to
/// `(B * h * w, k * k * c + 1)`, each patch ordered (dy, dx, c) and ending in a constant 1, so
/// that the bias is one more row of the weight and its gradient comes out of the weight GEMM.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Im2Col {
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) k: usize,
}

impl Im2Col {
    /// Calls `f(out_offset, in_offset)` for every in-bounds (pixel, tap) pair, `c` floats each.
    fn each(&self, mut f: impl FnMut(usize, usize)) {
        let (c, h, w, k) = (self.c, self.h, self.w, self.k);
        let pad = (k / 2) as isize;
        for y in 0..h {
            for x in 0..w {
                let row = (y * w + x) * (k * k * c + 1);
                for dy in 0..k {
                    let sy = y as isize + dy as isize - pad;
                    if sy < 0 || sy >= h as isize {
                        continue;
                    }
                    for dx in 0..k {
                        let sx = x as isize + dx as isize - pad;
                        if sx < 0 || sx >= w as isize {
                            continue;
                        }
                        f(row + (dy * k + dx) * c, (sy as usize * w + sx as usize) * c);
                    }
                }
            }
        }
    }
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-hwc"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_input(s, l, self.name())?;
        let (per_in, kk) = (self.h * self.w * self.c, self.k * self.k * self.c + 1);
        let b = x.len() / per_in;
        let mut out = vec![0f32; b * self.h * self.w * kk];
        out.par_chunks_mut(self.h * self.w * kk)
            .zip(x.par_chunks(per_in))
            .for_each(|(o, xi)| {
                self.each(|to, from| o[to..to + self.c].copy_from_slice(&xi[from..from + self.c]));
                o.iter_mut()
                    .skip(kk - 1)
                    .step_by(kk)
                    .for_each(|one| *one = 1.0);
            });
        Ok((CpuStorage::F32(out), Shape::from((b * self.h * self.w, kk))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let per_in = self.h * self.w * self.c;
        let per_out = self.h * self.w * (self.k * self.k * self.c + 1);
        let b = arg.dim(0)?;
        let gx = with_f32(grad, |g| {
            let mut gx = vec![0f32; b * per_in];
            gx.par_chunks_mut(per_in)
                .zip(g.par_chunks(per_out))
                .for_each(|(gi, go)| {
                    self.each(|from, to| {
                        for (d, s) in gi[to..to + self.c].iter_mut().zip(&go[from..from + self.c]) {
                            *d += s;
                        }
                    });
                });
            Ok(gx)
        })?;
        Ok(Some(Tensor::from_vec(gx, (b, per_in), arg.device())?))
    }
}

/// 2 x 2 max pooling of `(B, h * w * c)` HWC activations (h and w even); the gradient goes to
/// the first maximum of each window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaxPool2 {
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
}

impl MaxPool2 {
    /// Input offsets of the 4 cells of output cell (y, x), channel 0.
    fn window(&self, y: usize, x: usize) -> [usize; 4] {
        let at = |yy: usize, xx: usize| (yy * self.w + xx) * self.c;
        [
            at(2 * y, 2 * x),
            at(2 * y, 2 * x + 1),
            at(2 * y + 1, 2 * x),
            at(2 * y + 1, 2 * x + 1),
        ]
    }

    fn argmax(&self, xi: &[f32], y: usize, x: usize, ch: usize) -> usize {
        let cells = self.window(y, x);
        let mut best = cells[0] + ch;
        for cell in &cells[1..] {
            if xi[cell + ch] > xi[best] {
                best = cell + ch;
            }
        }
        best
    }
}

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "max-pool-2x2-hwc"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_input(s, l, self.name())?;
        let per_in = self.h * self.w * self.c;
        let (oh, ow) = (self.h / 2, self.w / 2);
        let per_out = oh * ow * self.c;
        let b = x.len() / per_in;
        let mut out = vec![0f32; b * per_out];
        out.par_chunks_mut(per_out)
            .zip(x.par_chunks(per_in))
            .for_each(|(o, xi)| {
                for y in 0..oh {
                    for x in 0..ow {
                        for ch in 0..self.c {
                            o[(y * ow + x) * self.c + ch] = xi[self.argmax(xi, y, x, ch)];
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, per_out))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let per_in = self.h * self.w * self.c;
        let (oh, ow) = (self.h / 2, self.w / 2);
        let per_out = oh * ow * self.c;
        let b = arg.dim(0)?;
        let gx = with_f32(arg, |x| {
            with_f32(grad, |g| {
                let mut gx = vec![0f32; b * per_in];
                gx.par_chunks_mut(per_in)
                    .zip(x.par_chunks(per_in))
                    .zip(g.par_chunks(per_out))
                    .for_each(|((gi, xi), go)| {
                        for y in 0..oh {
                            for x in 0..ow {
                                for ch in 0..self.c {
                                    gi[self.argmax(xi, y, x, ch)] += go[(y * ow + x) * self.c + ch];
                                }
                            }
                        }
                    });
                Ok(gx)
            })
        })?;
        Ok(Some(Tensor::from_vec(gx, (b, per_in), arg.device())?))
    }
}
