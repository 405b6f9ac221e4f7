//! A convolution layer of the CNN encoder: the fast path is the fused conv + pool + ReLU op of
//! `ops` on channels-last rows; the stock path is candle's NCHW `conv2d`, kept as the
//! reference the fast one is tested and benchmarked against.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::init::fan_in_uniform;
use super::ops::ConvPoolRelu;

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
    ) -> candle_core::Result<Self> {
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

    /// A `k x k` convolution from `cin` to `cout` channels on `h x w` inputs, with parameters
    /// `weight` `(k * k * cin, cout)` and `bias` `(1, cout)` under `vb`, both drawn from
    /// U(-1/sqrt(k * k * cin), 1/sqrt(k * k * cin)), weight first.
    pub fn load(
        (h, w, cin): (usize, usize, usize),
        k: usize,
        cout: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let fan_in = k * k * cin;
        let init = fan_in_uniform(fan_in);
        let weight = vb.get_with_hints((fan_in, cout), "weight", init)?;
        // Stored as a row so that checkpoints keep the shape they always had.
        let bias = vb.get_with_hints((1, cout), "bias", init)?;
        Self::new(weight, bias.reshape(cout)?, cin, h, w, k)
    }

    /// Input shape of one example: `(h, w, cin)`.
    pub fn input_hwc(&self) -> (usize, usize, usize) {
        (self.h, self.w, self.cin)
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

    /// [`Conv::forward_nchw`] on HWC rows, for comparing with the fused op.
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

impl Conv {
    /// `relu(max_pool_2x2(conv(xs)))` on `(B, h * w * cin)` HWC rows: `(B, h/2 * w/2 * cout)`.
    pub fn forward_pooled(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let weight = Tensor::cat(&[&self.weight, &self.bias.reshape((1, self.cout))?], 0)?;
        let op = ConvPoolRelu::new(self.cin, self.h, self.w, self.k, self.cout);
        xs.contiguous()?.apply_op2(&weight, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// relu(max_pool_2x2(y)) from plain candle reductions, on `(B, h * w * c)` HWC rows.
    fn reference_pool_relu(y: &Tensor, h: usize, w: usize, c: usize) -> Tensor {
        let b = y.dim(0).unwrap();
        y.relu()
            .unwrap()
            .reshape((b, h / 2, 2, w / 2, 2 * c))
            .unwrap()
            .max(2)
            .unwrap()
            .reshape((b, h / 2, w / 2, 2, c))
            .unwrap()
            .max(candle_core::D::Minus2)
            .unwrap()
            .reshape((b, h * w * c / 4))
            .unwrap()
    }

    #[test]
    fn fused_conv_pool_relu_equals_candle_conv2d_and_reductions_with_gradients() {
        let dev = Device::Cpu;
        let (cin, cout, h, w, k) = (3, 5, 6, 4, 3);
        let var = |shape: (usize, usize), std: f32| {
            candle_core::Var::from_tensor(&Tensor::randn(0f32, std, shape, &dev).unwrap()).unwrap()
        };
        let weight = var((k * k * cin, cout), 0.5);
        let bias = var((1, cout), 0.5);
        let conv = Conv::new(
            weight.as_tensor().clone(),
            bias.as_tensor().flatten_all().unwrap(),
            cin,
            h,
            w,
            k,
        )
        .unwrap();
        // 5 images in chunks of 2: several chunks and a ragged last one.
        let x = var((5, h * w * cin), 1.0);
        let fused = |xs: &Tensor| {
            let wb = Tensor::cat(&[weight.as_tensor(), bias.as_tensor()], 0).unwrap();
            let mut op = ConvPoolRelu::new(cin, h, w, k, cout);
            op.chunk = 2;
            xs.apply_op2(&wb, op).unwrap()
        };
        let reference = reference_pool_relu(&conv.forward_stock(&x).unwrap(), h, w, cout);
        let fast = fused(&x);
        crate::testing::assert_close(&fast, &reference, 1e-5, 1e-5, "forward");
        assert_eq!(
            conv.forward_pooled(&x).unwrap().to_vec2::<f32>().unwrap(),
            fast.to_vec2::<f32>().unwrap(),
            "chunking changes nothing"
        );
        let weights = Tensor::randn(0f32, 1.0, fast.shape(), &dev).unwrap();
        let loss = |t: &Tensor| (t * &weights).unwrap().sum_all().unwrap();
        let (gf, gr) = (
            loss(&fast).backward().unwrap(),
            loss(&reference).backward().unwrap(),
        );
        for v in [&weight, &bias, &x] {
            crate::testing::assert_grads_close(&gf, &gr, v.as_tensor(), 1e-4, 1e-4, "conv");
        }
        // On data (not a variable) the input gradient is skipped, the weight's is unchanged.
        let data = x.as_tensor().detach();
        let g = loss(&fused(&data)).backward().unwrap();
        assert!(g.get(&data).is_none());
        crate::testing::assert_grads_close(&g, &gr, weight.as_tensor(), 1e-4, 1e-4, "data");
    }

    #[test]
    fn pooling_takes_the_window_maximum_and_relu_cuts_negatives() {
        let dev = Device::Cpu;
        // A 1 x 1 identity convolution on a 2 x 2 image with 3 channels: one window each.
        let wb = Tensor::new(
            &[[1f32, 0., 0.], [0., 1., 0.], [0., 0., 1.], [0., 0., 0.]],
            &dev,
        )
        .unwrap();
        let x = Tensor::new(
            &[[
                1f32, -1.0, -5.0, 4.0, 0.0, -1.0, 2.0, 7.0, -3.0, 3.0, -2.0, -2.0,
            ]],
            &dev,
        )
        .unwrap();
        let y = x.apply_op2(&wb, ConvPoolRelu::new(3, 2, 2, 1, 3)).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), vec![vec![4.0, 7.0, 0.0]]);
    }
}
