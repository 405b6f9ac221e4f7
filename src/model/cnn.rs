//! The CNN encoder: 3 x 3 conv-relu-maxpool blocks on channels-last images, then a linear
//! layer.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use rand_chacha::ChaCha8Rng;

use super::conv::Conv;
use super::{Dense, Encode, EncoderConfig};
use crate::data::Batch;

/// 3 x 3 conv-relu-maxpool blocks, then a linear layer, on dense `(B, side * side *
/// in_channels)` rows laid out HWC: `(B, dim)`. Each block halves the side (rounding down).
///
/// Parameters: `conv{i}.weight` `(9 * c_in, c_out)` and `conv{i}.bias` `(1, c_out)` for each
/// block `i`, then `head.weight` `(s * s * c_last, dim)` and `head.bias` `(1, dim)`, where `s`
/// is the side after the last block; drawn in that order.
#[derive(Debug)]
pub struct Cnn {
    convs: Vec<Conv>,
    head: Dense,
    /// Run on candle's stock ops instead (NCHW `conv2d`, `max_pool2d`): the straightforward
    /// implementation, kept as the reference for tests and benchmarks.
    stock: bool,
}

impl Cnn {
    /// Builds one block per entry of `cfg.channels` for square images of `cfg.input /
    /// cfg.in_channels` pixels, and a head to `cfg.dim`.
    pub fn new(cfg: &EncoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let side = ((cfg.input / cfg.in_channels.max(1)) as f64).sqrt().round() as usize;
        let (mut h, mut cin) = (side, cfg.in_channels);
        let mut convs = Vec::with_capacity(cfg.channels.len());
        for (i, &cout) in cfg.channels.iter().enumerate() {
            convs.push(Conv::load((h, h, cin), 3, cout, vb.pp(format!("conv{i}")))?);
            h /= 2;
            cin = cout;
        }
        Ok(Self {
            convs,
            head: Dense::new(h * h * cin, cfg.dim, cfg.precision, vb.pp("head"))?,
            stock: false,
        })
    }

    /// The same network run on candle's stock ops (NCHW `conv2d`, `max_pool2d`): slower, the
    /// reference for tests and benchmarks.
    pub fn stock(self) -> Self {
        Self {
            stock: true,
            ..self
        }
    }

    fn forward_stock(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let b = xs.dim(0)?;
        let Some(first) = self.convs.first() else {
            return self.head.forward(xs);
        };
        let (h, w, _) = first.input_hwc();
        let cin = xs.dim(1)? / (h * w);
        let mut x = xs
            .reshape((b, h, w, cin))?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        for conv in &self.convs {
            x = conv.forward_nchw(&x)?.relu()?.max_pool2d(2)?;
        }
        // Back to HWC rows so that the head sees the same layout as the fast path.
        let flat = x.dims()[1..].iter().product::<usize>();
        self.head
            .forward(&x.permute((0, 2, 3, 1))?.reshape((b, flat))?)
    }
}

impl Encode for Cnn {
    /// Dense rows only; there is no dropout.
    fn encode(&self, x: &Batch, _train: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
        let Batch::Dense(xs) = x else {
            candle_core::bail!("the CNN encoder takes dense rows, not token ids")
        };
        if self.stock {
            return self.forward_stock(xs);
        }
        let mut x = xs.clone();
        for conv in &self.convs {
            x = conv.forward_pooled(&x)?;
        }
        self.head.forward(&x)
    }
}
