//! Convolution as one gather (im2col) and one GEMM, on channels-last activations.
//!
//! candle's stock `conv2d` backward is slow on CPU; here the patches are gathered by a parallel
//! im2col op (whose backward is col2im) and multiplied by the pre-transposed weight in a single
//! GEMM, so the weight and input gradients are GEMMs too.

use candle_core::{Module, Tensor};

use super::ops::{Im2Col, MaxPool2};

use crate::Result;

/// A stride-1, zero-padded `k x k` convolution on `(B, h * w * cin)` inputs laid out HWC.
#[derive(Debug, Clone)]
pub struct Conv {
    /// `(k * k * cin, cout)`, rows ordered (dy, dx, c).
    pub weight: Tensor,
    /// `(cout)`.
    pub bias: Tensor,
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
        Ok(Self {
            weight,
            bias,
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

    /// The same convolution on `(B, cin, h, w)` through candle's stock `conv2d`: the reference
    /// path, returning `(B, cout, h, w)`.
    pub fn forward_nchw(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self
            .weight
            .reshape((self.k, self.k, self.cin, self.cout))?
            .permute((3, 2, 0, 1))?
            .contiguous()?;
        let y = x.conv2d(&w, self.k / 2, 1, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, self.cout, 1, 1))?)
    }

    /// [`Conv::forward_nchw`] on HWC rows, for comparing with [`Module::forward`].
    pub fn forward_stock(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let b = xs.dim(0)?;
        let x = xs
            .reshape((b, self.h, self.w, self.cin))?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        self.forward_nchw(&x)?
            .permute((0, 2, 3, 1))?
            .reshape((b, self.out_len()))
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let b = xs.dim(0)?;
        let op = Im2Col {
            c: self.cin,
            h: self.h,
            w: self.w,
            k: self.k,
        };
        let weight = Tensor::cat(&[&self.weight, &self.bias.reshape((1, self.cout))?], 0)?;
        xs.contiguous()?
            .apply_op1(op)?
            .matmul(&weight)?
            .reshape((b, self.out_len()))
    }
}

/// 2 x 2 max pooling of `(B, h * w * c)` HWC activations (h and w even).
pub fn max_pool2(xs: &Tensor, h: usize, w: usize, c: usize) -> candle_core::Result<Tensor> {
    xs.contiguous()?.apply_op1(MaxPool2 { c, h, w })
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
        let x = candle_core::Var::from_tensor(
            &Tensor::randn(0f32, 1.0, (2, h * w * cin), &dev).unwrap(),
        )
        .unwrap();
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
        // Weight, bias and input (col2im) gradients.
        for v in [&weight, &bias, &x] {
            crate::testing::assert_grads_close(&gf, &gs, v.as_tensor(), 1e-4, 1e-4, "conv");
        }
    }

    #[test]
    fn max_pool_and_its_gradient_match_candle_reductions() {
        let dev = Device::Cpu;
        let (b, h, w, c) = (2, 4, 6, 3);
        let x =
            candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h * w * c), &dev).unwrap())
                .unwrap();
        let reference = x
            .reshape((b, h / 2, 2, w / 2, 2 * c))
            .unwrap()
            .max(2)
            .unwrap()
            .reshape((b, h / 2, w / 2, 2, c))
            .unwrap()
            .max(candle_core::D::Minus2)
            .unwrap()
            .reshape((b, h * w * c / 4))
            .unwrap();
        let fast = max_pool2(&x, h, w, c).unwrap();
        assert_eq!(
            fast.to_vec2::<f32>().unwrap(),
            reference.to_vec2::<f32>().unwrap()
        );
        let weights = Tensor::randn(0f32, 1.0, (b, h * w * c / 4), &dev).unwrap();
        let loss = |t: &Tensor| (t * &weights).unwrap().sum_all().unwrap();
        let (gf, gr) = (
            loss(&fast).backward().unwrap(),
            loss(&reference).backward().unwrap(),
        );
        let a = gf.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let r = gr.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(a, r);
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
