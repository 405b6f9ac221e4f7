//! The fully connected layer every encoder ends with.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use super::fused;
use super::init::fan_in_uniform;

/// A fully connected layer whose weight is stored pre-transposed, `(input, output)`, so the
/// forward product reads it contiguously.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `(input, output)`.
    pub weight: Tensor,
    /// `(output)`.
    pub bias: Tensor,
}

impl Dense {
    /// `input -> output`, parameters `weight` `(input, output)` and `bias` `(1, output)` under
    /// `vb`, both drawn from PyTorch's default U(-1/sqrt(input), 1/sqrt(input)), weight first.
    pub fn new(input: usize, output: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let init = fan_in_uniform(input);
        let weight = vb.get_with_hints((input, output), "weight", init)?;
        // Stored as a row so that checkpoints keep the shape they always had.
        let bias = vb.get_with_hints((1, output), "bias", init)?;
        Ok(Self {
            weight,
            bias: bias.reshape(output)?,
        })
    }
}

impl Dense {
    /// `(B, input)` to `(B, output)`, then ReLU, the bias and the ReLU in one pass
    /// (`fused::Bias`).
    pub fn forward_relu(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.product(xs)?.apply_op2(&self.bias, fused::BIAS_RELU)
    }

    /// `xs + bias` for `xs` `(B, output)`: the bias add of [`Module::forward`] (`fused::Bias`).
    pub fn add_bias(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.contiguous()?.apply_op2(&self.bias, fused::BIAS)
    }

    /// `xs W`; data inputs (a first layer) get no gradient: see `fused::DataMatmul`.
    fn product(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.contiguous()?.apply_op2(&self.weight, fused::DataMatmul)
    }
}

impl Module for Dense {
    /// `(B, input)` to `(B, output)`.
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.add_bias(&self.product(xs)?)
    }
}
