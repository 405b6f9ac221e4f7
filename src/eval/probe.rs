//! The linear probe: softmax regression on frozen, standardised features.

use candle_core::{DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// Top-1 and top-5 test accuracy of an N-way softmax regression trained for `epochs` passes
/// (Adam, lr 0.01, batches of 1024, order from `seed`) on the training features.
pub fn linear_probe(
    train: &Tensor,
    train_cls: &[u32],
    test: &Tensor,
    test_cls: &[u32],
    n: usize,
    epochs: u32,
    seed: u64,
) -> Result<(f64, f64)> {
    let (rows, d) = train.dims2()?;
    let dev = train.device();
    // Standardise with training statistics: the probe's step size then fits every encoder.
    let mean = train.mean_keepdim(0)?;
    let std = train
        .broadcast_sub(&mean)?
        .sqr()?
        .mean_keepdim(0)?
        .sqrt()?
        .clamp(1e-6, f64::MAX)?;
    let scale = |x: &Tensor| -> Result<Tensor> { Ok(x.broadcast_sub(&mean)?.broadcast_div(&std)?) };
    let (xtr, xte) = (scale(train)?, scale(test)?);
    let w = Var::zeros((d, n), DType::F32, dev)?;
    let b = Var::zeros(n, DType::F32, dev)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW {
            lr: 0.01,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let labels = Tensor::from_slice(train_cls, rows, dev)?;
    let mut order: Vec<u32> = (0..rows as u32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9b0b_e000);
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(1024) {
            let idx = Tensor::from_slice(chunk, chunk.len(), dev)?;
            let logits = xtr
                .index_select(&idx, 0)?
                .matmul(w.as_tensor())?
                .broadcast_add(b.as_tensor())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels.index_select(&idx, 0)?)?;
            opt.backward_step(&loss)?;
        }
    }
    let logits = xte
        .matmul(w.as_tensor())?
        .broadcast_add(b.as_tensor())?
        .to_vec2::<f32>()?;
    let (mut top1, mut top5) = (0usize, 0usize);
    for (row, &truth) in logits.iter().zip(test_cls) {
        let t = row[truth as usize];
        // Rank of the true class; ties count against it.
        let above = row
            .iter()
            .enumerate()
            .filter(|&(c, &v)| c != truth as usize && v >= t)
            .count();
        top1 += usize::from(above == 0);
        top5 += usize::from(above < 5);
    }
    let total = test_cls.len().max(1) as f64;
    Ok((top1 as f64 / total, top5 as f64 / total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn probe_separates_linearly_separable_classes_and_top5_bounds_top1() {
        let dev = Device::Cpu;
        // Three classes at the corners of a triangle, with jitter.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..300u32 {
            let c = i % 3;
            let j = (i as f32 * 0.37).sin() * 0.2;
            let (a, b) = [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)][c as usize];
            x.extend([a + j, b - j]);
            y.push(c);
        }
        let t = Tensor::from_vec(x, (300, 2), &dev).unwrap();
        let (top1, top5) = linear_probe(&t, &y, &t, &y, 3, 30, 0).unwrap();
        assert!(top1 > 0.95, "top-1 {top1}");
        assert_eq!(top5, 1.0, "3 classes: always in the top 5");
        // Untrained: all logits tie at zero, so nothing counts as top-1.
        let (top1, _) = linear_probe(&t, &y, &t, &y, 3, 0, 0).unwrap();
        assert_eq!(top1, 0.0);
    }
}
