//! Convolution as one gather (im2col) and one GEMM, on channels-last activations.
//!
//! candle's stock `conv2d` backward is slow on CPU; here the patches are gathered with
//! `index_select` (whose backward is a scatter-add) from the input with one zero column
//! appended for the padding, and the product with the pre-transposed weight is a single GEMM,
//! so forward and backward are GEMMs too.

use candle_core::{D, DType, Module, Tensor};

use crate::Result;

/// A stride-1, zero-padded `k x k` convolution on `(B, h * w * cin)` inputs laid out HWC.
#[derive(Debug, Clone)]
pub struct Conv {
    /// `(k * k * cin, cout)`, rows ordered (dy, dx, c).
    pub weight: Tensor,
    /// `(cout)`.
    pub bias: Tensor,
    idx: Tensor,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl Conv {
    /// Builds the layer for `h x w x cin` inputs.
    pub fn new(
        weight: Tensor,
        bias: Tensor,
        cin: usize,
        h: usize,
        w: usize,
        k: usize,
    ) -> Result<Self> {
        let cout = weight.dim(1)?;
        let pad = (k / 2) as isize;
        let zero = (h * w * cin) as u32;
        let mut idx = Vec::with_capacity(h * w * k * k * cin);
        for y in 0..h as isize {
            for x in 0..w as isize {
                for dy in 0..k as isize {
                    for dx in 0..k as isize {
                        let (sy, sx) = (y + dy - pad, x + dx - pad);
                        let inside = sy >= 0 && sx >= 0 && sy < h as isize && sx < w as isize;
                        for c in 0..cin {
                            idx.push(if inside {
                                ((sy as usize * w + sx as usize) * cin + c) as u32
                            } else {
                                zero
                            });
                        }
                    }
                }
            }
        }
        let n = idx.len();
        let idx = Tensor::from_vec(idx, n, weight.device())?;
        Ok(Self {
            weight,
            bias,
            idx,
            cin,
            cout,
            h,
            w,
            k,
        })
    }

    /// Output width per example: `h * w * cout`.
    pub fn out_len(&self) -> usize {
        self.h * self.w * self.cout
    }

    /// The same convolution through candle's stock `conv2d` (NCHW); the reference path.
    pub fn forward_stock(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let b = xs.dim(0)?;
        let x = xs
            .reshape((b, self.h, self.w, self.cin))?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        let w = self
            .weight
            .reshape((self.k, self.k, self.cin, self.cout))?
            .permute((3, 2, 0, 1))?
            .contiguous()?;
        let y = x.conv2d(&w, self.k / 2, 1, 1, 1)?;
        let y = y.broadcast_add(&self.bias.reshape((1, self.cout, 1, 1))?)?;
        y.permute((0, 2, 3, 1))?.reshape((b, self.out_len()))
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let b = xs.dim(0)?;
        let padded = Tensor::cat(&[xs, &Tensor::zeros((b, 1), DType::F32, xs.device())?], 1)?;
        let patches = padded
            .index_select(&self.idx, 1)?
            .reshape((b * self.h * self.w, self.k * self.k * self.cin))?;
        patches
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)?
            .reshape((b, self.out_len()))
    }
}

/// 2 x 2 max pooling of `(B, h * w * c)` HWC activations (h and w even).
pub fn max_pool2(xs: &Tensor, h: usize, w: usize, c: usize) -> candle_core::Result<Tensor> {
    let b = xs.dim(0)?;
    xs.reshape((b, h / 2, 2, w / 2, 2 * c))?
        .max(2)?
        .reshape((b, h / 2, w / 2, 2, c))?
        .max(D::Minus2)?
        .reshape((b, (h / 2) * (w / 2) * c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn gathered_convolution_equals_candle_conv2d_with_gradients() {
        let dev = Device::Cpu;
        let (cin, cout, h, w, k) = (3, 5, 6, 4, 3);
        let weight = candle_core::Var::from_tensor(
            &Tensor::randn(0f32, 0.5, (k * k * cin, cout), &dev).unwrap(),
        )
        .unwrap();
        let bias =
            candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.5, cout, &dev).unwrap()).unwrap();
        let conv = Conv::new(
            weight.as_tensor().clone(),
            bias.as_tensor().clone(),
            cin,
            h,
            w,
            k,
        )
        .unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, h * w * cin), &dev).unwrap();
        let (fast, stock) = (conv.forward(&x).unwrap(), conv.forward_stock(&x).unwrap());
        let diff = (&fast - &stock)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "forward differs by {diff}");
        // Gradients through a pooled, nonlinear head.
        let head = |y: &Tensor| {
            max_pool2(&y.relu().unwrap(), h, w, cout)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let (gf, gs) = (
            head(&fast).backward().unwrap(),
            head(&stock).backward().unwrap(),
        );
        for v in [&weight, &bias] {
            let a = gf
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let b = gs
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!(
                    (p - q).abs() < 1e-4 * (1.0 + q.abs()),
                    "gradient {p} vs {q}"
                );
            }
        }
    }

    #[test]
    fn max_pool_takes_the_window_maximum() {
        let dev = Device::Cpu;
        // h = w = 2, c = 2: one window per channel.
        let x = Tensor::new(&[[1f32, -1.0, 4.0, 0.0, 2.0, 7.0, 3.0, -2.0]], &dev).unwrap();
        let y = max_pool2(&x, 2, 2, 2).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![4.0, 7.0]]);
    }
}
