//! Downstream evaluation of frozen representations: the mean classifier, kNN and a linear
//! probe; and their geometry (alignment, uniformity, effective rank).

mod geometry;
mod probe;

pub use geometry::{alignment, effective_rank, same_concept_pairs, uniformity};
pub use probe::linear_probe;

use candle_core::Tensor;

use crate::Result;

/// Checks trained representations (`rows x dim`) before they are evaluated: every value finite,
/// and not all rows one point (a collapsed encoder scores chance and would enter the summary
/// as a result).
///
/// # Errors
/// [`crate::Error::Diverged`] at `step`, saying which.
pub fn check_representations(f: &Tensor, step: usize) -> Result<()> {
    let rows = f.to_vec2::<f32>()?;
    let diverged = |reason: String| crate::Error::Diverged { step, reason };
    if let Some(v) = rows.iter().flatten().find(|v| !v.is_finite()) {
        return Err(diverged(format!("a representation holds {v}")));
    }
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let scale = rows.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    let spread = rows
        .iter()
        .flat_map(|r| r.iter().zip(first).map(|(a, b)| (a - b).abs()))
        .fold(0f32, f32::max);
    if rows.len() > 1 && spread <= 1e-6 * scale.max(1e-30) {
        return Err(diverged(format!(
            "the representations collapsed: all {} are one point",
            rows.len()
        )));
    }
    Ok(())
}

/// N-way top-1 accuracy of the mean classifier: class means of the training representations are
/// the weights, and a test example goes to the class of largest dot product.
pub fn mean_classifier_accuracy(
    train: &Tensor,
    train_cls: &[u32],
    test: &Tensor,
    test_cls: &[u32],
    n: usize,
) -> Result<f64> {
    let d = train.dim(1)?;
    let rows = train.to_vec2::<f32>()?;
    let mut w = vec![0f32; n * d];
    let mut count = vec![0f32; n];
    for (row, &c) in rows.iter().zip(train_cls) {
        count[c as usize] += 1.0;
        for (acc, x) in w[c as usize * d..(c as usize + 1) * d].iter_mut().zip(row) {
            *acc += x;
        }
    }
    for (c, chunk) in w.chunks_mut(d).enumerate() {
        chunk.iter_mut().for_each(|x| *x /= count[c].max(1.0));
    }
    let w = Tensor::from_vec(w, (n, d), train.device())?;
    let pred = test.matmul(&w.t()?)?.argmax(1)?.to_vec1::<u32>()?;
    Ok(accuracy(&pred, test_cls))
}

/// Top-1 accuracy of a `neighbours`-nearest-neighbour vote by cosine similarity (ties go to the
/// class with the larger summed similarity).
pub fn knn_accuracy(
    train: &Tensor,
    train_cls: &[u32],
    test: &Tensor,
    test_cls: &[u32],
    n: usize,
    neighbours: usize,
) -> Result<f64> {
    let unit = |t: &Tensor| -> Result<Tensor> {
        let norm = t.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(t.broadcast_div(&norm)?)
    };
    let train_t = unit(train)?.t()?.contiguous()?;
    let test = unit(test)?;
    let kk = neighbours.min(train_cls.len()).max(1);
    let mut order: Vec<usize> = Vec::with_capacity(train_cls.len());
    let mut pred = Vec::with_capacity(test_cls.len());
    // Chunks of test rows bound the similarity matrix to 1024 x n_train.
    let rows = test.dim(0)?;
    for lo in (0..rows).step_by(1024) {
        let sims = test
            .narrow(0, lo, 1024.min(rows - lo))?
            .matmul(&train_t)?
            .to_vec2::<f32>()?;
        knn_votes(&sims, train_cls, n, kk, &mut order, &mut pred);
    }
    Ok(accuracy(&pred, test_cls))
}

fn knn_votes(
    sims: &[Vec<f32>],
    train_cls: &[u32],
    n: usize,
    kk: usize,
    order: &mut Vec<usize>,
    pred: &mut Vec<u32>,
) {
    for row in sims {
        order.clear();
        order.extend(0..row.len());
        order.select_nth_unstable_by(kk - 1, |&a, &b| row[b].total_cmp(&row[a]));
        let mut votes = vec![(0u32, 0f32); n];
        for &j in &order[..kk] {
            let v = &mut votes[train_cls[j] as usize];
            v.0 += 1;
            v.1 += row[j];
        }
        let best = (0..n)
            .max_by(|&a, &b| {
                votes[a]
                    .0
                    .cmp(&votes[b].0)
                    .then(votes[a].1.total_cmp(&votes[b].1))
            })
            .unwrap_or(0);
        pred.push(best as u32);
    }
}

fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    let hits = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    hits as f64 / truth.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn classifiers_on_hand_made_points() {
        let dev = Device::Cpu;
        // Two classes along the axes; one test point of each and one mislabelled.
        let train = Tensor::new(&[[1f32, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]], &dev).unwrap();
        let test = Tensor::new(&[[1f32, 0.2], [0.2, 1.0], [3.0, 0.0]], &dev).unwrap();
        let (tc, sc) = ([0u32, 0, 1, 1], [0u32, 1, 1]);
        let acc = mean_classifier_accuracy(&train, &tc, &test, &sc, 2).unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 1e-9, "{acc}");
        let acc = knn_accuracy(&train, &tc, &test, &sc, 2, 1).unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 1e-9, "{acc}");
    }
}
