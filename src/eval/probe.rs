//! The linear probe: softmax regression on frozen, standardised features.

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// Top-1 and top-5 test accuracy of an N-way softmax regression trained for `epochs` passes
/// (Adam, lr 0.01, batches of 1024, order from `seed`) on the training features.
///
/// The gradient of the cross-entropy is written out (softmax minus one-hot, then two GEMMs)
/// and Adam runs on plain vectors: a dozen tensor ops per step instead of an autograd graph of
/// sixty, which is what the probe's cost on small sweep points is made of.
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
    // Weights and bias as one (d + 1) x n matrix over features with a constant 1 appended.
    let ones = |r: usize| Tensor::ones((r, 1), DType::F32, dev);
    let xtr = Tensor::cat(&[&xtr, &ones(rows)?], 1)?;
    let xte = Tensor::cat(&[&xte, &ones(test.dim(0)?)?], 1)?;
    let width = (d + 1) * n;
    let (mut w, mut m, mut v) = (vec![0f32; width], vec![0f32; width], vec![0f32; width]);
    let (lr, b1, b2, eps) = (0.01f32, 0.9f32, 0.999f32, 1e-8f32);
    let mut t = 0i32;
    let mut order: Vec<u32> = (0..rows as u32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9b0b_e000);
    let labels: Vec<usize> = train_cls.iter().map(|&c| c as usize).collect();
    let mut xs = xtr.clone();
    let mut g = Vec::new();
    for _ in 0..epochs {
        // One gather per epoch; batches are then contiguous slices. A single batch needs no
        // shuffle: its gradient does not depend on the order.
        if rows > 1024 {
            order.shuffle(&mut rng);
            xs = xtr.index_select(&Tensor::from_slice(&order, rows, dev)?, 0)?;
        }
        for (bi, chunk) in order.chunks(1024).enumerate() {
            let b = chunk.len();
            let xb = xs.narrow(0, bi * 1024, b)?;
            let wt = Tensor::from_slice(&w, (d + 1, n), dev)?;
            let p = candle_nn::ops::softmax_last_dim(&xb.matmul(&wt)?)?;
            g.clear();
            g.extend(p.flatten_all()?.to_vec1::<f32>()?);
            for (r, &id) in chunk.iter().enumerate() {
                g[r * n + labels[id as usize]] -= 1.0;
            }
            let gt = Tensor::from_slice(&g, (b, n), dev)?;
            let grad = xb.t()?.matmul(&gt)?.flatten_all()?.to_vec1::<f32>()?;
            t += 1;
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            let inv_b = 1.0 / b as f32;
            for i in 0..width {
                let gi = grad[i] * inv_b;
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                w[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        }
    }
    let logits = xte
        .matmul(&Tensor::from_slice(&w, (d + 1, n), dev)?)?
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
