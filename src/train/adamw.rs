//! AdamW (Loshchilov and Hutter 2019, Algorithm 2) as candle-nn's `AdamW` computes it, bit for
//! bit, in one pass per parameter.
//!
//! candle-nn's step runs about fifteen tensor ops per parameter, each a pass through a fresh
//! buffer, and took a tenth of a small encoder's training step. This one reads the gradient,
//! the parameter and both moments once, updates the moments in place and writes the parameter
//! once. Each element is computed by the same f32 operations in the same order as candle-nn's
//! (`Tensor * f64` is `x * m + 0`, `Tensor + f64` is `x * 1 + a`), so training is unchanged.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var, bail};
use candle_nn::{Optimizer, ParamsAdamW};
use rayon::prelude::*;

use crate::model::with_f32;

/// AdamW over `Var`s of f32 on the CPU; moments start at zero. Same settings and results as
/// `candle_nn::AdamW`.
#[derive(Debug)]
pub struct FusedAdamW {
    params: ParamsAdamW,
    /// Each variable with its first and second moments, element for element.
    vars: Vec<(Var, Vec<f32>, Vec<f32>)>,
    step_t: i32,
}

/// Per-step constants, each as candle-nn converts it to f32.
#[derive(Clone, Copy)]
struct Step {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_m: f32,
    scale_v: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl Step {
    /// One element: moments updated in place, the new parameter returned.
    #[inline(always)]
    fn update(&self, theta: f32, g: f32, m: &mut f32, v: &mut f32) -> f32 {
        // The `+ 0.0`s are candle's affine `x * mul + add`; they turn -0 into +0, so they stay.
        let next_m = (*m * self.beta1 + 0.0) + (g * self.one_minus_beta1 + 0.0);
        let next_v = (*v * self.beta2 + 0.0) + ((g * g) * self.one_minus_beta2 + 0.0);
        let m_hat = next_m * self.scale_m + 0.0;
        let v_hat = next_v * self.scale_v + 0.0;
        let decayed = theta * self.decay + 0.0;
        let adjusted = m_hat / (v_hat.sqrt() * 1.0 + self.eps);
        (*m, *v) = (next_m, next_v);
        decayed - (adjusted * self.lr + 0.0)
    }
}

impl Step {
    /// [`Step::update`] over slices of one length, as wide as the CPU's vectors allow: the
    /// same IEEE operations lane by lane (no fused multiply-adds), so the same bits. Scalar
    /// `sqrt` and division took a tenth of the embedding bag's step.
    fn update_all(&self, out: &mut [f32], theta: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { self.update_avx512(out, theta, g, m, v) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.update_avx2(out, theta, g, m, v) };
            }
        }
        self.update_each(out, theta, g, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn update_avx512(
        &self,
        out: &mut [f32],
        theta: &[f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        self.update_each(out, theta, g, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn update_avx2(&self, out: &mut [f32], theta: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.update_each(out, theta, g, m, v);
    }

    /// Element by element, written for the compiler to vectorize (no index, so no bounds check).
    #[inline(always)]
    fn update_each(&self, out: &mut [f32], theta: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let elems = out.iter_mut().zip(theta).zip(g).zip(m).zip(v);
        for ((((out, &theta), &g), m), v) in elems {
            *out = self.update(theta, g, m, v);
        }
    }
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let vars = vars
            .into_iter()
            .filter(|v| v.dtype().is_float())
            .map(|v| {
                if v.dtype() != candle_core::DType::F32 || !v.device().is_cpu() {
                    bail!("adamw: f32 CPU variables only, not {:?}", v.dtype())
                }
                let n = v.elem_count();
                Ok((v, vec![0f32; n], vec![0f32; n]))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            params,
            vars,
            step_t: 0,
        })
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let step = Step {
            beta1: p.beta1 as f32,
            one_minus_beta1: (1.0 - p.beta1) as f32,
            beta2: p.beta2 as f32,
            one_minus_beta2: (1.0 - p.beta2) as f32,
            scale_m: (1.0 / (1.0 - p.beta1.powi(self.step_t))) as f32,
            scale_v: (1.0 / (1.0 - p.beta2.powi(self.step_t))) as f32,
            decay: (1.0 - p.lr * p.weight_decay) as f32,
            eps: p.eps as f32,
            lr: p.lr as f32,
        };
        for (var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let next = with_f32(var.as_tensor(), |theta| {
                with_f32(g, |g| {
                    if g.len() != theta.len() {
                        bail!(
                            "adamw: a gradient of {} for {} values",
                            g.len(),
                            theta.len()
                        )
                    }
                    let mut next = vec![0f32; theta.len()];
                    // Element-wise, so the split over threads cannot change a value.
                    next.par_chunks_mut(4096)
                        .zip(theta.par_chunks(4096))
                        .zip(g.par_chunks(4096))
                        .zip(m.par_chunks_mut(4096))
                        .zip(v.par_chunks_mut(4096))
                        .for_each(|((((out, theta), g), m), v)| {
                            step.update_all(out, theta, g, m, v);
                        });
                    Ok(next)
                })
            })?;
            var.set(&Tensor::from_vec(next, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::AdamW;

    /// Ten steps of both on the same parameters and gradients, with weight decay, parameters
    /// that start at -0 and +0 and a gradient that is zero: the same bits throughout.
    #[test]
    fn fused_adamw_is_candles_adamw_bit_for_bit() {
        let dev = Device::Cpu;
        let start = Tensor::randn(0f32, 1.0, (37, 11), &dev).unwrap();
        let start = start
            .slice_assign(
                &[0..1, 0..2],
                &Tensor::new(&[[-0.0f32, 0.0]], &dev).unwrap(),
            )
            .unwrap();
        let (a, b) = (
            Var::from_tensor(&start).unwrap(),
            Var::from_tensor(&start).unwrap(),
        );
        let params = ParamsAdamW {
            lr: 3e-3,
            weight_decay: 0.05,
            ..Default::default()
        };
        let mut ours = FusedAdamW::new(vec![a.clone()], params.clone()).unwrap();
        let mut theirs = AdamW::new(vec![b.clone()], params).unwrap();
        let bits = |v: &Var| -> Vec<u32> {
            let t = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            t.iter().map(|x| x.to_bits()).collect()
        };
        for step in 0..10 {
            // A loss whose gradient depends on the parameters, zero in the first row.
            let mask = Tensor::ones((37, 11), candle_core::DType::F32, &dev)
                .unwrap()
                .slice_assign(
                    &[0..1, 0..11],
                    &Tensor::zeros((1, 11), candle_core::DType::F32, &dev).unwrap(),
                )
                .unwrap();
            let loss = |v: &Var| {
                (v.as_tensor().sqr().unwrap() * &mask)
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            ours.backward_step(&loss(&a)).unwrap();
            theirs.backward_step(&loss(&b)).unwrap();
            assert_eq!(bits(&a), bits(&b), "step {step}");
        }
        assert_ne!(
            bits(&a),
            bits(&Var::from_tensor(&start).unwrap()),
            "it moved"
        );
    }
}
